#!/usr/bin/env bash
# The whole test suite: installs what the tests need (moto's EC2/S3 server in a virtualenv, and a
# Kubernetes control plane built once from Debian's source package), starts them on 127.0.0.1,
# then runs formatting, lint and every test. Safe to run again:
# builds and installs are cached under target/.
set -euo pipefail
cd "$(dirname "$0")/.."

ENV_DIR=target/test-env
MOTO_VERSION=5.1.22
PLAYWRIGHT_VERSION=1.65.1
mkdir -p "$ENV_DIR"

# Each step prints the minutes and seconds since the script started, so a slow phase shows.
step() { printf '\n==> [%d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

need_rust() {
  if ! command -v cargo >/dev/null; then
    echo "error: cargo not found; install Rust (https://rustup.rs) and run again" >&2
    exit 1
  fi
  if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy
  fi
}

need_python_venv() {
  if python3 -m venv --help >/dev/null 2>&1 && python3 -c 'import ensurepip' >/dev/null 2>&1; then
    return
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
  else
    echo "error: python3 with venv is needed for moto; install python3-venv" >&2
    exit 1
  fi
}

# git (with git-daemon), ssh-keygen and gpg for the GitOps tests; perl and make build the vendored
# OpenSSL that libgit2 uses.
need_tools() {
  local missing=()
  command -v git >/dev/null || missing+=(git)
  command -v ssh-keygen >/dev/null || missing+=(openssh-client)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v gpg >/dev/null || missing+=(gpg)
  command -v perl >/dev/null || missing+=(perl)
  command -v make >/dev/null || missing+=(make)
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "error: the tests need: ${missing[*]}; install them" >&2
    exit 1
  fi
}

# kubectl renders the kustomize base and dry-runs it against the test API server.
need_kubectl() {
  if ! command -v kubectl >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && apt-get install -y -qq kubernetes-client >/dev/null
    else
      echo "error: the tests need kubectl; install kubernetes-client" >&2
      exit 1
    fi
  fi
  CAPSTAN_TEST_KUBECTL=$(command -v kubectl)
  export CAPSTAN_TEST_KUBECTL
}

install_moto() {
  local venv="$ENV_DIR/moto-$MOTO_VERSION"
  if [ ! -x "$venv/bin/moto_server" ]; then
    need_python_venv
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  fi
  MOTO_BIN="$venv/bin/moto_server"
  # Tests that need a moto of their own (IAM enforcement changes the whole server) start this.
  export CAPSTAN_TEST_MOTO_BIN="$PWD/$MOTO_BIN"
}

# Debian's Chromium, driven by npm's playwright-core (which never downloads a browser of its own),
# for the test that opens `capstan simulate`'s HTML report.
install_browser() {
  local missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      echo "error: the browser test needs: ${missing[*]}; install them" >&2
      exit 1
    fi
  fi
  local dir="$ENV_DIR/playwright-$PLAYWRIGHT_VERSION"
  if [ ! -f "$dir/node_modules/playwright-core/package.json" ]; then
    rm -rf "$dir"
    npm install --prefix "$dir" --no-audit --no-fund --silent "playwright-core@$PLAYWRIGHT_VERSION"
  fi
  CAPSTAN_TEST_CHROMIUM=$(command -v chromium)
  CAPSTAN_TEST_PLAYWRIGHT="$PWD/$dir"
  export CAPSTAN_TEST_CHROMIUM CAPSTAN_TEST_PLAYWRIGHT
  echo "$("$CAPSTAN_TEST_CHROMIUM" --version 2>/dev/null) with playwright-core $PLAYWRIGHT_VERSION"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_moto() {
  local port
  port=$(free_port)
  "$MOTO_BIN" -H 127.0.0.1 -p "$port" >"$ENV_DIR/moto.log" 2>&1 &
  MOTO_PID=$!
  for _ in $(seq 1 100); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" >/dev/null 2>&1; then
      export CAPSTAN_TEST_MOTO="http://127.0.0.1:$port"
      echo "moto $MOTO_VERSION on $CAPSTAN_TEST_MOTO"
      return
    fi
    sleep 0.1
  done
  echo "error: moto did not start; see $ENV_DIR/moto.log" >&2
  exit 1
}

# shellcheck source=scripts/kube-env.sh
source scripts/kube-env.sh

cleanup() {
  if [ -n "${INSTALL_PID:-}" ]; then kill "$INSTALL_PID" 2>/dev/null || true; fi
  if [ -n "${MOTO_PID:-}" ]; then kill "$MOTO_PID" 2>/dev/null || true; fi
  stop_kube
}
trap cleanup EXIT

step "toolchain"
need_rust
need_tools
cargo --version

# Installing the test services (moto, the control plane's Go build when it is not cached, the
# browser) runs beside the Rust build, which leaves a core idle for much of its time; the tests
# wait for it below.
step "test services: installing in the background (log: $ENV_DIR/install.log)"
(
  need_kubectl
  install_moto
  install_kube
  install_browser
) >"$ENV_DIR/install.log" 2>&1 &
INSTALL_PID=$!

step "format"
cargo fmt --all -- --check

step "lint and build"
# Clippy lints capstan while its tests are compiled: clippy-driver wraps rustc for this crate only,
# so the dependencies are compiled once for the tests instead of also being checked for clippy.
# The same as `cargo clippy --all-targets --locked -- -D warnings`, then `cargo test --no-run`.
RUSTC_WORKSPACE_WRAPPER="$(rustc --print sysroot)/bin/clippy-driver"
CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
export RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
# CI builds a clean clone once, where incremental compilation's caches only cost time.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi
cargo test --all-targets --locked --no-run

step "test services"
install_status=0
wait "$INSTALL_PID" || install_status=$?
INSTALL_PID=
cat "$ENV_DIR/install.log"
if [ "$install_status" != 0 ]; then
  echo "error: installing the test services failed (exit $install_status); see above" >&2
  exit 1
fi
need_kubectl
install_moto
start_moto
install_kube
start_kube
install_browser
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true

step "tests"
# The Kubernetes end-to-end tests take turns on the one control plane, and a test waiting for its
# turn holds a test thread: a third thread keeps the other tests going meanwhile.
cargo test --locked -- --test-threads 3

step "image"
# The OCI image, assembled from the debug binary the tests just built (no second cargo build) and
# tested as it would be published. Where buildah cannot run a container, test-image.sh says
# "skipping the image test: <why>" and exits 77.
image_status=0
scripts/test-image.sh --binary target/debug/capstan --archive target/image/capstan-test.oci.tar || image_status=$?
if [ "$image_status" != 0 ] && [ "$image_status" != 77 ]; then exit "$image_status"; fi
step "done"

#!/usr/bin/env bash
# Tests an OCI archive written by scripts/image.sh, as it would be published: loads it into a
# throwaway buildah store, checks its config (user 65532:65532, entrypoint /capstan, labels), that
# its one layer holds exactly the expected files with the expected owners and modes, then runs
# its own binary as that user: --help, validate on examples/fleet, schema into a mounted folder
# (the files it writes must belong to 65532), and version when the binary has that subcommand;
# and the ssh client it runs for ssh repositories.
#
#   scripts/test-image.sh [--binary PATH] [--archive FILE]
#
#   --archive  the archive to test (default target/image/capstan-<version>.oci.tar)
#   --binary   first build the archive from this binary with scripts/image.sh, in a throwaway store
#
# Exit 0 passed, 1 failed, 77 skipped: this machine cannot run containers (the reason is printed).
set -euo pipefail
cd "$(dirname "$0")/.."
umask 022

VERSION=$(awk -F'"' '/^\[/ { pkg = ($0 == "[package]") } pkg && /^version *=/ { print $2; exit }' Cargo.toml)
ARCHIVE="target/image/capstan-$VERSION.oci.tar"
BINARY=
while [ $# -gt 0 ]; do
  case "$1" in
    --archive) ARCHIVE=${2:?--archive needs a file}; shift 2 ;;
    --binary) BINARY=${2:?--binary needs a path}; shift 2 ;;
    *) sed -n '8,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
if [ -z "$BINARY" ] && [ ! -f "$ARCHIVE" ]; then
  echo "error: no archive $ARCHIVE; build it with scripts/image.sh" >&2
  exit 1
fi

missing=()
command -v buildah >/dev/null || missing+=(buildah)
command -v umoci >/dev/null || missing+=(umoci)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "error: the image test needs: ${missing[*]}; install them" >&2
    exit 1
  fi
fi

# Stores of its own (one to build in, one to test in): what is tested is the archive, not
# whatever a store holds.
mkdir -p target
WORK=$(mktemp -d "$PWD/target/image-test.XXXXXX")
for store in build test; do
  cat >"$WORK/$store.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$WORK/$store/storage"
runroot = "$WORK/$store/run"
EOF
done
export CONTAINERS_STORAGE_CONF="$WORK/test.conf" STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot
CTRS=()
cleanup() {
  for c in "${CTRS[@]}"; do buildah rm "$c" >/dev/null 2>&1 || true; done
  buildah rmi --all --force >/dev/null 2>&1 || true
  CONTAINERS_STORAGE_CONF="$WORK/build.conf" buildah rmi --all --force >/dev/null 2>&1 || true
  if [ "$(id -u)" = 0 ]; then rm -rf "$WORK"; else buildah unshare rm -rf "$WORK"; fi
}
trap cleanup EXIT

FAILED=0
fail() { echo "FAIL: $*" >&2; FAILED=1; }
pass() { echo "ok: $*"; }

# Can this machine run a container at all? A scratch container holding the host's `true`.
skip() {
  local why
  why=$(grep -m1 '^Error: ' <<<"$1" || head -n1 <<<"$1")
  why=$(sed 's/^time=.* msg="\(.*\)"$/\1/; s/\\"/"/g; s/\\\\/\\/g' <<<"$why") # logrus form
  echo "skipping the image test: buildah cannot run a container here (${why#Error: })"
  exit 77
}
probe=$(buildah from scratch 2>&1) || skip "$probe"
CTRS+=("$probe")
true_bin=$(type -P true)
for f in "$true_bin" $(ldd "$true_bin" | grep -o '/[^ ]*'); do
  why=$(buildah copy --quiet "$probe" "$f" "$f" 2>&1) || skip "$why"
done
why=$(buildah run "$probe" -- "$true_bin" 2>&1) || skip "$why"

if [ -n "$BINARY" ]; then
  CONTAINERS_STORAGE_CONF="$WORK/build.conf" scripts/image.sh --binary "$BINARY" --out "$ARCHIVE"
fi

IMG=$(buildah pull --quiet "oci-archive:$ARCHIVE")

# The config.
inspect() { buildah inspect --type image --format "$1" "$IMG"; }
expect() { # what, got, want
  if [ "$2" = "$3" ]; then pass "$1 is $3"; else fail "$1 is '$2', want '$3'"; fi
}
expect "the user" "$(inspect '{{.OCIv1.Config.User}}')" "65532:65532"
expect "the entrypoint" "$(inspect '{{.OCIv1.Config.Entrypoint}}')" "[/capstan]"
expect "the command" "$(inspect '{{.OCIv1.Config.Cmd}}')" "[]"
expect "SSL_CERT_FILE" "$(inspect '{{range .OCIv1.Config.Env}}{{println .}}{{end}}' | sed -n 's/^SSL_CERT_FILE=//p')" \
  /etc/ssl/certs/ca-certificates.crt
label() { inspect "{{index .OCIv1.Config.Labels \"org.opencontainers.image.$1\"}}"; }
expect "the title label" "$(label title)" capstan
expect "the version label" "$(label version)" "$VERSION"
# The Dockerfile cannot be built without its base images; it must at least say the same.
expect "the Dockerfile's version label" \
  "$(sed -n 's/.*org.opencontainers.image.version="\([^"]*\)".*/\1/p' Dockerfile)" "$VERSION"
expect "the Dockerfile's user" "$(sed -n 's/^USER //p' Dockerfile)" "$(inspect '{{.OCIv1.Config.User}}')"
expect "the Dockerfile's entrypoint" "$(sed -n 's/^ENTRYPOINT //p' Dockerfile)" '["/capstan"]'
expect "the number of layers" "$(inspect '{{len .OCIv1.RootFS.DiffIDs}}')" 1

# The files: unpacked with umoci, compared with what the image must hold and nothing more.
mkdir -p "$WORK/layout"
tar -xf "$ARCHIVE" -C "$WORK/layout"
ref=$(sed -n 's/.*"org.opencontainers.image.ref.name":"\([^"]*\)".*/\1/p' "$WORK/layout/index.json")
rootless=()
[ "$(id -u)" = 0 ] || rootless=(--rootless)
umoci unpack "${rootless[@]}" --image "$WORK/layout:$ref" "$WORK/bundle" >/dev/null
ROOTFS="$WORK/bundle/rootfs"
list() { # path, mode and owner (rootless unpacking gives every file to the caller: no owner then)
  if [ "$(id -u)" = 0 ]; then find "$1" -mindepth 1 -printf '/%P %M %U:%G\n'; else find "$1" -mindepth 1 -printf '/%P %M\n'; fi | sort
}
{
  echo "/capstan -rwxr-xr-x 0:0"
  echo "/etc drwxr-xr-x 0:0"
  echo "/etc/group -rw-r--r-- 0:0"
  echo "/etc/passwd -rw-r--r-- 0:0"
  echo "/etc/ssl drwxr-xr-x 0:0"
  echo "/etc/ssl/certs drwxr-xr-x 0:0"
  echo "/etc/ssl/certs/ca-certificates.crt -rw-r--r-- 0:0"
  echo "/tmp drwxrwxrwt 0:0"
  echo "/var drwxr-xr-x 0:0"
  echo "/var/lib drwxr-xr-x 0:0"
  echo "/var/lib/capstan drwxr-xr-x 65532:65532"
  echo "/usr drwxr-xr-x 0:0"
  echo "/usr/bin drwxr-xr-x 0:0"
  echo "/usr/bin/ssh -rwxr-xr-x 0:0"
  # The loader and the libraries the two link, where this machine's loader finds them.
  for lib in $(cat <(ldd "$ROOTFS/capstan") <(ldd "$ROOTFS/usr/bin/ssh") | grep -o '/[^ ]*'); do
    d=$(dirname "$lib")
    while [ "$d" != / ]; do echo "$d drwxr-xr-x 0:0"; d=$(dirname "$d"); done
    echo "$lib -rwxr-xr-x 0:0"
  done
} | sort -u >"$WORK/want"
[ "$(id -u)" = 0 ] || sed -i 's/ [0-9]*:[0-9]*$//' "$WORK/want"
list "$ROOTFS" >"$WORK/got"
if diff -u "$WORK/want" "$WORK/got" >"$WORK/files.diff"; then
  pass "the files are the expected $(wc -l <"$WORK/want") (binary, ssh client, loader and libraries, CA certificates, passwd, group, /tmp, /var/lib/capstan)"
else
  fail "the files differ from the expected set (- expected, + in the image):"
  tail -n +3 "$WORK/files.diff" | grep '^[-+]' >&2
fi
grep -q '^nonroot:x:65532:65532:' "$ROOTFS/etc/passwd" || fail "/etc/passwd has no nonroot user 65532"
grep -q '^nonroot:x:65532:' "$ROOTFS/etc/group" || fail "/etc/group has no nonroot group 65532"
uid=$(sed -n 's/.*"uid": *\([0-9]*\).*/\1/p' "$WORK/bundle/config.json" | head -n1)
expect "the runtime config's uid" "$uid" 65532

# The binary, run from the image as its configured user.
CTR=$(buildah from --pull-never "$IMG")
CTRS+=("$CTR")
mkdir -m 0777 "$WORK/out"
run() { # the exit status wanted, then the arguments of /capstan; its output goes in $OUT
  local want=$1 code=0
  shift
  OUT=$(buildah run -v "$PWD/examples:/examples:ro" -v "$WORK/out:/out" "$CTR" -- /capstan "$@" 2>&1) || code=$?
  if [ "$code" = "$want" ]; then
    pass "capstan $* exits $code"
  else
    fail "capstan $* exits $code, want $want; its output:"
    sed 's/^/    /' <<<"$OUT" >&2
    OUT=
  fi
}
run 0 --help
grep -q '^Usage: capstan <COMMAND>' <<<"$OUT" || fail "capstan --help prints no usage line"
HELP=$OUT
run 0 validate /examples/fleet
summary=$(grep -E '^/examples/fleet: 0 error\(s\), [0-9]+ warning\(s\); clusters checked: ' <<<"$OUT" || true)
if [ -n "$summary" ]; then pass "validate says: $summary"; else fail "validate printed no summary line: $OUT"; fi
run 0 schema --out /out
# The ssh client capstan runs for an ssh repository, found on the image's PATH.
if ssh_out=$(buildah run "$CTR" -- ssh -V 2>&1); then pass "ssh -V says: $ssh_out"; else fail "ssh does not run in the image: $ssh_out"; fi
owners=$(find "$WORK/out" -type f -printf '%U:%G\n' | sort -u)
if [ "$(id -u)" = 0 ]; then
  expect "the owner of the files capstan writes" "$owners" 65532:65532
fi
[ -n "$(find "$WORK/out" -name '*.json' -print -quit)" ] || fail "capstan schema wrote no JSON Schema"
# The labels must describe the binary: its version, and the commit it says it was built from.
if grep -qE '^  version( |$)' <<<"$HELP"; then
  run 0 version
  grep -q "^capstan $VERSION (commit " <<<"$OUT" || fail "capstan version does not say capstan $VERSION (commit ...): $OUT"
  run 0 version --json
  commit=$(sed -n 's/^ *"commit": *"\([^"]*\)".*/\1/p' <<<"$OUT")
  if [ "$commit" = unknown ]; then commit=; fi
  expect "the revision label" "$(label revision)" "$commit"
else
  echo "skip: capstan has no version subcommand; the revision label is checked against the checkout"
  if git rev-parse --git-dir >/dev/null 2>&1; then
    expect "the revision label" "$(label revision)" "$(git rev-parse HEAD)"
  fi
fi

if [ "$FAILED" = 0 ]; then
  echo "the image $ARCHIVE passed"
else
  echo "the image $ARCHIVE FAILED" >&2
  exit 1
fi

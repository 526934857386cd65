#!/usr/bin/env bash
# Builds capstan's OCI image without a Docker daemon or a base image: buildah assembles, from
# scratch, what the Dockerfile's runtime stage holds (the binary, the OpenSSH client for ssh
# repositories, the shared libraries both link, CA certificates, /etc/passwd and /etc/group for
# uid 65532, /tmp, /var/lib/capstan), commits it to the local buildah store under TAG and writes
# it as an OCI archive.
#
#   scripts/image.sh [--binary PATH] [--tag TAG] [--out FILE]
#
#   --binary  the capstan binary (default target/release/capstan, else target/debug/capstan)
#   --tag     the image name in the local store (default capstan:<version in Cargo.toml>)
#   --out     the OCI archive (default target/image/capstan-<version>.oci.tar)
#
# Storage: the vfs driver unless STORAGE_DRIVER says otherwise (it works in containers and
# without fuse-overlayfs); give later buildah commands the same STORAGE_DRIVER to find the image.
# Same binary and same commit: same image digest (timestamps come from SOURCE_DATE_EPOCH or the
# commit's date). Safe to run again: the previous image of TAG is removed when nothing else
# names it.
set -euo pipefail
cd "$(dirname "$0")/.."
umask 022

usage() { sed -n '8,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

VERSION=$(awk -F'"' '/^\[/ { pkg = ($0 == "[package]") } pkg && /^version *=/ { print $2; exit }' Cargo.toml)
BINARY=
TAG="capstan:$VERSION"
OUT="target/image/capstan-$VERSION.oci.tar"
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) BINARY=${2:?--binary needs a path}; shift 2 ;;
    --tag) TAG=${2:?--tag needs a name}; shift 2 ;;
    --out) OUT=${2:?--out needs a file}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "error: unknown argument $1" >&2; usage ;;
  esac
done

if [ -z "$BINARY" ]; then
  if [ -x target/release/capstan ]; then
    BINARY=target/release/capstan
  elif [ -x target/debug/capstan ]; then
    BINARY=target/debug/capstan
    echo "note: no release build; using $BINARY (cargo build --release --locked for an image to publish)"
  else
    echo "error: no capstan binary; run cargo build --release --locked, or pass --binary" >&2
    exit 1
  fi
fi
[ -x "$BINARY" ] || { echo "error: $BINARY is not an executable file" >&2; exit 1; }

install_debs() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "error: building the image needs: $*; install them" >&2
    exit 1
  fi
}
command -v buildah >/dev/null || install_debs buildah
command -v ldd >/dev/null || install_debs libc-bin
SSH=$(type -P ssh || true)
if [ -z "$SSH" ]; then install_debs openssh-client; SSH=$(type -P ssh); fi
CA_BUNDLE=
for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do
  if [ -s "$f" ]; then CA_BUNDLE=$f; break; fi
done
if [ -z "$CA_BUNDLE" ]; then
  install_debs ca-certificates
  CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
fi
export STORAGE_DRIVER="${STORAGE_DRIVER:-vfs}"
export BUILDAH_ISOLATION="${BUILDAH_ISOLATION:-chroot}"

WORK=$(mktemp -d target/image-build.XXXXXX 2>/dev/null || { mkdir -p target && mktemp -d target/image-build.XXXXXX; })
CTR=
cleanup() {
  if [ -n "$CTR" ]; then buildah rm "$CTR" >/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# The root filesystem, staged with explicit modes (the caller's umask must not leak into it).
ROOT="$WORK/rootfs"
mkdir -p "$ROOT/etc/ssl/certs" "$ROOT/tmp" "$ROOT/var/lib" "$WORK/empty"
install -m 0755 "$BINARY" "$ROOT/capstan"
# The OpenSSH client, which capstan runs to fetch a repository over ssh.
mkdir -p "$ROOT/usr/bin"
install -m 0755 "$SSH" "$ROOT/usr/bin/ssh"
# The dynamic loader and every library the two link, at the paths ldd resolves them to.
for exe in "$BINARY" "$SSH"; do
  if ! LIBS=$(ldd "$exe" 2>&1); then
    if grep -q 'not a dynamic executable' <<<"$LIBS"; then LIBS=; else echo "error: ldd $exe: $LIBS" >&2; exit 1; fi
  fi
  if grep -q 'not found' <<<"$LIBS"; then
    echo "error: $exe links libraries this machine lacks:" >&2
    grep 'not found' <<<"$LIBS" >&2
    exit 1
  fi
  for lib in $(grep -o '/[^ ]*' <<<"$LIBS"); do
    mkdir -p "$ROOT$(dirname "$lib")"
    install -m 0755 "$lib" "$ROOT$lib" # install follows symlinks: the file, under the linked name
  done
done
install -m 0644 "$CA_BUNDLE" "$ROOT/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$ROOT/etc/group"
chmod 0644 "$ROOT/etc/passwd" "$ROOT/etc/group"
chmod 1777 "$ROOT/tmp"
find "$ROOT" -type d ! -path "$ROOT/tmp" -exec chmod 0755 {} +

# The version and revision labels say what the binary says it was built from (capstan version
# --json); a binary without that subcommand gets Cargo.toml's version and the checkout's commit.
LABEL_VERSION=$VERSION
REVISION=
DIRTY=
if about=$("$BINARY" version --json 2>/dev/null); then
  field() { sed -n 's/^ *"'"$1"'": *"\{0,1\}\([^",]*\).*/\1/p' <<<"$about"; }
  LABEL_VERSION=$(field version)
  REVISION=$(field commit)
  [ "$REVISION" != unknown ] || REVISION=
  DIRTY=$(field dirty)
  if [ "$LABEL_VERSION" != "$VERSION" ]; then
    echo "note: $BINARY is version $LABEL_VERSION, Cargo.toml says $VERSION; the labels follow the binary"
  fi
elif git rev-parse --git-dir >/dev/null 2>&1; then
  REVISION=$(git rev-parse HEAD)
  [ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || DIRTY=true
fi
if [ "$DIRTY" = true ]; then
  echo "note: built from a checkout with uncommitted changes; the revision label names ${REVISION:-no commit}"
fi
EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
SOURCE=
if url=$(git remote get-url origin 2>/dev/null) && [[ $url == https://* ]]; then SOURCE=${url%.git}; fi

labels=(
  --label "org.opencontainers.image.title=capstan"
  --label "org.opencontainers.image.description=$(awk -F'"' '/^description *=/ { print $2; exit }' Cargo.toml)"
  --label "org.opencontainers.image.version=$LABEL_VERSION"
  --label "org.opencontainers.image.licenses=$(awk -F'"' '/^license *=/ { print $2; exit }' Cargo.toml)"
)
[ -n "$REVISION" ] && labels+=(--label "org.opencontainers.image.revision=$REVISION")
[ -n "$SOURCE" ] && labels+=(--label "org.opencontainers.image.source=$SOURCE")

image_id() { buildah inspect --type image --format '{{.FromImageID}}' "$1"; }
OLD_ID=$(image_id "$TAG" 2>/dev/null || true)
CTR=$(buildah from scratch)
buildah copy --quiet --chown 0:0 "$CTR" "$ROOT/" / >/dev/null
# The dataDir of deploy/kubernetes/base/capstan.yaml (an emptyDir there; 65532's for a plain run).
buildah copy --quiet --chown 65532:65532 "$CTR" "$WORK/empty" /var/lib/capstan >/dev/null
buildah config \
  --user 65532:65532 \
  --entrypoint '["/capstan"]' --cmd '' \
  --workingdir / \
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --env PATH=/usr/bin:/bin \
  "${labels[@]}" \
  "$CTR"
buildah commit --quiet --timestamp "$EPOCH" --rm "$CTR" "$TAG" >/dev/null
CTR=
ID=$(image_id "$TAG")
if [ -n "$OLD_ID" ] && [ "$OLD_ID" != "$ID" ] &&
  buildah images --noheading --no-trunc --filter dangling=true --format '{{.ID}}' | grep -q "$OLD_ID"; then
  buildah rmi "$OLD_ID" >/dev/null
fi

mkdir -p "$(dirname "$OUT")"
rm -f "$OUT" "$OUT.part"
buildah push --quiet --digestfile "$WORK/digest" "$TAG" "oci-archive:$OUT.part:${TAG##*:}"
mv "$OUT.part" "$OUT"

printf 'built %s from %s\n' "$TAG" "$BINARY"
printf '  image id  sha256:%s (%s in the store)\n' "$ID" "$(buildah images --noheading --format '{{.Size}}' "$TAG" | head -n1)"
printf '  archive   %s (%s, manifest %s)\n' "$OUT" "$(du -h "$OUT" | cut -f1)" "$(cat "$WORK/digest")"
if [ -z "${CONTAINERS_STORAGE_CONF:-}" ]; then
  printf '  publish   STORAGE_DRIVER=%s buildah push %s docker://REGISTRY/%s\n' "$STORAGE_DRIVER" "$TAG" "$TAG"
  printf '        or  skopeo copy oci-archive:%s docker://REGISTRY/%s\n' "$OUT" "$TAG"
fi

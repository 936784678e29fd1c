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
cargo build --release --bin kubectl-grayscale
cargo build --release -p grayscale-bench
cargo build --release -p fault-proxy
# Arguments name scenarios to run alone: takeover list status startup latency-0 latency-100
# latency-300 gates watch.
target/release/grayscale-bench "$KUBECONFIG" target/release/kubectl-grayscale "$(pwd)" "$@"

#!/usr/bin/env bash
# Benchmarks against kubectl on the local control plane: starts it, builds the release binary,
# seeds the fixtures, prints figures and ratios, and rewrites BENCHMARKS.md. Not part of the
# tests: figures are printed, never asserted.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
eval "$(bash hack/local-cluster.sh up)"
cargo build --release --bin kubectl-grayscale
cargo build --release -p grayscale-bench
target/release/grayscale-bench "$KUBECONFIG" target/release/kubectl-grayscale "$(pwd)"

#!/usr/bin/env bash
# The project's test command. On a machine with only the Rust toolchain it installs what the
# tests need (Debian packages; Kubernetes 1.20.2 built once from Debian's source package and
# cached), starts the local control plane (or reuses the running one), and runs every test:
# unit, binary and end-to-end. The control plane is left running for the next run; stop it
# with `hack/local-cluster.sh down`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "== setting up the local control plane" >&2
bash hack/local-cluster.sh up

if cargo fmt --version >/dev/null 2>&1; then
  echo "== cargo fmt --check" >&2
  cargo fmt --all -- --check
fi
if cargo clippy --version >/dev/null 2>&1; then
  echo "== cargo clippy" >&2
  cargo clippy --workspace --all-targets --quiet -- -D warnings
fi

if [ ! -x ../shared/peers/kubesphere-3.3/controller-manager ]; then
  echo "the KubeSphere conformance suite did not run: ../shared/peers/kubesphere-3.3/ (KubeSphere 3.3's own controllers) is not beside the repository" >&2
fi

echo "== tests" >&2
cargo test --workspace --all-targets "$@"

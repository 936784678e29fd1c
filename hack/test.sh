#!/usr/bin/env bash
# The project's test command. On a machine with only the Rust toolchain it installs what the
# tests need (Debian packages; Kubernetes 1.20.2 built once from Debian's source package and
# cached), starts the local control plane (or reuses the running one), and runs every test:
# unit, binary and end-to-end. The control plane is left running for the next run; stop it
# with `hack/local-cluster.sh down`.
#
# Where KubeSphere 3.3's controllers are beside the repository (../shared/peers/kubesphere-3.3/,
# or $GRAYSCALE_PEERS_DIR/kubesphere-3.3/), it also starts the conformance suite's second plane
# with them up front and fails if they cannot start; build.rs then compiles the suite to run.
# Where they are not, cargo lists the suite's tests as ignored and this says it did not run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

peers=${GRAYSCALE_PEERS_DIR:-../shared/peers}
peer=$peers/kubesphere-3.3

echo "== setting up the local control plane" >&2
kubeconfig=$(bash hack/local-cluster.sh up | sed -n 's/^export KUBECONFIG=//p')
[ -n "$kubeconfig" ] || { echo "error: hack/local-cluster.sh up printed no kubeconfig" >&2; exit 1; }
echo "export KUBECONFIG=$kubeconfig"

if [ -d "$peer" ]; then
  # As tests/common/mod.rs (kubesphere_plane) starts it: the state folder `plane-ks` beside the
  # first plane's, the peer's CRDs, and the peer started with the admin kubeconfig. The tests
  # then reuse this plane.
  echo "== starting KubeSphere 3.3's controllers on the conformance plane" >&2
  peer=$(cd "$peer" && pwd)
  ks_state=$(dirname "$(dirname "$kubeconfig")")/plane-ks
  # The script starts the peer in the background: a moment later, `status` checks that every
  # process of the plane, the peer's included, still runs.
  if ! GRAYSCALE_STATE=$ks_state GRAYSCALE_CRDS=$peer/crds GRAYSCALE_PEER=$peer/controller-manager \
    bash hack/local-cluster.sh up >/dev/null ||
    ! { sleep 2 && GRAYSCALE_STATE=$ks_state bash hack/local-cluster.sh status >/dev/null; }; then
    echo "error: $peer is beside the repository, but its controllers did not start on the conformance plane ($ks_state)." >&2
    if [ -f "$ks_state/logs/peer.log" ]; then
      echo "the peer's log ($ks_state/logs/peer.log) ends:" >&2
      tail -n 20 "$ks_state/logs/peer.log" >&2
    fi
    echo "Fix or remove $peer; the conformance suite does not skip while it is there." >&2
    exit 1
  fi
fi

if cargo fmt --version >/dev/null 2>&1; then
  echo "== cargo fmt --check" >&2
  cargo fmt --all -- --check
fi
if cargo clippy --version >/dev/null 2>&1; then
  echo "== cargo clippy" >&2
  cargo clippy --workspace --all-targets --quiet -- -D warnings
fi

if [ -d "$peer" ]; then
  # build.rs watches nothing where ../shared/peers did not exist at the last build (a missing
  # path would rebuild the package every time): rerun it if the suite was compiled as ignored.
  ignored() { cargo test --quiet --test conformance_kubesphere -- --list --ignored | grep -c ': test$' || true; }
  if [ "$(ignored)" != 0 ]; then
    echo "== $peer appeared since the last build; rebuilding with it" >&2
    touch build.rs
    if [ "$(ignored)" != 0 ]; then
      echo "error: $peer is there, but the conformance suite was still compiled as ignored (see build.rs)" >&2
      exit 1
    fi
  fi
fi

echo "== tests" >&2
cargo test --workspace --all-targets "$@"

if [ ! -d "$peer" ]; then
  echo "the KubeSphere conformance suite did not run (cargo lists its tests as ignored): $peer/ (KubeSphere 3.3's own controllers) is not beside the repository" >&2
fi

//! What metric gates add to a gradual shift: the same 4-step shift with and without two gates,
//! Prometheus read through the API server's service proxy (so each query is an audited request).

use crate::measure::{self, Runs};
use crate::{Env, RUNS, Row, seed};

const STEPS: f64 = 4.0;
const INTERVAL_MS: f64 = 3000.0;

pub fn shift(env: &Env) -> Row {
    let ns = "bench-gates";
    seed::canary(env, ns);
    let base = ["shift", "t", "-n", ns, "--to", "50", "--step", "10", "--interval", "3s"];
    let gated: Vec<&str> = base
        .iter()
        .copied()
        .chain(["--gate", "success-rate>=99", "--gate", "p99<=500ms", "--min-requests", "1"])
        .collect();
    let mut a = Runs::new("shift --to 50 --step 10 --interval 3s, 2 gates");
    let mut b = Runs::new("the same shift without gates");
    for _ in 0..RUNS / 2 {
        env.plugin_ok(&["shift", "t", "-n", ns, "--weight", "10"]);
        a.push(measure::run(env, env.plugin(&gated), "kubectl-grayscale/"));
        env.plugin_ok(&["shift", "t", "-n", ns, "--weight", "10"]);
        b.push(measure::run(env, env.plugin(&base), "kubectl-grayscale/"));
    }
    let added = a.median_ms() - b.median_ms();
    let queries = a.median_requests() - b.median_requests();
    // A gated shift also waits one interval after its last step, to judge it.
    let checks = added - INTERVAL_MS;
    let notes = vec![format!(
        "gates add {added:.0} ms and {queries:.0} Prometheus queries per shift (medians): {INTERVAL_MS:.0} ms is the \
         interval after the last step, which only a gated shift judges; the other {checks:.0} ms are the queries \
         (the check before the first step, then one round per step), {:.0} ms and {:.1} queries per step",
        checks / STEPS,
        queries / STEPS
    )];
    Row {
        scenario: "7. a gated shift of 4 steps, 3 s interval (Prometheus via the service proxy)".into(),
        a,
        b,
        notes,
    }
}

use std::time::Duration;

use clap::Args;
use futures::future::try_join_all;

use super::Context;
use super::gates::{Analyst, GateArgs};
use crate::error::Result;
use crate::ops;
use crate::output::{Format, parse_duration, print};
use crate::plan::gate::{Measure, Outcome, Target, describe};
use crate::plan::operate::current_weight;
use crate::view::analysis::{AnalysisView, GateView, VersionStats, render};

#[derive(Args, Debug)]
#[command(after_help = "Reads Istio's standard metrics from Prometheus (see shift --help for how it is \
found) for the task's old and new versions over the window: request rate, success rate (non-5xx), \
p50, p90 and p99 latency. With --gate or --analysis, also each gate's verdict, as a gated shift would \
judge a step. Exits 0 whatever the verdict; scripts read `verdict` from -o json.

Examples:
  kubectl grayscale analyze reviews-canary
  kubectl grayscale analyze reviews-canary --window 10m --gate 'success-rate>=99' --gate 'p99-delta<=50ms'
  kubectl grayscale analyze reviews-canary -o json")]
pub struct AnalyzeArgs {
    /// The task's name.
    pub name: String,
    /// How far back to look (e.g. 90s, 5m).
    #[arg(long, value_parser = parse_duration, default_value = "5m")]
    pub window: Duration,
    #[command(flatten)]
    pub gate: GateArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

const MEASURES: [Measure; 5] = [
    Measure::RequestRate,
    Measure::SuccessRate,
    Measure::Latency(0.5),
    Measure::Latency(0.9),
    Measure::Latency(0.99),
];

async fn stats(
    a: &Analyst,
    t: &Target,
    role: &'static str,
    weight: Option<u8>,
    w: Duration,
) -> Result<VersionStats> {
    let v = try_join_all(MEASURES.iter().map(|m| a.value(m, t, w))).await?;
    Ok(VersionStats {
        version: t.version.clone(),
        role,
        weight,
        requests_per_second: v[0],
        success_rate_percent: v[1],
        p50_ms: v[2],
        p90_ms: v[3],
        p99_ms: v[4],
    })
}

pub async fn run(ctx: &Context, args: AnalyzeArgs) -> Result<()> {
    let gates = args.gate.parse()?;
    let kube = ctx.kube().await?;
    let ns = kube.namespace.clone();
    let s = ops::get_task(&kube, &ns, &args.name).await?;
    let a = Analyst::new(&kube, &args.gate, gates, &s, &ns).await?;
    let new_weight = current_weight(&s);
    let old_weight = new_weight.map(|w| 100 - w);
    let (old, new) = futures::try_join!(
        stats(&a, &a.old, "old", old_weight, args.window),
        stats(&a, &a.new, "new", new_weight, args.window)
    )?;
    let (gates, verdict, reason) = if a.gates.is_empty() {
        (Vec::new(), None, None)
    } else {
        let e = a.evidence(args.window, old_weight != Some(0)).await?;
        let (verdict, reason) = match &e.outcome {
            Outcome::Pass => ("pass", None),
            Outcome::NotYet(why) => ("not-yet", Some(why.clone())),
            Outcome::Fail(r) => ("fail", Some(describe(r, a.unit_of(&r.gate)))),
        };
        let gates =
            e.readings.into_iter().map(|r| GateView { unit: a.unit_of(&r.gate), reading: r }).collect();
        (gates, Some(verdict.to_string()), reason)
    };
    let view = AnalysisView {
        task: args.name.clone(),
        namespace: ns,
        window_seconds: args.window.as_secs().max(1),
        prometheus: a.prometheus.source.clone(),
        versions: vec![old, new],
        gates,
        verdict,
        reason,
    };
    print(&render(&view, args.output, ctx.ui.color));
    Ok(())
}

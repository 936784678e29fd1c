use std::time::Duration;

use clap::Args;
use futures::future::try_join_all;

use super::Context;
use super::gates::{Analyst, GateArgs};
use crate::cluster::task::get_task;
use crate::error::Result;
use crate::output::{Format, parse_duration, print};
use crate::plan::first_data::{self, Samples};
use crate::plan::gate::{self, Measure, Outcome, Target, describe};
use crate::plan::operate::current_weight;
use crate::view::analysis::{AnalysisView, GateView, VersionStats, render};

#[derive(Args, Debug)]
#[command(after_help = "Reads Istio's standard metrics from Prometheus (see shift --help for how it is \
found) for the task's old and new versions over the window: request rate, success rate (non-5xx), \
p50, p90 and p99 latency. With --gate or --analysis, also each gate's verdict, as a gated shift would \
judge a step. Exits 0 whatever the verdict; scripts read `verdict` from -o json. A version whose window \
holds no samples yet (a rate needs two) is said to have no data, with when its first window with data \
ends (`noData` in -o json); --wait-for-data waits for that window.

Examples:
  kubectl grayscale analyze reviews-canary
  kubectl grayscale analyze reviews-canary --window 10m --gate 'success-rate>=99' --gate 'p99-delta<=50ms'
  kubectl grayscale analyze reviews-canary -o json
  kubectl grayscale analyze reviews-canary --window 10s --wait-for-data 1m")]
pub struct AnalyzeArgs {
    /// The task's name.
    pub name: String,
    /// How far back to look (e.g. 90s, 5m).
    #[arg(long, value_parser = parse_duration, default_value = "5m")]
    pub window: Duration,
    /// Wait up to this long (e.g. 1m) for a window that holds data for both versions: right
    /// after a create, the new version's window has no samples yet.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub wait_for_data: Option<Duration>,
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

const POLL: Duration = Duration::from_secs(1);

/// For each version whose window holds no data: why, and when the first window with data ends.
async fn without_data(
    a: &Analyst,
    versions: &[(&Target, &VersionStats)],
    w: Duration,
) -> Result<Vec<String>> {
    let missing: Vec<&Target> =
        versions.iter().filter(|(_, s)| s.requests_per_second.is_none()).map(|(t, _)| *t).collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let interval = a.prometheus.scrape_interval().await;
    let now = k8s_openapi::jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
    let mut out = Vec::new();
    for t in missing {
        let (count, last) = (gate::samples_query(t, w), gate::last_sample_query(t));
        let (in_window, last_at) = futures::try_join!(a.prometheus.query(&count), a.prometheus.query(&last))?;
        let f = first_data::first_data(w, interval, &Samples { in_window, last_at });
        out.push(first_data::explain(&t.version, w, &f, now));
    }
    Ok(out)
}

pub async fn run(ctx: &Context, args: AnalyzeArgs) -> Result<()> {
    let gates = args.gate.parse()?;
    let kube = ctx.kube().await?;
    let ns = kube.namespace.clone();
    let s = get_task(&kube, &ns, &args.name).await?;
    let a = Analyst::new(&kube, &args.gate, gates, &s, &ns).await?;
    let new_weight = current_weight(&s);
    let old_weight = new_weight.map(|w| 100 - w);
    let deadline = args.wait_for_data.map(|d| tokio::time::Instant::now() + d);
    let (old, new) = loop {
        let (old, new) = futures::try_join!(
            stats(&a, &a.old, "old", old_weight, args.window),
            stats(&a, &a.new, "new", new_weight, args.window)
        )?;
        let have = old.requests_per_second.is_some() && new.requests_per_second.is_some();
        match deadline {
            // Prometheus has no watch: ask again a second later, a scrape at most.
            Some(d) if !have && tokio::time::Instant::now() + POLL < d => tokio::time::sleep(POLL).await,
            _ => break (old, new),
        }
    };
    let no_data = without_data(&a, &[(&a.old, &old), (&a.new, &new)], args.window).await?;
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
        no_data,
    };
    print(&render(&view, args.output, ctx.ui.color));
    Ok(())
}

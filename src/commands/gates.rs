//! What `shift --gate` and `analyze` share: the gate flags, finding Prometheus, and reading
//! every gate for the task's old and new versions over one window.

use std::time::Duration;

use clap::Args;
use futures::future::try_join_all;

use crate::cluster::Kube;
use crate::cluster::prometheus::Prometheus;
use crate::error::{Error, Problem, Result};
use crate::model::strategy::Strategy;
use crate::plan::gate::{self, Gate, Measure, Outcome, Reading, Target};
use crate::plan::identity::TaskIdentity;
use crate::plan::operate::versions;

#[derive(Args, Debug, Clone, Default)]
pub struct GateArgs {
    /// A metric gate, METRIC>=VALUE or METRIC<=VALUE (repeatable): success-rate (%), p50, p90,
    /// p99 (ms, or with s), request-rate (rps), each also as METRIC-delta (new minus old).
    #[arg(long = "gate", value_name = "EXPR")]
    pub gates: Vec<String>,
    /// Custom gates: a YAML or JSON file of {name, query, min, max} (see the README).
    #[arg(long, value_name = "FILE")]
    pub analysis: Option<std::path::PathBuf>,
    /// Fewer requests than this to the new version in a window is too little traffic to judge.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub min_requests: u64,
    /// Prometheus's address; without it, it is found through the API server's service proxy.
    #[arg(long, value_name = "URL", env = "GRAYSCALE_PROMETHEUS")]
    pub prometheus: Option<String>,
}

impl GateArgs {
    pub fn any(&self) -> bool {
        !self.gates.is_empty() || self.analysis.is_some()
    }

    /// Every gate, or every problem with them at once.
    pub fn parse(&self) -> Result<Vec<Gate>> {
        let mut out = Vec::new();
        let mut problems = Vec::new();
        for g in &self.gates {
            match gate::parse(g) {
                Ok(g) => out.push(g),
                Err(e) => problems.push(Problem::new("--gate", e)),
            }
        }
        if let Some(path) = &self.analysis {
            match std::fs::read_to_string(path) {
                Ok(text) => match gate::analysis(&text) {
                    Ok(gs) => out.extend(gs),
                    Err(e) => problems.push(Problem::new("--analysis", format!("{}: {e}", path.display()))),
                },
                Err(e) => problems.push(Problem::new("--analysis", format!("{}: {e}", path.display()))),
            }
        }
        if problems.is_empty() { Ok(out) } else { Err(Error::Invalid(problems)) }
    }
}

/// A step's (or a window's) evidence.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub readings: Vec<Reading>,
    pub new_requests: Option<f64>,
    pub outcome: Outcome,
}

pub struct Analyst {
    pub prometheus: Prometheus,
    pub gates: Vec<Gate>,
    pub old: Target,
    pub new: Target,
    pub min_requests: u64,
}

fn target(s: &Strategy, ns: &str, version: &str) -> Target {
    let id = TaskIdentity::guess(s);
    Target {
        namespace: ns.to_string(),
        service: id.service.clone(),
        version: version.to_string(),
        workload: id
            .workload_of(version)
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}-{version}", id.app)),
    }
}

impl Analyst {
    pub async fn new(
        kube: &Kube,
        args: &GateArgs,
        gates: Vec<Gate>,
        s: &Strategy,
        ns: &str,
    ) -> Result<Analyst> {
        let (old, new) = versions(s);
        let new = new.ok_or_else(|| {
            Error::invalid(
                "task",
                format!("task {} has no new version to judge", s.metadata.name.clone().unwrap_or_default()),
            )
        })?;
        let prometheus = Prometheus::locate(kube, args.prometheus.as_deref(), None).await?;
        Ok(Analyst {
            prometheus,
            gates,
            old: target(s, ns, &old),
            new: target(s, ns, &new),
            min_requests: args.min_requests,
        })
    }

    /// A value for `measure` of one version.
    pub async fn value(&self, m: &Measure, t: &Target, w: Duration) -> Result<Option<f64>> {
        self.prometheus.query(&gate::query(m, t, w)).await
    }

    /// Reads every gate over the last `window`; delta gates also read the old version unless it
    /// gets no traffic (`old_routed`). The queries go out together.
    pub async fn evidence(&self, window: Duration, old_routed: bool) -> Result<Evidence> {
        let requests = gate::requests_query(&self.new, window);
        let new_requests = self.prometheus.query(&requests);
        let values = try_join_all(self.gates.iter().map(|g| async move {
            let new = self.value(&g.measure, &self.new, window).await?;
            let old =
                if g.delta && old_routed { self.value(&g.measure, &self.old, window).await? } else { None };
            Ok::<_, Error>((new, old))
        }));
        let (new_requests, values) = futures::try_join!(new_requests, values)?;
        let readings: Vec<Reading> =
            self.gates.iter().zip(values).map(|(g, (n, o))| g.read(n, o, old_routed)).collect();
        let outcome = gate::judge(&readings, new_requests, self.min_requests);
        Ok(Evidence { readings, new_requests, outcome })
    }

    pub fn unit_of(&self, gate_name: &str) -> &'static str {
        self.gates.iter().find(|g| g.name == gate_name).map(|g| g.unit).unwrap_or("")
    }

    /// `success-rate>=99: 100% ok, p99<=500ms: 48ms ok`.
    pub fn line(&self, e: &Evidence) -> String {
        e.readings.iter().map(|r| gate::describe(r, self.unit_of(&r.gate))).collect::<Vec<_>>().join(", ")
    }
}

//! Metric gates (pure): parsing `--gate` expressions and `--analysis` files, rendering their
//! PromQL for a version and a window, and judging a step from the values Prometheus returned.
//! Built-in metrics read Istio's standard metrics as the destination sidecars report them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a gate measures.
#[derive(Debug, Clone, PartialEq)]
pub enum Measure {
    /// Share of non-5xx answers, in %.
    SuccessRate,
    /// Latency quantile (0.5, 0.9, 0.99), in ms.
    Latency(f64),
    /// Requests per second.
    RequestRate,
    /// A PromQL template from an analysis file.
    Custom(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// How the user wrote it (`success-rate>=99`), or the analysis file's name.
    pub name: String,
    pub measure: Measure,
    /// New version's value minus the old version's over the same window.
    pub delta: bool,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// `>`/`<` rather than `>=`/`<=`.
    pub strict: bool,
    pub unit: &'static str,
}

/// A Prometheus reached through the API server's service proxy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Proxied {
    pub namespace: &'static str,
    /// `service:port`: the proxy's path segment, and the name RBAC authorizes.
    pub name: &'static str,
}

/// Where Prometheus is looked for when no URL is given: Istio's addon, then KubeSphere's
/// monitoring Prometheus.
pub const PROXIED: [Proxied; 2] = [
    Proxied { namespace: "istio-system", name: "prometheus:9090" },
    Proxied { namespace: "kubesphere-monitoring-system", name: "prometheus-k8s:9090" },
];

pub const BUILT_IN: &str = "success-rate, p50, p90, p99, request-rate (each also as <metric>-delta)";

fn measure_of(metric: &str) -> Option<(Measure, &'static str)> {
    Some(match metric {
        "success-rate" => (Measure::SuccessRate, "%"),
        "p50" => (Measure::Latency(0.5), "ms"),
        "p90" => (Measure::Latency(0.9), "ms"),
        "p99" => (Measure::Latency(0.99), "ms"),
        "request-rate" => (Measure::RequestRate, "rps"),
        _ => return None,
    })
}

fn number_in(unit: &str, raw: &str) -> Result<f64, String> {
    let (digits, factor) = match unit {
        "ms" => {
            if let Some(n) = raw.strip_suffix("ms") {
                (n, 1.0)
            } else if let Some(n) = raw.strip_suffix('s') {
                (n, 1000.0)
            } else {
                (raw, 1.0)
            }
        }
        "%" => (raw.strip_suffix('%').unwrap_or(raw), 1.0),
        _ => (raw.strip_suffix("rps").unwrap_or(raw), 1.0),
    };
    let n: f64 = digits.trim().parse().map_err(|_| {
        format!("{raw:?} is not a number{}", if unit == "ms" { " of ms or s (e.g. 500ms)" } else { "" })
    })?;
    // After the unit: `1e308s` is finite, but not in ms.
    let n = n * factor;
    if !n.is_finite() {
        return Err(format!("{raw:?} is not a finite number"));
    }
    Ok(n)
}

/// Parses `METRIC OP VALUE`, e.g. `success-rate>=99`, `p99<=500ms`, `p99-delta<=50ms`.
pub fn parse(expr: &str) -> Result<Gate, String> {
    let compact: String = expr.chars().filter(|c| !c.is_whitespace()).collect();
    let (at, op) = [">=", "<=", ">", "<"]
        .iter()
        .find_map(|op| compact.find(op).map(|i| (i, *op)))
        .ok_or_else(|| format!("{expr:?} has no comparison: write METRIC>=VALUE or METRIC<=VALUE"))?;
    let metric = &compact[..at];
    let raw = &compact[at + op.len()..];
    let (base, delta) = match metric.strip_suffix("-delta") {
        Some(b) => (b, true),
        None => (metric, false),
    };
    let (measure, unit) = measure_of(base)
        .ok_or_else(|| format!("unknown metric {metric:?} in {expr:?}; built-in: {BUILT_IN}"))?;
    let value = number_in(unit, raw).map_err(|e| format!("in {expr:?}: {e}"))?;
    let lower = op.starts_with('>');
    Ok(Gate {
        name: compact.clone(),
        measure,
        delta,
        min: lower.then_some(value),
        max: (!lower).then_some(value),
        strict: op.len() == 1,
        unit,
    })
}

/// One gate of an analysis file.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CustomGate {
    pub name: String,
    /// PromQL with `{{namespace}}`, `{{service}}`, `{{version}}`, `{{workload}}`, `{{interval}}`.
    pub query: String,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisFile {
    pub gates: Vec<CustomGate>,
}

const PLACEHOLDERS: [&str; 5] = ["namespace", "service", "version", "workload", "interval"];

/// Reads an analysis file's text (YAML or JSON) into gates; every problem names its gate.
pub fn analysis(text: &str) -> Result<Vec<Gate>, String> {
    let file: AnalysisFile = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    if file.gates.is_empty() {
        return Err("the file has no gates".into());
    }
    let mut out = Vec::new();
    for g in file.gates {
        if g.name.trim().is_empty() {
            return Err("a gate has an empty name".into());
        }
        if let Some(v) = [g.min, g.max].into_iter().flatten().find(|v| !v.is_finite()) {
            return Err(format!("gate {:?}: {v} is not a finite number", g.name));
        }
        if g.min.is_none() && g.max.is_none() {
            return Err(format!("gate {:?} needs a min, a max or both", g.name));
        }
        if let (Some(lo), Some(hi)) = (g.min, g.max)
            && lo > hi
        {
            return Err(format!("gate {:?}: min {lo} is above max {hi}", g.name));
        }
        // Placeholders are normalised (`{{ version }}` → `{{version}}`) so filling them is exact.
        let mut template = String::new();
        let mut rest = g.query.as_str();
        while let Some(i) = rest.find("{{") {
            let end = rest[i..].find("}}").ok_or_else(|| format!("gate {:?}: unclosed {{{{", g.name))?;
            let key = rest[i + 2..i + end].trim();
            if !PLACEHOLDERS.contains(&key) {
                return Err(format!(
                    "gate {:?}: unknown placeholder {{{{{key}}}}}; known: {}",
                    g.name,
                    PLACEHOLDERS.join(", ")
                ));
            }
            template.push_str(&rest[..i]);
            template.push_str(&format!("{{{{{key}}}}}"));
            rest = &rest[i + end + 2..];
        }
        template.push_str(rest);
        out.push(Gate {
            name: g.name,
            measure: Measure::Custom(template),
            delta: false,
            min: g.min,
            max: g.max,
            strict: false,
            unit: "",
        });
    }
    Ok(out)
}

/// Which version's traffic a query is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub namespace: String,
    pub service: String,
    pub version: String,
    pub workload: String,
}

/// A PromQL range, whole seconds (Prometheus takes `90s`).
pub fn window(d: Duration) -> String {
    format!("{}s", d.as_secs().max(1))
}

fn quoted(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn selector(t: &Target, extra: &str) -> String {
    format!(
        "reporter=\"destination\",destination_service_namespace=\"{}\",destination_service_name=\"{}\",destination_version=\"{}\"{extra}",
        quoted(&t.namespace),
        quoted(&t.service),
        quoted(&t.version)
    )
}

/// Requests the version answered in the window: whether there is enough traffic to judge.
pub fn requests_query(t: &Target, w: Duration) -> String {
    format!("sum(increase(istio_requests_total{{{}}}[{}]))", selector(t, ""), window(w))
}

/// The most samples any one of the version's request series has in the window: a rate needs
/// two.
pub fn samples_query(t: &Target, w: Duration) -> String {
    format!("max(count_over_time(istio_requests_total{{{}}}[{}]))", selector(t, ""), window(w))
}

/// Unix time of the version's latest request sample, within Prometheus's lookback.
pub fn last_sample_query(t: &Target) -> String {
    format!("max(timestamp(istio_requests_total{{{}}}))", selector(t, ""))
}

/// The PromQL of one measure for one version.
pub fn query(m: &Measure, t: &Target, w: Duration) -> String {
    let win = window(w);
    match m {
        // `or vector(0)`: with no 5xx at all the numerator's series does not exist.
        Measure::SuccessRate => format!(
            "100 * (1 - ((sum(increase(istio_requests_total{{{}}}[{win}])) or vector(0)) / sum(increase(istio_requests_total{{{}}}[{win}]))))",
            selector(t, ",response_code=~\"5..\""),
            selector(t, "")
        ),
        Measure::Latency(q) => format!(
            "histogram_quantile({q}, sum by (le) (rate(istio_request_duration_milliseconds_bucket{{{}}}[{win}])))",
            selector(t, "")
        ),
        Measure::RequestRate => format!("sum(rate(istio_requests_total{{{}}}[{win}]))", selector(t, "")),
        Measure::Custom(template) => template
            .replace("{{namespace}}", &t.namespace)
            .replace("{{service}}", &t.service)
            .replace("{{version}}", &t.version)
            .replace("{{workload}}", &t.workload)
            .replace("{{interval}}", &win),
    }
}

/// A gate's verdict at one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    Fail,
    /// No value (too little traffic or no series).
    NoData,
    /// A delta gate while the old version gets no traffic: nothing to compare with.
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reading {
    pub gate: String,
    pub value: Option<f64>,
    pub threshold: String,
    pub verdict: Verdict,
}

impl Gate {
    pub fn threshold(&self) -> String {
        let (ge, le) = if self.strict { (">", "<") } else { (">=", "<=") };
        match (self.min, self.max) {
            (Some(lo), Some(hi)) => format!("{ge} {} and {le} {}", fmt(lo, self.unit), fmt(hi, self.unit)),
            (Some(lo), None) => format!("{ge} {}", fmt(lo, self.unit)),
            (None, Some(hi)) => format!("{le} {}", fmt(hi, self.unit)),
            (None, None) => String::new(),
        }
    }

    fn holds(&self, v: f64) -> bool {
        let above = self.min.is_none_or(|lo| if self.strict { v > lo } else { v >= lo });
        let below = self.max.is_none_or(|hi| if self.strict { v < hi } else { v <= hi });
        above && below
    }

    /// The gate's reading from the new version's value and, for a delta, the old one's.
    pub fn read(&self, new: Option<f64>, old: Option<f64>, old_routed: bool) -> Reading {
        let value = if self.delta { new.zip(old).map(|(n, o)| n - o) } else { new };
        let verdict = match value {
            _ if self.delta && !old_routed => Verdict::Skipped,
            None => Verdict::NoData,
            Some(v) if self.holds(v) => Verdict::Pass,
            Some(_) => Verdict::Fail,
        };
        Reading { gate: self.name.clone(), value, threshold: self.threshold(), verdict }
    }
}

/// A value with its unit, as the step lines and `analyze` show it.
pub fn fmt(v: f64, unit: &str) -> String {
    // Two decimals at most, and no "-0" for a tiny negative delta.
    let v = (v * 100.0).round() / 100.0 + 0.0;
    let n = if v.fract() == 0.0 && v.abs() < 1e12 { format!("{v:.0}") } else { format!("{v:.2}") };
    match unit {
        "" => n,
        "%" => format!("{n}%"),
        u => format!("{n}{u}"),
    }
}

/// What a step's readings say.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Pass,
    /// Too little traffic (or a missing series) to judge yet.
    NotYet(String),
    /// The first failing reading.
    Fail(Reading),
}

/// Judges a step: any failing gate fails it; too few requests, or a gate without data, is
/// "not yet"; otherwise it passes.
pub fn judge(readings: &[Reading], new_requests: Option<f64>, min_requests: u64) -> Outcome {
    if let Some(r) = readings.iter().find(|r| r.verdict == Verdict::Fail) {
        return Outcome::Fail(r.clone());
    }
    let Some(seen) = new_requests else {
        return Outcome::NotYet(
            "Prometheus has no requests of the new version in the window (a window must span at least two scrapes)"
                .into(),
        );
    };
    if seen < min_requests as f64 {
        return Outcome::NotYet(format!(
            "{} request(s) to the new version in the window, fewer than --min-requests {min_requests}",
            seen.round()
        ));
    }
    if let Some(r) = readings.iter().find(|r| r.verdict == Verdict::NoData) {
        return Outcome::NotYet(format!("no value for {} yet", r.gate));
    }
    Outcome::Pass
}

/// One line per reading for a step: `success-rate>=99: 95.00% (needs >= 99%) FAIL`.
pub fn describe(r: &Reading, unit: &str) -> String {
    let value = r.value.map(|v| fmt(v, unit)).unwrap_or_else(|| "no data".into());
    let verdict = match r.verdict {
        Verdict::Pass => "ok",
        Verdict::Fail => "FAIL",
        Verdict::NoData => "not yet",
        Verdict::Skipped => "skipped (old version gets no traffic)",
    };
    format!("{}: {value} (needs {}) {verdict}", r.gate, r.threshold)
}

#[cfg(test)]
#[path = "gate_tests.rs"]
mod tests;

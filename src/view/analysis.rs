//! `analyze`: the old and the new version side by side, and the gates' verdicts.

use serde::Serialize;

use super::task::VIEW_API_VERSION;
use crate::output::{Cell, Color, Format, colored, render_table, to_json, to_yaml};
use crate::plan::gate::{Reading, Verdict, fmt};

#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VersionStats {
    pub version: String,
    /// `old` (the principal) or `new`.
    pub role: &'static str,
    /// The share of traffic the task gives it now, where the task routes by ratio.
    pub weight: Option<u8>,
    pub requests_per_second: Option<f64>,
    pub success_rate_percent: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GateView {
    #[serde(flatten)]
    pub reading: Reading,
    #[serde(skip)]
    pub unit: &'static str,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisView {
    pub task: String,
    pub namespace: String,
    pub window_seconds: u64,
    pub prometheus: String,
    pub versions: Vec<VersionStats>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateView>,
    /// `pass`, `fail` or `not-yet` (too little traffic or no data), when gates were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why a version shows no numbers, and when its first window with data ends.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub no_data: Vec<String>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    #[serde(flatten)]
    body: &'a AnalysisView,
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map(|v| fmt((v * 100.0).round() / 100.0, unit)).unwrap_or_else(|| "-".into())
}

fn verdict_cell(v: Verdict) -> Cell {
    match v {
        Verdict::Pass => colored("ok", Color::Green),
        Verdict::Fail => colored("FAIL", Color::Red),
        Verdict::NoData => colored("no data", Color::Yellow),
        Verdict::Skipped => colored("skipped", Color::Yellow),
    }
}

pub fn render(v: &AnalysisView, format: Format, color: bool) -> String {
    let body = Envelope { api_version: VIEW_API_VERSION, kind: "Analysis", body: v };
    match format {
        Format::Json => return to_json(&body),
        Format::Yaml => return to_yaml(&body),
        Format::Name => return format!("{}\n", v.task),
        Format::Table | Format::Wide => {}
    }
    let mut out = format!(
        "Task {} in {}: last {}s, from Prometheus at {}\n\n",
        v.task, v.namespace, v.window_seconds, v.prometheus
    );
    let rows: Vec<Vec<Cell>> = v
        .versions
        .iter()
        .map(|s| {
            vec![
                Cell::from(s.version.as_str()),
                Cell::from(s.role),
                Cell::from(s.weight.map(|w| format!("{w}%")).unwrap_or_else(|| "-".into())),
                Cell::from(opt(s.requests_per_second, "")),
                Cell::from(opt(s.success_rate_percent, "%")),
                Cell::from(opt(s.p50_ms, "ms")),
                Cell::from(opt(s.p90_ms, "ms")),
                Cell::from(opt(s.p99_ms, "ms")),
            ]
        })
        .collect();
    out.push_str(&render_table(
        &["VERSION", "ROLE", "WEIGHT", "RPS", "SUCCESS", "P50", "P90", "P99"],
        &rows,
        color,
    ));
    if !v.gates.is_empty() {
        let rows: Vec<Vec<Cell>> = v
            .gates
            .iter()
            .map(|g| {
                vec![
                    Cell::from(g.reading.gate.as_str()),
                    Cell::from(opt(g.reading.value, g.unit)),
                    Cell::from(g.reading.threshold.as_str()),
                    verdict_cell(g.reading.verdict),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&render_table(&["GATE", "VALUE", "NEEDS", "VERDICT"], &rows, color));
    }
    if !v.no_data.is_empty() {
        out.push('\n');
        for n in &v.no_data {
            out.push_str(&format!("No data: {n}\n"));
        }
    }
    if let Some(verdict) = &v.verdict {
        out.push_str(&format!("\nVerdict: {verdict}"));
        if let Some(r) = &v.reason {
            out.push_str(&format!(" ({r})"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::gate::parse;

    fn view() -> AnalysisView {
        let stats = |version: &str, role, weight, sr| VersionStats {
            version: version.into(),
            role,
            weight: Some(weight),
            requests_per_second: Some(70.0),
            success_rate_percent: Some(sr),
            p50_ms: Some(23.456),
            p90_ms: None,
            p99_ms: Some(49.0),
        };
        let g = parse("success-rate>=99").unwrap();
        AnalysisView {
            task: "rc".into(),
            namespace: "demo".into(),
            window_seconds: 300,
            prometheus: "http://p".into(),
            versions: vec![stats("v1", "old", 70, 100.0), stats("v2", "new", 30, 95.0)],
            gates: vec![GateView { reading: g.read(Some(95.0), None, true), unit: "%" }],
            verdict: Some("fail".into()),
            reason: Some("success-rate>=99".into()),
            no_data: vec![],
        }
    }

    #[test]
    fn the_table_puts_versions_side_by_side_then_the_gates() {
        let text = render(&view(), Format::Table, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Task rc in demo: last 300s, from Prometheus at http://p");
        assert!(lines[2].starts_with("VERSION") && lines[2].contains("P99"), "{text}");
        assert!(lines[3].starts_with("v1") && lines[3].contains("100%") && lines[3].contains("23.46ms"));
        assert!(lines[4].starts_with("v2") && lines[4].contains("95%") && lines[4].contains(" - "), "{text}");
        assert!(text.contains("success-rate>=99   95%     >= 99%   FAIL"), "{text}");
        assert!(text.ends_with("Verdict: fail (success-rate>=99)\n"));
    }

    #[test]
    fn a_version_without_data_is_explained_under_the_tables() {
        let mut v = view();
        v.no_data =
            vec!["v2: one sample in the last 10s so far; the first window with data ends in about 1s".into()];
        let text = render(&v, Format::Table, false);
        assert!(text.contains("\nNo data: v2: one sample in the last 10s so far;"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&render(&v, Format::Json, false)).unwrap();
        assert_eq!(json["noData"][0], v.no_data[0]);
        let none: serde_json::Value = serde_json::from_str(&render(&view(), Format::Json, false)).unwrap();
        assert!(none.get("noData").is_none());
    }

    #[test]
    fn json_is_an_enveloped_document_with_every_number() {
        let v: serde_json::Value = serde_json::from_str(&render(&view(), Format::Json, false)).unwrap();
        assert_eq!(v["kind"], "Analysis");
        assert_eq!(v["versions"][1]["successRatePercent"], 95.0);
        assert_eq!(v["versions"][1]["p90Ms"], serde_json::Value::Null);
        assert_eq!(v["gates"][0]["verdict"], "fail");
        assert_eq!(v["gates"][0]["value"], 95.0);
        assert_eq!(v["verdict"], "fail");
    }
}

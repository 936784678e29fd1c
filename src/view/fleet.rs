//! A take-over across clusters, printed: one row per cluster (table), or one entry per context
//! (`-o json|yaml`), and the live line each cluster shows while it runs.

use serde::Serialize;

use crate::output::{Cell, Color, Format, colored, render_table, to_json, to_yaml};
use crate::plan::fleet::{ClusterResult, Outcome};

/// `-o json|yaml`: every selected context, failed ones included, in the order they were run.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct TakeoverResult<'a> {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub dry_run: bool,
    pub items: &'a [ClusterResult],
}

fn color_of(o: Outcome) -> Color {
    match o {
        Outcome::Ok | Outcome::Unchanged | Outcome::Planned => Color::Green,
        Outcome::Skipped => Color::Yellow,
        _ => Color::Red,
    }
}

/// `v1 80% v2 20% -> v1 100% v2 0% (takeover)`, or `-` where the cluster could not be read.
pub fn change_cell(r: &ClusterResult) -> String {
    match (&r.before, &r.after) {
        (Some(b), Some(a)) => format!("{b} -> {a}"),
        (Some(b), None) => b.clone(),
        _ => "-".into(),
    }
}

pub fn render(results: &[ClusterResult], format: Format, dry_run: bool, color: bool) -> String {
    match format {
        Format::Json | Format::Yaml => {
            let v = TakeoverResult {
                api_version: "grayscale.kubectl.io/v1",
                kind: "TakeoverResult",
                dry_run,
                items: results,
            };
            if format == Format::Json { to_json(&v) } else { to_yaml(&v) }
        }
        Format::Name => results.iter().map(|r| format!("{}\n", r.context)).collect(),
        Format::Table | Format::Wide => {
            let rows: Vec<Vec<Cell>> = results
                .iter()
                .map(|r| {
                    vec![
                        r.context.clone().into(),
                        r.server.clone().into(),
                        format!("{}/{}", r.namespace, r.task).into(),
                        change_cell(r).into(),
                        colored(r.result.as_str(), color_of(r.result)),
                        if r.reason.is_empty() { "-".into() } else { r.reason.clone().into() },
                    ]
                })
                .collect();
            render_table(&["CONTEXT", "SERVER", "TASK", "BEFORE -> AFTER", "RESULT", "REASON"], &rows, color)
        }
    }
}

/// The live line of one cluster where no terminal redraws it: `eu-1 | reading`.
pub fn line(context: &str, message: &str) -> String {
    format!("{context} | {message}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fleet::Target;

    fn rows() -> Vec<ClusterResult> {
        let t = |c: &str| Target {
            context: c.into(),
            server: format!("https://{c}:6443"),
            namespace: "shop".into(),
        };
        let mut ok = ClusterResult::new(&t("eu-1"), "rc", Outcome::Ok, "");
        ok.before = Some("v1 80% v2 20%".into());
        ok.after = Some("v1 100% v2 0% (takeover)".into());
        let hole = ClusterResult::new(&t("us-1"), "rc", Outcome::Timeout, "no answer within 5s");
        vec![ok, hole]
    }

    #[test]
    fn the_table_has_one_row_per_cluster_with_before_after_result_and_reason() {
        let text = render(&rows(), Format::Table, false, false);
        // Columns are padded with at least three spaces; cells hold single spaces only.
        let cells = |l: &str| {
            l.split("   ").map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect::<Vec<_>>()
        };
        let lines: Vec<Vec<String>> = text.lines().map(cells).collect();
        assert_eq!(
            lines,
            [
                ["CONTEXT", "SERVER", "TASK", "BEFORE -> AFTER", "RESULT", "REASON"],
                [
                    "eu-1",
                    "https://eu-1:6443",
                    "shop/rc",
                    "v1 80% v2 20% -> v1 100% v2 0% (takeover)",
                    "ok",
                    "-"
                ],
                ["us-1", "https://us-1:6443", "shop/rc", "-", "timeout", "no answer within 5s"],
            ],
            "{text}"
        );
    }

    #[test]
    fn json_has_one_entry_per_context_with_its_result_failed_ones_included() {
        let v: serde_json::Value =
            serde_json::from_str(&render(&rows(), Format::Json, false, false)).unwrap();
        assert_eq!(v["kind"], "TakeoverResult");
        let items = v["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!((items[0]["context"].as_str(), items[0]["result"].as_str()), (Some("eu-1"), Some("ok")));
        assert_eq!(
            (items[1]["context"].as_str(), items[1]["result"].as_str()),
            (Some("us-1"), Some("timeout"))
        );
        assert_eq!(items[1]["reason"], "no answer within 5s");
        assert!(items[1].get("before").is_none());
        let y: serde_json::Value =
            serde_yaml_ng::from_str(&render(&rows(), Format::Yaml, true, false)).unwrap();
        assert_eq!(y["items"][1]["result"], "timeout");
        assert_eq!(y["dryRun"], true);
    }

    #[test]
    fn a_live_line_names_its_context() {
        assert_eq!(line("eu-1", "reading"), "eu-1 | reading");
    }
}

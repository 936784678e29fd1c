//! Printers for task views: tables for people, JSON/YAML/name for scripts.

use serde::Serialize;

use super::task::{TaskView, VIEW_API_VERSION, traffic_summary};
use crate::output::{Cell, Color, Format, age, colored, paint, render_table, to_json, to_yaml};

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    #[serde(flatten)]
    body: &'a T,
}

#[derive(Serialize)]
struct Items<'a> {
    items: &'a [TaskView],
}

/// Seconds since an RFC 3339 timestamp, given now in Unix seconds.
pub fn seconds_since(ts: Option<&str>, now: i64) -> Option<i64> {
    let t: k8s_openapi::jiff::Timestamp = ts?.parse().ok()?;
    Some(now - t.as_second())
}

fn ready_cell(v: &TaskView) -> Cell {
    let text = v
        .versions
        .iter()
        .map(|x| format!("{} {}/{}", x.version, x.ready, x.replicas))
        .collect::<Vec<_>>()
        .join(", ");
    let all_ready = v.versions.iter().all(|x| x.exists && x.ready >= x.replicas && x.replicas > 0);
    colored(text, if all_ready { Color::Green } else { Color::Yellow })
}

/// The task's traffic, and where the live routing drifted from it, who drifted it.
fn traffic_cell(v: &TaskView) -> Cell {
    let t = traffic_summary(&v.routing);
    match (v.drift, &v.drift_by) {
        (Some(true), Some(by)) => colored(format!("{t} (drift: {by})"), Color::Yellow),
        (Some(true), None) => colored(format!("{t} (drift)"), Color::Yellow),
        _ => t.into(),
    }
}

pub fn list(views: &[TaskView], format: Format, all_namespaces: bool, now: i64, color: bool) -> String {
    match format {
        Format::Json => to_json(&Envelope {
            api_version: VIEW_API_VERSION,
            kind: "TaskList",
            body: &Items { items: views },
        }),
        Format::Yaml => to_yaml(&Envelope {
            api_version: VIEW_API_VERSION,
            kind: "TaskList",
            body: &Items { items: views },
        }),
        Format::Name => {
            views.iter().map(|v| format!("strategy.servicemesh.kubesphere.io/{}\n", v.name)).collect()
        }
        Format::Table | Format::Wide => {
            if views.is_empty() {
                return String::new();
            }
            let wide = format == Format::Wide;
            let mut headers = vec![];
            if all_namespaces {
                headers.push("NAMESPACE");
            }
            headers.extend([
                "NAME", "TYPE", "SERVICE", "VERSIONS", "READY", "TRAFFIC", "GOVERNOR", "POLICY", "AGE",
            ]);
            if wide {
                headers.extend(["APP", "WORKLOADS"]);
            }
            let rows: Vec<Vec<Cell>> = views
                .iter()
                .map(|v| {
                    let mut r: Vec<Cell> = vec![];
                    if all_namespaces {
                        r.push(v.namespace.clone().into());
                    }
                    r.push(colored(v.name.clone(), Color::Bold));
                    r.push(v.task_type.clone().into());
                    r.push(v.service.clone().into());
                    r.push(
                        format!(
                            "{} -> {}",
                            v.old_version,
                            v.new_version.clone().unwrap_or_else(|| "?".into())
                        )
                        .into(),
                    );
                    r.push(ready_cell(v));
                    r.push(traffic_cell(v));
                    r.push(match &v.governor {
                        Some(g) => colored(g.clone(), Color::Magenta),
                        None => "-".into(),
                    });
                    r.push(v.policy.clone().into());
                    r.push(
                        seconds_since(v.created_at.as_deref(), now)
                            .map(age)
                            .unwrap_or_else(|| "-".into())
                            .into(),
                    );
                    if wide {
                        r.push(v.app.clone().unwrap_or_else(|| "-".into()).into());
                        r.push(
                            v.versions
                                .iter()
                                .map(|x| x.workload.clone())
                                .collect::<Vec<_>>()
                                .join(",")
                                .into(),
                        );
                    }
                    r
                })
                .collect();
            render_table(&headers, &rows, color)
        }
    }
}

/// Ready over desired as a ten-cell bar: `[██████░░░░]`.
pub fn ready_bar(ready: i32, desired: i32) -> String {
    let filled =
        if desired <= 0 { 0 } else { ((ready.clamp(0, desired) * 10 + desired / 2) / desired) as usize };
    format!("[{}{}]", "█".repeat(filled), "░".repeat(10 - filled))
}

/// A horizontal bar of `width` cells split by weight, one colour per version.
pub fn split_bar(weights: &[(String, i32)], width: usize, color: bool) -> String {
    let palette = [Color::Blue, Color::Green, Color::Magenta, Color::Cyan];
    let mut out = String::new();
    let mut used = 0;
    for (i, (_, w)) in weights.iter().enumerate() {
        let cells = if i + 1 == weights.len() {
            width - used
        } else {
            (width * (*w).clamp(0, 100) as usize + 50) / 100
        };
        let cells = cells.min(width - used);
        used += cells;
        // Without colour, versions are told apart by shade.
        let glyph = if color { "█" } else { ["█", "░", "▓", "▒"][i % 4] };
        out.push_str(&paint(color, &glyph.repeat(cells), palette[i % palette.len()]));
    }
    out
}

pub fn status(v: &TaskView, format: Format, now: i64, color: bool) -> String {
    match format {
        Format::Json => to_json(&Envelope { api_version: VIEW_API_VERSION, kind: "Task", body: v }),
        Format::Yaml => to_yaml(&Envelope { api_version: VIEW_API_VERSION, kind: "Task", body: v }),
        Format::Name => format!("strategy.servicemesh.kubesphere.io/{}\n", v.name),
        Format::Table | Format::Wide => status_text(v, now, color),
    }
}

fn status_text(v: &TaskView, now: i64, color: bool) -> String {
    let b = |s: &str| paint(color, s, Color::Bold);
    let mut out = String::new();
    let task_age = seconds_since(v.created_at.as_deref(), now).map(age).unwrap_or_else(|| "-".into());
    out.push_str(&format!("{}  {}/{}  ({}, age {task_age})\n", b("Task"), v.namespace, v.name, v.task_type));
    out.push_str(&format!("{}  {}", b("Service"), v.service));
    if let Some(app) = &v.app {
        out.push_str(&format!("  (app {app})"));
    }
    out.push('\n');
    out.push_str(&format!(
        "{}  {}   {}  {}\n",
        b("Policy"),
        if v.policy.is_empty() { "-" } else { &v.policy },
        b("Governor"),
        v.governor.as_deref().map(|g| paint(color, g, Color::Magenta)).unwrap_or_else(|| "-".into())
    ));
    out.push_str(&format!("{}  {}\n", b("Traffic"), traffic_summary(&v.routing)));
    if let Some(m) = &v.routing.matches {
        out.push_str(&format!("         {m}\n"));
    }
    if let Some(c) = &v.last_change {
        out.push_str(&format!("{}  {c}\n", b("Last change")));
    }
    out.push('\n');
    let rows: Vec<Vec<Cell>> = v
        .versions
        .iter()
        .map(|x| {
            let ok = x.exists && x.ready >= x.replicas && x.replicas > 0;
            vec![
                colored(x.version.clone(), Color::Bold),
                x.role.clone().into(),
                if x.exists {
                    x.workload.clone().into()
                } else {
                    colored(format!("{} (missing)", x.workload), Color::Red)
                },
                colored(
                    format!("{} {}/{}", ready_bar(x.ready, x.replicas), x.ready, x.replicas),
                    if ok { Color::Green } else { Color::Yellow },
                ),
                x.available.to_string().into(),
            ]
        })
        .collect();
    out.push_str(&render_table(&["VERSION", "ROLE", "WORKLOAD", "READY", "AVAILABLE"], &rows, color));
    if !v.live_routing.is_empty() {
        out.push('\n');
        let kind = v.route_kind.as_deref().unwrap_or("VirtualService");
        out.push_str(&format!("{}\n", b(&format!("Routing now ({kind})"))));
        for p in &v.live_routing {
            let w: Vec<(String, i32)> = p.weights.iter().map(|w| (w.version.clone(), w.weight)).collect();
            let label = w.iter().map(|(v, w)| format!("{v} {w}%")).collect::<Vec<_>>().join("  ");
            let mirror = p.mirror.as_ref().map(|m| format!("  mirror -> {m}")).unwrap_or_default();
            let port = if p.port == 0 { "*".to_string() } else { p.port.to_string() };
            out.push_str(&format!("  port {port:<5} {}  {label}{mirror}\n", split_bar(&w, 30, color)));
        }
    }
    if v.drift == Some(true) {
        let by = v.drift_by.as_ref().map(|m| format!(" (changed by {m})")).unwrap_or_default();
        out.push_str(&format!(
            "  {} the {} does not route what the task says{by}; fix it with: kubectl grayscale sync {} -n {}\n",
            paint(color, "drift:", Color::Yellow),
            v.route_kind.as_deref().unwrap_or("VirtualService"),
            v.name,
            v.namespace
        ));
    }
    for why in &v.route_status {
        out.push_str(&format!("  {} {why}\n", paint(color, "mesh:", Color::Yellow)));
    }
    if v.policy == crate::model::strategy::POLICY_PAUSED {
        out.push_str(&format!(
            "  {} routing stays on the Service's default route, whatever the task's weights say, until: kubectl grayscale resume {} -n {}\n",
            paint(color, "paused:", Color::Yellow),
            v.name,
            v.namespace
        ));
    }
    let new_unready = v.versions.iter().any(|x| x.role == "new" && x.ready == 0);
    if new_unready && v.policy == crate::model::strategy::POLICY_WAIT && v.governor.is_none() {
        out.push_str(&format!(
            "  routing waits for {} to have ready pods (WaitForWorkloadReady)\n",
            v.new_version.as_deref().unwrap_or("the new version")
        ));
    }
    if !v.events.is_empty() {
        out.push('\n');
        out.push_str(&format!("{}\n", b("Recent warnings")));
        for e in &v.events {
            let when = seconds_since(Some(&e.at), now).map(age).unwrap_or_else(|| "-".into());
            let count = if e.count > 1 { format!(" (x{})", e.count) } else { String::new() };
            out.push_str(&format!(
                "  {when:>4} ago  {}  {}: {}{count}\n",
                e.object,
                paint(color, &e.reason, Color::Red),
                e.message
            ));
        }
    }
    if !v.pods.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<Cell>> = v
            .pods
            .iter()
            .map(|p| {
                let c = if p.failing {
                    Color::Red
                } else if p.ready {
                    Color::Green
                } else {
                    Color::Yellow
                };
                vec![
                    p.version.clone().into(),
                    p.name.clone().into(),
                    colored(p.state.clone(), c),
                    p.restarts.to_string().into(),
                    p.message.clone().unwrap_or_default().into(),
                ]
            })
            .collect();
        out.push_str(&render_table(&["VERSION", "POD", "STATE", "RESTARTS", "MESSAGE"], &rows, color));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_bars_fill_the_width_in_proportion() {
        let bar = split_bar(&[("v1".into(), 70), ("v2".into(), 30)], 10, false);
        assert_eq!(bar, "███████░░░");
        assert_eq!(split_bar(&[("v1".into(), 100), ("v2".into(), 0)], 10, false), "█".repeat(10));
    }

    #[test]
    fn ages_come_from_the_creation_timestamp() {
        assert_eq!(seconds_since(Some("2026-01-01T00:00:00Z"), 1_767_225_660), Some(60));
    }
}

#[cfg(test)]
mod snapshot_tests {
    use super::*;
    use crate::view::task::{PortRouting, RoutingView, VersionView, Weight};

    fn view() -> TaskView {
        let w = |v: &str, n: i32| Weight { version: v.into(), weight: n };
        let ver = |v: &str, role: &str, ready: i32| VersionView {
            version: v.into(),
            role: role.into(),
            workload: format!("reviews-{v}"),
            replicas: 3,
            ready,
            available: ready,
            exists: true,
        };
        TaskView {
            name: "reviews-canary".into(),
            namespace: "demo".into(),
            task_type: "canary".into(),
            service: "reviews".into(),
            app: Some("bookinfo".into()),
            old_version: "v1".into(),
            new_version: Some("v2".into()),
            governor: None,
            policy: "WaitForWorkloadReady".into(),
            routing: RoutingView {
                mode: "ratio".into(),
                weights: vec![w("v1", 80), w("v2", 20)],
                matches: None,
                mirror: None,
            },
            versions: vec![ver("v1", "old", 3), ver("v2", "new", 2)],
            created_at: Some("2026-01-01T00:00:00Z".into()),
            live_routing: vec![PortRouting {
                port: 9080,
                weights: vec![w("v1", 80), w("v2", 20)],
                mirror: None,
            }],
            pods: vec![],
            events: vec![],
            drift: None,
            drift_by: None,
            last_change: None,
            route_kind: None,
            route_status: vec![],
        }
    }

    const NOW: i64 = 1_767_225_600 + 300;

    #[test]
    fn the_list_table_reads_like_kubectl() {
        let out = list(&[view()], Format::Table, true, NOW, false);
        assert_eq!(
            out,
            "NAMESPACE   NAME             TYPE     SERVICE   VERSIONS   READY            TRAFFIC         GOVERNOR   POLICY                 AGE\n\
             demo        reviews-canary   canary   reviews   v1 -> v2   v1 3/3, v2 2/3   v1 80% v2 20%   -          WaitForWorkloadReady   5m\n"
        );
    }

    #[test]
    fn the_status_text_shows_versions_routing_and_bars() {
        let out = status(&view(), Format::Table, NOW, false);
        assert_eq!(
            out,
            "Task  demo/reviews-canary  (canary, age 5m)\n\
             Service  reviews  (app bookinfo)\n\
             Policy  WaitForWorkloadReady   Governor  -\n\
             Traffic  v1 80% v2 20%\n\
             \n\
             VERSION   ROLE   WORKLOAD     READY              AVAILABLE\n\
             v1        old    reviews-v1   [██████████] 3/3   3\n\
             v2        new    reviews-v2   [███████░░░] 2/3   2\n\
             \n\
             Routing now (VirtualService)\n  \
             port 9080  ████████████████████████░░░░░░  v1 80%  v2 20%\n"
        );
    }

    #[test]
    fn drift_names_its_manager_in_the_list_and_the_status() {
        let mut v = view();
        v.drift = Some(true);
        v.drift_by = Some("console-edit".into());
        v.last_change = Some("shift by alice at 2026-01-01T00:04:00Z".into());
        let out = list(&[v.clone()], Format::Table, false, NOW, false);
        assert!(out.contains("  v1 80% v2 20% (drift: console-edit)  "), "{out}");
        let out = status(&v, Format::Table, NOW, false);
        assert!(
            out.contains("Traffic  v1 80% v2 20%\nLast change  shift by alice at 2026-01-01T00:04:00Z\n"),
            "{out}"
        );
        assert!(
            out.contains("  drift: the VirtualService does not route what the task says (changed by console-edit); fix it with: kubectl grayscale sync reviews-canary -n demo\n"),
            "{out}"
        );
        let j: serde_json::Value = serde_json::from_str(&status(&v, Format::Json, NOW, false)).unwrap();
        assert_eq!(
            (&j["drift"], &j["driftBy"]),
            (&serde_json::json!(true), &serde_json::json!("console-edit"))
        );
        assert_eq!(j["lastChange"], "shift by alice at 2026-01-01T00:04:00Z");
        v.drift_by = None;
        let out = list(&[v], Format::Table, false, NOW, false);
        assert!(out.contains("  v1 80% v2 20% (drift)  "), "{out}");
    }
}

//! Printers for task views: tables for people, JSON/YAML/name for scripts.

use serde::Serialize;

use super::task::{TaskView, VIEW_API_VERSION, traffic_summary};
use crate::output::{
    Cell, Color, Format, age, colored, paint, render_rows, render_table, to_json, to_yaml, widen,
};

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    #[serde(flatten)]
    body: &'a T,
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

/// The whole list at once: what a list of one page prints.
pub fn list(views: &[TaskView], format: Format, all_namespaces: bool, now: i64, color: bool) -> String {
    let mut p = ListPrinter::new(format, all_namespaces, now, color);
    let mut out = p.page(views);
    out.push_str(&p.finish());
    out
}

/// Prints a list page by page, so that no more than a page of tasks is held: what one `page`
/// call returns can be written out before the next page is read. The pages concatenated print
/// what [`list`] prints for all of them at once, except that a table takes its column widths
/// from the first page and widens them only for the pages after it, as kubectl's chunked
/// output does.
pub struct ListPrinter {
    format: Format,
    all_namespaces: bool,
    now: i64,
    color: bool,
    rows: usize,
    /// Whether the document's opening (JSON, YAML) is printed.
    opened: bool,
    /// The table's column widths, once its header is printed.
    widths: Option<Vec<usize>>,
}

const JSON_ITEM_INDENT: &str = "    ";

impl ListPrinter {
    pub fn new(format: Format, all_namespaces: bool, now: i64, color: bool) -> Self {
        ListPrinter { format, all_namespaces, now, color, rows: 0, opened: false, widths: None }
    }

    /// How many tasks were printed so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The document's opening, the first time only.
    fn open(&mut self) -> String {
        if std::mem::replace(&mut self.opened, true) {
            return String::new();
        }
        // Written by hand rather than by serde, which cannot leave a document open: the same
        // bytes `to_json`/`to_yaml` give a whole TaskList up to its first item (tests compare).
        match self.format {
            Format::Json => format!(
                "{{\n  \"apiVersion\": {},\n  \"kind\": \"TaskList\",\n  \"items\": [",
                serde_json::to_string(VIEW_API_VERSION).expect("a string")
            ),
            Format::Yaml => format!("apiVersion: {VIEW_API_VERSION}\nkind: TaskList\nitems:"),
            _ => String::new(),
        }
    }

    /// What to print for one page of tasks, in the order given.
    pub fn page(&mut self, views: &[TaskView]) -> String {
        let mut out = self.open();
        match self.format {
            Format::Json => {
                for v in views {
                    out.push_str(if self.rows == 0 { "\n" } else { ",\n" });
                    let item = serde_json::to_string_pretty(v).expect("views serialise");
                    indent(&mut out, &item, JSON_ITEM_INDENT, JSON_ITEM_INDENT);
                    self.rows += 1;
                }
            }
            Format::Yaml => {
                for v in views {
                    out.push('\n');
                    let item = serde_yaml_ng::to_string(v).expect("views serialise");
                    indent(&mut out, item.trim_end_matches('\n'), "- ", "  ");
                    self.rows += 1;
                }
            }
            Format::Name => {
                for v in views {
                    out.push_str(&format!("strategy.servicemesh.kubesphere.io/{}\n", v.name));
                }
                self.rows += views.len();
            }
            Format::Table | Format::Wide => {
                let rows: Vec<Vec<Cell>> = views.iter().map(|v| self.table_row(v)).collect();
                self.rows += views.len();
                if rows.is_empty() {
                    return out;
                }
                match &mut self.widths {
                    Some(w) => widen(w, &rows),
                    None => {
                        let headers = self.headers();
                        let mut w: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
                        widen(&mut w, &rows);
                        let header: Vec<Cell> = headers.iter().map(|&h| h.into()).collect();
                        out.push_str(&render_rows(&[header], &w, self.color));
                        self.widths = Some(w);
                    }
                }
                out.push_str(&render_rows(&rows, self.widths.as_deref().unwrap_or_default(), self.color));
            }
        }
        out
    }

    /// What closes the list once every page is printed.
    pub fn finish(&mut self) -> String {
        let mut out = self.open();
        match (self.format, self.rows) {
            (Format::Json, 0) => out.push_str("]\n}\n"),
            (Format::Json, _) => out.push_str("\n  ]\n}\n"),
            (Format::Yaml, 0) => out.push_str(" []\n"),
            (Format::Yaml, _) => out.push('\n'),
            _ => {}
        }
        out
    }

    fn headers(&self) -> Vec<&'static str> {
        let mut headers = vec![];
        if self.all_namespaces {
            headers.push("NAMESPACE");
        }
        headers
            .extend(["NAME", "TYPE", "SERVICE", "VERSIONS", "READY", "TRAFFIC", "GOVERNOR", "POLICY", "AGE"]);
        if self.format == Format::Wide {
            headers.extend(["APP", "WORKLOADS"]);
        }
        headers
    }

    fn table_row(&self, v: &TaskView) -> Vec<Cell> {
        let mut r: Vec<Cell> = vec![];
        if self.all_namespaces {
            r.push(v.namespace.clone().into());
        }
        r.push(colored(v.name.clone(), Color::Bold));
        r.push(v.task_type.clone().into());
        r.push(v.service.clone().into());
        r.push(
            format!("{} -> {}", v.old_version, v.new_version.clone().unwrap_or_else(|| "?".into())).into(),
        );
        r.push(ready_cell(v));
        r.push(traffic_cell(v));
        r.push(match &v.governor {
            Some(g) => colored(g.clone(), Color::Magenta),
            None => "-".into(),
        });
        r.push(v.policy.clone().into());
        r.push(
            seconds_since(v.created_at.as_deref(), self.now).map(age).unwrap_or_else(|| "-".into()).into(),
        );
        if self.format == Format::Wide {
            r.push(v.app.clone().unwrap_or_else(|| "-".into()).into());
            r.push(v.versions.iter().map(|x| x.workload.clone()).collect::<Vec<_>>().join(",").into());
        }
        r
    }
}

/// Appends `text` with `first` before its first line and `rest` before each later non-empty
/// one: an item serialised alone, nested as the serialiser nests it in a whole list.
fn indent(out: &mut String, text: &str, first: &str, rest: &str) {
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if i == 0 {
            out.push_str(first);
        } else if !line.is_empty() {
            out.push_str(rest);
        }
        out.push_str(line);
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

    /// What `list` printed before it streamed: the whole TaskList serialised at once.
    fn whole(views: &[TaskView], format: Format) -> String {
        #[derive(Serialize)]
        struct Items<'a> {
            items: &'a [TaskView],
        }
        let e = Envelope { api_version: VIEW_API_VERSION, kind: "TaskList", body: &Items { items: views } };
        match format {
            Format::Json => to_json(&e),
            _ => to_yaml(&e),
        }
    }

    fn named(ns: &str, name: &str) -> TaskView {
        TaskView { name: name.into(), namespace: ns.into(), ..view() }
    }

    fn printed(pages: &[&[TaskView]], format: Format, all_namespaces: bool) -> String {
        let mut p = ListPrinter::new(format, all_namespaces, NOW, false);
        let mut out: String = pages.iter().map(|page| p.page(page)).collect();
        out.push_str(&p.finish());
        out
    }

    #[test]
    fn json_and_yaml_printed_page_by_page_are_the_bytes_of_the_whole_list() {
        let mut odd = named("demo", "odd");
        // Nesting a serialiser must get right: a multi-line string (a YAML block scalar, with
        // an empty line), nested lists, quoting.
        odd.routing.matches = Some("header x-beta=1\n\nos=\"ios\" -> v2".into());
        odd.events = vec![crate::view::task::EventView {
            at: "2026-01-01T00:00:00Z".into(),
            object: "pod/reviews-v2-1".into(),
            reason: "BackOff".into(),
            message: "line one\nline two: yes\n".into(),
            count: 2,
        }];
        let (a, b, c) = (named("a", "t1"), odd, named("b-c", "t3"));
        let all = [a.clone(), b.clone(), c.clone()];
        // (case, pages, the whole list they make)
        type Case<'a> = (&'a str, Vec<&'a [TaskView]>, &'a [TaskView]);
        let cases: [Case; 4] = [
            ("no page", vec![], &[]),
            ("one empty page", vec![&[]], &[]),
            ("one task", vec![std::slice::from_ref(&a)], std::slice::from_ref(&a)),
            ("three tasks in pages of 1, 0 and 2", vec![&all[..1], &[], &all[1..]], &all),
        ];
        for (case, pages, want) in cases {
            for format in [Format::Json, Format::Yaml] {
                let got = printed(&pages, format, true);
                assert_eq!(got, whole(want, format), "{case}, {format:?}");
            }
            let y: serde_yaml_ng::Value =
                serde_yaml_ng::from_str(&printed(&pages, Format::Yaml, true)).unwrap();
            assert_eq!(y["items"].as_sequence().map(Vec::len), Some(want.len()), "{case}");
        }
    }

    #[test]
    fn a_streamed_table_takes_its_widths_from_the_first_page_and_widens_for_later_ones() {
        let (a, b) = (named("demo", "a"), named("demo", "b"));
        let long = named("demo", "a-much-longer-task-name");
        let out = printed(&[std::slice::from_ref(&a), &[b], &[long]], Format::Table, false);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "one header for all pages:\n{out}");
        assert!(lines[0].starts_with("NAME   TYPE     SERVICE"), "{out}");
        assert!(lines[1].starts_with("a      canary   reviews"), "{out}");
        assert!(lines[2].starts_with("b      canary   reviews"), "{out}");
        assert!(lines[3].starts_with("a-much-longer-task-name   canary   reviews"), "{out}");
        // A list of one page is the table it always was.
        assert_eq!(
            printed(&[std::slice::from_ref(&a)], Format::Table, false),
            list(&[a], Format::Table, false, NOW, false)
        );
    }

    #[test]
    fn an_empty_list_prints_no_table_and_counts_no_rows() {
        for format in [Format::Table, Format::Wide, Format::Name] {
            let mut p = ListPrinter::new(format, true, NOW, false);
            assert_eq!(p.page(&[]) + &p.finish(), "", "{format:?}");
            assert_eq!(p.rows(), 0);
        }
        let mut p = ListPrinter::new(Format::Name, true, NOW, false);
        assert_eq!(
            p.page(&[named("a", "x"), named("b", "y")]),
            "strategy.servicemesh.kubesphere.io/x\nstrategy.servicemesh.kubesphere.io/y\n"
        );
        assert_eq!(p.rows(), 2);
    }

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

//! A validated create request, built from the task file and the command-line flags (flags win).

use serde::Serialize;

use super::file::{ContainerEdit, MatchSettings, Resources, TaskFile, TextMatch};
use super::matching::{ClientOs, MatchRule};
use super::validate::{self, Problems};
use crate::error::Problem;
use crate::model::istio::StringMatch;
use crate::model::strategy::TaskType;

/// Names the old version's only work container in an edit that did not name one.
pub const DEFAULT_CONTAINER: &str = "";

/// The command-line flags of `create`, before validation.
#[derive(Debug, Default, Clone)]
pub struct CreateFlags {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub service: Option<String>,
    pub app: Option<String>,
    pub version: Option<String>,
    pub replicas: Option<i64>,
    pub images: Vec<String>,
    pub cpu_request: Vec<String>,
    pub cpu_limit: Vec<String>,
    pub memory_request: Vec<String>,
    pub memory_limit: Vec<String>,
    pub image_pull_policy: Vec<String>,
    pub image_pull_secrets: Vec<String>,
    pub remove_containers: Vec<String>,
    pub takeover: Option<String>,
    pub weight: Option<i64>,
    pub headers: Vec<String>,
    pub header_regex: Vec<String>,
    pub cookie: Option<String>,
    pub cookie_regex: Option<String>,
    pub uri_prefix: Option<String>,
    pub uri_regex: Option<String>,
    pub os: Option<String>,
}

/// How the new task routes traffic at creation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "mode")]
pub enum Routing {
    /// Blue-green: one version takes all traffic; `new_takes_over` picks the new one.
    BlueGreen {
        new_takes_over: bool,
    },
    /// Canary by traffic ratio: the new version's weight in percent.
    Weight {
        weight: u8,
    },
    /// Canary by request parameters.
    Match {
        rule: MatchRule,
    },
    Mirror,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateRequest {
    pub name: String,
    pub task_type: TaskType,
    pub namespace: Option<String>,
    pub service: String,
    pub app: Option<String>,
    pub version: String,
    pub replicas: Option<i32>,
    pub image_pull_secrets: Vec<String>,
    pub containers: Vec<ContainerEdit>,
    pub routing: Routing,
    /// Non-fatal remarks to show the user (e.g. Istio port naming).
    pub warnings: Vec<String>,
}

/// Parses `[CONTAINER=]VALUE`.
fn split_target(s: &str) -> (String, String) {
    match s.split_once('=') {
        Some((c, v)) if !c.is_empty() && !c.contains(['/', ':']) => (c.to_string(), v.to_string()),
        _ => (DEFAULT_CONTAINER.to_string(), s.to_string()),
    }
}

fn edit_for<'a>(edits: &'a mut Vec<ContainerEdit>, name: &str) -> &'a mut ContainerEdit {
    if let Some(i) = edits.iter().position(|e| e.name == name) {
        return &mut edits[i];
    }
    edits.push(ContainerEdit { name: name.to_string(), ..ContainerEdit::default() });
    edits.last_mut().expect("just pushed")
}

fn number(p: &mut Problems, field: &str, v: &str) -> Option<f64> {
    match v.trim().parse::<f64>() {
        Ok(n) => Some(n),
        Err(_) => {
            p.push(Problem::new(field, format!("{v:?} is not a number")));
            None
        }
    }
}

fn apply_container_flags(p: &mut Problems, f: &CreateFlags, edits: &mut Vec<ContainerEdit>) {
    for s in &f.images {
        let (c, img) = split_target(s);
        // Checked here as well as with its container, so that the error names the flag.
        match super::image::problem(&img) {
            Some(why) => p.push(Problem::new("--image", format!("{img:?} is not an image reference: {why}"))),
            None => edit_for(edits, &c).image = Some(img),
        }
    }
    type Setter = fn(&mut Resources, f64);
    let resource_flags: [(&str, &Vec<String>, Setter); 4] = [
        ("--cpu-request", &f.cpu_request, |r, v| r.cpu_request = Some(v)),
        ("--cpu-limit", &f.cpu_limit, |r, v| r.cpu_limit = Some(v)),
        ("--memory-request", &f.memory_request, |r, v| r.memory_request = Some(v)),
        ("--memory-limit", &f.memory_limit, |r, v| r.memory_limit = Some(v)),
    ];
    for (flag, values, set) in resource_flags {
        for s in values {
            let (c, v) = split_target(s);
            if let Some(n) = number(p, flag, &v) {
                set(edit_for(edits, &c).resources.get_or_insert_with(Resources::default), n);
            }
        }
    }
    for s in &f.image_pull_policy {
        let (c, v) = split_target(s);
        edit_for(edits, &c).image_pull_policy = Some(v);
    }
    for c in &f.remove_containers {
        edit_for(edits, c).remove = true;
    }
}

fn text_match(p: &mut Problems, field: &str, m: &TextMatch, allow_prefix: bool) -> Option<StringMatch> {
    let n = [m.exact.is_some(), m.prefix.is_some(), m.regex.is_some()].iter().filter(|b| **b).count();
    if n != 1 {
        p.push(Problem::new(field, "set exactly one of exact, prefix or regex"));
        return None;
    }
    if m.prefix.is_some() && !allow_prefix {
        p.push(Problem::new(field, "takes exact or regex, not prefix"));
        return None;
    }
    let empty = [&m.exact, &m.prefix, &m.regex].into_iter().flatten().any(|v| v.is_empty());
    if empty {
        p.push(Problem::new(field, "must not be empty"));
        return None;
    }
    Some(StringMatch { exact: m.exact.clone(), prefix: m.prefix.clone(), regex: m.regex.clone() })
}

fn header_name_ok(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn match_rule(p: &mut Problems, f: &CreateFlags, file: Option<&MatchSettings>) -> Option<MatchRule> {
    let mut rule = MatchRule::default();
    let mut settings = file.cloned().unwrap_or_default();
    for (flag, list, regex) in [("--header", &f.headers, false), ("--header-regex", &f.header_regex, true)] {
        for s in list {
            match s.split_once('=') {
                Some((k, v)) => {
                    settings.headers.retain(|h| !h.name.eq_ignore_ascii_case(k));
                    let (exact, rx) =
                        if regex { (None, Some(v.to_string())) } else { (Some(v.to_string()), None) };
                    settings.headers.push(super::file::HeaderMatch { name: k.to_string(), exact, regex: rx });
                }
                None => p.push(Problem::new(flag, format!("{s:?} must be NAME=VALUE"))),
            }
        }
    }
    if let Some(c) = &f.cookie {
        settings.cookie = Some(TextMatch { exact: Some(c.clone()), ..TextMatch::default() });
    }
    if let Some(c) = &f.cookie_regex {
        settings.cookie = Some(TextMatch { regex: Some(c.clone()), ..TextMatch::default() });
    }
    if let Some(u) = &f.uri_prefix {
        settings.uri = Some(TextMatch { prefix: Some(u.clone()), ..TextMatch::default() });
    }
    if let Some(u) = &f.uri_regex {
        settings.uri = Some(TextMatch { regex: Some(u.clone()), ..TextMatch::default() });
    }
    if let Some(os) = &f.os {
        settings.os = os.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    }
    for (i, h) in settings.headers.iter().enumerate() {
        let field = format!("strategy.match.headers[{i}]");
        if !header_name_ok(&h.name) {
            p.push(Problem::new(format!("{field}.name"), format!("{:?} is not an HTTP header name", h.name)));
        } else if h.name.eq_ignore_ascii_case("cookie") || h.name.eq_ignore_ascii_case("user-agent") {
            p.push(Problem::new(
                format!("{field}.name"),
                format!("route on {} with --cookie or --os instead", h.name),
            ));
        }
        let tm = TextMatch { exact: h.exact.clone(), prefix: None, regex: h.regex.clone() };
        if let Some(m) = text_match(p, &field, &tm, false) {
            rule.headers.push((h.name.clone(), m));
        }
    }
    if let Some(c) = &settings.cookie {
        rule.cookie = text_match(p, "strategy.match.cookie", c, false);
    }
    if let Some(u) = &settings.uri {
        rule.uri = text_match(p, "strategy.match.uri", u, true);
        if let Some(StringMatch { prefix: Some(pre), .. } | StringMatch { exact: Some(pre), .. }) = &rule.uri
            && !pre.starts_with('/')
        {
            p.push(Problem::new("strategy.match.uri", format!("{pre:?} must start with '/'")));
        }
    }
    for o in &settings.os {
        match ClientOs::parse(o) {
            Some(os) if !rule.os.contains(&os) => rule.os.push(os),
            Some(_) => {}
            None => p.push(Problem::new(
                "strategy.match.os",
                format!("{o:?} is not one of windows, linux, macos, android, ios"),
            )),
        }
    }
    rule.os.sort();
    (!rule.is_empty()).then_some(rule)
}

fn routing(p: &mut Problems, t: TaskType, f: &CreateFlags, file: &TaskFile) -> Routing {
    let s = &file.strategy;
    let rule = match_rule(p, f, s.matches.as_ref());
    let weight = f.weight.or(s.weight);
    let takeover = f.takeover.clone().or(s.takeover.clone());
    if let Some(w) = weight
        && !(0..=100).contains(&w)
    {
        p.push(Problem::new("--weight", format!("{w} must be between 0 and 100")));
    }
    let only_canary = |p: &mut Problems, what: &str| {
        p.push(Problem::new(what, format!("applies to canary tasks only, not {}", t.as_str().to_lowercase())))
    };
    if t != TaskType::Canary {
        if weight.is_some() {
            only_canary(p, "--weight");
        }
        if rule.is_some() {
            only_canary(p, "request matching (--header, --cookie, --uri-*, --os)");
        }
    }
    if t != TaskType::BlueGreen && takeover.is_some() {
        p.push(Problem::new(
            "--takeover",
            "applies to blue-green tasks only; use `kubectl grayscale takeover` later",
        ));
    }
    match t {
        TaskType::BlueGreen => {
            let new = match takeover.as_deref() {
                None | Some("old") => false,
                Some("new") => true,
                Some(other) => {
                    p.push(Problem::new("--takeover", format!("{other:?} must be old or new")));
                    false
                }
            };
            Routing::BlueGreen { new_takes_over: new }
        }
        TaskType::Canary => match (rule, weight) {
            (Some(_), Some(_)) => {
                p.push(Problem::new(
                    "--weight",
                    "a canary routes by traffic ratio or by request parameters, not both (the console cannot combine them)",
                ));
                Routing::Weight { weight: 50 }
            }
            (Some(rule), None) => Routing::Match { rule },
            (None, w) => Routing::Weight { weight: w.unwrap_or(50).clamp(0, 100) as u8 },
        },
        TaskType::Mirror => Routing::Mirror,
    }
}

pub fn parse_task_type(s: &str) -> Option<TaskType> {
    match s.to_ascii_lowercase().as_str() {
        "bluegreen" | "blue-green" => Some(TaskType::BlueGreen),
        "canary" => Some(TaskType::Canary),
        "mirror" => Some(TaskType::Mirror),
        _ => None,
    }
}

/// Merges flags over the file and validates everything, reporting every problem at once.
pub fn build(t: TaskType, f: &CreateFlags, file: Option<TaskFile>) -> Result<CreateRequest, Problems> {
    let file = file.unwrap_or_default();
    let mut p: Problems = Vec::new();
    if let Some(ft) = &file.basic.task_type {
        match parse_task_type(ft) {
            Some(ft) if ft == t => {}
            Some(_) => p.push(Problem::new(
                "basic.type",
                format!("the file says {ft:?} but the command creates {}", t.as_str()),
            )),
            None => p.push(Problem::new("basic.type", format!("{ft:?} must be bluegreen, canary or mirror"))),
        }
    }
    let name = f.name.clone().or(file.basic.name.clone()).unwrap_or_default();
    validate::task_name(&mut p, "name", &name);
    let service = f.service.clone().or(file.service.name.clone()).unwrap_or_default();
    if service.is_empty() {
        p.push(Problem::new("--service", "is required (the Service to release)"));
    } else {
        validate::object_name(&mut p, "--service", &service);
    }
    let app = f.app.clone().or(file.service.app.clone());
    if let Some(a) = &app {
        validate::object_name(&mut p, "--app", a);
    }
    let namespace = f.namespace.clone().or(file.basic.namespace.clone());
    let version = f.version.clone().or(file.new_version.version.clone()).unwrap_or_default();
    validate::version(&mut p, "--version", &version);
    let replicas = f.replicas.or(file.new_version.replicas);
    if let Some(r) = replicas
        && !(1..=10_000).contains(&r)
    {
        p.push(Problem::new("--replicas", format!("{r} must be between 1 and 10000")));
    }
    let mut secrets = file.new_version.image_pull_secrets.clone();
    for s in &f.image_pull_secrets {
        if !secrets.contains(s) {
            secrets.push(s.clone());
        }
    }
    for s in &secrets {
        validate::object_name(&mut p, "--image-pull-secret", s);
    }
    let mut containers = file.new_version.containers.clone();
    apply_container_flags(&mut p, f, &mut containers);
    let mut warnings = Vec::new();
    let mut seen = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        let field =
            if c.name.is_empty() { "container".to_string() } else { format!("newVersion.containers[{i}]") };
        if c.name.is_empty() {
            let mut named = c.clone();
            named.name = "placeholder".into();
            warnings.extend(validate::container(&mut p, &field, &named));
        } else {
            if seen.contains(&c.name) {
                p.push(Problem::new(format!("{field}.name"), format!("{:?} appears twice", c.name)));
            }
            seen.push(c.name.clone());
            warnings.extend(validate::container(&mut p, &field, c));
        }
    }
    let routing = routing(&mut p, t, f, &file);
    if !p.is_empty() {
        return Err(p);
    }
    if let Routing::Match { rule } = &routing
        && rule.headers.len() > 1
    {
        warnings.push(crate::plan::operate::WARN_HEADERS.to_string());
    }
    Ok(CreateRequest {
        name,
        task_type: t,
        namespace,
        service,
        app,
        version,
        replicas: replicas.map(|r| r as i32),
        image_pull_secrets: secrets,
        containers,
        routing,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> CreateFlags {
        CreateFlags {
            name: Some("reviews-canary".into()),
            service: Some("reviews".into()),
            version: Some("v2".into()),
            ..CreateFlags::default()
        }
    }

    #[test]
    fn a_canary_defaults_to_half_the_traffic() {
        let r = build(TaskType::Canary, &flags(), None).unwrap();
        assert_eq!(r.routing, Routing::Weight { weight: 50 });
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let f = CreateFlags {
            name: Some("Bad_Name".into()),
            version: Some("V2.0".into()),
            weight: Some(140),
            ..flags()
        };
        let p = build(TaskType::Canary, &f, None).unwrap_err();
        let fields: Vec<_> = p.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["name", "--version", "--weight"]);
    }

    #[test]
    fn flags_override_the_file_and_edit_the_named_container() {
        let file = TaskFile::parse(
            "basic: {name: from-file, type: canary}\nservice: {name: reviews}\nnewVersion:\n  version: v3\n  containers:\n  - name: app\n    image: a:1\n    imagePullPolicy: Always\n",
        )
        .unwrap();
        let f = CreateFlags { images: vec!["app=a:2".into()], ..CreateFlags::default() };
        let r = build(TaskType::Canary, &f, Some(file)).unwrap();
        assert_eq!(r.name, "from-file");
        assert_eq!(r.version, "v3");
        assert_eq!(r.containers.len(), 1);
        assert_eq!(r.containers[0].image.as_deref(), Some("a:2"));
        assert_eq!(r.containers[0].image_pull_policy.as_deref(), Some("Always"));
    }

    #[test]
    fn an_image_with_a_registry_port_is_not_taken_for_a_container_name() {
        let f = CreateFlags { images: vec!["registry.local:5000/app=x".into()], ..flags() };
        let p = build(TaskType::Canary, &f, None).unwrap_err();
        assert!(p[0].message.starts_with("\"registry.local:5000/app=x\" is not"), "{}", p[0].message);
        let f = CreateFlags { images: vec!["registry.local:5000/app:1".into()], ..flags() };
        let r = build(TaskType::Canary, &f, None).unwrap();
        assert_eq!(r.containers[0].name, DEFAULT_CONTAINER);
        assert_eq!(r.containers[0].image.as_deref(), Some("registry.local:5000/app:1"));
    }

    #[test]
    fn a_bad_image_flag_is_reported_once_under_its_flag() {
        let f = CreateFlags { images: vec!["ñginx".into(), "app=Bad/Ref".into()], ..flags() };
        let p = build(TaskType::Canary, &f, None).unwrap_err();
        let fields: Vec<_> = p.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["--image", "--image"]);
        assert!(p[0].message.contains("\"ñginx\" is not an image reference"), "{}", p[0].message);
    }

    #[test]
    fn request_matching_is_for_canaries_only() {
        let f = CreateFlags { headers: vec!["x-user=beta".into()], ..flags() };
        let p = build(TaskType::BlueGreen, &f, None).unwrap_err();
        assert!(p[0].message.contains("canary tasks only"));
        let r = build(TaskType::Canary, &f, None).unwrap();
        assert!(matches!(r.routing, Routing::Match { .. }));
    }
}

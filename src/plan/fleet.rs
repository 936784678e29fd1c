//! A take-over across clusters, the pure part: which contexts `--context a,b` or `--context /re/`
//! selects from the kubeconfig, one result per cluster, the overall exit code, and the command
//! that retries the clusters left. No client, no clock: the kubeconfig's contexts come in as
//! data, the per-cluster outcomes as values.

use serde::Serialize;

use crate::error::{Error, exit};

/// What `--context` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// One context: the command behaves as it always did.
    One(String),
    /// `a,b,c`, in the order given.
    List(Vec<String>),
    /// `/regex/`, matched anywhere in each context name (anchor it with `^...$`).
    Pattern(String),
}

impl Selection {
    /// Whether `--context`'s value selects several clusters (or may: a pattern).
    pub fn is_fleet(&self) -> bool {
        !matches!(self, Selection::One(_))
    }
}

/// Reads `--context`'s value. A name with neither a comma nor slashes around it is one context,
/// exactly as before.
pub fn parse(value: &str) -> Result<Selection, Error> {
    let v = value.trim();
    if v.len() >= 2 && v.starts_with('/') && v.ends_with('/') {
        let re = &v[1..v.len() - 1];
        if re.is_empty() {
            return Err(Error::invalid("--context", "an empty /regex/ selects nothing"));
        }
        return Ok(Selection::Pattern(re.to_string()));
    }
    if !v.contains(',') {
        return Ok(Selection::One(value.to_string()));
    }
    let names: Vec<String> = v.split(',').map(|n| n.trim().to_string()).collect();
    if names.iter().any(String::is_empty) {
        return Err(Error::invalid("--context", format!("{value:?} has an empty context name")));
    }
    Ok(Selection::List(names))
}

/// A context as the kubeconfig has it: its cluster's server and its namespace, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownContext {
    pub name: String,
    pub server: Option<String>,
    pub namespace: Option<String>,
}

/// One cluster to take over: the context that reaches it and the namespace of the task there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub context: String,
    pub server: String,
    pub namespace: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub targets: Vec<Target>,
    /// Contexts merged into an earlier one (same server and namespace), said once each.
    pub warnings: Vec<String>,
}

/// `https://h:6443/` and `https://h:6443` are one server.
fn server_key(s: &str) -> String {
    s.trim_end_matches('/').to_ascii_lowercase()
}

/// Checks every selected name against the kubeconfig before any request: an unknown name, a
/// context without a cluster, a pattern that does not compile or matches nothing are refused.
/// Two contexts for one API server and namespace would take the same task over twice: the later
/// is merged into the first, with a warning. `namespace` is `-n`, which applies to all.
pub fn resolve(sel: &Selection, known: &[KnownContext], namespace: Option<&str>) -> Result<Resolved, Error> {
    let names = || known.iter().map(|k| k.name.as_str()).collect::<Vec<_>>().join(", ");
    let picked: Vec<&KnownContext> = match sel {
        Selection::One(n) => vec![find(known, n, &names)?],
        Selection::List(ns) => ns.iter().map(|n| find(known, n, &names)).collect::<Result<_, _>>()?,
        Selection::Pattern(p) => {
            let re = regex::Regex::new(p).map_err(|e| {
                Error::invalid("--context", format!("/{p}/ is not a regular expression: {e}"))
            })?;
            let m: Vec<&KnownContext> = known.iter().filter(|k| re.is_match(&k.name)).collect();
            if m.is_empty() {
                return Err(Error::invalid(
                    "--context",
                    format!("/{p}/ matches no context of the kubeconfig (it has: {})", names()),
                ));
            }
            m
        }
    };
    let mut targets: Vec<Target> = Vec::new();
    let mut warnings = Vec::new();
    for k in picked {
        let server = k.server.clone().ok_or_else(|| {
            Error::invalid("--context", format!("context {} names no cluster with a server", k.name))
        })?;
        let ns =
            namespace.map(str::to_string).or_else(|| k.namespace.clone()).unwrap_or_else(|| "default".into());
        let t = Target { context: k.name.clone(), server, namespace: ns };
        match targets.iter().find(|o| server_key(&o.server) == server_key(&t.server) && o.namespace == t.namespace) {
            Some(o) if o.context == t.context => {}
            Some(o) => warnings.push(format!(
                "contexts {} and {} reach the same API server {} and namespace {}: taken over once, through {}",
                o.context, t.context, t.server, t.namespace, o.context
            )),
            None => targets.push(t),
        }
    }
    Ok(Resolved { targets, warnings })
}

fn find<'a>(
    known: &'a [KnownContext],
    name: &str,
    names: &dyn Fn() -> String,
) -> Result<&'a KnownContext, Error> {
    known.iter().find(|k| k.name == name).ok_or_else(|| {
        Error::invalid("--context", format!("no context {name} in the kubeconfig (it has: {})", names()))
    })
}

/// How one cluster ended.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Taken over (or restored) as asked.
    Ok,
    /// Already as asked; its routing was still brought to the task.
    Unchanged,
    /// `--dry-run`: would change; nothing written.
    Planned,
    /// The live state or the user's rights do not allow it (task missing, target not ready,
    /// owned by another controller, forbidden); nothing written there.
    Refused,
    /// A request failed.
    Failed,
    /// The API server could not be reached.
    Unreachable,
    /// The cluster's deadline passed.
    Timeout,
    /// Not attempted: another cluster's plan failed (without `--allow-partial`), or an earlier
    /// cluster failed under `--serial`.
    Skipped,
}

impl Outcome {
    /// The cluster is as asked (or, in a dry run, would be made so).
    pub fn done(self) -> bool {
        matches!(self, Outcome::Ok | Outcome::Unchanged | Outcome::Planned)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Unchanged => "unchanged",
            Outcome::Planned => "planned",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
            Outcome::Unreachable => "unreachable",
            Outcome::Timeout => "timeout",
            Outcome::Skipped => "skipped",
        }
    }
}

/// What an error on one cluster makes of it.
pub fn classify(e: &Error) -> Outcome {
    match e {
        Error::NotFound { .. }
        | Error::NotLive { .. }
        | Error::Owned { .. }
        | Error::Forbidden { .. }
        | Error::Invalid(_)
        | Error::Ineligible { .. } => Outcome::Refused,
        Error::Deadline { .. } => Outcome::Timeout,
        Error::Api { source, .. } if unreachable(source) => Outcome::Unreachable,
        _ => Outcome::Failed,
    }
}

/// The request never got an answer from an API server: it could not be dialled, or the
/// connection broke (kube reports both as a transport error).
fn unreachable(e: &kube::Error) -> bool {
    matches!(e, kube::Error::HyperError(_) | kube::Error::Service(_))
}

/// One row of the result: a cluster, what it routed before and after, and why when not `ok`.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterResult {
    pub context: String,
    pub server: String,
    pub namespace: String,
    pub task: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    pub result: Outcome,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

impl ClusterResult {
    pub fn new(t: &Target, task: &str, result: Outcome, reason: impl Into<String>) -> Self {
        ClusterResult {
            context: t.context.clone(),
            server: t.server.clone(),
            namespace: t.namespace.clone(),
            task: task.to_string(),
            before: None,
            after: None,
            result,
            reason: reason.into(),
        }
    }
}

/// 0 only when every cluster is as asked; otherwise the exit code of a take-over that did not
/// finish everywhere (the rows say where it did).
pub fn exit_code(results: &[ClusterResult]) -> i32 {
    if results.iter().all(|r| r.result.done()) { 0 } else { exit::CLUSTERS_LEFT }
}

/// The contexts still to do, in the order they were run.
pub fn left(results: &[ClusterResult]) -> Vec<String> {
    results.iter().filter(|r| !r.result.done()).map(|r| r.context.clone()).collect()
}

/// The command as typed, less `--context`: re-run with the contexts left, it finishes the job.
/// The take-over is idempotent, so a cluster already done stays unchanged.
#[derive(Clone, Debug, Default)]
pub struct Invocation {
    pub task: String,
    /// `None`: `--restore`.
    pub version: Option<String>,
    /// Flags to repeat as they were (`--kubeconfig F`, `-n NS`, `--force`, `--timeout 20s`...).
    pub flags: Vec<String>,
}

pub fn retry_command(inv: &Invocation, contexts: &[String]) -> String {
    let mut words = vec!["kubectl".to_string(), "grayscale".into(), "takeover".into(), quote(&inv.task)];
    match &inv.version {
        Some(v) => words.extend(["--version".into(), quote(v)]),
        None => words.push("--restore".into()),
    }
    words.extend(["--context".into(), quote(&contexts.join(","))]);
    words.extend(inv.flags.iter().map(|f| quote(f)));
    words.join(" ")
}

/// Quotes a word for a POSIX shell when it needs it, so the printed command can be pasted.
pub fn quote(s: &str) -> String {
    let plain = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:,=@+%".contains(c));
    if plain { s.to_string() } else { format!("'{}'", s.replace('\'', r"'\''")) }
}

/// The error a take-over that did not finish everywhere ends with: the counts, and the command
/// that retries just the clusters left.
pub fn unfinished(results: &[ClusterResult], inv: &Invocation, dry_run: bool) -> Option<Error> {
    let left = left(results);
    if left.is_empty() {
        return None;
    }
    let done = results.len() - left.len();
    let written = results.iter().filter(|r| r.result == Outcome::Ok).count();
    let retry = retry_command(inv, &left);
    let message = if dry_run {
        format!(
            "the take-over of {} could not be planned on {} of {} clusters ({}); nothing was written",
            inv.task,
            left.len(),
            results.len(),
            left.join(", ")
        )
    } else {
        format!(
            "the take-over of {} is done on {done} of {} clusters ({written} changed); left: {}. Retry just those with:\n  {retry}",
            inv.task,
            results.len(),
            left.join(", ")
        )
    };
    Some(Error::Clusters {
        message,
        hint: format!(
            "see each cluster's RESULT and REASON above; once fixed, run: {retry} (the clusters already done stay unchanged)"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(name: &str, server: &str, ns: Option<&str>) -> KnownContext {
        KnownContext { name: name.into(), server: Some(server.into()), namespace: ns.map(Into::into) }
    }

    fn kubeconfig() -> Vec<KnownContext> {
        vec![
            ctx("eu-1", "https://eu1:6443", Some("shop")),
            ctx("us-1", "https://us1:6443", None),
            ctx("us-1-admin", "https://us1:6443/", None),
            ctx("canary", "https://canary:6443", Some("shop")),
        ]
    }

    fn targets(r: &Resolved) -> Vec<(&str, &str)> {
        r.targets.iter().map(|t| (t.context.as_str(), t.namespace.as_str())).collect()
    }

    #[test]
    fn a_name_without_comma_or_slashes_is_one_context_as_before() {
        assert_eq!(parse("prod").unwrap(), Selection::One("prod".into()));
        assert!(!parse("arn:aws:eks:eu-west-1:1:cluster/prod").unwrap().is_fleet());
        assert_eq!(parse("a, b").unwrap(), Selection::List(vec!["a".into(), "b".into()]));
        assert_eq!(parse("/^us-/").unwrap(), Selection::Pattern("^us-".into()));
        assert!(parse("a,,b").is_err());
        assert!(parse("//").is_err());
    }

    #[test]
    fn each_context_keeps_its_namespace_unless_n_names_one_for_all() {
        let sel = parse("eu-1,us-1").unwrap();
        assert_eq!(
            targets(&resolve(&sel, &kubeconfig(), None).unwrap()),
            [("eu-1", "shop"), ("us-1", "default")]
        );
        assert_eq!(
            targets(&resolve(&sel, &kubeconfig(), Some("ops")).unwrap()),
            [("eu-1", "ops"), ("us-1", "ops")]
        );
    }

    #[test]
    fn an_unknown_name_is_refused_naming_the_contexts_there_are() {
        let e = resolve(&parse("eu-1,eu-2").unwrap(), &kubeconfig(), None).unwrap_err();
        assert_eq!(e.exit_code(), exit::USAGE);
        assert!(e.to_string().contains("no context eu-2 in the kubeconfig (it has: eu-1, us-1"), "{e}");
    }

    #[test]
    fn a_pattern_selects_in_kubeconfig_order_and_one_matching_nothing_is_refused() {
        let r = resolve(&parse("/^(canary|eu-)/").unwrap(), &kubeconfig(), None).unwrap();
        assert_eq!(targets(&r), [("eu-1", "shop"), ("canary", "shop")]);
        let e = resolve(&parse("/^ap-/").unwrap(), &kubeconfig(), None).unwrap_err();
        assert_eq!(e.exit_code(), exit::USAGE);
        assert!(e.to_string().contains("/^ap-/ matches no context"), "{e}");
        assert!(resolve(&parse("/(/").unwrap(), &kubeconfig(), None).is_err());
    }

    #[test]
    fn two_contexts_for_one_server_and_namespace_are_merged_with_a_warning() {
        let r = resolve(&parse("/^us-1/").unwrap(), &kubeconfig(), None).unwrap();
        assert_eq!(targets(&r), [("us-1", "default")]);
        assert_eq!(r.warnings.len(), 1);
        assert!(
            r.warnings[0].contains("contexts us-1 and us-1-admin reach the same API server"),
            "{:?}",
            r.warnings
        );
        // Another namespace on the same server is another task: both stay.
        let r = resolve(&parse("us-1,us-1-admin").unwrap(), &kubeconfig(), None).unwrap();
        assert_eq!(r.targets.len(), 1);
        let mut k = kubeconfig();
        k[2].namespace = Some("shop".into());
        assert_eq!(resolve(&parse("us-1,us-1-admin").unwrap(), &k, None).unwrap().targets.len(), 2);
        // The same name twice is not worth a warning.
        let r = resolve(&parse("eu-1,eu-1").unwrap(), &kubeconfig(), None).unwrap();
        assert_eq!((r.targets.len(), r.warnings.len()), (1, 0));
    }

    #[test]
    fn a_context_without_a_server_is_refused() {
        let k = vec![KnownContext { name: "x".into(), server: None, namespace: None }];
        assert!(resolve(&parse("x,x").unwrap(), &k, None).is_err());
    }

    fn row(context: &str, result: Outcome) -> ClusterResult {
        let t = Target { context: context.into(), server: "https://s".into(), namespace: "shop".into() };
        ClusterResult::new(&t, "reviews", result, "")
    }

    #[test]
    fn exit_zero_only_when_every_cluster_is_as_asked() {
        assert_eq!(exit_code(&[row("a", Outcome::Ok), row("b", Outcome::Unchanged)]), 0);
        assert_eq!(exit_code(&[row("a", Outcome::Planned)]), 0);
        for bad in
            [Outcome::Refused, Outcome::Failed, Outcome::Unreachable, Outcome::Timeout, Outcome::Skipped]
        {
            assert_eq!(exit_code(&[row("a", Outcome::Ok), row("b", bad)]), exit::CLUSTERS_LEFT, "{bad:?}");
        }
    }

    #[test]
    fn the_retry_command_names_just_the_clusters_left_with_the_same_flags() {
        let inv = Invocation {
            task: "reviews".into(),
            version: Some("v1".into()),
            flags: vec!["--kubeconfig".into(), "/tmp/my kube".into(), "--timeout".into(), "20s".into()],
        };
        let rows = [row("eu-1", Outcome::Ok), row("us-1", Outcome::Timeout), row("canary", Outcome::Skipped)];
        assert_eq!(left(&rows), ["us-1", "canary"]);
        assert_eq!(
            retry_command(&inv, &left(&rows)),
            "kubectl grayscale takeover reviews --version v1 --context us-1,canary --kubeconfig '/tmp/my kube' --timeout 20s"
        );
        let e = unfinished(&rows, &inv, false).unwrap();
        assert_eq!(e.exit_code(), exit::CLUSTERS_LEFT);
        assert!(e.to_string().contains("done on 1 of 3 clusters (1 changed); left: us-1, canary"), "{e}");
        assert!(e.to_string().contains("--context us-1,canary"), "{e}");
        assert!(unfinished(&rows[..1], &inv, false).is_none());
        let restore = Invocation { version: None, ..inv };
        assert!(
            retry_command(&restore, &["a".into()])
                .starts_with("kubectl grayscale takeover reviews --restore --context a")
        );
    }

    #[test]
    fn words_are_quoted_only_when_a_shell_needs_it() {
        assert_eq!(quote("arn:aws:eks:eu-west-1:1:cluster/prod"), "arn:aws:eks:eu-west-1:1:cluster/prod");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn errors_classify_into_the_cluster_results() {
        let notlive = Error::NotLive { message: "no ready pod".into(), hint: String::new() };
        assert_eq!(classify(&notlive), Outcome::Refused);
        assert_eq!(classify(&Error::missing("Strategy", "shop", "rc", "")), Outcome::Refused);
        assert_eq!(
            classify(&Error::Deadline { message: String::new(), hint: String::new() }),
            Outcome::Timeout
        );
        assert_eq!(classify(&Error::Config("bad".into())), Outcome::Failed);
        let json = serde_json::to_value(row("a", Outcome::Unreachable)).unwrap();
        assert_eq!(json["result"], "unreachable");
        assert_eq!(json["context"], "a");
    }
}

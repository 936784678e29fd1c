//! Whether the cluster's Strategy CRD keeps what a task writes. A structural schema prunes every
//! field it does not declare (unless the object preserves unknown fields), silently: KubeSphere
//! 3.4's regenerated CRD declares `match[].uri` and the header values as bare objects, so
//! `exact`, `prefix` and `regex` are dropped and a cookie, OS or URI canary is stored as "any
//! URI" / "header present" (kubesphere/kubesphere#3845, fixed for 3.1 by PR #3848, back in 3.4).
//! It also spells Istio's mirror percentage `mirror_percentage`, and prunes `mirrorPercentage`.
//!
//! Pure: the CRD (already read) and the routes to write in, what would be lost out.

use serde_json::Value;

use crate::error::Error;
use crate::model::istio::{HttpMatch, HttpRoute, StringMatch};
use crate::model::strategy::CRD_NAME;

/// The version of the Strategy API the plugin reads and writes.
const VERSION: &str = "v1alpha2";

/// The schema of the served Strategy version: `None` where it keeps everything (no CRD read,
/// no schema, or `preserveUnknownFields`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StrategySchema(Option<Value>);

/// How the Strategy spells Istio's mirror percentage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MirrorKey {
    /// `mirrorPercentage`, as Istio's API reference (and KubeSphere 3.2/3.3's CRD) spell it.
    Camel,
    /// `mirror_percentage`, the only spelling KubeSphere 3.4's CRD keeps (its controller reads
    /// both, through Istio's jsonpb unmarshaler).
    Snake,
}

impl MirrorKey {
    pub fn as_str(self) -> &'static str {
        match self {
            MirrorKey::Camel => "mirrorPercentage",
            MirrorKey::Snake => "mirror_percentage",
        }
    }
}

impl StrategySchema {
    /// A schema that keeps everything: what the plugin assumes where it has not read the CRD.
    pub fn keeps_all() -> Self {
        StrategySchema(None)
    }

    /// The schema of the `v1alpha2` version of a CustomResourceDefinition (as JSON).
    pub fn of_crd(crd: &Value) -> Self {
        let spec = &crd["spec"];
        if spec["preserveUnknownFields"] == Value::Bool(true) {
            return Self::keeps_all();
        }
        let served = spec["versions"].as_array().and_then(|vs| vs.iter().find(|v| v["name"] == VERSION));
        let schema = served
            .map(|v| &v["schema"]["openAPIV3Schema"])
            .filter(|s| s.is_object())
            .or_else(|| Some(&spec["validation"]["openAPIV3Schema"]).filter(|s| s.is_object()));
        StrategySchema(schema.cloned())
    }

    /// Whether a value at `path` (object keys, `[]` for array items) survives pruning.
    fn keeps(&self, path: &[&str]) -> bool {
        self.0.as_ref().is_none_or(|root| keeps(root, path))
    }

    /// The request conditions in `http` that this schema would drop, as
    /// `match[].uri.prefix` or `match[].headers.cookie.exact`, each once.
    pub fn pruned_matches(&self, http: &[HttpRoute]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in http.iter().flat_map(|h| &h.matches) {
            for (key, what) in conditions(m) {
                let mut path = vec!["spec", "template", "spec", "http", "[]", "match", "[]"];
                path.extend(key.iter().map(String::as_str));
                path.push(what);
                if !self.keeps(&path) {
                    let name = format!("match[].{}.{what}", key.join("."));
                    if !out.contains(&name) {
                        out.push(name);
                    }
                }
            }
        }
        out
    }

    /// The spelling of the mirror percentage this schema keeps (Istio's own first), or None
    /// where it keeps neither.
    pub fn mirror_key(&self) -> Option<MirrorKey> {
        [MirrorKey::Camel, MirrorKey::Snake]
            .into_iter()
            .find(|k| self.keeps(&["spec", "template", "spec", "http", "[]", k.as_str(), "value"]))
    }

    /// Everything in `http` this schema would drop: request conditions and a mirror
    /// percentage it keeps under no spelling.
    pub fn pruned(&self, http: &[HttpRoute]) -> Vec<String> {
        let mut out = self.pruned_matches(http);
        if http.iter().any(|h| h.mirror_percentage.is_some()) && self.mirror_key().is_none() {
            out.push("mirrorPercentage".into());
        }
        out
    }
}

fn preserves(node: &Value) -> bool {
    node["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true)
}

/// Structural pruning: a declared property is followed, a map's values follow
/// `additionalProperties`, anything else is kept only where the object preserves unknown
/// fields (and then nothing under it is pruned).
fn keeps(node: &Value, path: &[&str]) -> bool {
    let Some((head, rest)) = path.split_first() else { return true };
    if *head == "[]" {
        return match node.get("items") {
            Some(items) if items.is_object() => keeps(items, rest),
            _ => true,
        };
    }
    if let Some(p) = node.get("properties").and_then(|p| p.get(*head)) {
        return keeps(p, rest);
    }
    match node.get("additionalProperties") {
        Some(Value::Bool(b)) => *b,
        Some(a @ Value::Object(_)) => keeps(a, rest),
        _ => preserves(node),
    }
}

/// The conditions of one match block: (path under the match, `exact`/`prefix`/`regex`).
fn conditions(m: &HttpMatch) -> Vec<(Vec<String>, &'static str)> {
    let mut out = Vec::new();
    if let Some(u) = &m.uri {
        out.extend(kinds(u).into_iter().map(|k| (vec!["uri".to_string()], k)));
    }
    for (name, v) in &m.headers {
        out.extend(kinds(v).into_iter().map(|k| (vec!["headers".to_string(), name.clone()], k)));
    }
    out
}

fn kinds(s: &StringMatch) -> Vec<&'static str> {
    [("exact", &s.exact), ("prefix", &s.prefix), ("regex", &s.regex)]
        .into_iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k)
        .collect()
}

/// What of `http` the schema must be asked about: request conditions that differ from those
/// already stored in `before` (stored ones survived the schema), or any mirror percentage (its
/// spelling depends on the schema).
pub fn needs_schema(before: &[HttpRoute], after: &[HttpRoute]) -> bool {
    let conds = |http: &[HttpRoute]| -> Vec<HttpMatch> {
        http.iter()
            .flat_map(|h| &h.matches)
            .filter(|m| m.uri.is_some() || !m.headers.is_empty())
            .map(|m| HttpMatch { uri: m.uri.clone(), headers: m.headers.clone(), ..HttpMatch::default() })
            .collect()
    };
    let with = conds(after);
    (!with.is_empty() && with != conds(before)) || after.iter().any(|h| h.mirror_percentage.is_some())
}

/// Respells the mirror percentage of the `http` routes in a Strategy body or merge patch
/// (`spec.template.spec.http`) as `key`.
pub fn spell_mirror_percentage(body: &mut Value, key: MirrorKey) {
    let Some(http) = body.pointer_mut("/spec/template/spec/http").and_then(Value::as_array_mut) else {
        return;
    };
    let (from, to) = match key {
        MirrorKey::Camel => (MirrorKey::Snake.as_str(), MirrorKey::Camel.as_str()),
        MirrorKey::Snake => (MirrorKey::Camel.as_str(), MirrorKey::Snake.as_str()),
    };
    for route in http.iter_mut().filter_map(Value::as_object_mut) {
        if let Some(v) = route.remove(from) {
            route.insert(to.to_string(), v);
        }
    }
}

/// The refusal of a task whose routes the cluster's Strategy CRD would cut: nothing written.
pub fn refusal(task: &str, pruned: &[String]) -> Error {
    let lost = pruned.join(", ");
    let is_match = pruned.iter().any(|p| p.starts_with("match[]"));
    let what = if is_match {
        format!(
            "task {task}: the cluster's Strategy CRD ({CRD_NAME}, {VERSION}) would drop {lost}: the API server prunes \
             fields its schema does not declare, so the task would be stored as \"any URI\" / \"header present\" \
             and send nearly all traffic to the new version. This is kubesphere/kubesphere#3845 (fixed for 3.1 by \
             PR #3848), back in KubeSphere 3.4's regenerated CRD; nothing was written"
        )
    } else {
        format!(
            "task {task}: the cluster's Strategy CRD ({CRD_NAME}, {VERSION}) would drop {lost}: Istio would mirror \
             100%; nothing was written"
        )
    };
    let hint = if is_match {
        "fix the CRD as PR #3848 did: declare exact, prefix and regex (type: string) under match[].uri and under \
         the values of match[].headers (kubectl grayscale init --dry-run prints a CRD that does), then run the \
         command again; or route by ratio instead (kubectl grayscale match TASK --ratio W)"
    } else {
        "declare mirrorPercentage (or mirror_percentage) in the Strategy CRD's http routes, or mirror without --percent"
    };
    Error::Ineligible { what, hint: hint.into() }
}

#[cfg(test)]
#[path = "strategy_schema_tests.rs"]
mod tests;

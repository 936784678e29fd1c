//! Gateway API HTTPRoutes whose parent is a Service (GAMMA), as Istio's sidecars apply them,
//! and the `status.parents` Istio writes for them (pure).
//!
//! Istio converts each rule into one internal VirtualService route per match and sorts them
//! (conversion.go `sortHTTPRoutes`): the routing then runs on the shared `traffic::Routing`.

use std::cmp::Ordering;

use serde_json::{Value, json};

use crate::traffic::{Condition, Route, Routing, StringMatch, Target};

/// Istio's controller name, for Service parents too.
pub const CONTROLLER: &str = "istio.io/gateway-controller";

/// What a backendRef's Service is in the cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum Backend {
    Missing,
    /// A per-version Service: the `version` of its selector.
    Version(String),
    /// The parent itself, or a Service that selects no one version.
    AnyPod,
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn namespace_of(route: &Value) -> &str {
    route.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default()
}

/// The route's parentRefs that are a Service of its own namespace. Upstream's CRD defaults an
/// absent group to the Gateway API's, so only an explicit `group: ""` names the core group.
fn service_parents(route: &Value) -> impl Iterator<Item = &Value> {
    let ns = namespace_of(route);
    route.pointer("/spec/parentRefs").and_then(Value::as_array).into_iter().flatten().filter(move |p| {
        str_at(p, "group") == Some("")
            && str_at(p, "kind") == Some("Service")
            && str_at(p, "namespace").is_none_or(|n| n == ns)
    })
}

/// Whether `route` routes requests to port `port` of Service `svc` (in the route's namespace):
/// a parentRef `port` restricts it to that port.
pub fn applies_to(route: &Value, svc: &str, port: Option<i64>) -> bool {
    service_parents(route).any(|p| {
        str_at(p, "name") == Some(svc)
            && p.get("port").and_then(Value::as_i64).is_none_or(|want| Some(want) == port)
    })
}

/// Whether a parentRef of `route` that applies names a port (Istio then adds a port match to
/// every route, so a rule without matches is no longer sorted last).
fn port_bound(route: &Value, svc: &str) -> bool {
    service_parents(route).any(|p| str_at(p, "name") == Some(svc) && p.get("port").is_some())
}

/// A reference's group and kind as the CRD defaults them, and whether that is a Service.
fn names_a_service(r: &Value) -> bool {
    str_at(r, "group").is_none_or(str::is_empty) && str_at(r, "kind").unwrap_or("Service") == "Service"
}

/// Where a backendRef sends a request: a missing or non-Service backend keeps its share, which
/// the mesh answers with 500.
fn target_of(r: &Value, route_ns: &str, resolve: &impl Fn(&str, &str) -> Backend) -> Target {
    let name = str_at(r, "name").unwrap_or_default();
    if !names_a_service(r) {
        return Target::MeshError(name.to_string());
    }
    match resolve(str_at(r, "namespace").unwrap_or(route_ns), name) {
        Backend::Missing => Target::MeshError(name.to_string()),
        Backend::Version(v) => Target::Version(v),
        Backend::AnyPod => Target::AnyPod,
    }
}

/// A RequestMirror's share in percent: `fraction` wins over `percent`; neither is 100%.
pub fn mirror_percent(m: &Value) -> f64 {
    if let Some(f) = m.get("fraction") {
        let num = f.get("numerator").and_then(Value::as_f64).unwrap_or(0.0);
        let den = f.get("denominator").and_then(Value::as_f64).unwrap_or(100.0);
        return if den > 0.0 { 100.0 * num / den } else { 0.0 };
    }
    m.get("percent").and_then(Value::as_f64).unwrap_or(100.0)
}

fn filters_of<'a>(rule: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> {
    rule.get("filters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |f| str_at(f, "type") == Some(kind))
}

/// Istio's sort key of one split route; None: the route has no match and goes last.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rank {
    /// Exact 3, PathPrefix 2, RegularExpression 1, no path -1.
    path_kind: i8,
    path_len: usize,
    method: bool,
    headers: usize,
    query: usize,
}

fn by_precedence(a: &Option<Rank>, b: &Option<Rank>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => b
            .path_kind
            .cmp(&a.path_kind)
            .then(b.path_len.cmp(&a.path_len))
            .then(b.method.cmp(&a.method))
            .then(b.headers.cmp(&a.headers))
            .then(b.query.cmp(&a.query)),
    }
}

/// Header or query parameter matches, keyed by the name as written (a later duplicate replaces
/// an earlier one, as in Istio's map). None: a regular expression that does not compile.
fn value_matches(list: Option<&Value>) -> Option<Vec<(String, StringMatch)>> {
    let mut out: Vec<(String, StringMatch)> = Vec::new();
    for h in list.and_then(Value::as_array).into_iter().flatten() {
        let name = str_at(h, "name").unwrap_or_default().to_string();
        let value = str_at(h, "value").unwrap_or_default();
        let m = match str_at(h, "type").unwrap_or("Exact") {
            "RegularExpression" => StringMatch::regex(value)?,
            _ => StringMatch::Exact(value.to_string()),
        };
        out.retain(|(n, _)| *n != name);
        out.push((name, m));
    }
    Some(out)
}

/// One match block's conditions and rank; None: it can never hold.
fn match_block(m: &Value) -> Option<(Vec<Condition>, Rank)> {
    let mut conds = Vec::new();
    let mut rank = Rank { path_kind: -1, path_len: 0, method: false, headers: 0, query: 0 };
    if let Some(p) = m.get("path") {
        let value = str_at(p, "value").unwrap_or("/");
        let (kind, sm) = match str_at(p, "type").unwrap_or("PathPrefix") {
            "Exact" => (3, StringMatch::Exact(value.to_string())),
            "RegularExpression" => (1, StringMatch::regex(value)?),
            _ => {
                let trimmed = if value.len() > 1 { value.trim_end_matches('/') } else { value };
                (2, StringMatch::SegmentPrefix(trimmed.to_string()))
            }
        };
        rank.path_kind = kind;
        rank.path_len = match &sm {
            StringMatch::Exact(s) | StringMatch::SegmentPrefix(s) | StringMatch::Prefix(s) => s.len(),
            StringMatch::Regex(_) => value.len(),
        };
        conds.push(Condition::Uri(sm));
    }
    let headers = value_matches(m.get("headers"))?;
    rank.headers = headers.len();
    conds.extend(headers.into_iter().map(|(n, sm)| Condition::Header(n, sm)));
    let query = value_matches(m.get("queryParams"))?;
    rank.query = query.len();
    conds.extend(query.into_iter().map(|(n, sm)| Condition::Query(n, sm)));
    if let Some(method) = str_at(m, "method") {
        rank.method = true;
        conds.push(Condition::Method(method.to_string()));
    }
    Some((conds, rank))
}

/// Where a rule sends a request (target, weight) and where it mirrors it (target, percent).
type Destinations = (Vec<(Target, i64)>, Vec<(Target, f64)>);

/// Where one rule sends a request and where it mirrors it.
fn rule_destinations(
    rule: &Value,
    route_ns: &str,
    parent: &str,
    resolve: &impl Fn(&str, &str) -> Backend,
) -> Destinations {
    let mut destinations: Vec<(Target, i64)> = rule
        .get("backendRefs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|b| (b, b.get("weight").and_then(Value::as_i64).unwrap_or(1)))
        .filter(|(_, w)| *w > 0)
        .map(|(b, w)| (target_of(b, route_ns, resolve), w))
        .collect();
    if destinations.is_empty() {
        // A redirect answers without a backend, and nobody reports it; otherwise Istio turns
        // the route into a direct 500.
        let answer = if filters_of(rule, "RequestRedirect").next().is_some() {
            Target::Dropped
        } else {
            Target::MeshError(parent.to_string())
        };
        destinations.push((answer, 1));
    }
    // Istio skips a mirror it cannot resolve (and says so in ResolvedRefs).
    let mirrors = filters_of(rule, "RequestMirror")
        .filter_map(|f| f.get("requestMirror"))
        .filter_map(|m| {
            let to = target_of(m.get("backendRef")?, route_ns, resolve);
            let pct = mirror_percent(m);
            (!matches!(to, Target::MeshError(_)) && pct > 0.0).then_some((to, pct))
        })
        .collect();
    (destinations, mirrors)
}

fn created(route: &Value) -> (&str, &str, &str) {
    (
        route.pointer("/metadata/creationTimestamp").and_then(Value::as_str).unwrap_or_default(),
        namespace_of(route),
        route.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default(),
    )
}

/// The routing of requests to port `port` of Service `parent`, from every HTTPRoute that
/// applies to it (see `applies_to`). `resolve(namespace, name)` says what a backend Service is.
pub fn routing(
    routes: &[&Value],
    parent: &str,
    port: Option<i64>,
    resolve: impl Fn(&str, &str) -> Backend,
) -> Routing {
    let mut applying: Vec<&Value> = routes.iter().copied().filter(|r| applies_to(r, parent, port)).collect();
    // Routes sharing a host are merged oldest first, then by namespace/name.
    applying.sort_by(|a, b| created(a).cmp(&created(b)));
    let mut split: Vec<(Option<Rank>, Route)> = Vec::new();
    for route in applying {
        let ns = namespace_of(route);
        let bound = port_bound(route, parent);
        for rule in route.pointer("/spec/rules").and_then(Value::as_array).into_iter().flatten() {
            let (destinations, mirrors) = rule_destinations(rule, ns, parent, &resolve);
            let matches = rule.get("matches").and_then(Value::as_array).filter(|m| !m.is_empty());
            let Some(matches) = matches else {
                // With a port on the parentRef, the route gets a match on that port alone.
                let rank =
                    bound.then_some(Rank { path_kind: -1, path_len: 0, method: false, headers: 0, query: 0 });
                split.push((rank, Route { matches: Vec::new(), destinations, mirrors }));
                continue;
            };
            for m in matches {
                let Some((conds, rank)) = match_block(m) else { continue };
                let route = Route {
                    matches: vec![conds],
                    destinations: destinations.clone(),
                    mirrors: mirrors.clone(),
                };
                split.push((Some(rank), route));
            }
        }
    }
    // Stable: ties keep rule order.
    split.sort_by(|a, b| by_precedence(&a.0, &b.0));
    Routing { routes: split.into_iter().map(|(_, r)| r).collect() }
}

/// A condition as Istio writes it.
fn condition(kind: &str, ok: bool, reason: &str, message: &str) -> Value {
    json!({"type": kind, "status": if ok { "True" } else { "False" }, "reason": reason, "message": message})
}

/// The first reference of `route` that does not resolve, as ResolvedRefs says it: (reason,
/// message). Per rule its mirrors first, then its backends.
fn unresolved(route: &Value, service_exists: &impl Fn(&str, &str) -> bool) -> Option<(&'static str, String)> {
    let ns = namespace_of(route);
    let check = |r: &Value| {
        let name = str_at(r, "name").unwrap_or_default();
        if !names_a_service(r) {
            let (g, k) = (str_at(r, "group").unwrap_or(""), str_at(r, "kind").unwrap_or("Service"));
            return Some((
                "InvalidKind",
                format!("referencing unsupported backendRef: group {g:?} kind {k:?}"),
            ));
        }
        let bns = str_at(r, "namespace").unwrap_or(ns);
        (!service_exists(bns, name))
            .then(|| ("BackendNotFound", format!("backend({name}.{bns}.svc.cluster.local) not found")))
    };
    route.pointer("/spec/rules").and_then(Value::as_array).into_iter().flatten().find_map(|rule| {
        filters_of(rule, "RequestMirror")
            .filter_map(|f| f.pointer("/requestMirror/backendRef"))
            .chain(rule.get("backendRefs").and_then(Value::as_array).into_iter().flatten())
            .find_map(check)
    })
}

/// The route's `status.parents` once this mesh has written its entries, one per Service
/// parentRef; None when that is what the route already has (so that nothing is written).
/// Entries of other controllers are kept as they are. A condition keeps its
/// `lastTransitionTime` while its status does not change; otherwise it takes `now`.
pub fn parents_status(
    route: &Value,
    service_exists: impl Fn(&str, &str) -> bool,
    now: &str,
) -> Option<Value> {
    let ns = namespace_of(route);
    let current: Vec<Value> =
        route.pointer("/status/parents").and_then(Value::as_array).cloned().unwrap_or_default();
    let ours = |e: &Value| str_at(e, "controllerName") == Some(CONTROLLER);
    let generation = route.pointer("/metadata/generation").and_then(Value::as_i64);
    let resolved = match unresolved(route, &service_exists) {
        None => condition("ResolvedRefs", true, "ResolvedRefs", "All references resolved"),
        Some((reason, message)) => condition("ResolvedRefs", false, reason, &message),
    };
    let mut out: Vec<Value> = current.iter().filter(|e| !ours(e)).cloned().collect();
    let mut seen: Vec<&Value> = Vec::new();
    for parent in service_parents(route) {
        if seen.contains(&parent) {
            continue;
        }
        seen.push(parent);
        let name = str_at(parent, "name").unwrap_or_default();
        let accepted = if service_exists(ns, name) {
            condition("Accepted", true, "Accepted", "Route was valid")
        } else {
            condition("Accepted", false, "NoMatchingParent", &format!("parent service: {name:?} not found"))
        };
        let before = current
            .iter()
            .find(|e| ours(e) && e.get("parentRef") == Some(parent))
            .and_then(|e| e.get("conditions"));
        let conditions: Vec<Value> = [accepted, resolved.clone()]
            .into_iter()
            .map(|mut c| {
                let old =
                    before.and_then(Value::as_array).into_iter().flatten().find(|o| o["type"] == c["type"]);
                let since = match old {
                    Some(o) if o["status"] == c["status"] => o["lastTransitionTime"].clone(),
                    _ => now.into(),
                };
                c["lastTransitionTime"] = since;
                if let Some(g) = generation {
                    c["observedGeneration"] = g.into();
                }
                c
            })
            .collect();
        out.push(json!({"parentRef": parent, "controllerName": CONTROLLER, "conditions": conditions}));
    }
    (out != current).then_some(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::traffic::tests::shares_of;

    /// `demo` has Services reviews (the parent), reviews-v1 and reviews-v2.
    fn resolve(ns: &str, name: &str) -> Backend {
        match (ns, name) {
            ("demo", "reviews") => Backend::AnyPod,
            ("demo", "reviews-v1") => Backend::Version("v1".into()),
            ("demo", "reviews-v2") => Backend::Version("v2".into()),
            _ => Backend::Missing,
        }
    }

    fn exists(ns: &str, name: &str) -> bool {
        resolve(ns, name) != Backend::Missing
    }

    fn route(rules: Value) -> Value {
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "reviews", "namespace": "demo", "generation": 3,
                         "creationTimestamp": "2026-12-04T08:00:00Z"},
            "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "reviews", "port": 9080}], "rules": rules}
        })
    }

    fn to(name: &str, weight: Option<i64>) -> Value {
        let mut b = json!({"group": "", "kind": "Service", "name": name, "port": 9080});
        if let Some(w) = weight {
            b["weight"] = w.into();
        }
        b
    }

    fn rule(matches: Value, backend: &str) -> Value {
        json!({"matches": matches, "backendRefs": [to(backend, None)]})
    }

    /// Request shares over `n` requests to port 9080 of reviews.
    fn shares(r: &Value, n: u64) -> BTreeMap<String, u64> {
        shares_of(&routing(&[r], "reviews", Some(9080), resolve), n)
    }

    fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    /// The object the plugin writes, as the plane's CRD stores it (the weighted rule gets the
    /// default match).
    fn the_plugins_route() -> Value {
        route(json!([
            {"name": "grayscale-match-0",
             "matches": [{"headers": [{"type": "RegularExpression", "name": "Cookie", "value": "^(.*?;)?(beta=yes)(;.*)?$"}],
                          "path": {"type": "PathPrefix", "value": "/"}}],
             "backendRefs": [to("reviews-v2", Some(100))]},
            {"name": "grayscale-weights",
             "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
             "backendRefs": [to("reviews-v1", Some(80)), to("reviews-v2", Some(20))],
             "filters": [{"type": "RequestMirror", "requestMirror": {"backendRef": to("reviews-v2", None), "percent": 20}}]}
        ]))
    }

    #[test]
    fn the_plugins_route_sends_the_cookie_share_to_v2_and_weighs_the_rest() {
        // 2 in 10 profiles carry the cookie; the other 800 are weighed 80/20, mirrored at 20%.
        assert_eq!(
            shares(&the_plugins_route(), 1000),
            counts(&[("v1", 640), ("v2", 200 + 160), ("mirror-v2", 160)])
        );
    }

    #[test]
    fn a_header_rule_beats_a_plain_rule_on_the_same_path_whatever_their_order() {
        let plain = rule(json!([{"path": {"type": "PathPrefix", "value": "/"}}]), "reviews-v1");
        let canary = rule(
            json!([{"path": {"type": "PathPrefix", "value": "/"}, "headers": [{"name": "x-canary", "value": "true"}]}]),
            "reviews-v2",
        );
        assert_eq!(shares(&route(json!([plain, canary])), 100), counts(&[("v1", 80), ("v2", 20)]));
    }

    #[test]
    fn routes_sort_exact_before_prefix_before_regex_longer_paths_first_and_no_match_last() {
        // Every rule below matches `/api/items`; the sort decides which one takes it.
        let regex = rule(json!([{"path": {"type": "RegularExpression", "value": "/api/.*"}}]), "reviews-v1");
        let short = rule(json!([{"path": {"type": "PathPrefix", "value": "/api"}}]), "reviews-v1");
        let long = rule(json!([{"path": {"type": "PathPrefix", "value": "/api/items"}}]), "reviews-v2");
        let exact = rule(json!([{"path": {"type": "Exact", "value": "/api/items"}}]), "reviews-v2");
        let catch_all = json!({"backendRefs": [to("reviews-v1", None)]});
        let with_longer_prefix = route(json!([catch_all.clone(), regex.clone(), short.clone(), long]));
        // /api/items: 3 in 10; /api/orders goes to the short prefix.
        assert_eq!(shares(&with_longer_prefix, 10), counts(&[("v1", 7), ("v2", 3)]));
        let exact_first = route(json!([catch_all.clone(), regex.clone(), short, exact]));
        assert_eq!(shares(&exact_first, 10), counts(&[("v1", 7), ("v2", 3)]));
        // Prefix beats regex; the regex keeps /api/orders from the rule without matches.
        let prefix_over_regex = route(json!([
            rule(json!([{"path": {"type": "RegularExpression", "value": "/api/.*"}}]), "reviews-v2"),
            rule(json!([{"path": {"type": "PathPrefix", "value": "/api/items"}}]), "reviews-v1"),
            catch_all
        ]));
        assert_eq!(shares(&prefix_over_regex, 10), counts(&[("v1", 3 + 6), ("v2", 1)]));
    }

    #[test]
    fn ties_keep_rule_order_and_a_rule_splits_into_one_route_per_match() {
        let first = rule(json!([{"headers": [{"name": "x-canary", "value": "true"}]}]), "reviews-v2");
        let second = rule(json!([{"headers": [{"name": "x-canary", "value": "true"}]}]), "reviews-v1");
        assert_eq!(shares(&route(json!([first.clone(), second.clone()])), 10), counts(&[("v2", 2)]));
        assert_eq!(shares(&route(json!([second, first])), 10), counts(&[("v1", 2)]));
        // Each match of a rule is ranked on its own: /beta sorts before the later rule's `/`,
        // the path-less header match after it: /beta takes 2 in 10, jason none.
        let split = route(json!([
            rule(
                json!([{"headers": [{"name": "end-user", "value": "jason"}]}, {"path": {"type": "PathPrefix", "value": "/beta"}}]),
                "reviews-v2"
            ),
            rule(json!([{"path": {"type": "PathPrefix", "value": "/"}}]), "reviews-v1"),
        ]));
        assert_eq!(shares(&split, 10), counts(&[("v1", 8), ("v2", 2)]));
    }

    #[test]
    fn header_matches_read_the_cookie_and_user_agent_the_client_sends() {
        let on = |h: Value| {
            shares(
                &route(
                    json!([rule(json!([{"headers": [h]}]), "reviews-v2"), {"backendRefs": [to("reviews-v1", None)]}]),
                ),
                100,
            )
        };
        let cookie =
            json!({"type": "RegularExpression", "name": "Cookie", "value": "^(.*?;)?(beta=yes)(;.*)?$"});
        assert_eq!(on(cookie)["v2"], 20);
        let android = json!({"type": "RegularExpression", "name": "User-Agent", "value": ".*Android.*"});
        assert_eq!(on(android)["v2"], 30);
        // Exact is the default type; a regular expression must match the whole value.
        assert_eq!(on(json!({"name": "X-Canary", "value": "true"}))["v2"], 20);
        assert_eq!(
            on(json!({"type": "RegularExpression", "name": "user-agent", "value": "Android"})).get("v2"),
            None
        );
        // A later match on the same name replaces the earlier one.
        let dup = json!([{"headers": [{"name": "end-user", "value": "nobody"}, {"name": "end-user", "value": "jason"}]}]);
        assert_eq!(shares(&route(json!([rule(dup, "reviews-v2")])), 10), counts(&[("v2", 1)]));
    }

    #[test]
    fn path_prefixes_match_whole_segments() {
        let on = |ty: &str, value: &str| {
            shares(&route(json!([rule(json!([{"path": {"type": ty, "value": value}}]), "reviews-v2")])), 10)
                .get("v2")
                .copied()
                .unwrap_or(0)
        };
        assert_eq!(on("PathPrefix", "/beta"), 2);
        assert_eq!(on("PathPrefix", "/beta/"), 2);
        assert_eq!(on("PathPrefix", "/bet"), 0);
        assert_eq!(on("PathPrefix", "/"), 10);
        assert_eq!(on("Exact", "/"), 3);
        assert_eq!(on("Exact", "/beta"), 0);
        assert_eq!(on("RegularExpression", "/api/.*"), 4);
        assert_eq!(on("RegularExpression", "/api"), 0);
        // The client sends no query string and only GETs.
        let q = json!([{"queryParams": [{"name": "beta", "value": "1"}]}]);
        assert_eq!(shares(&route(json!([rule(q, "reviews-v2")])), 10), counts(&[]));
        let post = json!([{"method": "POST"}]);
        assert_eq!(shares(&route(json!([rule(post, "reviews-v2")])), 10), counts(&[]));
        let get = json!([{"method": "GET"}]);
        assert_eq!(shares(&route(json!([rule(get, "reviews-v2")])), 10), counts(&[("v2", 10)]));
    }

    #[test]
    fn weights_default_to_one_and_zero_drops_a_backend() {
        let weighted = |refs: Value| shares(&route(json!([{"backendRefs": refs}])), 1000);
        assert_eq!(
            weighted(json!([to("reviews-v1", None), to("reviews-v2", None)])),
            counts(&[("v1", 500), ("v2", 500)])
        );
        assert_eq!(
            weighted(json!([to("reviews-v1", Some(0)), to("reviews-v2", None)])),
            counts(&[("v2", 1000)])
        );
        assert_eq!(
            weighted(json!([to("reviews-v1", Some(3)), to("reviews-v2", Some(1))])),
            counts(&[("v1", 750), ("v2", 250)])
        );
        // The parent itself balances over its pods.
        assert_eq!(weighted(json!([to("reviews", None)])), counts(&[("any", 1000)]));
    }

    #[test]
    fn all_weights_zero_or_no_backend_is_a_500_from_the_mesh() {
        let zero = route(json!([{"backendRefs": [to("reviews-v1", Some(0)), to("reviews-v2", Some(0))]}]));
        assert_eq!(shares(&zero, 10), counts(&[("500-reviews", 10)]));
        assert_eq!(
            shares(&route(json!([{"matches": [{"path": {"value": "/"}}]}])), 10),
            counts(&[("500-reviews", 10)])
        );
        let redirect = route(
            json!([{"filters": [{"type": "RequestRedirect", "requestRedirect": {"statusCode": 301}}]}]),
        );
        assert_eq!(shares(&redirect, 10), counts(&[("none", 10)]));
    }

    #[test]
    fn a_missing_backend_keeps_its_share_and_answers_500() {
        let r = route(json!([{"backendRefs": [to("reviews-v1", Some(50)), to("reviews-v3", Some(50))]}]));
        assert_eq!(shares(&r, 1000), counts(&[("v1", 500), ("500-reviews-v3", 500)]));
        // Not a Service: the same.
        let other = json!({"group": "example.com", "kind": "Thing", "name": "x"});
        assert_eq!(shares(&route(json!([{"backendRefs": [other]}])), 10), counts(&[("500-x", 10)]));
    }

    fn mirrored(mirror: Value) -> BTreeMap<String, u64> {
        let m = json!({"type": "RequestMirror", "requestMirror": mirror});
        shares(&route(json!([{"backendRefs": [to("reviews-v1", None)], "filters": [m]}])), 1000)
    }

    #[test]
    fn mirrors_copy_their_percent_or_fraction() {
        let v2 = to("reviews-v2", None);
        assert_eq!(mirrored(json!({"backendRef": v2, "percent": 20}))["mirror-v2"], 200);
        // fraction wins over percent; its denominator defaults to 100.
        assert_eq!(
            mirrored(
                json!({"backendRef": v2, "percent": 50, "fraction": {"numerator": 1, "denominator": 4}})
            )["mirror-v2"],
            250
        );
        assert_eq!(mirrored(json!({"backendRef": v2, "fraction": {"numerator": 3}}))["mirror-v2"], 30);
        assert_eq!(mirrored(json!({"backendRef": v2}))["mirror-v2"], 1000);
        assert_eq!(mirrored(json!({"backendRef": v2, "percent": 0})).get("mirror-v2"), None);
        // A mirror to a missing Service is skipped; the request itself still goes.
        assert_eq!(mirrored(json!({"backendRef": to("reviews-v3", None)})), counts(&[("v1", 1000)]));
        // Every mirror filter mirrors.
        let two = route(json!([{"backendRefs": [to("reviews-v1", None)], "filters": [
            {"type": "RequestMirror", "requestMirror": {"backendRef": v2, "percent": 10}},
            {"type": "RequestMirror", "requestMirror": {"backendRef": to("reviews", None), "percent": 30}}]}]));
        assert_eq!(shares(&two, 100), counts(&[("v1", 100), ("mirror-v2", 10), ("mirror-any", 30)]));
    }

    #[test]
    fn a_parent_port_restricts_the_route_to_that_port() {
        let r = the_plugins_route();
        assert!(applies_to(&r, "reviews", Some(9080)));
        assert!(!applies_to(&r, "reviews", Some(9090)));
        assert!(!applies_to(&r, "ratings", Some(9080)));
        assert!(shares_of(&routing(&[&r], "reviews", Some(9090), resolve), 10).is_empty());
        let mut any_port = r.clone();
        any_port["spec"]["parentRefs"][0].as_object_mut().unwrap().remove("port");
        assert!(applies_to(&any_port, "reviews", Some(9090)));
        // Only an explicit core group and kind Service name a Service; a Gateway does not.
        for p in [
            json!({"kind": "Service", "name": "reviews"}),
            json!({"group": "", "name": "reviews"}),
            json!({"group": "", "kind": "Service", "name": "reviews", "namespace": "other"}),
        ] {
            let mut r = r.clone();
            r["spec"]["parentRefs"] = json!([p]);
            assert!(!applies_to(&r, "reviews", Some(9080)), "{p}");
        }
    }

    #[test]
    fn routes_on_one_service_merge_oldest_first() {
        let mut old =
            route(json!([rule(json!([{"headers": [{"name": "x-canary", "value": "true"}]}]), "reviews-v1")]));
        let mut new =
            route(json!([rule(json!([{"headers": [{"name": "x-canary", "value": "true"}]}]), "reviews-v2")]));
        old["metadata"]["creationTimestamp"] = "2026-12-04T07:00:00Z".into();
        new["metadata"]["name"] = "a-newer-one".into();
        let merged = shares_of(&routing(&[&new, &old], "reviews", Some(9080), resolve), 10);
        assert_eq!(merged, counts(&[("v1", 2)]));
    }

    const NOW: &str = "2026-12-04T09:00:00Z";

    fn conditions(parents: &Value, i: usize) -> Vec<(String, String, String, String)> {
        parents[i]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let s = |k: &str| c[k].as_str().unwrap().to_string();
                (s("type"), s("status"), s("reason"), s("message"))
            })
            .collect()
    }

    fn c(t: &str, s: &str, r: &str, m: &str) -> (String, String, String, String) {
        (t.into(), s.into(), r.into(), m.into())
    }

    #[test]
    fn status_accepts_a_route_whose_references_all_resolve() {
        let r = the_plugins_route();
        let parents = parents_status(&r, exists, NOW).unwrap();
        assert_eq!(parents.as_array().unwrap().len(), 1);
        assert_eq!(parents[0]["controllerName"], "istio.io/gateway-controller");
        assert_eq!(parents[0]["parentRef"], r["spec"]["parentRefs"][0]);
        assert_eq!(
            conditions(&parents, 0),
            [
                c("Accepted", "True", "Accepted", "Route was valid"),
                c("ResolvedRefs", "True", "ResolvedRefs", "All references resolved")
            ]
        );
        for cond in parents[0]["conditions"].as_array().unwrap() {
            assert_eq!(cond["observedGeneration"], 3);
            assert_eq!(cond["lastTransitionTime"], NOW);
        }
        // Written once: the same status again is nothing to write.
        let mut written = r.clone();
        written["status"] = json!({"parents": parents});
        assert_eq!(parents_status(&written, exists, "2026-12-04T10:00:00Z"), None);
    }

    #[test]
    fn status_names_a_missing_backend_or_mirror_and_a_missing_parent() {
        let mut r = the_plugins_route();
        r["spec"]["rules"][1]["backendRefs"][1]["name"] = "reviews-v3".into();
        let parents = parents_status(&r, exists, NOW).unwrap();
        assert_eq!(
            conditions(&parents, 0),
            [
                c("Accepted", "True", "Accepted", "Route was valid"),
                c(
                    "ResolvedRefs",
                    "False",
                    "BackendNotFound",
                    "backend(reviews-v3.demo.svc.cluster.local) not found"
                )
            ]
        );
        let mut r = the_plugins_route();
        r["spec"]["rules"][1]["filters"][0]["requestMirror"]["backendRef"]["name"] = "reviews-v9".into();
        let parents = parents_status(&r, exists, NOW).unwrap();
        assert_eq!(conditions(&parents, 0)[1].3, "backend(reviews-v9.demo.svc.cluster.local) not found");
        let mut r = the_plugins_route();
        r["spec"]["parentRefs"][0]["name"] = "gone".into();
        let parents = parents_status(&r, exists, NOW).unwrap();
        assert_eq!(
            conditions(&parents, 0)[0],
            c("Accepted", "False", "NoMatchingParent", "parent service: \"gone\" not found")
        );
    }

    #[test]
    fn status_keeps_other_controllers_and_transition_times_of_unchanged_conditions() {
        let mut r = the_plugins_route();
        let theirs =
            json!({"controllerName": "example.com/other", "parentRef": {"name": "gw"}, "conditions": []});
        r["status"] = json!({"parents": [theirs]});
        let first = parents_status(&r, exists, NOW).unwrap();
        assert_eq!(first[0], theirs);
        assert_eq!(first[1]["controllerName"], CONTROLLER);
        // A backend goes missing at 10:00: only ResolvedRefs changes its transition time, and
        // every condition tells the new generation.
        r["status"]["parents"] = first;
        r["metadata"]["generation"] = 4.into();
        r["spec"]["rules"][1]["backendRefs"][0]["name"] = "reviews-v0".into();
        let second = parents_status(&r, exists, "2026-12-04T10:00:00Z").unwrap();
        assert_eq!(second[0], theirs);
        let conds = &second[1]["conditions"];
        assert_eq!(conds[0]["lastTransitionTime"], NOW);
        assert_eq!(conds[1]["lastTransitionTime"], "2026-12-04T10:00:00Z");
        assert_eq!(conds[0]["observedGeneration"], 4);
        // A parentRef that is gone takes its entry with it; a Gateway parent gets none.
        r["status"]["parents"] = second;
        r["spec"]["parentRefs"] =
            json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"}]);
        assert_eq!(parents_status(&r, exists, NOW).unwrap(), json!([theirs]));
    }
}

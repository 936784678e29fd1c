//! The synthetic traffic and how Istio would route it (pure).
//!
//! Every service receives the same cycle of ten request profiles, so a route that matches some of
//! them receives an exact, known share of the traffic (see `PROFILES`).

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

/// One synthetic request: its URI and headers (names lower-case, as Envoy sees them).
pub struct Profile {
    pub uri: &'static str,
    pub headers: &'static [(&'static str, &'static str)],
}

const ANDROID: &str = "Mozilla/5.0 (Linux; Android 13; Pixel 7) Mobile";
const IOS: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile";
const WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64)";
const LINUX: &str = "Mozilla/5.0 (X11; Linux x86_64)";

/// The cycle: 2 in 10 carry `x-canary: true`, 1 in 10 `end-user: jason`, 2 in 10 a cookie
/// `beta=yes`, 2 in 10 a URI under `/beta/`, 3 Android and 2 iOS user agents.
pub const PROFILES: [Profile; 10] = [
    Profile { uri: "/", headers: &[("user-agent", LINUX)] },
    Profile { uri: "/api/items", headers: &[("user-agent", ANDROID), ("x-canary", "true")] },
    Profile { uri: "/beta/items", headers: &[("user-agent", WINDOWS)] },
    Profile { uri: "/api/items", headers: &[("user-agent", IOS), ("cookie", "beta=yes; session=1")] },
    Profile { uri: "/", headers: &[("user-agent", ANDROID), ("end-user", "jason")] },
    Profile { uri: "/api/orders", headers: &[("user-agent", LINUX), ("x-canary", "true")] },
    Profile { uri: "/beta/orders", headers: &[("user-agent", IOS)] },
    Profile { uri: "/", headers: &[("user-agent", ANDROID), ("cookie", "beta=yes")] },
    Profile { uri: "/api/items", headers: &[("user-agent", WINDOWS)] },
    Profile { uri: "/static/app.js", headers: &[("user-agent", LINUX)] },
];

/// Where a routed request is sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// The pods of one version (a subset, or the version behind a per-version Service).
    Version(String),
    /// Any pod of the Service, as its endpoints are balanced without routing.
    AnyPod,
    /// The mesh answers 500 itself, for this Service's host: a backend Service that does not
    /// exist, or a route whose backends all weigh 0.
    MeshError(String),
    /// Nowhere anyone reports: a subset that is not known, or no route at all.
    Dropped,
}

/// Where one request goes and where it is mirrored.
#[derive(Debug, PartialEq)]
pub struct Delivery {
    pub target: Target,
    pub mirrors: Vec<Target>,
}

/// HTTP routes in the order the sidecar tries them: VirtualService routes, or an HTTPRoute's
/// rules once Istio has converted and sorted them (see `httproute`).
pub struct Routing {
    pub(crate) routes: Vec<Route>,
}

pub(crate) struct Route {
    /// Any block may hold; all conditions of a block must. No block: every request.
    pub(crate) matches: Vec<Vec<Condition>>,
    /// (target, weight).
    pub(crate) destinations: Vec<(Target, i64)>,
    /// (target, percent) per mirror.
    pub(crate) mirrors: Vec<(Target, f64)>,
}

pub(crate) enum Condition {
    Uri(StringMatch),
    Header(String, StringMatch),
    Query(String, StringMatch),
    Method(String),
}

pub(crate) enum StringMatch {
    Exact(String),
    Prefix(String),
    /// Envoy's `path_separated_prefix`: the prefix is the whole path or ends at a `/`.
    SegmentPrefix(String),
    Regex(Regex),
}

impl StringMatch {
    fn parse(v: &Value) -> Option<StringMatch> {
        if let Some(s) = v.get("exact").and_then(Value::as_str) {
            Some(StringMatch::Exact(s.into()))
        } else if let Some(s) = v.get("prefix").and_then(Value::as_str) {
            Some(StringMatch::Prefix(s.into()))
        } else {
            StringMatch::regex(v.get("regex").and_then(Value::as_str)?)
        }
    }

    /// Envoy's regex match is on the whole value.
    pub(crate) fn regex(re: &str) -> Option<StringMatch> {
        Regex::new(&format!("^(?:{re})$")).ok().map(StringMatch::Regex)
    }

    fn matches(&self, s: &str) -> bool {
        match self {
            StringMatch::Exact(e) => s == e,
            StringMatch::Prefix(p) => s.starts_with(p.as_str()),
            StringMatch::SegmentPrefix(p) => {
                p == "/"
                    || s.strip_prefix(p.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            }
            StringMatch::Regex(r) => r.is_match(s),
        }
    }
}

/// The synthetic client sends GETs only.
const METHOD: &str = "GET";

impl Condition {
    fn holds(&self, p: &Profile) -> bool {
        let (path, query) = p.uri.split_once('?').unwrap_or((p.uri, ""));
        match self {
            Condition::Uri(m) => m.matches(path),
            Condition::Header(name, m) => p
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .is_some_and(|(_, v)| m.matches(v)),
            Condition::Query(name, m) => query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| k == name)
                .is_some_and(|(_, v)| m.matches(v)),
            Condition::Method(method) => method == METHOD,
        }
    }
}

fn version_of(dest: &Value, subsets: &BTreeMap<String, String>) -> Target {
    match dest.get("subset").and_then(Value::as_str).and_then(|s| subsets.get(s)) {
        Some(v) => Target::Version(v.clone()),
        None => Target::Dropped,
    }
}

impl Routing {
    /// `vs` and `subsets` (subset name → `version` label) as found in the cluster.
    pub fn new(vs: &Value, subsets: &BTreeMap<String, String>) -> Routing {
        let http = vs.pointer("/spec/http").and_then(Value::as_array).cloned().unwrap_or_default();
        let routes = http
            .iter()
            .map(|r| {
                let matches = r
                    .get("match")
                    .and_then(Value::as_array)
                    .map(|ms| ms.iter().map(conditions).collect())
                    .unwrap_or_default();
                let list = r.get("route").and_then(Value::as_array).cloned().unwrap_or_default();
                let single = list.len() == 1;
                let destinations = list
                    .iter()
                    .map(|d| {
                        let w =
                            d.get("weight").and_then(Value::as_i64).unwrap_or(if single { 100 } else { 0 });
                        (d.get("destination").map_or(Target::Dropped, |d| version_of(d, subsets)), w)
                    })
                    .collect();
                let mirrors = r
                    .get("mirror")
                    .map(|m| {
                        let pct = r
                            .pointer("/mirrorPercentage/value")
                            .and_then(Value::as_f64)
                            .or_else(|| r.get("mirrorPercent").and_then(Value::as_f64))
                            .unwrap_or(100.0);
                        (version_of(m, subsets), pct)
                    })
                    .into_iter()
                    .collect();
                Route { matches, destinations, mirrors }
            })
            .collect();
        Routing { routes }
    }

    /// Routes request number `n` (its profile is `n % 10`); `n` also spreads the weights, so
    /// that every 100 requests that reach a route follow its weights exactly. None: no route
    /// matched.
    pub fn deliver(&self, n: u64, seen_by_route: &mut BTreeMap<usize, u64>) -> Option<Delivery> {
        let p = &PROFILES[(n % PROFILES.len() as u64) as usize];
        let (i, route) =
            self.routes.iter().enumerate().find(|(_, r)| {
                r.matches.is_empty() || r.matches.iter().any(|m| m.iter().all(|c| c.holds(p)))
            })?;
        let k = seen_by_route.entry(i).or_default();
        *k += 1;
        // 37 is prime to 100: consecutive requests land far apart in the weight ranges.
        let slot = ((*k * 37) % 100) as i64;
        let total: i64 = route.destinations.iter().map(|d| d.1).sum();
        // Cumulative, so that weights not summing to 100 (1:1:1) still cover every slot.
        let mut acc = 0;
        let target = route
            .destinations
            .iter()
            .find_map(|(t, w)| {
                acc += w;
                (slot < acc * 100 / total.max(1)).then(|| t.clone())
            })
            .unwrap_or(Target::Dropped);
        let mirrors = route
            .mirrors
            .iter()
            .filter(|(t, pct)| (slot as f64) < *pct && *t != Target::Dropped)
            .map(|(t, _)| t.clone())
            .collect();
        Some(Delivery { target, mirrors })
    }
}

fn conditions(m: &Value) -> Vec<Condition> {
    let mut out = Vec::new();
    if let Some(u) = m.get("uri").and_then(StringMatch::parse) {
        out.push(Condition::Uri(u));
    }
    if let Some(hs) = m.get("headers").and_then(Value::as_object) {
        for (name, v) in hs {
            if let Some(sm) = StringMatch::parse(v) {
                out.push(Condition::Header(name.to_ascii_lowercase(), sm));
            }
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    fn subsets() -> BTreeMap<String, String> {
        [("v1".to_string(), "v1".to_string()), ("v2".to_string(), "v2".to_string())].into()
    }

    /// A target as the share tables below name it.
    pub(crate) fn name(t: &Target) -> String {
        match t {
            Target::Version(v) => v.clone(),
            Target::AnyPod => "any".into(),
            Target::MeshError(host) => format!("500-{host}"),
            Target::Dropped => "none".into(),
        }
    }

    /// How many of `n` requests each target (and each mirror) gets.
    pub(crate) fn shares_of(r: &Routing, n: u64) -> BTreeMap<String, u64> {
        let mut seen = BTreeMap::new();
        let mut out = BTreeMap::new();
        for i in 0..n {
            if let Some(d) = r.deliver(i, &mut seen) {
                *out.entry(name(&d.target)).or_default() += 1;
                for m in d.mirrors {
                    *out.entry(format!("mirror-{}", name(&m))).or_default() += 1;
                }
            }
        }
        out
    }

    fn shares(vs: Value, n: u64) -> BTreeMap<String, u64> {
        shares_of(&Routing::new(&vs, &subsets()), n)
    }

    fn dest(subset: &str, weight: i64) -> Value {
        json!({"destination": {"host": "reviews", "subset": subset}, "weight": weight})
    }

    #[test]
    fn weights_are_followed_exactly_over_every_hundred_requests() {
        let vs = json!({"spec": {"http": [{"route": [dest("v1", 70), dest("v2", 30)]}]}});
        assert_eq!(shares(vs, 1000), [("v1".into(), 700), ("v2".into(), 300)].into());
    }

    #[test]
    fn a_header_match_takes_exactly_its_share_of_the_profiles() {
        let vs = json!({"spec": {"http": [
            {"match": [{"headers": {"x-canary": {"exact": "true"}}}], "route": [dest("v2", 100)]},
            {"route": [dest("v1", 100)]}
        ]}});
        assert_eq!(shares(vs, 1000), [("v1".into(), 800), ("v2".into(), 200)].into());
    }

    #[test]
    fn uri_cookie_and_user_agent_matches_as_kubesphere_writes_them() {
        let uri = json!({"spec": {"http": [
            {"match": [{"uri": {"prefix": "/beta/"}}], "route": [dest("v2", 100)]},
            {"route": [dest("v1", 100)]}]}});
        assert_eq!(shares(uri, 100)["v2"], 20);
        let cookie = json!({"spec": {"http": [
            {"match": [{"headers": {"cookie": {"regex": "^(.*?;)?(beta=yes)(;.*)?$"}}}], "route": [dest("v2", 100)]},
            {"route": [dest("v1", 100)]}]}});
        assert_eq!(shares(cookie, 100)["v2"], 20);
        let android = json!({"spec": {"http": [
            {"match": [{"headers": {"User-Agent": {"regex": ".*Android.*"}}}], "route": [dest("v2", 100)]},
            {"route": [dest("v1", 100)]}]}});
        assert_eq!(shares(android, 100)["v2"], 30);
        // All conditions of one match block must hold; any block may.
        let both = json!({"spec": {"http": [
            {"match": [{"headers": {"x-canary": {"exact": "true"}}, "uri": {"prefix": "/api/"}},
                       {"headers": {"end-user": {"exact": "jason"}}}], "route": [dest("v2", 100)]},
            {"route": [dest("v1", 100)]}]}});
        assert_eq!(shares(both, 100)["v2"], 30);
    }

    #[test]
    fn a_mirror_copies_its_percentage_and_unknown_subsets_go_nowhere() {
        let vs = json!({"spec": {"http": [{"route": [dest("v1", 100)],
            "mirror": {"host": "reviews", "subset": "v2"}, "mirrorPercentage": {"value": 40.0}}]}});
        assert_eq!(shares(vs, 100), [("v1".into(), 100), ("mirror-v2".into(), 40)].into());
        let unknown = json!({"spec": {"http": [{"route": [dest("v9", 100)]}]}});
        assert_eq!(shares(unknown, 10), [("none".into(), 10)].into());
        let unmatched = json!({"spec": {"http": [
            {"match": [{"headers": {"x-none": {"exact": "1"}}}], "route": [dest("v2", 100)]}]}});
        assert!(shares(unmatched, 10).is_empty());
    }
}

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

/// Where one request goes: the subset's version and, when mirrored, the mirror's.
#[derive(Debug, PartialEq)]
pub struct Delivery {
    pub version: Option<String>,
    pub mirror: Option<String>,
}

/// A VirtualService's HTTP routes with the DestinationRule's subsets resolved to versions.
pub struct Routing {
    routes: Vec<Route>,
}

struct Route {
    matches: Vec<Vec<Condition>>,
    /// (version, weight); versions that are not a known subset are dropped, as Envoy would 503.
    destinations: Vec<(Option<String>, i64)>,
    mirror: Option<(Option<String>, f64)>,
}

enum Condition {
    Uri(StringMatch),
    Header(String, StringMatch),
}

enum StringMatch {
    Exact(String),
    Prefix(String),
    Regex(Regex),
}

impl StringMatch {
    fn parse(v: &Value) -> Option<StringMatch> {
        if let Some(s) = v.get("exact").and_then(Value::as_str) {
            Some(StringMatch::Exact(s.into()))
        } else if let Some(s) = v.get("prefix").and_then(Value::as_str) {
            Some(StringMatch::Prefix(s.into()))
        } else {
            // Envoy's regex match is on the whole value.
            let re = v.get("regex").and_then(Value::as_str)?;
            Regex::new(&format!("^(?:{re})$")).ok().map(StringMatch::Regex)
        }
    }

    fn matches(&self, s: &str) -> bool {
        match self {
            StringMatch::Exact(e) => s == e,
            StringMatch::Prefix(p) => s.starts_with(p.as_str()),
            StringMatch::Regex(r) => r.is_match(s),
        }
    }
}

impl Condition {
    fn holds(&self, p: &Profile) -> bool {
        match self {
            Condition::Uri(m) => m.matches(p.uri),
            Condition::Header(name, m) => p
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .is_some_and(|(_, v)| m.matches(v)),
        }
    }
}

fn version_of(dest: &Value, subsets: &BTreeMap<String, String>) -> Option<String> {
    dest.get("subset").and_then(Value::as_str).and_then(|s| subsets.get(s).cloned())
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
                        (d.get("destination").and_then(|d| version_of(d, subsets)), w)
                    })
                    .collect();
                let mirror = r.get("mirror").map(|m| {
                    let pct = r
                        .pointer("/mirrorPercentage/value")
                        .and_then(Value::as_f64)
                        .or_else(|| r.get("mirrorPercent").and_then(Value::as_f64))
                        .unwrap_or(100.0);
                    (version_of(m, subsets), pct)
                });
                Route { matches, destinations, mirror }
            })
            .collect();
        Routing { routes }
    }

    /// Routes request number `n` (its profile is `n % 10`); `n` also spreads the weights, so
    /// that every 100 requests that reach a route follow its weights exactly.
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
        let mut acc = 0;
        let version = route.destinations.iter().find_map(|(v, w)| {
            acc += w * 100 / total.max(1);
            (slot < acc).then(|| v.clone())
        });
        let mirror =
            route.mirror.as_ref().and_then(|(v, pct)| ((slot as f64) < *pct).then(|| v.clone()).flatten());
        Some(Delivery { version: version.flatten(), mirror })
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
mod tests {
    use super::*;
    use serde_json::json;

    fn subsets() -> BTreeMap<String, String> {
        [("v1".to_string(), "v1".to_string()), ("v2".to_string(), "v2".to_string())].into()
    }

    fn shares(vs: Value, n: u64) -> BTreeMap<String, u64> {
        let r = Routing::new(&vs, &subsets());
        let mut seen = BTreeMap::new();
        let mut out = BTreeMap::new();
        for i in 0..n {
            if let Some(d) = r.deliver(i, &mut seen) {
                *out.entry(d.version.unwrap_or("none".into())).or_default() += 1;
                if let Some(m) = d.mirror {
                    *out.entry(format!("mirror-{m}")).or_default() += 1;
                }
            }
        }
        out
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

//! Canary routing by request parameters (kubesphere-compat section 3): all conditions go into
//! one Istio match block and are ANDed.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::istio::{HttpMatch, StringMatch};

/// Client operating systems the console can route on, with the User-Agent fragments it uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum ClientOs {
    Windows,
    Linux,
    Macos,
    Android,
    Ios,
}

impl ClientOs {
    pub const ALL: [ClientOs; 5] =
        [ClientOs::Windows, ClientOs::Linux, ClientOs::Macos, ClientOs::Android, ClientOs::Ios];

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "windows" => Some(ClientOs::Windows),
            "linux" => Some(ClientOs::Linux),
            "macos" | "mac" | "osx" => Some(ClientOs::Macos),
            "android" => Some(ClientOs::Android),
            "ios" => Some(ClientOs::Ios),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ClientOs::Windows => "windows",
            ClientOs::Linux => "linux",
            ClientOs::Macos => "macos",
            ClientOs::Android => "android",
            ClientOs::Ios => "ios",
        }
    }

    fn fragment(self) -> &'static str {
        match self {
            ClientOs::Windows => r"(Windows NT ([\d.])+)",
            ClientOs::Linux => r"(Linux )",
            ClientOs::Macos => r"( Mac OS X ([\d.])+)",
            ClientOs::Android => r"(Android)",
            ClientOs::Ios => r"(OS [\d.]+)",
        }
    }
}

pub const USER_AGENT: &str = "User-Agent";
pub const COOKIE: &str = "cookie";

/// The request conditions of a canary: requests matching all of them go to the new version.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MatchRule {
    pub headers: Vec<(String, StringMatch)>,
    pub cookie: Option<StringMatch>,
    pub uri: Option<StringMatch>,
    pub os: Vec<ClientOs>,
}

impl MatchRule {
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.cookie.is_none() && self.uri.is_none() && self.os.is_empty()
    }

    /// The single match block the console writes.
    pub fn to_http_match(&self) -> HttpMatch {
        let mut headers = BTreeMap::new();
        for (k, v) in &self.headers {
            headers.insert(k.clone(), v.clone());
        }
        if let Some(c) = &self.cookie {
            headers.insert(COOKIE.to_string(), c.clone());
        }
        if !self.os.is_empty() {
            headers.insert(USER_AGENT.to_string(), StringMatch::regex(os_regex(&self.os)));
        }
        HttpMatch { uri: self.uri.clone(), headers, ..HttpMatch::default() }
    }

    /// Reads a match block back, as written by the console (either OS regex form) or by us.
    pub fn from_http_match(m: &HttpMatch) -> Self {
        let mut rule = MatchRule { uri: m.uri.clone(), ..MatchRule::default() };
        for (k, v) in &m.headers {
            if k.eq_ignore_ascii_case(COOKIE) {
                rule.cookie = Some(v.clone());
            } else if k.eq_ignore_ascii_case(USER_AGENT)
                && v.regex.as_deref().is_some_and(|r| !os_from_regex(r).is_empty())
            {
                rule.os = os_from_regex(v.regex.as_deref().unwrap_or_default());
            } else {
                rule.headers.push((k.clone(), v.clone()));
            }
        }
        rule
    }
}

pub fn os_regex(os: &[ClientOs]) -> String {
    let alts: Vec<&str> = os.iter().map(|o| o.fragment()).collect();
    format!(".*({}).*", alts.join("|"))
}

/// Both forms the console has written: `.*(A|B).*` and the older `.*A|B.*`.
pub fn os_from_regex(regex: &str) -> Vec<ClientOs> {
    ClientOs::ALL.into_iter().filter(|o| regex.contains(o.fragment())).collect()
}

/// A short human description of one string match, for tables and messages.
pub fn describe(m: &StringMatch) -> String {
    if let Some(v) = &m.exact {
        format!("={v}")
    } else if let Some(v) = &m.prefix {
        format!("^={v}")
    } else if let Some(v) = &m.regex {
        format!("~={v}")
    } else {
        "(any)".into()
    }
}

impl std::fmt::Display for MatchRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        for (k, v) in &self.headers {
            parts.push(format!("header {k}{}", describe(v)));
        }
        if let Some(c) = &self.cookie {
            parts.push(format!("cookie{}", describe(c)));
        }
        if let Some(u) = &self.uri {
            parts.push(format!("uri{}", describe(u)));
        }
        if !self.os.is_empty() {
            parts.push(format!("os={}", self.os.iter().map(|o| o.as_str()).collect::<Vec<_>>().join(",")));
        }
        write!(f, "{}", parts.join(" and "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_routing_writes_the_consoles_grouped_user_agent_regex() {
        assert_eq!(os_regex(&[ClientOs::Windows, ClientOs::Linux]), r".*((Windows NT ([\d.])+)|(Linux )).*");
    }

    #[test]
    fn both_os_regex_forms_read_back() {
        let new = os_regex(&[ClientOs::Android, ClientOs::Ios]);
        let old = r".*(Android)|(OS [\d.]+).*";
        assert_eq!(os_from_regex(&new), [ClientOs::Android, ClientOs::Ios]);
        assert_eq!(os_from_regex(old), [ClientOs::Android, ClientOs::Ios]);
    }

    #[test]
    fn a_rule_round_trips_through_the_match_block() {
        let rule = MatchRule {
            headers: vec![("x-canary".into(), StringMatch::exact("yes"))],
            cookie: Some(StringMatch::regex("^(.*?;)?(user=jason)(;.*)?$")),
            uri: Some(StringMatch::prefix("/api")),
            os: vec![ClientOs::Macos],
        };
        let m = rule.to_http_match();
        assert_eq!(m.headers["cookie"], StringMatch::regex("^(.*?;)?(user=jason)(;.*)?$"));
        assert_eq!(MatchRule::from_http_match(&m), rule);
    }
}

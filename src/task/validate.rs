//! Field rules from the console (seed document) and from the Kubernetes API, checked before
//! anything is written. Each check appends problems; callers report them all at once.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::file::{Action, ContainerEdit, EnvVar, HttpGet, PortSetting, Probe, SecurityContext};
use crate::error::Problem;

pub type Problems = Vec<Problem>;

fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Task name: lowercase letters, digits and `-`, starting and ending alphanumeric, <= 253.
pub fn task_name(p: &mut Problems, field: &str, name: &str) {
    if name.is_empty() {
        p.push(Problem::new(field, "is required"));
    } else if name.len() > 253 {
        p.push(Problem::new(field, format!("is {} characters long; at most 253 are allowed", name.len())));
    } else if !is_dns_label(name) {
        p.push(Problem::new(
            field,
            format!("{name:?} may contain only lowercase letters, digits and '-', and must start and end with a letter or digit"),
        ));
    }
}

/// New version: lowercase letters and digits, at most 16.
pub fn version(p: &mut Problems, field: &str, v: &str) {
    if v.is_empty() {
        p.push(Problem::new(field, "is required"));
    } else if v.len() > 16 {
        p.push(Problem::new(field, format!("{v:?} is {} characters long; at most 16 are allowed", v.len())));
    } else if !v.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        p.push(Problem::new(field, format!("{v:?} may contain only lowercase letters and digits")));
    }
}

/// A Kubernetes object name (DNS subdomain), for Services, Secrets and ConfigMaps.
pub fn object_name(p: &mut Problems, field: &str, name: &str) {
    let ok = !name.is_empty() && name.len() <= 253 && name.split('.').all(is_dns_label);
    if !ok {
        p.push(Problem::new(
            field,
            format!("{name:?} is not a valid object name (lowercase letters, digits, '-' and '.')"),
        ));
    }
}

pub fn container_name(p: &mut Problems, field: &str, name: &str) {
    if name.len() > 63 || !is_dns_label(name) {
        p.push(Problem::new(
            field,
            format!("{name:?} must be at most 63 lowercase letters, digits or '-', starting and ending with a letter or digit"),
        ));
    }
}

/// Istio picks the protocol of a port from its name prefix.
pub const ISTIO_PROTOCOL_PREFIXES: [&str; 11] =
    ["http", "http2", "https", "grpc", "grpc-web", "tcp", "tls", "udp", "mongo", "mysql", "redis"];

pub fn has_istio_prefix(port_name: &str) -> bool {
    let lower = port_name.to_ascii_lowercase();
    ISTIO_PROTOCOL_PREFIXES.iter().any(|p| lower == *p || lower.starts_with(&format!("{p}-")))
}

/// Checks one container edit; returns warnings that are not errors (Istio port names).
pub fn container(p: &mut Problems, field: &str, c: &ContainerEdit) -> Vec<String> {
    let mut warnings = Vec::new();
    container_name(p, &format!("{field}.name"), &c.name);
    if c.remove {
        let other = c.image.is_some() || c.resources.is_some() || c.ports.is_some() || c.env.is_some();
        if other {
            p.push(Problem::new(format!("{field}.remove"), "a removed container takes no other settings"));
        }
        return warnings;
    }
    if let Some(t) = &c.container_type
        && t != "work"
        && t != "init"
    {
        p.push(Problem::new(format!("{field}.type"), format!("{t:?} must be work or init")));
    }
    if let Some(img) = &c.image
        && let Some(why) = super::image::problem(img)
    {
        p.push(Problem::new(format!("{field}.image"), format!("{img:?} is not an image reference: {why}")));
    }
    if let Some(pol) = &c.image_pull_policy
        && !["IfNotPresent", "Always", "Never"].contains(&pol.as_str())
    {
        p.push(Problem::new(
            format!("{field}.imagePullPolicy"),
            format!("{pol:?} must be IfNotPresent, Always or Never"),
        ));
    }
    if let Some(r) = &c.resources {
        let f = format!("{field}.resources");
        for (name, v) in [
            ("cpuRequest", r.cpu_request),
            ("cpuLimit", r.cpu_limit),
            ("memoryRequest", r.memory_request),
            ("memoryLimit", r.memory_limit),
        ] {
            if let Some(v) = v
                && !(v.is_finite() && v > 0.0)
            {
                p.push(Problem::new(format!("{f}.{name}"), format!("{v} must be a positive number")));
            }
        }
        if let (Some(req), Some(lim)) = (r.cpu_request, r.cpu_limit)
            && lim < req
        {
            p.push(Problem::new(
                format!("{f}.cpuLimit"),
                format!("{lim} cores is below the request of {req} cores"),
            ));
        }
        if let (Some(req), Some(lim)) = (r.memory_request, r.memory_limit)
            && lim < req
        {
            p.push(Problem::new(
                format!("{f}.memoryLimit"),
                format!("{lim} MiB is below the request of {req} MiB"),
            ));
        }
    }
    if let Some(ports) = &c.ports {
        let mut names = Vec::new();
        for (i, port) in ports.iter().enumerate() {
            self::port(p, &mut warnings, &format!("{field}.ports[{i}]"), port);
            if let Some(n) = &port.name {
                if names.contains(n) {
                    p.push(Problem::new(format!("{field}.ports[{i}].name"), format!("{n:?} is used twice")));
                }
                names.push(n.clone());
            }
        }
    }
    for (name, probe, is_readiness) in [
        ("livenessProbe", &c.liveness_probe, false),
        ("readinessProbe", &c.readiness_probe, true),
        ("startupProbe", &c.startup_probe, false),
    ] {
        if let Some(pr) = probe {
            self::probe(p, &format!("{field}.{name}"), pr, is_readiness);
        }
    }
    for (name, action) in [("postStart", &c.post_start), ("preStop", &c.pre_stop)] {
        if let Some(a) = action {
            self::action(p, &format!("{field}.{name}"), a);
        }
    }
    for (name, list) in [("command", &c.command), ("args", &c.args)] {
        if let Some(l) = list
            && l.items().iter().any(|s| s.is_empty())
        {
            p.push(Problem::new(format!("{field}.{name}"), "has an empty item (two commas in a row?)"));
        }
    }
    if let Some(env) = &c.env {
        for (i, e) in env.iter().enumerate() {
            env_var(p, &format!("{field}.env[{i}]"), e);
        }
    }
    if let Some(from) = &c.env_from {
        for (i, e) in from.iter().enumerate() {
            let f = format!("{field}.envFrom[{i}]");
            match (&e.config_map, &e.secret) {
                (Some(n), None) | (None, Some(n)) => object_name(p, &f, n),
                _ => p.push(Problem::new(f, "set exactly one of configMap or secret")),
            }
        }
    }
    if let Some(sc) = &c.security_context {
        security(p, &format!("{field}.securityContext"), sc);
    }
    warnings
}

fn port(p: &mut Problems, warnings: &mut Vec<String>, f: &str, port: &PortSetting) {
    if !(1..=65535).contains(&port.container_port) {
        p.push(Problem::new(
            format!("{f}.containerPort"),
            format!("{} must be between 1 and 65535", port.container_port),
        ));
    }
    if let Some(proto) = &port.protocol
        && !["TCP", "UDP", "SCTP"].contains(&proto.as_str())
    {
        p.push(Problem::new(format!("{f}.protocol"), format!("{proto:?} must be TCP, UDP or SCTP")));
    }
    if let Some(name) = &port.name {
        let valid = !name.is_empty()
            && name.len() <= 15
            && is_dns_label(name)
            && name.bytes().any(|c| c.is_ascii_lowercase())
            && !name.contains("--");
        if !valid {
            p.push(Problem::new(
                format!("{f}.name"),
                format!(
                    "{name:?} must be at most 15 lowercase letters, digits or '-' with at least one letter"
                ),
            ));
        } else if !has_istio_prefix(name) {
            warnings.push(format!(
                "{f}.name {name:?} has no protocol prefix: Istio treats the port as plain TCP; name it e.g. http-{name} for HTTP routing"
            ));
        }
    }
}

fn handler(p: &mut Problems, f: &str, http: &Option<HttpGet>, cmd: bool, tcp: &Option<IntOrString>) {
    let n = usize::from(http.is_some()) + usize::from(cmd) + usize::from(tcp.is_some());
    if n != 1 {
        p.push(Problem::new(f, "set exactly one of httpGet, command or tcpPort"));
    }
    if let Some(h) = http {
        if let Some(s) = &h.scheme
            && s != "HTTP"
            && s != "HTTPS"
        {
            p.push(Problem::new(format!("{f}.httpGet.scheme"), format!("{s:?} must be HTTP or HTTPS")));
        }
        if let Some(path) = &h.path
            && !path.starts_with('/')
        {
            p.push(Problem::new(format!("{f}.httpGet.path"), format!("{path:?} must start with '/'")));
        }
        port_ref(p, &format!("{f}.httpGet.port"), &h.port);
    }
    if let Some(t) = tcp {
        port_ref(p, &format!("{f}.tcpPort"), t);
    }
}

fn port_ref(p: &mut Problems, f: &str, port: &IntOrString) {
    match port {
        IntOrString::Int(n) if !(1..=65535).contains(n) => {
            p.push(Problem::new(f, format!("{n} must be between 1 and 65535")))
        }
        IntOrString::String(s) if s.is_empty() || s.len() > 15 => {
            p.push(Problem::new(f, format!("{s:?} is not a port number or port name")))
        }
        _ => {}
    }
}

fn probe(p: &mut Problems, f: &str, pr: &Probe, is_readiness: bool) {
    handler(p, f, &pr.http_get, pr.command.is_some(), &pr.tcp_port);
    // The pod spec holds these as int32: a larger value would be cut short when written.
    let mut min = |name: &str, v: Option<i64>, lo: i64| {
        if let Some(v) = v {
            if v < lo {
                p.push(Problem::new(format!("{f}.{name}"), format!("{v} must be at least {lo}")));
            } else if v > i64::from(i32::MAX) {
                p.push(Problem::new(format!("{f}.{name}"), format!("{v} must be at most {}", i32::MAX)));
            }
        }
    };
    min("initialDelaySeconds", pr.initial_delay_seconds, 0);
    min("timeoutSeconds", pr.timeout_seconds, 0);
    min("periodSeconds", pr.period_seconds, 1);
    min("successThreshold", pr.success_threshold, 1);
    min("failureThreshold", pr.failure_threshold, 1);
    if !is_readiness
        && let Some(s) = pr.success_threshold
        && s != 1
    {
        p.push(Problem::new(
            format!("{f}.successThreshold"),
            format!("{s} must be 1 for liveness and startup probes"),
        ));
    }
}

fn action(p: &mut Problems, f: &str, a: &Action) {
    handler(p, f, &a.http_get, a.command.is_some(), &a.tcp_port);
}

fn env_var(p: &mut Problems, f: &str, e: &EnvVar) {
    let b = e.name.as_bytes();
    let ok = !b.is_empty()
        && !b[0].is_ascii_digit()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'));
    if !ok {
        p.push(Problem::new(
            format!("{f}.name"),
            format!("{:?} is not a valid environment variable name", e.name),
        ));
    }
    let n = usize::from(e.value.is_some())
        + usize::from(e.config_map_key_ref.is_some())
        + usize::from(e.secret_key_ref.is_some());
    if n != 1 {
        p.push(Problem::new(f, "set exactly one of value, configMapKeyRef or secretKeyRef"));
    }
    for (kind, r) in [("configMapKeyRef", &e.config_map_key_ref), ("secretKeyRef", &e.secret_key_ref)] {
        if let Some(r) = r {
            object_name(p, &format!("{f}.{kind}.name"), &r.name);
            if r.key.is_empty() {
                p.push(Problem::new(format!("{f}.{kind}.key"), "is required"));
            }
        }
    }
}

fn security(p: &mut Problems, f: &str, sc: &SecurityContext) {
    for (name, v) in [("runAsUser", sc.run_as_user), ("runAsGroup", sc.run_as_group)] {
        if let Some(v) = v
            && v < 0
        {
            p.push(Problem::new(format!("{f}.{name}"), format!("{v} must be 0 or more")));
        }
    }
    if sc.privileged == Some(true) && sc.allow_privilege_escalation == Some(false) {
        p.push(Problem::new(
            format!("{f}.allowPrivilegeEscalation"),
            "cannot be false in privileged mode (privileged containers always may escalate)",
        ));
    }
    if let Some(caps) = &sc.capabilities {
        for (kind, list) in [("add", &caps.add), ("drop", &caps.drop)] {
            for c in list {
                if let Some(rest) = c.strip_prefix("CAP_") {
                    p.push(Problem::new(
                        format!("{f}.capabilities.{kind}"),
                        format!("{c:?}: write capabilities without the CAP_ prefix ({rest})"),
                    ));
                } else if c.is_empty()
                    || !c.bytes().all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit())
                {
                    p.push(Problem::new(
                        format!("{f}.capabilities.{kind}"),
                        format!("{c:?} is not a capability name (upper case, e.g. NET_ADMIN, or ALL)"),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(f: impl FnOnce(&mut Problems)) -> Problems {
        let mut p = Vec::new();
        f(&mut p);
        p
    }

    #[test]
    fn task_names_follow_the_consoles_rule() {
        assert!(problems(|p| task_name(p, "name", "reviews-canary-2")).is_empty());
        for bad in ["", "Reviews", "-a", "a-", "a_b", &"a".repeat(254)] {
            assert_eq!(problems(|p| task_name(p, "name", bad)).len(), 1, "{bad}");
        }
    }

    #[test]
    fn versions_are_short_lowercase_alphanumerics() {
        assert!(problems(|p| version(p, "version", "v2")).is_empty());
        for bad in ["V2", "v-2", "v2.0", "abcdefghijklmnopq", ""] {
            assert_eq!(problems(|p| version(p, "version", bad)).len(), 1, "{bad}");
        }
    }

    #[test]
    fn liveness_probes_need_a_success_threshold_of_one() {
        let c = ContainerEdit {
            name: "a".into(),
            liveness_probe: Some(Probe {
                tcp_port: Some(IntOrString::Int(80)),
                success_threshold: Some(2),
                ..Probe::default()
            }),
            readiness_probe: Some(Probe {
                tcp_port: Some(IntOrString::Int(80)),
                success_threshold: Some(2),
                ..Probe::default()
            }),
            ..ContainerEdit::default()
        };
        let p = problems(|p| {
            container(p, "c", &c);
        });
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].field, "c.livenessProbe.successThreshold");
    }

    #[test]
    fn probe_numbers_must_fit_the_pod_specs_int32() {
        let c = ContainerEdit {
            name: "a".into(),
            readiness_probe: Some(Probe {
                tcp_port: Some(IntOrString::Int(80)),
                period_seconds: Some(4_294_967_297),
                ..Probe::default()
            }),
            ..ContainerEdit::default()
        };
        let p = problems(|p| {
            container(p, "c", &c);
        });
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].field, "c.readinessProbe.periodSeconds");
        assert!(p[0].message.contains("at most 2147483647"), "{}", p[0].message);
    }

    #[test]
    fn ports_without_a_protocol_prefix_warn_but_pass() {
        let c = ContainerEdit {
            name: "a".into(),
            ports: Some(vec![PortSetting { name: Some("web".into()), protocol: None, container_port: 80 }]),
            ..ContainerEdit::default()
        };
        let mut p = Vec::new();
        let w = container(&mut p, "c", &c);
        assert!(p.is_empty());
        assert!(w[0].contains("http-web"), "{w:?}");
    }
}

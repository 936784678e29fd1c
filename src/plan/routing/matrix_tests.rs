//! Routing over ports x task type, each test walking governor x policy x ready versions, against
//! an oracle written from kubesphere-compat section 8 (with the deliberate differences named in
//! the README). The oracle is a second, plainer statement of the rules, so a change to either
//! that the other does not share fails here.

use super::fixtures::{Kind, render, svc, task};
use super::{is_http_like, plan};
use crate::model::strategy::{POLICY_IMMEDIATELY, POLICY_PAUSED, POLICY_WAIT};

fn oracle(ports: &[(&str, u32)], kind: Kind, gov: Option<&str>, policy: &str, ready: &[&str]) -> String {
    let p = "v1";
    let needs = ["v1", "v2"];
    let applies = match policy {
        POLICY_PAUSED => false,
        POLICY_WAIT => needs.iter().all(|n| ready.contains(n)),
        _ => true,
    };
    let (mut http, mut tcp) = (Vec::new(), Vec::new());
    for (name, port) in ports {
        let h = is_http_like(name);
        if !applies {
            let Some(first) = ready.first() else { continue };
            if h {
                http.push(format!("h{port}({name}):{first}=100"));
            } else {
                tcp.push(format!("t{port}:{first}=100"));
            }
            continue;
        }
        if let Some(g) = gov {
            if h {
                http.push(format!("h{port}:{g}=100"));
            } else {
                tcp.push(format!("t{port}:{g}=100"));
            }
            continue;
        }
        match (kind, h) {
            (Kind::Ratio, true) => http.push(format!("h{port}:{p}=80,v2=20")),
            (Kind::Match, true) => {
                http.push(format!("h{port}[x-beta]:v2=100"));
                http.push(format!("h{port}:{p}=100"));
            }
            (Kind::BlueGreen, true) => http.push(format!("h{port}:{p}=100,v2=0")),
            (Kind::Mirror, true) => http.push(format!("h{port}:{p}=100 ~v2")),
            (Kind::TcpRatio, false) => tcp.push(format!("t{port}:{p}=70,v2=30")),
            _ => {}
        }
    }
    http.extend(tcp);
    http.join(" | ")
}

fn walk(ports: &[(&str, u32)], kind: Kind) {
    let service = svc(ports);
    let mut checked = 0;
    for gov in [None, Some("v1"), Some("v2")] {
        for policy in [POLICY_WAIT, POLICY_IMMEDIATELY, POLICY_PAUSED] {
            for ready in [&["v1", "v2"][..], &["v1"], &["v2"], &[]] {
                let s = task(kind, gov, policy, "v1");
                let ready_owned: Vec<String> = ready.iter().map(|r| r.to_string()).collect();
                let got =
                    render(&plan(&service, "reviews", Some(&s), &ready_owned, None).virtual_service.spec);
                let want = oracle(ports, kind, gov, policy, ready);
                assert_eq!(
                    got, want,
                    "ports {ports:?}, {kind:?}, governor {gov:?}, {policy}, ready {ready:?}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 36);
}

macro_rules! matrix {
    ($($name:ident: $ports:expr;)*) => {$(
        mod $name {
            use super::*;
            #[test] fn canary_by_ratio() { walk($ports, Kind::Ratio) }
            #[test] fn canary_by_request() { walk($ports, Kind::Match) }
            #[test] fn blue_green() { walk($ports, Kind::BlueGreen) }
            #[test] fn mirror() { walk($ports, Kind::Mirror) }
            #[test] fn tcp_canary() { walk($ports, Kind::TcpRatio) }
        }
    )*};
}

matrix! {
    one_http_port: &[("http-web", 9080)];
    bare_http_port: &[("http", 80)];
    http2_port: &[("http2-api", 8080)];
    grpc_port: &[("grpc-api", 9090)];
    one_tcp_port: &[("mysql", 3306)];
    mixed_ports: &[("http-web", 80), ("grpc-api", 81), ("tcp-db", 82)];
    upper_case_ports: &[("HTTP-1", 80), ("grpc-1", 81), ("mysql-1", 82)];
    names_without_a_protocol_prefix: &[("web", 8080), ("httpx", 8081)];
}

//! Credentials that expire during a long command: an exec credential plugin hands out tokens
//! that live three seconds (the plane's token webhook refuses them afterwards; the API server
//! keeps a good answer ten seconds, so a token is refused at most 13 s after it was issued), and
//! a gradual shift of fourteen seconds goes through, asking the plugin again as tokens expire.
//! The same shift with one fixed token of that lifetime is refused part-way: the expiry is real.

mod common;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::{Value, json};

fn plane_cluster() -> (String, String) {
    let text = std::fs::read_to_string(&plane().kubeconfig).unwrap();
    let kc: Value = serde_yaml_ng::from_str(&text).unwrap();
    let c = &kc["clusters"][0]["cluster"];
    (c["server"].as_str().unwrap().to_string(), c["certificate-authority"].as_str().unwrap().to_string())
}

fn kubeconfig(dir: &Path, user: Value) -> PathBuf {
    let (server, ca) = plane_cluster();
    let kc = json!({"apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"server": server, "certificate-authority": ca}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "local", "user": "u", "namespace": "default"}}],
        "current-context": "c"});
    let path = dir.join("kubeconfig.json");
    std::fs::write(&path, kc.to_string()).unwrap();
    path
}

/// An exec credential plugin issuing `exp.<now + 3 s>.token-user`, logging each issue.
fn exec_plugin(dir: &Path) -> (PathBuf, PathBuf) {
    let log = dir.join("issued");
    let script = dir.join("credential.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexp=$(( $(date +%s) + 3 ))\necho \"$exp\" >> {log}\n\
             printf '{{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\
             \"status\":{{\"token\":\"exp.%s.token-user\",\"expirationTimestamp\":\"%s\"}}}}' \
             \"$exp\" \"$(date -u -d @$exp +%Y-%m-%dT%H:%M:%SZ)\"\n",
            log = log.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&script).status().unwrap();
    (script, log)
}

fn shift_as(kubeconfig: &Path, ns: &str) -> Run {
    let mut c = std::process::Command::new(BIN);
    c.args(["shift", "rc", "-n", ns, "--to", "90", "--step", "10", "--interval", "2s"])
        .env("KUBECONFIG", kubeconfig)
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::null());
    let out = c.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn new_weight(ns: &str) -> i64 {
    let s = get(ns, "strategies.servicemesh.kubesphere.io", "rc").unwrap();
    s["spec"]["template"]["spec"]["http"][0]["route"][1]["weight"].as_i64().unwrap()
}

#[test]
fn a_long_shift_outlives_its_three_second_tokens() {
    let ns = Namespace::new("cred-exec");
    let n = ns.name.as_str();
    canary_task(n, "1", "20");
    let dir = std::env::temp_dir().join(format!("{n}-cred"));
    std::fs::create_dir_all(&dir).unwrap();
    let (script, log) = exec_plugin(&dir);
    let kc = kubeconfig(
        &dir,
        json!({"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": script.to_str().unwrap()}}),
    );
    let r = shift_as(&kc, n);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(new_weight(n), 90);
    let issued: Vec<u64> =
        std::fs::read_to_string(&log).unwrap().lines().map(|l| l.parse().unwrap()).collect();
    let distinct: std::collections::BTreeSet<_> = issued.iter().collect();
    assert!(distinct.len() >= 3, "tokens were asked for again as they expired: {issued:?}");
}

#[test]
fn one_fixed_token_of_the_same_lifetime_is_refused_part_way() {
    let ns = Namespace::new("cred-fixed");
    let n = ns.name.as_str();
    canary_task(n, "1", "20");
    let dir = std::env::temp_dir().join(format!("{n}-cred"));
    std::fs::create_dir_all(&dir).unwrap();
    let exp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 3;
    let kc = kubeconfig(&dir, json!({"token": format!("exp.{exp}.token-user")}));
    let r = shift_as(&kc, n);
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("Unauthorized"), "{}", r.stderr);
    let w = new_weight(n);
    assert!((30..90).contains(&w), "some steps were written before the token expired: {w}");
}

//! Take-over through the fault proxy with latency added to every round trip, against kubectl
//! patch through the same proxy: what an incident on a slow API server costs.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::{Env, RUNS, Row, measure, seed};

struct Proxy {
    child: Child,
    kubeconfig: PathBuf,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn proxy(env: &Env, latency_ms: u64) -> Proxy {
    let pki = env.state.join("pki");
    let dir = std::env::temp_dir().join(format!("grayscale-bench-proxy-{latency_ms}"));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("rules.json");
    std::fs::write(&rules, format!(r#"{{"rules": [{{"latency_ms": {latency_ms}}}]}}"#)).unwrap();
    let kc = std::fs::read_to_string(&env.kubeconfig).unwrap();
    let upstream = kc.lines().find_map(|l| l.trim().strip_prefix("server: https://")).unwrap().to_string();
    // Built beside the plugin (hack/bench.sh builds both, wherever CARGO_TARGET_DIR puts them).
    let mut child = Command::new(env.plugin.with_file_name("fault-proxy"))
        .args(["--upstream", &upstream])
        .arg("--ca")
        .arg(pki.join("ca.crt"))
        .arg("--cert")
        .arg(pki.join("admin.crt"))
        .arg("--key")
        .arg(pki.join("admin.key"))
        .arg("--serve-cert")
        .arg(pki.join("apiserver.crt"))
        .arg("--serve-key")
        .arg(pki.join("apiserver.key"))
        .arg("--rules")
        .arg(&rules)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start fault-proxy beside the plugin's binary (hack/bench.sh builds it)");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = lines.next().unwrap().unwrap().trim_start_matches("listening on ").to_string();
    // Keep reading so the proxy never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: p\n  cluster: {{server: \"https://{addr}\", certificate-authority: \"{ca}\"}}\nusers:\n- name: admin\n  user: {{client-certificate: \"{crt}\", client-key: \"{key}\"}}\ncontexts:\n- name: p\n  context: {{cluster: p, user: admin}}\ncurrent-context: p\n",
            ca = pki.join("ca.crt").display(),
            crt = pki.join("admin.crt").display(),
            key = pki.join("admin.key").display()
        ),
    )
    .unwrap();
    Proxy { child, kubeconfig }
}

pub fn takeover(env: &Env, latency_ms: u64) -> Row {
    let ns = format!("bench-latency-{latency_ms}");
    seed::canary(env, &ns);
    let p = proxy(env, latency_ms);
    let via = |mut c: Command| {
        c.env("KUBECONFIG", &p.kubeconfig);
        c
    };
    // kubectl caches discovery per server: warm it through the proxy, as at a terminal.
    let warm = via(env.kubectl(&["api-resources"])).stdout(Stdio::null()).status().unwrap();
    assert!(warm.success());
    // And the plugin's identity cache, by a look at the task through the proxy.
    let warm = via(env.plugin(&["status", "t", "-n", &ns])).stdout(Stdio::null()).status().unwrap();
    assert!(warm.success());
    let mut a = measure::Runs::new("kubectl grayscale takeover");
    let mut b = measure::Runs::new("kubectl patch virtualservice (one subset)");
    for i in 0..RUNS / 2 {
        let v = if i % 2 == 0 { "v1" } else { "v2" };
        a.push(measure::run(
            env,
            via(env.plugin(&["takeover", "t", "-n", &ns, "--version", v])),
            "kubectl-grayscale/",
        ));
        let patch = format!(
            r#"{{"spec":{{"http":[{{"route":[{{"destination":{{"host":"reviews","subset":"{v}"}},"weight":100}}]}}]}}}}"#
        );
        b.push(measure::run(
            env,
            via(env.kubectl(&[
                "patch",
                "virtualservice",
                "reviews",
                "-n",
                &ns,
                "--type=merge",
                "-p",
                &patch,
            ])),
            "kubectl/",
        ));
    }
    Row {
        scenario: format!("6. take over with {latency_ms} ms added per round trip (fault proxy)"),
        a,
        b,
        notes: vec![],
    }
}

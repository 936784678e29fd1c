//! A take-over across two planes (`--context plane-a,plane-b`) against the two single
//! take-overs one after the other, as an on-call engineer does it by hand without it. The
//! second plane is the one hack/bench.sh starts for this scenario (`GRAYSCALE_BENCH_FLEET`:
//! its kubeconfig).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::measure::{self, Sample};
use crate::{Env, RUNS, Row, seed};

const NS: &str = "bench-fleet";

fn server_of(kubeconfig: &Path) -> String {
    let kc = std::fs::read_to_string(kubeconfig).unwrap();
    kc.lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .expect("a server")
        .trim_matches('"')
        .to_string()
}

/// One kubeconfig with a context per plane, each in the benchmark's namespace.
fn merged(a: &Env, b: &Env) -> PathBuf {
    let mut clusters = String::new();
    let mut users = String::new();
    let mut contexts = String::new();
    for (name, env) in [("plane-a", a), ("plane-b", b)] {
        let pki = env.state.join("pki");
        clusters += &format!(
            "- name: {name}\n  cluster: {{server: \"{}\", certificate-authority: \"{}\"}}\n",
            server_of(&env.kubeconfig),
            pki.join("ca.crt").display()
        );
        users += &format!(
            "- name: {name}\n  user: {{client-certificate: \"{}\", client-key: \"{}\"}}\n",
            pki.join("admin.crt").display(),
            pki.join("admin.key").display()
        );
        contexts +=
            &format!("- name: {name}\n  context: {{cluster: {name}, user: {name}, namespace: {NS}}}\n");
    }
    let path = std::env::temp_dir().join("grayscale-bench-fleet.kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n{clusters}users:\n{users}contexts:\n{contexts}current-context: plane-a\n"
        ),
    )
    .unwrap();
    path
}

pub fn takeover(env: &Env) -> Row {
    let other = std::env::var_os("GRAYSCALE_BENCH_FLEET")
        .map(PathBuf::from)
        .expect("GRAYSCALE_BENCH_FLEET: the second plane's kubeconfig (hack/bench.sh starts it)");
    let b_env = Env {
        kubeconfig: other.clone(),
        state: other.parent().unwrap().to_path_buf(),
        plugin: env.plugin.clone(),
        path: env.path.clone(),
        repo: env.repo.clone(),
    };
    seed::canary(env, NS);
    seed::canary(&b_env, NS);
    let kc = merged(env, &b_env);
    let plugin = |args: &[&str]| {
        let mut c = Command::new(&env.plugin);
        c.args(args).env("KUBECONFIG", &kc).env("PATH", &env.path);
        c
    };
    // As at a terminal: a look at the task on each cluster first (the identity cache).
    for ctx in ["plane-a", "plane-b"] {
        let ok = plugin(&["status", "t", "--context", ctx]).stdout(Stdio::null()).status().unwrap();
        assert!(ok.success());
    }
    let mut a = measure::Runs::new("takeover --context plane-a,plane-b");
    let mut b = measure::Runs::new("takeover --context plane-a; then plane-b");
    // A always to v1, B always to v2: every run moves traffic on both clusters.
    for _ in 0..RUNS / 2 {
        a.push(measure::run(
            env,
            plugin(&["takeover", "t", "--version", "v1", "--context", "plane-a,plane-b"]),
            "kubectl-grayscale/",
        ));
        let one = |ctx: &str| {
            measure::run(
                env,
                plugin(&["takeover", "t", "--version", "v2", "--context", ctx]),
                "kubectl-grayscale/",
            )
        };
        let (first, second) = (one("plane-a"), one("plane-b"));
        b.push(Sample {
            wall: first.wall + second.wall,
            rss_kib: first.rss_kib.max(second.rss_kib),
            requests: first.requests + second.requests,
        });
    }
    Row {
        scenario: "8. take over on two clusters".into(),
        a,
        b,
        notes: vec!["requests: those plane A received (B: the sum of two commands' walls)".into()],
    }
}

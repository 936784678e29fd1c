//! How the plugin fits kubectl: shell completion from the cluster, kubectl's plugin completion,
//! and output in a real terminal (tmux) versus a pipe.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// A directory on PATH holding the plugin under its kubectl names.
fn plugin_path() -> String {
    let dir = std::env::temp_dir().join(format!("grayscale-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["kubectl-grayscale", "kubectl_complete-grayscale"] {
        let link = dir.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(BIN, &link).unwrap();
    }
    format!("{}:{}", dir.display(), std::env::var("PATH").unwrap())
}

fn task(prefix: &str) -> Namespace {
    let ns = Namespace::new(prefix);
    bookinfo(&ns.name);
    grayscale(&[
        "create",
        "canary",
        "reviews-canary",
        "-n",
        &ns.name,
        "--service",
        "reviews",
        "--version",
        "v2",
        "--replicas",
        "1",
    ])
    .ok();
    ns
}

fn bash(script: &str) -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("PATH", plugin_path())
        .env("KUBECONFIG", &plane().kubeconfig)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn bash_completion_loads_and_completes_task_names_and_versions_from_the_cluster() {
    let ns = task("complete");
    let n = &ns.name;
    let complete = |words: &str| {
        bash(&format!(
            r#"source <(kubectl-grayscale completion bash)
COMP_WORDS=(kubectl-grayscale {words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))
_kubectl_grayscale; printf '%s\n' "${{COMPREPLY[@]}}""#
        ))
    };
    assert_eq!(complete(&format!("status -n {n} ''")), "reviews-canary\n");
    assert_eq!(complete(&format!("takeover reviews-canary -n {n} --version ''")), "v1\nv2\n");
    assert!(complete("sh").contains("shift"));
    assert!(complete("list -o ''").contains("json"));
}

#[test]
fn kubectl_completes_the_plugin_through_its_completion_hook() {
    let ns = task("kcomplete");
    let out = bash(&format!("kubectl __complete grayscale status -n {} '' 2>/dev/null", ns.name));
    assert!(out.contains("reviews-canary"), "{out}");
}

#[test]
fn every_completion_script_is_printed_and_bash_parses_its_own() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let r = grayscale_offline(&["completion", shell]).ok();
        assert!(r.stdout.contains("__complete"), "{shell}");
    }
    bash(
        "kubectl-grayscale completion bash > /tmp/grayscale-completion.bash && bash -n /tmp/grayscale-completion.bash",
    );
}

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_terminal_gets_bars_and_colours_and_a_pipe_gets_plain_lines() {
    let ns = Namespace::new("tty");
    let n = ns.name.as_str();
    bookinfo(n);
    let session = format!("grayscale-{}", std::process::id());
    let cmd = format!(
        "unset CI NO_COLOR; export KUBECONFIG={} PATH={}; \
         kubectl grayscale create canary rc -n {n} --service reviews --version v2 --weight 30; \
         kubectl grayscale status rc -n {n}; echo DONE; sleep 60",
        plane().kubeconfig.display(),
        plugin_path()
    );
    tmux(&["new-session", "-d", "-s", &session, "-x", "200", "-y", "60", &cmd]);
    let start = Instant::now();
    let mut screen = String::new();
    while start.elapsed() < Duration::from_secs(60) {
        screen = tmux(&["capture-pane", "-p", "-e", "-t", &session]);
        if screen.contains("DONE") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    tmux(&["kill-session", "-t", &session]);
    assert!(screen.contains("DONE"), "the command did not finish:\n{screen}");
    assert!(screen.contains('\u{1b}'), "colours in a terminal:\n{screen}");
    assert!(screen.contains("1/3 ready") || screen.contains("3/3 ready"), "a progress bar:\n{screen}");
    assert!(screen.contains('█'), "bar glyphs:\n{screen}");
    assert!(screen.contains("port 9080"), "status shows the traffic split:\n{screen}");

    // The same kind of commands through a pipe: no escape codes, one line per event.
    let ns2 = Namespace::new("pipe");
    bookinfo(&ns2.name);
    let out = bash(&format!(
        "kubectl grayscale create canary rc -n {} --service reviews --version v2 --weight 30 2>&1 | cat; kubectl grayscale status rc -n {} | cat",
        ns2.name, ns2.name
    ));
    assert!(!out.contains('\u{1b}'), "{out}");
    assert!(out.contains("ready 3/3"), "{out}");
    assert!(out.contains("routing applied"), "{out}");
}

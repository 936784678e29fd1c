//! The binary without a cluster: help with examples for every command, usage errors, and a
//! closed pipe.

use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-grayscale");

fn run(args: &[&str]) -> (i32, String, String) {
    let out =
        Command::new(BIN).args(args).env("KUBECONFIG", "/nonexistent").stdin(Stdio::null()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

const COMMANDS: [&str; 17] = [
    "version",
    "completion",
    "init",
    "create",
    "list",
    "status",
    "shift",
    "match",
    "takeover",
    "mirror",
    "pause",
    "resume",
    "offline",
    "history",
    "undo",
    "sync",
    "gitops",
];

#[test]
fn every_command_has_help_with_kubectl_style_examples() {
    for c in COMMANDS {
        let (code, out, _) = run(&[c, "--help"]);
        assert_eq!(code, 0, "{c}");
        assert!(out.contains("Examples:"), "{c} --help has no examples:\n{out}");
        assert!(out.contains("kubectl grayscale") || out.contains("kubectl-grayscale"), "{c}");
    }
    let (_, top, _) = run(&["--help"]);
    for c in COMMANDS {
        assert!(top.contains(c), "top-level help lists {c}");
    }
}

#[test]
fn usage_errors_exit_2_and_say_what_is_wrong() {
    let (code, _, err) = run(&["frobnicate"]);
    assert_eq!(code, 2);
    assert!(err.contains("unrecognized subcommand"), "{err}");
    let (code, _, err) = run(&["shift", "rc"]);
    assert_eq!(code, 2);
    assert!(err.contains("--weight") || err.contains("required"), "{err}");
    let (code, _, err) = run(&["takeover", "rc", "--version", "v1", "--restore"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot be used with"), "{err}");
}

#[test]
fn a_missing_kubeconfig_is_a_config_error_with_a_hint() {
    let (code, _, err) = run(&["list", "--kubeconfig", "/nonexistent/config"]);
    assert_eq!(code, 8, "{err}");
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -o pipefail; {BIN} completion bash | head -c 10 >/dev/null"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn missing_files_in_kubeconfig_are_skipped_as_kubectl_does() {
    let dir = std::env::temp_dir().join(format!("grayscale-kc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kc = dir.join("config");
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}]\n\
         users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u, namespace: ns}}]\ncurrent-context: x\n",
    )
    .unwrap();
    let list = format!("{}:{}", dir.join("missing").display(), kc.display());
    let out = Command::new(BIN)
        .args(["list", "--request-timeout", "2s"])
        .env("KUBECONFIG", &list)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // The configuration loads; the (unreachable) server is what fails.
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("could not be reached"), "{err}");
}

/// No backtrace and no cluster: issue 17's inputs are refused before anything connects.
fn refused_as_usage(args: &[&str]) -> String {
    let (code, _, err) = run(args);
    assert_eq!(code, 2, "{args:?}: {err}");
    assert!(!err.contains("panicked") && !err.contains("backtrace"), "{args:?}: {err}");
    err
}

#[test]
fn a_non_ascii_image_is_a_usage_error_naming_the_flag() {
    let err =
        refused_as_usage(&["create", "canary", "x", "--service", "s", "--version", "v2", "--image", "ñginx"]);
    assert!(err.contains("--image: \"ñginx\" is not an image reference"), "{err}");
}

#[test]
fn a_huge_duration_is_a_usage_error_naming_the_flag_and_the_limit() {
    let err = refused_as_usage(&[
        "create",
        "canary",
        "x",
        "--service",
        "s",
        "--version",
        "v2",
        "--timeout",
        "99999999999999999999s",
    ]);
    assert!(err.contains("--timeout") && err.contains("7 days"), "{err}");
    for flag in ["--request-timeout", "--fail-after"] {
        let err = refused_as_usage(&["create", "canary", "x", flag, "18446744073709551615"]);
        assert!(err.contains(flag) && err.contains("7 days"), "{err}");
    }
}

/// kubectl's split: a command's own flags, then the flags every command takes.
#[test]
fn help_lists_a_commands_own_flags_before_the_global_ones() {
    for (command, own) in [("shift", "--weight"), ("create", "--image")] {
        for help in ["--help", "-h"] {
            let (code, out, _) = run(&[command, help]);
            assert_eq!(code, 0, "{command} {help}");
            let at = |s: &str| out.find(s).unwrap_or_else(|| panic!("{command} {help} lacks {s}:\n{out}"));
            assert!(at("Options:") < at(own), "{command} {help}");
            assert!(at(own) < at("Global options:"), "{command} {help}");
            for global in ["--kubeconfig", "--context", "-n, --namespace", "--request-timeout"] {
                assert!(at("Global options:") < at(global), "{command} {help}: {global}");
            }
        }
    }
}

fn two_context_kubeconfig() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("grayscale-fleet-kc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kc = dir.join("config");
    // Nothing listens on port 1: both clusters refuse the connection.
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}]\n\
         users: [{name: u, user: {token: t}}]\n\
         contexts: [{name: eu, context: {cluster: c, user: u, namespace: a}}, {name: us, context: {cluster: c, user: u, namespace: b}}]\n\
         current-context: eu\n",
    )
    .unwrap();
    kc
}

fn run_in(kc: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).env("KUBECONFIG", kc).stdin(Stdio::null()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn several_contexts_are_checked_before_anything_connects_and_only_takeover_takes_them() {
    let kc = two_context_kubeconfig();
    for (args, says) in [
        (
            vec!["takeover", "rc", "--version", "v1", "--context", "eu,asia"],
            "no context asia in the kubeconfig",
        ),
        (vec!["takeover", "rc", "--version", "v1", "--context", "/^ap-/"], "/^ap-/ matches no context"),
        (
            vec!["takeover", "rc", "--version", "v1", "--context", "eu,us", "--max-parallel", "0"],
            "--max-parallel",
        ),
        (vec!["status", "rc", "--context", "eu,us"], "only takeover runs over several clusters"),
        (
            vec!["shift", "rc", "--weight", "5", "--context", "/./"],
            "only takeover runs over several clusters",
        ),
    ] {
        let (code, _, err) = run_in(&kc, &args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("could not be reached"), "{args:?} connected: {err}");
    }
}

#[test]
fn unreachable_clusters_each_get_a_row_exit_14_and_a_retry_command() {
    let kc = two_context_kubeconfig();
    let (code, out, err) =
        run_in(&kc, &["takeover", "rc", "--version", "v1", "--context", "/./", "-o", "json"]);
    assert_eq!(code, 14, "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{out}");
    for (item, ctx) in items.iter().zip(["eu", "us"]) {
        assert_eq!(item["context"], ctx);
        assert_eq!(item["result"], "unreachable", "{out}");
    }
    assert!(err.contains("kubectl grayscale takeover rc --version v1 --context eu,us"), "{err}");
}

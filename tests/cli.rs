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

const COMMANDS: [&str; 16] = [
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

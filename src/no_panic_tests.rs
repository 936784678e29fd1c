//! Issue 17: no input panics. Every parser a flag or a task file reaches answers any string,
//! arbitrary unicode included, with a value or a clean error. The release build aborts on a
//! panic, so one would cost the user a backtrace and exit 134 instead of exit 2 and a message.
//!
//! Strings are either fully arbitrary or drawn from the characters each grammar cares about
//! (digits and units, image separators, comparison operators), so the cases reach past the first
//! character; case counts stay low to keep `cargo test --lib` fast.

use clap::Parser;
use proptest::prelude::*;

use crate::cli::{Cli, Command};
use crate::model::strategy::TaskType;
use crate::output::{MAX_DURATION, parse_duration};
use crate::plan::gate;
use crate::task::file::TaskFile;
use crate::task::matching::ClientOs;
use crate::task::request::{self, CreateFlags};
use crate::task::{image, validate};

/// Any characters at all, control characters and multi-byte ones included.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..40).prop_map(String::from_iter)
}

/// Arbitrary text or text in a grammar's own alphabet, which parses further.
fn text_or(alphabet: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![text(), alphabet]
}

/// Arbitrary text, durations in the grammar (a character class would weight `.` as heavily as
/// all the digits together), and whole numbers up to `u64::MAX` with a unit.
fn duration_text() -> impl Strategy<Value = String> {
    let unit = prop::sample::select(vec!["", "s", "m", "h", "ms", "d", "ñ"]);
    prop_oneof![
        text(),
        "([0-9]{0,22}(\\.[0-9]{0,4})?(h|m|s|ms|ñ)){1,3}",
        (any::<u64>(), unit).prop_map(|(n, u)| format!("{n}{u}")),
    ]
}

fn image_text() -> impl Strategy<Value = String> {
    text_or("[a-zA-Z0-9ñé.:/@_\\[\\]-]{0,40}")
}

fn gate_text() -> impl Strategy<Value = String> {
    text_or("(success-rate|p50|p99|request-rate|p9é)(-delta)?(>=|<=|>|<|=)[-+0-9.eEnaif]{0,12}(ms|s|%|rps)?")
}

fn task_types() -> impl Strategy<Value = TaskType> {
    prop_oneof![Just(TaskType::BlueGreen), Just(TaskType::Canary), Just(TaskType::Mirror)]
}

/// A string as a YAML scalar: JSON's quoting is valid YAML.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

fn config() -> ProptestConfig {
    ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn durations_parse_or_refuse_within_seven_days(s in duration_text()) {
        if let Ok(d) = parse_duration(&s) {
            prop_assert!(d <= MAX_DURATION, "{s:?} gave {d:?}");
        }
    }

    #[test]
    fn image_references_are_checked_without_panicking(s in image_text()) {
        // The grammar is ASCII: anything else must be refused, not sliced through.
        prop_assert!(image::problem(&s).is_some() || s.is_ascii(), "{s:?} accepted");
    }

    #[test]
    fn gate_expressions_parse_or_refuse(s in gate_text()) {
        if let Ok(g) = gate::parse(&s) {
            prop_assert!(g.min.or(g.max).is_some_and(f64::is_finite), "{s:?} gave {g:?}");
        }
    }

    #[test]
    fn analysis_files_parse_or_refuse(
        raw in text(),
        name in text(),
        query in text_or("[a-z{} ]{0,30}"),
        min in any::<f64>(),
        max in any::<f64>(),
    ) {
        let _ = gate::analysis(&raw);
        let yaml = format!("gates:\n- name: {}\n  query: {}\n  min: {min:?}\n  max: {max:?}\n", quoted(&name), quoted(&query));
        let _ = gate::analysis(&yaml);
        let json = serde_json::json!({"gates": [{"name": name, "query": query, "max": max}]});
        let _ = gate::analysis(&json.to_string());
    }

    #[test]
    fn match_rules_parse_or_refuse(
        header in text_or("[a-zA-Z_ñ-]{0,8}=[a-z]{0,4}"),
        cookie in text(),
        uri in text_or("/?[a-zé/]{0,10}"),
        os in text_or("(windows|linux|macos|ios|android|ñ| |,){0,5}"),
    ) {
        let _ = ClientOs::parse(&os);
        let f = CreateFlags {
            headers: vec![header.clone()],
            header_regex: vec![header],
            cookie: Some(cookie.clone()),
            cookie_regex: Some(cookie),
            uri_prefix: Some(uri.clone()),
            uri_regex: Some(uri),
            os: Some(os),
            ..CreateFlags::default()
        };
        let _ = request::match_rule(&mut Vec::new(), &f, None);
    }

    #[test]
    fn task_files_parse_and_validate_or_refuse(
        raw in text(),
        t in task_types(),
        name in text(),
        image in image_text(),
        port in any::<i64>(),
        period in any::<i64>(),
        cpu in any::<f64>(),
        os in text(),
    ) {
        let _ = TaskFile::parse(&raw);
        let yaml = format!(
            "basic: {{name: {n}, type: {n}}}\nservice: {{name: {n}}}\nnewVersion:\n  version: {n}\n  replicas: {port}\n  containers:\n  - name: {n}\n    image: {i}\n    resources: {{cpuRequest: {cpu:?}}}\n    ports: [{{name: {n}, containerPort: {port}}}]\n    readinessProbe: {{tcpPort: {n}, periodSeconds: {period}}}\n    env: [{{name: {n}, value: {n}}}]\nstrategy:\n  weight: {port}\n  match: {{headers: [{{name: {n}, exact: {n}}}], os: [{o}]}}\n",
            n = quoted(&name),
            i = quoted(&image),
            o = quoted(&os),
        );
        let json = serde_json::json!({
            "newVersion": {"version": name, "containers": [{"name": name, "image": image, "livenessProbe": {"tcpPort": port}}]},
            "strategy": {"match": {"uri": {"prefix": name}, "cookie": {"regex": os}}},
        });
        for text in [yaml, json.to_string()] {
            if let Ok(file) = TaskFile::parse(&text) {
                let _ = request::build(t, &CreateFlags::default(), Some(file));
            }
        }
        let mut p = Vec::new();
        validate::task_name(&mut p, "name", &name);
        validate::version(&mut p, "version", &name);
        validate::object_name(&mut p, "service", &name);
        validate::container_name(&mut p, "container", &name);
    }

    #[test]
    fn create_argv_parses_and_validates_or_refuses(
        image in image_text(),
        timeout in duration_text(),
        weight in text_or("-?[0-9]{0,22}"),
        cpu in text_or("([a-z]{1,3}=)?[-0-9.eEnaif]{0,12}"),
        header in text(),
        namespace in text(),
    ) {
        let argv = [
            "kubectl-grayscale".to_string(),
            "create".into(),
            "canary".into(),
            "x".into(),
            "--service=s".into(),
            "--version=v2".into(),
            format!("--image={image}"),
            format!("--timeout={timeout}"),
            format!("--fail-after={timeout}"),
            format!("--request-timeout={timeout}"),
            format!("--weight={weight}"),
            format!("--cpu-request={cpu}"),
            format!("--header={header}"),
            format!("--namespace={namespace}"),
        ];
        match Cli::try_parse_from(argv) {
            Ok(cli) => {
                let Command::Create(args) = cli.command else { panic!("parsed as another command") };
                if let Err(e) = crate::commands::create::validate(&args, cli.global.namespace) {
                    prop_assert_eq!(e.exit_code(), 2, "{}", e);
                }
            }
            Err(e) => prop_assert_eq!(e.exit_code(), 2, "{}", e),
        }
    }

    #[test]
    fn shift_gates_parse_or_refuse(g in gate_text(), interval in duration_text()) {
        let argv = ["kubectl-grayscale", "shift", "x", "--to=50", &format!("--gate={g}"), &format!("--interval={interval}")];
        if let Ok(Cli { command: Command::Shift(args), .. }) = Cli::try_parse_from(argv) {
            let _ = args.gate.parse();
        }
    }
}

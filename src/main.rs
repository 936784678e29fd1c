//! The `kubectl-grayscale` binary: parse, run, render the error, exit with its code.

use clap::Parser;
use grayscale::cli::{Cli, Command};
use grayscale::commands::{self, Context};
use grayscale::output::{Color, Format, Ui, paint};

fn machine_output(cmd: &Command) -> bool {
    match cmd {
        Command::List(a) => a.output.is_machine(),
        Command::Status(a) => a.output.is_machine(),
        Command::Create(a) => a.output.is_some(),
        Command::Version(a) => a.output != Format::Table,
        Command::History(a) => a.output.is_machine(),
        Command::Rbac(_) | Command::Gitops(_) => true,
        Command::Analyze(a) => a.output.is_machine(),
        Command::Takeover(a) => a.output.is_some_and(Format::is_machine),
        _ => false,
    }
}

/// Completion requests bypass argument parsing: the words are incomplete by nature.
/// `kubectl_complete-grayscale` is kubectl's plugin completion hook and wants cobra's format.
fn completion_request() -> Option<(Vec<String>, bool)> {
    let mut args = std::env::args();
    let argv0 = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let exe =
        std::path::Path::new(&argv0).file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
    if exe == "kubectl_complete-grayscale" {
        return Some((rest, true));
    }
    match rest.split_first() {
        Some((first, words)) if first == "__complete" => Some((words.to_vec(), false)),
        _ => None,
    }
}

fn main() {
    if let Some((words, cobra)) = completion_request() {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
        let candidates = runtime.block_on(grayscale::complete::complete(&words));
        let mut out = candidates.join("\n");
        if !out.is_empty() {
            out.push('\n');
        }
        if cobra {
            // ShellCompDirectiveNoFileComp
            out.push_str(":4\n");
        }
        grayscale::output::print(&out);
        return;
    }
    let cli = Cli::parse();
    if cli.global.verbosity >= 6 {
        use tracing_subscriber::prelude::*;
        let level = if cli.global.verbosity >= 8 { tracing::Level::DEBUG } else { tracing::Level::INFO };
        // Only the plugin's own request log: the client libraries' internal events are not
        // what -v promises.
        let ours = tracing_subscriber::filter::filter_fn(move |m| {
            m.target().starts_with("grayscale") && *m.level() <= level
        });
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_level(false)
            .without_time();
        tracing_subscriber::registry().with(fmt.with_filter(ours)).init();
    }
    let ui = Ui::detect(cli.global.color, machine_output(&cli.command));
    let ctx = Context { global: cli.global, ui };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Version(a) => commands::version::run(&ctx, a).await,
            Command::Completion(a) => commands::completion::run(&ctx, a).await,
            Command::Init(a) => commands::init::run(&ctx, a).await,
            Command::Create(a) => commands::create::run(&ctx, *a).await,
            Command::List(a) => commands::list::run(&ctx, a).await,
            Command::Status(a) => commands::status::run(&ctx, a).await,
            Command::Sync(a) => commands::sync::run(&ctx, a).await,
            Command::Shift(a) => commands::shift::run(&ctx, a).await,
            Command::Match(a) => commands::matching::run(&ctx, a).await,
            Command::Takeover(a) => commands::takeover::run(&ctx, a).await,
            Command::Mirror(a) => commands::mirror::run(&ctx, a).await,
            Command::Pause(a) => commands::pause::pause(&ctx, a).await,
            Command::Resume(a) => commands::pause::resume(&ctx, a).await,
            Command::Offline(a) => commands::offline::run(&ctx, a).await,
            Command::History(a) => commands::history::history(&ctx, a).await,
            Command::Undo(a) => commands::history::undo(&ctx, a).await,
            Command::Rbac(a) => commands::rbac::run(&ctx, a).await,
            Command::Gitops(a) => commands::gitops::run(&ctx, a).await,
            Command::Analyze(a) => commands::analyze::run(&ctx, a).await,
        }
    });
    if let Err(e) = result {
        let color = ctx.ui.err_color();
        eprintln!("{} {e}", paint(color, "error:", Color::Red));
        if let Some(h) = e.hint() {
            eprintln!("{} {h}", paint(color, "hint:", Color::Cyan));
        }
        std::process::exit(e.exit_code());
    }
}

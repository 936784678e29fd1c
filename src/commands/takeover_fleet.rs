//! `takeover` over several clusters (`--context a,b` or `--context /regex/`): best effort per
//! cluster, never atomic.
//!
//! Round 1, every cluster at once (up to `--max-parallel`): connect, the read round and the
//! same live-state checks as on one cluster (`route::plan`). If a cluster's plan cannot be made,
//! nothing is written anywhere unless `--allow-partial`; `--dry-run` stops here.
//! Round 2, the writes: each cluster's task, routing and Event together, guarded by what round 1
//! read (`route::change_after`), so a task or route changed since is judged afresh, never
//! overwritten; a restore reads again, to check its permissions first. One cluster
//! failing never cancels another's write under way. Every cluster has its own deadline
//! (`--timeout`) over both rounds, so a dead API server costs that and no more.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Context;
use super::takeover::TakeoverArgs;
use crate::cluster::route::{self, Request};
use crate::cluster::task::Journal;
use crate::cluster::{ConnectOptions, Kube};
use crate::error::{Error, Result};
use crate::output::{Color, Progress, paint, print};
use crate::plan::fleet::{self, ClusterResult, Invocation, Outcome, Selection, Target};
use crate::plan::live::Expect;
use crate::plan::operate::{self, Change};
use crate::view::fleet as view;
use crate::view::task::task_summary;

/// The deadline of each cluster when `--timeout` is not given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// One live line per cluster on stderr: a redrawn line each on a terminal, `context | ...`
/// lines elsewhere, nothing under `-o json|yaml`. Warnings always go out, through the bars so
/// that lines do not tear.
struct Board {
    mode: Progress,
    color: bool,
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
    /// Round 2 judges the change again and would repeat round 1's warnings.
    warned: std::cell::RefCell<std::collections::HashSet<(String, String)>>,
}

impl Board {
    fn new(mode: Progress, color: bool, targets: &[Target]) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let width = targets.iter().map(|t| t.context.len()).max().unwrap_or(0);
        let bars = if mode == Progress::Bars {
            targets
                .iter()
                .map(|t| {
                    let b = multi.add(ProgressBar::new_spinner());
                    b.set_style(
                        ProgressStyle::with_template("{spinner:.cyan} {prefix:.bold} | {msg}")
                            .expect("template"),
                    );
                    b.set_prefix(format!("{:<width$}", t.context));
                    b.enable_steady_tick(Duration::from_millis(120));
                    b.set_message("waiting");
                    (t.context.clone(), b)
                })
                .collect()
        } else {
            HashMap::new()
        };
        Board { mode, color, multi, bars, warned: Default::default() }
    }

    fn set(&self, context: &str, message: &str) {
        match self.mode {
            Progress::Quiet => {}
            Progress::Lines => eprintln!("{}", view::line(context, message)),
            Progress::Bars => {
                if let Some(b) = self.bars.get(context) {
                    b.set_message(message.to_string());
                }
            }
        }
    }

    fn warn(&self, context: &str, message: &str) {
        if !self.warned.borrow_mut().insert((context.to_string(), message.to_string())) {
            return;
        }
        let line =
            view::line(context, &format!("{} {message}", paint(self.color, "warning:", Color::Yellow)));
        if self.mode == Progress::Bars {
            let _ = self.multi.println(line);
        } else {
            eprintln!("{line}");
        }
    }

    fn done(&self, r: &ClusterResult) {
        let text = match r.reason.as_str() {
            "" => r.result.as_str().to_string(),
            reason => format!("{}: {reason}", r.result.as_str()),
        };
        match self.bars.get(&r.context) {
            Some(b) => b.finish_with_message(text),
            None => self.set(&r.context, &text),
        }
    }

    fn clear(&self) {
        for b in self.bars.values() {
            b.finish_and_clear();
        }
    }
}

/// What round 1 found on one cluster that can be written.
struct Planned {
    kube: Kube,
    /// What round 1 read, which a take-over's writes are guarded by (a restore reads again, to
    /// check its permissions first).
    live: Box<crate::plan::live::Live>,
    before: String,
    after: String,
    unchanged: bool,
    /// What round 1 spent of the cluster's deadline.
    spent: Duration,
}

fn make(args: &TakeoverArgs) -> impl Fn(&crate::model::strategy::Strategy) -> Result<Change> + Clone + use<> {
    let version = args.version.clone();
    move |_| Ok(version.clone().map_or(Change::Restore, Change::Takeover))
}

/// As a single take-over asks: `--restore` checks its permissions first, as every other verb
/// that changes a task does.
fn request<'a>(args: &TakeoverArgs, warn: &'a dyn Fn(&str)) -> Request<'a> {
    Request {
        journal: Journal::Push(if args.restore { "restore" } else { "takeover" }),
        choice: args.routing,
        preflight: args.restore,
        expect: Expect { force: args.force, ..Expect::default() },
        warn,
        together: !args.restore,
    }
}

/// The first line of an error, for one cell of the table.
fn reason(e: &Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

fn failed(t: &Target, task: &str, e: &Error) -> ClusterResult {
    ClusterResult::new(t, task, fleet::classify(e), reason(e))
}

fn timed_out(t: &Target, task: &str, budget: Duration, what: &str) -> ClusterResult {
    ClusterResult::new(t, task, Outcome::Timeout, format!("no answer within {budget:?} ({what})"))
}

pub async fn run(ctx: &Context, args: TakeoverArgs, sel: Selection) -> Result<()> {
    let g = &ctx.global;
    if g.cluster.is_some() || g.user.is_some() {
        return Err(Error::invalid(
            "--context",
            "--cluster and --user pick one cluster and user: leave them out when --context names several contexts",
        ));
    }
    let known = crate::cluster::known_contexts(g.kubeconfig.as_deref())?;
    let resolved = fleet::resolve(&sel, &known, g.namespace.as_deref())?;
    for w in &resolved.warnings {
        ctx.ui.warn(w);
    }
    let targets = resolved.targets;
    let budget = args.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let parallel = if args.serial { 1 } else { args.max_parallel.map_or(targets.len(), usize::from).max(1) };
    let board = Board::new(ctx.ui.progress, ctx.ui.err_color(), &targets);
    let name = args.name.as_str();

    // Round 1: connect, read and judge, writing nothing.
    let mut planned: Vec<Option<Planned>> = Vec::new();
    let mut results: Vec<ClusterResult> = Vec::new();
    let reads = futures::stream::iter(targets.iter().map(|t| read_one(ctx, &args, t, budget, &board)))
        .buffered(parallel);
    futures::pin_mut!(reads);
    let mut stopped: Option<String> = None;
    while let Some(r) = reads.next().await {
        let t = &targets[results.len()];
        match r {
            Ok(p) => {
                let mut row = ClusterResult::new(t, name, Outcome::Planned, "");
                (row.before, row.after) = (Some(p.before.clone()), Some(p.after.clone()));
                board.set(&t.context, &format!("planned: {} -> {}", p.before, p.after));
                planned.push(Some(p));
                results.push(row);
            }
            Err(row) => {
                board.done(&row);
                planned.push(None);
                results.push(row);
                if args.serial {
                    stopped = Some(t.context.clone());
                    break;
                }
            }
        }
    }
    // Under --serial the clusters after the first failure are not even read.
    for t in &targets[results.len()..] {
        let row = ClusterResult::new(
            t,
            name,
            Outcome::Skipped,
            format!("not run: {} failed first (--serial)", stopped.clone().unwrap_or_default()),
        );
        board.done(&row);
        results.push(row);
        planned.push(None);
    }
    let unplanned: Vec<String> = results
        .iter()
        .filter(|r| !r.result.done() && r.result != Outcome::Skipped)
        .map(|r| r.context.clone())
        .collect();

    if args.dry_run {
        for (row, p) in results.iter_mut().zip(&planned) {
            if let Some(p) = p {
                if p.unchanged {
                    (row.result, row.reason) =
                        (Outcome::Unchanged, "already as asked; nothing written (--dry-run)".into());
                } else {
                    row.reason = "would change; nothing written (--dry-run)".into();
                }
                board.done(row);
            }
        }
        return finish(ctx, &args, &board, results, true);
    }

    if !unplanned.is_empty() && !args.allow_partial {
        let why = format!(
            "nothing written: {} could not be planned (--allow-partial writes the others)",
            unplanned.join(", ")
        );
        for (row, p) in results.iter_mut().zip(&planned) {
            if p.is_some() {
                (row.result, row.reason) = (Outcome::Skipped, why.clone());
                board.done(row);
            }
        }
        return finish(ctx, &args, &board, results, false);
    }

    // Round 2: the writes, each cluster on its own.
    let writes: Vec<_> = planned
        .into_iter()
        .enumerate()
        .filter_map(|(i, p)| p.map(|p| (i, p)))
        .map(|(i, p)| {
            let t = &targets[i];
            let args = &args;
            let board = &board;
            async move { (i, write_one(args, t, p, budget, board).await) }
        })
        .collect();
    let writes = futures::stream::iter(writes).buffered(parallel);
    futures::pin_mut!(writes);
    while let Some((i, row)) = writes.next().await {
        board.done(&row);
        let failed = !row.result.done();
        results[i] = row;
        if failed && args.serial {
            let first = results[i].context.clone();
            for r in results.iter_mut().filter(|r| r.result == Outcome::Planned) {
                (r.result, r.reason) =
                    (Outcome::Skipped, format!("not run: {first} failed first (--serial)"));
                board.done(r);
            }
            break;
        }
    }
    finish(ctx, &args, &board, results, false)
}

async fn read_one(
    ctx: &Context,
    args: &TakeoverArgs,
    t: &Target,
    budget: Duration,
    board: &Board,
) -> std::result::Result<Planned, ClusterResult> {
    let start = Instant::now();
    board.set(&t.context, "reading");
    let g = &ctx.global;
    // Each request may take no longer than the whole cluster may: a dead server costs the
    // deadline, never kube's own (much longer) dialling.
    let per_request = g.request_timeout.filter(|d| !d.is_zero()).map_or(budget, |d| d.min(budget));
    let opts = ConnectOptions {
        context: Some(t.context.clone()),
        namespace: Some(t.namespace.clone()),
        request_timeout: Some(per_request),
        ..g.connect_options()
    };
    let warn = |w: &str| board.warn(&t.context, w);
    let round = async {
        let kube = Kube::connect(&opts).await?;
        let req = request(args, &warn);
        // Who the user is goes out with the reads, as on one cluster.
        let (planned, user) = tokio::join!(
            route::plan(&kube, &t.namespace, &args.name, &req, make(args)),
            crate::cluster::whoami::user(&kube)
        );
        let (live, judged) = planned?;
        let kube = kube.with_user(user);
        operate::console_warnings(&live.task, &judged.change)
            .iter()
            .chain(&judged.warnings)
            .for_each(|w| warn(w));
        let after = operate::with_state(&live.task, &judged.to);
        Ok::<_, Error>(Planned {
            before: task_summary(&live.task),
            after: task_summary(&after),
            unchanged: judged.to == operate::state_of(&live.task),
            kube,
            live: Box::new(live),
            spent: Duration::ZERO,
        })
    };
    match tokio::time::timeout(budget, round).await {
        Ok(Ok(p)) => Ok(Planned { spent: start.elapsed(), ..p }),
        Ok(Err(e)) => Err(failed(t, &args.name, &e)),
        Err(_) => Err(timed_out(t, &args.name, budget, "reading")),
    }
}

async fn write_one(
    args: &TakeoverArgs,
    t: &Target,
    p: Planned,
    budget: Duration,
    board: &Board,
) -> ClusterResult {
    board.set(&t.context, "writing");
    let written = route::Progress::default();
    let warn = |w: &str| board.warn(&t.context, w);
    let req = request(args, &warn);
    let left = budget.saturating_sub(p.spent);
    let change = async {
        match args.restore {
            true => route::change(&p.kube, &t.namespace, &args.name, req, make(args), &written).await,
            false => {
                route::change_after(&p.kube, &t.namespace, &args.name, req, make(args), &written, *p.live)
                    .await
            }
        }
    };
    let mut row = ClusterResult::new(t, &args.name, Outcome::Ok, "");
    match tokio::time::timeout(left, change).await {
        Ok(Ok(o)) => {
            (row.before, row.after) = (Some(task_summary(&o.before)), Some(task_summary(&o.after)));
            if !o.changed {
                row.result = Outcome::Unchanged;
                row.reason = "already as asked; routing checked".into();
            }
        }
        Ok(Err(e)) => {
            row = failed(t, &args.name, &e);
            row.before = Some(p.before);
        }
        Err(_) => {
            let what = if written.task.get() {
                "the task was written, its routing was not; the retry finishes it"
            } else {
                "no write was confirmed"
            };
            row = timed_out(t, &args.name, budget, what);
            row.before = Some(p.before);
        }
    }
    row
}

/// Prints the rows on stdout; a take-over not finished everywhere ends with the command that
/// retries the clusters left.
fn finish(
    ctx: &Context,
    args: &TakeoverArgs,
    board: &Board,
    results: Vec<ClusterResult>,
    dry_run: bool,
) -> Result<()> {
    board.clear();
    print(&view::render(&results, args.output.unwrap_or_default(), dry_run, ctx.ui.color));
    match fleet::unfinished(&results, &invocation(ctx, args), dry_run) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The flags of this invocation that a retry repeats (all but `--context`).
fn invocation(ctx: &Context, args: &TakeoverArgs) -> Invocation {
    let g = &ctx.global;
    let mut flags: Vec<String> = Vec::new();
    let mut flag = |f: &str, v: Option<String>| {
        if let Some(v) = v {
            flags.extend([f.to_string(), v]);
        }
    };
    flag("--kubeconfig", g.kubeconfig.as_ref().map(|p| p.display().to_string()));
    flag("-n", g.namespace.clone());
    flag("--as", g.as_user.clone());
    for grp in &g.as_group {
        flag("--as-group", Some(grp.clone()));
    }
    flag("--as-uid", g.as_uid.clone());
    flag("--request-timeout", g.request_timeout.map(duration));
    flag("--timeout", args.timeout.map(duration));
    flag("--max-parallel", args.max_parallel.map(|n| n.to_string()));
    if args.routing != crate::plan::routing::RoutingChoice::Auto {
        flag(
            "--routing",
            clap::ValueEnum::to_possible_value(&args.routing).map(|v| v.get_name().to_string()),
        );
    }
    for (on, f) in
        [(args.force, "--force"), (args.serial, "--serial"), (args.allow_partial, "--allow-partial")]
    {
        if on {
            flags.push(f.into());
        }
    }
    Invocation { task: args.name.clone(), version: args.version.clone(), flags }
}

/// A duration as `parse_duration` reads it back.
fn duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
}

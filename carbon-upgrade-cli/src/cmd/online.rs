//! `carbon-upgrade online start | status | cutover | abort` and `online fallback start |
//! status | rollback | release`: flags and printing over `runbook::online`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use carbon_db::online::{self, OnlineOptions, Phase, State, Until};
use carbon_upgrade_cli::UpgradeError;
use carbon_upgrade_cli::runbook::journal::Journal;
use carbon_upgrade_cli::runbook::online::{
    self as flow, Direction, Followed, FollowerLock, Switch, SwitchReport,
};
use carbon_upgrade_cli::runbook::steps::{RunOptions, Runner};
use carbon_upgrade_cli::runbook::{ConfigArgs, identity, report};

use super::upgrade::{Loaded, TerminalUi, load_scoped};
use crate::Status;

#[derive(Debug, clap::Subcommand)]
pub enum OnlineCommand {
    /// With the old servers running: preflight, backups, a snapshot copy of every database
    /// verified at the snapshot, files, connect and carry-over; then follow the sources'
    /// changes into staging until stopped (Ctrl-C; `start` again continues).
    Start(StartArgs),
    /// Lag, transactions and rows applied, and whether a cut-over may start now.
    Status(StatusArgs),
    /// After the old servers are stopped: prove them stopped, drain, re-sync files, set the
    /// counters, prove staging equal to the source, remove what was created on the sources.
    Cutover(CutoverArgs),
    /// Stop following and remove everything created on the sources; staging stays as it is.
    Abort(AbortArgs),
    /// After the cut-over: keep the old database a live fallback by following staging's
    /// changes into it (writes to the old database, on the operator's request).
    #[command(subcommand)]
    Fallback(FallbackCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum FallbackCommand {
    /// Follow staging's changes into the old database until stopped (`start` again continues).
    Start(StartArgs),
    /// Lag and changes applied, and whether a rollback may start now.
    Status(StatusArgs),
    /// After the new servers are stopped: drain, prove the old database equal to staging,
    /// remove what was created on staging. Then start the old servers on the old home.
    Rollback(CutoverArgs),
    /// The upgrade is accepted: stop following, remove everything created on staging.
    Release(AbortArgs),
}

#[derive(Debug, clap::Args)]
pub struct FollowArgs {
    /// Copy workers per database.
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// Stop following rather than let the source retain more WAL than this (MiB).
    #[arg(long, default_value_t = 8192)]
    pub max_retained_mib: u64,
    /// How long slot creation may wait for the source's running transactions (seconds). On a
    /// busy PostgreSQL it waits for the next running-transactions record (up to ~15 s).
    #[arg(long, default_value_t = 120)]
    pub lock_timeout: u64,
}

impl FollowArgs {
    fn options(&self) -> OnlineOptions {
        OnlineOptions {
            jobs: self.jobs.max(1),
            max_retained_bytes: self.max_retained_mib << 20,
            lock_timeout_ms: self.lock_timeout * 1000,
            ..OnlineOptions::default()
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub follow: FollowArgs,
    /// Do the setup, catch up once, and return instead of following until stopped.
    #[arg(long)]
    pub once: bool,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct CutoverArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub follow: FollowArgs,
    /// Compare every table in full, not only what the stream touched.
    #[arg(long)]
    pub full_verify: bool,
    /// Start the fallback at the proven point (`online fallback start` then follows it).
    #[arg(long)]
    pub fallback: bool,
    /// Seconds to wait for a running follower to stop.
    #[arg(long, default_value_t = 60)]
    pub wait: u64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct AbortArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Seconds to wait for a running follower to stop.
    #[arg(long, default_value_t = 60)]
    pub wait: u64,
}

pub fn run(command: OnlineCommand) -> Result<Status> {
    match command {
        OnlineCommand::Start(a) => start(a),
        OnlineCommand::Status(a) => status(a, Direction::Forward),
        OnlineCommand::Cutover(a) => switch(a, Direction::Forward),
        OnlineCommand::Abort(a) => abort(a, Direction::Forward),
        OnlineCommand::Fallback(FallbackCommand::Start(a)) => fallback_start(a),
        OnlineCommand::Fallback(FallbackCommand::Status(a)) => status(a, Direction::Fallback),
        OnlineCommand::Fallback(FallbackCommand::Rollback(a)) => switch(a, Direction::Fallback),
        OnlineCommand::Fallback(FallbackCommand::Release(a)) => abort(a, Direction::Fallback),
    }
}

const JOURNAL: &str = "online-journal.jsonl";

/// SIGINT and SIGTERM set the returned flag instead of killing the process: set during the
/// setup steps, following stops before its first transaction.
fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing the signal handler")?;
    }
    Ok(stop)
}

fn start(args: StartArgs) -> Result<Status> {
    let stop = stop_on_signals()?;
    let loaded = load_scoped(&args.config, None)?;
    flow::refuse_unsupported(&loaded.settings, &loaded.pairs)?;
    let opts = args.follow.options();
    let identity = identity(&loaded.settings, &loaded.pairs);
    let state_dir = &loaded.settings.state_dir;
    let mut journal = if state_dir.join(JOURNAL).is_file() {
        Journal::resume_named(state_dir, JOURNAL, &identity)?
    } else {
        Journal::create_named(state_dir, JOURNAL, identity)?
    };
    eprintln!(
        "online run {} (journal {})",
        journal.run_id,
        journal.path().display()
    );
    let lock = FollowerLock::acquire(
        &flow::dir(&loaded.settings, Direction::Forward),
        false,
        Duration::ZERO,
    )?;
    let ui = TerminalUi::new();
    let runner = runner(&loaded, &ui, &opts);
    let outcome = runner.run(&mut journal);
    let written = report::from_journal(&loaded.settings, &journal.events);
    report::write_named(state_dir, "online-report", &written)?;
    outcome?;
    let streams = flow::streams(&loaded.settings, &loaded.pairs, Direction::Forward)?;
    follow_until_stopped(&streams, &opts, args.once, Direction::Forward, &stop)?;
    drop(lock);
    Ok(Status::Ok)
}

fn runner<'a>(loaded: &'a Loaded, ui: &'a TerminalUi, opts: &OnlineOptions) -> Runner<'a> {
    Runner {
        settings: &loaded.settings,
        homes: &loaded.homes,
        pairs: &loaded.pairs,
        options: RunOptions {
            online: Some(opts.clone()),
            ..RunOptions::default()
        },
        ui,
    }
}

/// Follows in the foreground until SIGINT/SIGTERM (or, with `once`, until caught up),
/// printing one status line every few seconds.
fn follow_until_stopped(
    streams: &[Followed],
    opts: &OnlineOptions,
    once: bool,
    direction: Direction,
    stop: &AtomicBool,
) -> Result<()> {
    let until = if once {
        Until::SourceEnd
    } else {
        Until::Stopped
    };
    let quiet = crate::QUIET.load(Ordering::Relaxed);
    if !quiet {
        eprintln!(
            "following {} database(s) ({}); Ctrl-C stops, `online {}` switches",
            streams.len(),
            match direction {
                Direction::Forward => "old → staging",
                Direction::Fallback => "staging → old",
            },
            match direction {
                Direction::Forward => "cutover",
                Direction::Fallback => "fallback rollback",
            }
        );
    }
    let result = std::thread::scope(|scope| {
        let follower = scope.spawn(|| flow::follow_all(streams, opts, until, stop));
        let mut last = Instant::now();
        while !follower.is_finished() {
            std::thread::sleep(Duration::from_millis(200));
            if !quiet && last.elapsed() >= Duration::from_secs(5) {
                last = Instant::now();
                eprintln!("{}", progress_line(streams));
            }
        }
        follower
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the follower panicked")))
    });
    result?;
    if !quiet {
        eprintln!("{}", progress_line(streams));
        eprintln!("following stopped; run the same command to continue");
    }
    Ok(())
}

fn progress_line(streams: &[Followed]) -> String {
    streams
        .iter()
        .map(|f| match State::load(&f.stream) {
            Ok(s) => format!(
                "{}: {} tx, {} rows, applied {}",
                f.datasource,
                s.transactions,
                s.rows.values().sum::<u64>(),
                s.applied.as_deref().unwrap_or("-")
            ),
            Err(e) => format!("{}: {e}", f.datasource),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn status(args: StatusArgs, direction: Direction) -> Result<Status> {
    let loaded = load_scoped(&args.config, None)?;
    let streams = flow::streams(&loaded.settings, &loaded.pairs, direction)?;
    let status = flow::status(&loaded.settings, &streams, direction)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        for s in &status.streams {
            let lag = match (&s.lag, &s.lag_error) {
                (Some(l), _) => format!(
                    "lag {} bytes / {:.1} s (source at {}), retained {} bytes",
                    l.bytes,
                    s.lag_seconds.unwrap_or(0.0),
                    l.source_position,
                    l.retained_bytes
                ),
                (None, Some(e)) => format!("lag unknown: {e}"),
                (None, None) => "lag -".into(),
            };
            println!(
                "{}: {:?}, applied {}, {} tx, {} rows, max lag {} ms, {lag}{}",
                s.datasource,
                s.phase,
                s.applied.as_deref().unwrap_or("-"),
                s.transactions,
                s.rows,
                s.max_lag_ms,
                if s.dirty.is_empty() {
                    String::new()
                } else {
                    format!(", re-copied at the switch: {}", s.dirty.join(", "))
                }
            );
        }
        match (&status.follower_pid, status.switch_allowed, &status.why_not) {
            (Some(pid), true, _) => println!("follower pid {pid}; the switch may start now"),
            (None, true, _) => println!("no follower running; the switch may start now"),
            (_, false, Some(why)) => println!("the switch may not start: {why}"),
            (_, false, None) => println!("nothing is being followed"),
        }
    }
    Ok(if status.switch_allowed {
        Status::Ok
    } else {
        Status::CheckFailed
    })
}

fn switch(args: CutoverArgs, direction: Direction) -> Result<Status> {
    let loaded = load_scoped(&args.config, None)?;
    let streams = flow::streams(&loaded.settings, &loaded.pairs, direction)?;
    let opts = args.follow.options();
    let ui = TerminalUi::new();
    let runner = runner(&loaded, &ui, &opts);
    let resync = || runner.resync();
    let switch = Switch {
        settings: &loaded.settings,
        homes: &loaded.homes,
        pairs: &loaded.pairs,
        direction,
        full_verify: args.full_verify,
        take_over_wait: Duration::from_secs(args.wait),
        resync: &resync,
        fallback: args.fallback,
    };
    let report = switch.run(&streams, &opts)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_switch(&report, direction);
    }
    Ok(Status::Ok)
}

fn print_switch(report: &SwitchReport, direction: Direction) {
    for d in &report.datasources {
        println!("{}", d.statement);
        println!(
            "  followed {:.1}s: {} tx, {} rows applied, max lag {} ms; proof: {} keys compared, {} counters set, re-copied [{}]; {}",
            d.follow_ms as f64 / 1000.0,
            d.transactions,
            d.rows,
            d.max_lag_ms,
            d.keys_compared,
            d.counters_set,
            d.recopied.join(", "),
            d.verify
        );
    }
    println!(
        "downtime {:.2}s (confirm stopped {} ms before it; drain {} ms, file re-sync {} ms, re-copy {} ms, counters {} ms, proof {} ms); removed {} ms: {}",
        report.downtime_ms as f64 / 1000.0,
        report.confirm_ms,
        report.drain_ms,
        report.resync_ms,
        report.recopy_ms,
        report.counters_ms,
        report.proof_ms,
        report.remove_ms,
        if report.objects_removed.is_empty() {
            "nothing".to_owned()
        } else {
            report.objects_removed.join(", ")
        }
    );
    match direction {
        Direction::Forward if report.fallback_started => println!(
            "start the new servers on staging; the fallback is ready: `online fallback start` follows staging into the old database"
        ),
        Direction::Forward => println!("start the new servers on staging"),
        Direction::Fallback => println!(
            "rolled back: start the old servers on the old home (untouched); the old database holds everything staging had"
        ),
    }
}

fn abort(args: AbortArgs, direction: Direction) -> Result<Status> {
    let loaded = load_scoped(&args.config, None)?;
    let streams = flow::streams(&loaded.settings, &loaded.pairs, direction)?;
    let removed = flow::abort(
        &loaded.settings,
        &streams,
        direction,
        Duration::from_secs(args.wait),
    )?;
    println!(
        "following stopped; removed: {}",
        if removed.is_empty() {
            "nothing".to_owned()
        } else {
            removed.join(", ")
        }
    );
    match direction {
        Direction::Forward => println!(
            "staging is left as it is (not equal to the source: drop it or start again with an empty one)"
        ),
        Direction::Fallback => {
            println!("the fallback is released: the old database is no longer kept up to date")
        }
    }
    Ok(Status::Ok)
}

/// The fallback window: staging → old database. Started at the cut-over's proven point
/// (`cutover --fallback`), or now if staging and the old database are proved equal with
/// the new servers stopped.
fn fallback_start(args: StartArgs) -> Result<Status> {
    let stop = stop_on_signals()?;
    let loaded = load_scoped(&args.config, None)?;
    let opts = args.follow.options();
    flow::refuse_reverse(&loaded.pairs)?;
    let streams = flow::streams(&loaded.settings, &loaded.pairs, Direction::Fallback)?;
    let lock = FollowerLock::acquire(
        &flow::dir(&loaded.settings, Direction::Fallback),
        false,
        Duration::ZERO,
    )?;
    for f in &streams {
        let state = State::load(&f.stream)?;
        if state.phase == Phase::New {
            prove_equal_now(f, &opts)?;
            online::begin_equal(&f.stream, &opts)
                .with_context(|| format!("starting the fallback of {}", f.datasource))?;
        }
    }
    follow_until_stopped(&streams, &opts, args.once, Direction::Fallback, &stop)?;
    drop(lock);
    Ok(Status::Ok)
}

/// A fallback not started at the cut-over: the two must be equal now (nothing writes).
fn prove_equal_now(f: &Followed, opts: &OnlineOptions) -> Result<()> {
    let report = carbon_db::verify(
        &f.stream.from,
        &f.stream.to,
        opts.jobs,
        &carbon_db::NoProgress,
    )
    .with_context(|| format!("comparing {} with {}", f.stream.from, f.stream.to))?;
    if !report.is_ok() {
        bail!(UpgradeError::Mismatch {
            summary: format!(
                "{} and {} differ ({}): the fallback starts only from equal databases; use `online cutover --fallback`, or stop the new servers before anything is written",
                f.stream.from,
                f.stream.to,
                report.summary()
            ),
        });
    }
    Ok(())
}

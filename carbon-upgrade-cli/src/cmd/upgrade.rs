//! `carbon-upgrade plan | preflight | run | resume | status`: the whole guide as one run.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use carbon_upgrade_cli::UpgradeError;
use carbon_upgrade_cli::runbook::datasources::{self, Pair};
use carbon_upgrade_cli::runbook::journal::{self, Journal};
use carbon_upgrade_cli::runbook::preflight::{self, Check};
use carbon_upgrade_cli::runbook::steps::{RunOptions, Runner, StepUi};
use carbon_upgrade_cli::runbook::{ConfigArgs, Homes, Settings, identity, plan, report};

use crate::Status;

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct PreflightArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Start the new server after replication (`bin/wso2server.sh start`) and wait for it.
    #[arg(long)]
    pub start: bool,
    /// Seconds to wait for "WSO2 Carbon started" and the HTTPS port.
    #[arg(long, default_value_t = 300)]
    pub start_timeout: u64,
    /// Fail on findings the old system already had (pre-existing) too, not only on those the
    /// upgrade introduced.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[arg(long)]
    pub json: bool,
}

/// Settings, both homes and the datasource pairs: what every command starts from.
struct Loaded {
    settings: Settings,
    homes: Homes,
    pairs: Vec<Pair>,
}

fn load(args: &ConfigArgs) -> Result<Loaded> {
    let settings = args.resolve()?;
    let check = preflight::homes_exist(&settings.old_home, &settings.new_home);
    if check.status == preflight::Status::Fail {
        return Err(UpgradeError::HomesRefused {
            detail: check.detail,
        }
        .into());
    }
    let homes = Homes::open(&settings)?;
    let pairs = datasources::resolve(&settings, &homes.old, &homes.new)?;
    Ok(Loaded {
        settings,
        homes,
        pairs,
    })
}

pub fn plan(args: PlanArgs) -> Result<Status> {
    let loaded = load(&args.config)?;
    let plan = plan::build(&loaded.settings, &loaded.homes, &loaded.pairs)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        print!("{}", plan::render(&plan));
    }
    Ok(Status::Ok)
}

pub fn preflight(args: PreflightArgs) -> Result<Status> {
    let settings = args.config.resolve()?;
    let mut checks = vec![preflight::homes_exist(
        &settings.old_home,
        &settings.new_home,
    )];
    if !preflight::any_failed(&checks) {
        let homes = Homes::open(&settings)?;
        match datasources::resolve(&settings, &homes.old, &homes.new) {
            Ok(pairs) => checks.extend(preflight::run(&homes, &pairs, &settings.backup_dir)),
            Err(err) => checks.push(Check {
                name: "datasources".into(),
                status: preflight::Status::Fail,
                detail: format!("{err:#}"),
            }),
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&checks)?);
    } else {
        for check in &checks {
            let mark = match check.status {
                preflight::Status::Pass => "pass",
                preflight::Status::Warn => "warn",
                preflight::Status::Fail => "FAIL",
            };
            println!("{mark}  {}: {}", check.name, check.detail);
        }
    }
    if preflight::any_failed(&checks) {
        return Ok(Status::Unsafe);
    }
    Ok(Status::Ok)
}

pub fn run(args: RunArgs) -> Result<Status> {
    let loaded = load(&args.config)?;
    let identity = identity(&loaded.settings, &loaded.pairs);
    let mut journal = Journal::create(&loaded.settings.state_dir, identity)?;
    execute(&loaded, &mut journal, &args)
}

pub fn resume(args: RunArgs) -> Result<Status> {
    let loaded = load(&args.config)?;
    let identity = identity(&loaded.settings, &loaded.pairs);
    let mut journal = Journal::resume(&loaded.settings.state_dir, &identity)?;
    execute(&loaded, &mut journal, &args)
}

fn execute(loaded: &Loaded, journal: &mut Journal, args: &RunArgs) -> Result<Status> {
    eprintln!(
        "run {} (journal {})",
        journal.run_id,
        journal.path().display()
    );
    let ui = TerminalUi::new();
    let runner = Runner {
        settings: &loaded.settings,
        homes: &loaded.homes,
        pairs: &loaded.pairs,
        options: RunOptions {
            start: args.start,
            start_timeout: Duration::from_secs(args.start_timeout),
            strict: args.strict,
        },
        ui: &ui,
    };
    let outcome = runner.run(journal);
    let report = report::from_journal(&loaded.settings, &journal.events);
    let (json_path, md_path) = report::write(&loaded.settings.state_dir, &report)?;
    match outcome {
        Ok(()) => {
            println!(
                "upgrade completed in {:.1}s; report: {} and {}",
                report.downtime_ms as f64 / 1000.0,
                md_path.display(),
                json_path.display()
            );
            Ok(Status::Ok)
        }
        Err(err) => {
            eprintln!(
                "report: {}; fix the cause and run `carbon-upgrade resume` with the same configuration",
                md_path.display()
            );
            Err(err)
        }
    }
}

pub fn status(args: StatusArgs) -> Result<Status> {
    let settings = args.config.resolve()?;
    let path = settings.state_dir.join(journal::FILE_NAME);
    let events = journal::read(&path)
        .with_context(|| format!("no run recorded in {}", settings.state_dir.display()))?;
    let report = report::from_journal(&settings, &events);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(Status::Ok);
    }
    println!("run {}: {}", report.run_id, report.status);
    for step in &report.steps {
        println!(
            "  {:<28} {:<10} {:>8.1}s",
            step.name,
            step.status,
            step.duration_ms as f64 / 1000.0
        );
    }
    if let Some(step) = &report.stopped_at {
        println!(
            "stopped at {step}{}",
            report
                .error
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
    }
    Ok(Status::Ok)
}

/// Step lines on stderr; a spinner with row counts while databases copy, on a TTY only.
struct TerminalUi {
    tty: bool,
    quiet: bool,
    bar: Mutex<Option<ProgressBar>>,
    rows: std::sync::atomic::AtomicU64,
}

impl TerminalUi {
    fn new() -> TerminalUi {
        TerminalUi {
            tty: std::io::stderr().is_terminal(),
            quiet: crate::QUIET.load(std::sync::atomic::Ordering::Relaxed),
            bar: Mutex::new(None),
            rows: 0.into(),
        }
    }
}

impl StepUi for TerminalUi {
    fn started(&self, index: usize, total: usize, step: &str) {
        if self.quiet {
            return;
        }
        if self.tty {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message(format!("[{index}/{total}] {step}"));
            bar.enable_steady_tick(Duration::from_millis(120));
            if let Ok(mut slot) = self.bar.lock() {
                *slot = Some(bar);
            }
        } else {
            eprintln!("[{index}/{total}] {step} ...");
        }
        self.rows.store(0, std::sync::atomic::Ordering::Relaxed);
    }

    fn finished(&self, step: &str, outcome: &str, elapsed: Duration) {
        if let Some(bar) = self.bar.lock().ok().and_then(|mut b| b.take()) {
            bar.finish_and_clear();
        }
        if self.quiet {
            return;
        }
        eprintln!("    {step}: {outcome} ({:.1}s)", elapsed.as_secs_f64());
    }

    fn db_progress(&self) -> &dyn carbon_db::Progress {
        self
    }

    fn fs_progress(&self) -> &dyn carbon_fs::Progress {
        &carbon_fs::NoProgress
    }
}

impl carbon_db::Progress for TerminalUi {
    fn event(&self, event: carbon_db::ProgressEvent<'_>) {
        if let carbon_db::ProgressEvent::Rows { rows, .. } = event {
            let total = self
                .rows
                .fetch_add(rows, std::sync::atomic::Ordering::Relaxed)
                + rows;
            if let Some(bar) = self.bar.lock().ok().and_then(|b| b.clone()) {
                bar.set_prefix(format!("{total} rows"));
            }
        }
    }
}

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
use carbon_upgrade_cli::runbook::scope::{DatabasesFile, Scope};
use carbon_upgrade_cli::runbook::steps::{RunOptions, Runner, StepUi};
use carbon_upgrade_cli::runbook::{ConfigArgs, Homes, Settings, identity, plan, report};

use crate::Status;

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct PreflightArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub scope: ScopeArgs,
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
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Print the outcome as one JSON object on stdout (steps applied, error, files).
    #[arg(long)]
    pub json: bool,
    /// Node scope: this node's deployment/server is the same directory as another node's,
    /// which replicated it; DIR holds that node's manifests/deployment-server.manifest.jsonl
    /// and userstore-edits.json. It is verified against them, not replicated again.
    #[arg(long, value_name = "DIR")]
    pub shared_deployment_from: Option<std::path::PathBuf>,
}

/// `--scope` and the node scope's `--databases`.
#[derive(Debug, Clone, clap::Args)]
pub struct ScopeArgs {
    /// Which part of the run: all (one machine), databases (once per cluster), node (each node).
    #[arg(long, value_enum, default_value_t = Scope::All)]
    pub scope: Scope,
    /// The databases.json the database scope wrote (required by `run`/`resume --scope node`).
    #[arg(long, value_name = "FILE")]
    pub databases: Option<std::path::PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Which scope's journal to read.
    #[arg(long, value_enum, default_value_t = Scope::All)]
    pub scope: Scope,
    #[arg(long)]
    pub json: bool,
}

/// Settings, both homes and the datasource pairs: what every command starts from.
pub(crate) struct Loaded {
    pub(crate) settings: Settings,
    pub(crate) homes: Homes,
    pub(crate) pairs: Vec<Pair>,
}

/// Settings, homes and pairs; with `databases`, the node's database pairs pointed at the
/// staging that file names.
pub(crate) fn load_scoped(
    args: &ConfigArgs,
    databases: Option<&std::path::Path>,
) -> Result<Loaded> {
    let settings = args.resolve()?;
    let check = preflight::homes_exist(&settings.old_home, &settings.new_home);
    if check.status == preflight::Status::Fail {
        return Err(UpgradeError::HomesRefused {
            detail: check.detail,
        }
        .into());
    }
    let homes = Homes::open(&settings)?;
    let mut pairs = datasources::resolve(&settings, &homes.old, &homes.new)?;
    if let Some(path) = databases {
        DatabasesFile::read(path)?.apply(&mut pairs, path)?;
    }
    Ok(Loaded {
        settings,
        homes,
        pairs,
    })
}

pub fn plan(args: PlanArgs) -> Result<Status> {
    let loaded = load_scoped(&args.config, args.scope.databases.as_deref())?;
    let mut plan = plan::build(&loaded.settings, &loaded.homes, &loaded.pairs)?;
    let scope = args.scope.scope;
    plan.steps.retain(|s| scope.includes(s, &loaded.pairs));
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
            Ok(pairs) => checks.extend(preflight::run_scope(
                args.scope.scope,
                &homes,
                &pairs,
                &settings.backup_dir,
            )),
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
    with_json_outcome(&args, |args| {
        let loaded = load_run(args)?;
        let identity = identity(&loaded.settings, &loaded.pairs);
        let scope = args.scope.scope;
        let mut journal =
            Journal::create_named(&loaded.settings.state_dir, scope.journal_file(), identity)?;
        execute(&loaded, &mut journal, args)
    })
}

pub fn resume(args: RunArgs) -> Result<Status> {
    with_json_outcome(&args, |args| {
        let loaded = load_run(args)?;
        let identity = identity(&loaded.settings, &loaded.pairs);
        let scope = args.scope.scope;
        let mut journal =
            Journal::resume_named(&loaded.settings.state_dir, scope.journal_file(), &identity)?;
        execute(&loaded, &mut journal, args)
    })
}

/// The node scope needs the database scope's file; the others must not be given one.
fn load_run(args: &RunArgs) -> Result<Loaded> {
    let databases = args.scope.databases.as_deref();
    match (args.scope.scope, databases) {
        (Scope::Node, None) => anyhow::bail!(
            "--scope node needs --databases FILE (the databases.json of `run --scope databases`)"
        ),
        (Scope::All | Scope::Databases, Some(_)) => {
            anyhow::bail!("--databases is read by --scope node only")
        }
        (Scope::All | Scope::Databases, None) if args.shared_deployment_from.is_some() => {
            anyhow::bail!("--shared-deployment-from is read by --scope node only")
        }
        _ => load_scoped(&args.config, databases),
    }
}

/// With `--json`, a failure also prints its outcome object (the error on one line) before the
/// error goes to `exit.rs` for its code.
fn with_json_outcome(
    args: &RunArgs,
    body: impl FnOnce(&RunArgs) -> Result<Status>,
) -> Result<Status> {
    let result = body(args);
    if args.json
        && let Err(err) = &result
        && !OUTCOME_PRINTED.load(std::sync::atomic::Ordering::Relaxed)
    {
        let outcome = Outcome::failed_early(args, format!("{err:#}"));
        println!("{}", serde_json::to_string(&outcome)?);
    }
    result
}

/// What `run --json` / `resume --json` print: one object, for Ansible and other drivers.
#[derive(Debug, serde::Serialize)]
struct Outcome {
    scope: Scope,
    /// `completed`, `failed` (or `refused` before any journal existed).
    status: String,
    run_id: Option<String>,
    /// Steps performed by this invocation (not those an earlier attempt completed).
    applied: Vec<String>,
    /// Steps already completed by an earlier attempt, skipped now.
    already_done: Vec<String>,
    failed_step: Option<String>,
    error: Option<String>,
    journal: Option<std::path::PathBuf>,
    report_json: Option<std::path::PathBuf>,
    report_md: Option<std::path::PathBuf>,
    /// The database scope's `databases.json`, once written.
    databases: Option<std::path::PathBuf>,
}

/// Set once `execute` has printed the outcome of a run that got as far as its journal.
static OUTCOME_PRINTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl Outcome {
    fn failed_early(args: &RunArgs, error: String) -> Outcome {
        Outcome {
            scope: args.scope.scope,
            status: "refused".into(),
            run_id: None,
            applied: Vec::new(),
            already_done: Vec::new(),
            failed_step: None,
            error: Some(error),
            journal: None,
            report_json: None,
            report_md: None,
            databases: None,
        }
    }
}

fn execute(loaded: &Loaded, journal: &mut Journal, args: &RunArgs) -> Result<Status> {
    let scope = args.scope.scope;
    let before = journal.events.len();
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
            scope,
            shared_deployment_from: args.shared_deployment_from.clone(),
            online: None,
        },
        ui: &ui,
    };
    let outcome = runner.run(journal);
    let report = report::from_journal(&loaded.settings, &journal.events);
    let (json_path, md_path) =
        report::write_named(&loaded.settings.state_dir, scope.report_stem(), &report)?;
    if args.json {
        let applied = journal.events[before..]
            .iter()
            .filter_map(|e| match e {
                journal::Event::Completed { step, .. } => Some(step.to_string()),
                _ => None,
            })
            .collect::<Vec<_>>();
        let already_done = journal.events[..before]
            .iter()
            .filter_map(|e| match e {
                journal::Event::Completed { step, .. } => Some(step.to_string()),
                _ => None,
            })
            .collect();
        let databases =
            carbon_upgrade_cli::runbook::scope::databases_path(&loaded.settings.state_dir);
        let result = Outcome {
            scope,
            status: if outcome.is_ok() {
                "completed"
            } else {
                "failed"
            }
            .into(),
            run_id: Some(journal.run_id.clone()),
            applied,
            already_done,
            failed_step: report.stopped_at.as_ref().map(ToString::to_string),
            error: outcome.as_ref().err().map(|e| format!("{e:#}")),
            journal: Some(journal.path().to_path_buf()),
            report_json: Some(json_path.clone()),
            report_md: Some(md_path.clone()),
            databases: (scope == Scope::Databases && outcome.is_ok() && databases.is_file())
                .then_some(databases),
        };
        println!("{}", serde_json::to_string(&result)?);
        OUTCOME_PRINTED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    match outcome {
        Ok(()) if args.json => Ok(Status::Ok),
        Ok(()) => {
            println!(
                "upgrade completed: downtime {:.1}s (critical path), {:.1}s in all with the background database backups; report: {} and {}",
                report.downtime_ms as f64 / 1000.0,
                report.total_ms as f64 / 1000.0,
                md_path.display(),
                json_path.display()
            );
            Ok(Status::Ok)
        }
        Err(err) => {
            eprintln!(
                "report: {}; fix the cause and run `carbon-upgrade resume{}` with the same configuration",
                md_path.display(),
                match scope {
                    Scope::All => String::new(),
                    other => format!(" --scope {}", other.name()),
                }
            );
            Err(err)
        }
    }
}

pub fn status(args: StatusArgs) -> Result<Status> {
    let settings = args.config.resolve()?;
    let path = settings.state_dir.join(args.scope.journal_file());
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
pub(crate) struct TerminalUi {
    tty: bool,
    quiet: bool,
    bar: Mutex<Option<ProgressBar>>,
    rows: std::sync::atomic::AtomicU64,
}

impl TerminalUi {
    pub(crate) fn new() -> TerminalUi {
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

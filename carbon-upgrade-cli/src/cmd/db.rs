//! `carbon-upgrade db copy|verify|inspect`: same-vendor copy to the staging database, proved.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use carbon_config::Secret;
use carbon_db::{CopyOptions, DbUrl, NoProgress, Progress, ProgressEvent, Vendor};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use carbon_upgrade_cli::UpgradeError;

use crate::Status;

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Copy a database into an empty (or absent) staging database of the same vendor, then verify.
    Copy(Box<CopyArgs>),
    /// Prove that TO equals FROM: objects, exact row counts, content digests, counters.
    Verify(Box<VerifyArgs>),
    /// List a database's objects, tables (exact rows, sizes) and counters.
    Inspect(InspectArgs),
    /// Prove a database against a fresh install's scripts (run in a scratch database on the
    /// same server, then dropped): every difference classified; exit 1 when something is missing.
    SchemaDiff(SchemaDiffArgs),
    /// Apply migration scripts to a database (staging) statement by statement, journalled:
    /// the first failure stops naming script:line; run again with the same journal to resume.
    Migrate(MigrateArgs),
}

#[derive(Debug, Args)]
pub struct Endpoints {
    /// Source: JDBC URL as in master-datasources.xml, or postgres://, mysql://, sqlite:.
    #[arg(long, value_name = "URL")]
    from: String,
    /// Target (staging) database URL, same vendor.
    #[arg(long, value_name = "URL")]
    to: String,
    /// Source user name (overrides the URL's); the password comes from CARBON_FROM_PASSWORD.
    #[arg(long)]
    from_user: Option<String>,
    /// Source password (from the environment only, never a flag).
    #[arg(skip = std::env::var("CARBON_FROM_PASSWORD").ok().map(Secret::from))]
    from_password: Option<Secret>,
    /// Target user name (overrides the URL's); the password comes from CARBON_TO_PASSWORD.
    #[arg(long)]
    to_user: Option<String>,
    #[arg(skip = std::env::var("CARBON_TO_PASSWORD").ok().map(Secret::from))]
    to_password: Option<Secret>,
    /// Product home that relative jdbc:h2: / sqlite: paths are relative to.
    #[arg(long, value_name = "DIR")]
    home: Option<PathBuf>,
    /// Worker sessions per side.
    #[arg(long, short = 'j', default_value_t = 2)]
    jobs: usize,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    #[command(flatten)]
    endpoints: Endpoints,
    /// PostgreSQL: stream the rows even when a same-server template copy is possible.
    #[arg(long)]
    logical: bool,
    /// Skip verification. The command then exits 1 ("copied, not proven"): exit 0 always
    /// means complete and verified; run `db verify` later to prove the copy.
    #[arg(long)]
    no_verify: bool,
    /// Resume journal (default: one per source/target pair in the temp directory).
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    endpoints: Endpoints,
}

pub use super::schema::{MigrateArgs, SchemaDiffArgs};

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Database URL.
    url: String,
    /// User name (overrides the URL's); the password comes from CARBON_PASSWORD.
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    home: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub fn run(command: DbCommand) -> anyhow::Result<Status> {
    match command {
        DbCommand::Copy(args) => copy(*args),
        DbCommand::Verify(args) => verify(*args),
        DbCommand::Inspect(args) => inspect(args),
        DbCommand::SchemaDiff(args) => super::schema::schema_diff(args),
        DbCommand::Migrate(args) => super::schema::migrate(args),
    }
}

pub(crate) fn parse(
    input: &str,
    home: Option<&std::path::Path>,
    user: Option<String>,
    password: Option<&Secret>,
) -> anyhow::Result<DbUrl> {
    let password = password.and_then(Secret::plain).map(str::to_owned);
    Ok(DbUrl::parse_in(input, home)?.with_credentials(user, password))
}

fn endpoints(e: &Endpoints) -> anyhow::Result<(DbUrl, DbUrl)> {
    let side = |url: &str, user: &Option<String>, password: &Option<Secret>| {
        parse(url, e.home.as_deref(), user.clone(), password.as_ref())
    };
    let from = side(&e.from, &e.from_user, &e.from_password).context("--from")?;
    let to = side(&e.to, &e.to_user, &e.to_password).context("--to")?;
    Ok((from, to))
}

fn default_journal(from: &DbUrl, to: &DbUrl) -> PathBuf {
    // FNV-1a over the redacted addresses: one journal per pair, no secret in its name.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{from}\n{to}").bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    std::env::temp_dir().join(format!("carbon-upgrade-db-copy-{h:016x}.jsonl"))
}

/// indicatif bars on a terminal; nothing otherwise.
struct Bars {
    bar: ProgressBar,
    tables: Mutex<(u64, u64)>,
}

impl Bars {
    /// Runs `work` with progress bars on a terminal (when `enabled`), cleared afterwards.
    fn around<T>(enabled: bool, work: impl FnOnce(&dyn Progress) -> T) -> T {
        let bars = Bars::new(enabled);
        let result = match &bars {
            Some(b) => work(b),
            None => work(&NoProgress),
        };
        if let Some(b) = &bars {
            b.bar.finish_and_clear();
        }
        result
    }

    fn new(enabled: bool) -> Option<Bars> {
        if !enabled || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {msg:>12} [{elapsed_precise}] {bytes:>10} {bytes_per_sec:>12} {prefix}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        Some(Bars {
            bar,
            tables: Mutex::new((0, 0)),
        })
    }
}

impl Progress for Bars {
    fn event(&self, event: ProgressEvent<'_>) {
        match event {
            ProgressEvent::Phase(p) => self.bar.set_message(p.to_owned()),
            ProgressEvent::Planned { tables, bytes } => {
                let mut t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
                *t = (0, tables as u64);
                self.bar.set_length(bytes);
                self.bar.set_prefix(format!("tables 0/{tables}"));
            }
            ProgressEvent::Rows { bytes, .. } => self.bar.inc(bytes),
            ProgressEvent::TableDone { .. } => {
                let mut t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
                t.0 += 1;
                self.bar.set_prefix(format!("tables {}/{}", t.0, t.1));
            }
            ProgressEvent::Warning(w) => self.bar.println(format!("warning: {w}")),
        }
    }
}

fn copy(args: CopyArgs) -> anyhow::Result<Status> {
    let (from, to) = endpoints(&args.endpoints)?;
    let journal = match from.vendor() {
        Vendor::Postgres | Vendor::MySql => Some(
            args.journal
                .clone()
                .unwrap_or_else(|| default_journal(&from, &to)),
        ),
        _ => None,
    };
    let opts = CopyOptions {
        jobs: args.endpoints.jobs.max(1),
        logical: args.logical,
        verify: !args.no_verify,
        journal: journal.clone(),
        online: false,
    };
    let report = Bars::around(!args.endpoints.json, |p| {
        carbon_db::copy(&from, &to, &opts, p)
    })?;
    if args.endpoints.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "copied {} -> {} ({}, {}): {} tables, {} rows, {} counters in {:.1}s{}",
            report.source,
            report.target,
            report.vendor,
            report.method,
            report.tables,
            report.rows,
            report.counters,
            report.copy_ms as f64 / 1000.0,
            if report.resumed { " (resumed)" } else { "" }
        );
        for w in &report.warnings {
            println!("warning: {w}");
        }
        println!("phases: {}", report.phases.summary());
        match &report.verify {
            Some(v) => println!("{} in {:.1}s", v.summary(), v.elapsed_ms as f64 / 1000.0),
            None => println!("not verified (--no-verify)"),
        }
    }
    if let Some(v) = &report.verify
        && !v.is_ok()
    {
        return Err(UpgradeError::Mismatch {
            summary: v.summary(),
        }
        .into());
    }
    // A finished run needs no journal: a later copy to the same target must start afresh.
    if let Some(j) = journal {
        let _ = std::fs::remove_file(j);
    }
    if report.verify.is_none() {
        return Ok(Status::CheckFailed);
    }
    Ok(Status::Ok)
}

fn verify(args: VerifyArgs) -> anyhow::Result<Status> {
    let (from, to) = endpoints(&args.endpoints)?;
    let jobs = args.endpoints.jobs.max(1);
    let report = Bars::around(!args.endpoints.json, |p| {
        carbon_db::verify(&from, &to, jobs, p)
    })?;
    if args.endpoints.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for m in &report.mismatches {
            println!("{} {}: {}", m.object, m.kind, m.detail);
        }
        println!("{}", report.summary());
    }
    if report.is_ok() {
        Ok(Status::Ok)
    } else {
        Err(UpgradeError::Mismatch {
            summary: report.summary(),
        }
        .into())
    }
}

fn inspect(args: InspectArgs) -> anyhow::Result<Status> {
    let url = parse(
        &args.url,
        args.home.as_deref(),
        args.user,
        std::env::var("CARBON_PASSWORD")
            .ok()
            .map(Secret::from)
            .as_ref(),
    )?;
    let report = carbon_db::inspect(&url)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(Status::Ok);
    }
    println!("{} ({}), {} bytes", report.url, report.vendor, report.bytes);
    let objects: Vec<String> = report
        .objects
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    println!(
        "objects: {}; counters: {}",
        objects.join(", "),
        report.counters
    );
    for t in &report.tables {
        println!(
            "  {:<48} {:>12} rows {:>14} bytes",
            t.table, t.rows, t.bytes
        );
    }
    Ok(Status::Ok)
}

//! `carbon-upgrade`: flag parsing and glue over the carbon-* libraries and this package's
//! library (the runbook, in `lib.rs`).
//!
//! This is the only crate that prints or exits. Every subcommand lives in `cmd/<name>.rs`
//! and returns a [`Status`] or an error; `exit.rs` alone turns either into the exit code.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cmd;
mod exit;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use exit::Status;

/// Perform and prove a WSO2 Carbon product upgrade (database, files, configuration).
#[derive(Debug, Parser)]
#[command(name = "carbon-upgrade", version, propagate_version = true)]
struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace). Secrets are redacted at every level.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show everything a run would do: databases, staging, files, configuration edits.
    Plan(cmd::upgrade::PlanArgs),
    /// Check that upgrading is safe now; one line per check.
    Preflight(cmd::upgrade::PreflightArgs),
    /// Perform the whole upgrade: preflight, backups, copy, connect, replicate, verify, report.
    Run(cmd::upgrade::RunArgs),
    /// Continue an interrupted run from its journal.
    Resume(cmd::upgrade::RunArgs),
    /// Where a run stands, from its journal.
    Status(cmd::upgrade::StatusArgs),
    /// Build a 4.4.6 home on an embedded database and a 4.4.7 home, and upgrade one to the other.
    Demo(cmd::demo::DemoArgs),
    /// The upgrade with the old servers running: copy, follow changes, cut over in seconds.
    #[command(subcommand)]
    Online(cmd::online::OnlineCommand),
    /// Copy, verify and inspect databases (same vendor only).
    #[command(subcommand)]
    Db(cmd::db::DbCommand),
    /// Replicate and verify product-home directories with manifests.
    #[command(subcommand)]
    Fs(cmd::fs::FsCommand),
    /// Read, edit, diff and connect Carbon configuration.
    #[command(subcommand)]
    Config(cmd::config::ConfigCommand),
    /// Verify an upgraded home offline and the running server live.
    #[command(subcommand)]
    Verify(cmd::verify::VerifyCommand),
    /// Write a man page or shell completions to stdout (used by `cargo xtask release`).
    #[command(hide = true)]
    Generate {
        #[arg(value_enum)]
        what: cmd::generate::Artifact,
    },
}

/// `-q`: commands print their data and errors only, no progress.
pub static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn main() -> ExitCode {
    let cli = Cli::parse();
    QUIET.store(cli.quiet, std::sync::atomic::Ordering::Relaxed);
    init_logging(cli.verbose, cli.quiet);
    let result = match cli.command {
        Command::Plan(a) => cmd::upgrade::plan(a),
        Command::Preflight(a) => cmd::upgrade::preflight(a),
        Command::Run(a) => cmd::upgrade::run(a),
        Command::Resume(a) => cmd::upgrade::resume(a),
        Command::Status(a) => cmd::upgrade::status(a),
        Command::Demo(a) => cmd::demo::demo(a),
        Command::Online(c) => cmd::online::run(c),
        Command::Db(c) => cmd::db::run(c),
        Command::Fs(c) => cmd::fs::run(c),
        Command::Config(c) => cmd::config::run(c),
        Command::Verify(c) => cmd::verify::run(c),
        Command::Generate { what } => {
            cmd::generate::run(what, <Cli as clap::CommandFactory>::command())
        }
    };
    exit::finish(result)
}

fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CARBON_UPGRADE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour_stderr())
        .without_time()
        .init();
}

/// Colour only for a person at a terminal: a redirected log or a pipe gets plain text, and
/// `NO_COLOR` (any non-empty value, no-color.org) turns it off everywhere.
fn colour_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

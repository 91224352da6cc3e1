//! `cargo xtask`: the project's automation (test, conformance, fixture, bench).
//!
//! Everything a contributor or CI runs goes through here, so that `.ci/run` and a developer's
//! machine run the same commands.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod bench_online;
mod faults;
mod fixture;
mod fleet;
mod fuzz;
mod integration;
mod release;
mod servers;
mod tidy;
mod tidy_deps;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "carbon-upgrade project automation")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// fmt --check, clippy -D warnings, then every test against real database servers.
    Test {
        /// Extra arguments for `cargo nextest run`.
        #[arg(last = true)]
        nextest_args: Vec<String>,
    },
    /// The conformance suite over the real WSO2 files in ../shared/carbon-fixtures.
    Conformance {
        /// Where the WSO2 fixtures are (default: ../shared/carbon-fixtures beside the repo).
        #[arg(long)]
        fixtures: Option<PathBuf>,
    },
    /// Build a Carbon-shaped database on each vendor and a product home; print sizes.
    Fixture(fixture::Args),
    /// Fault injection: SIGKILL in every step, database sessions killed mid-copy.
    Faults(faults::Args),
    /// End-to-end upgrades on real servers, SIGKILLed at random moments and resumed.
    Integration(integration::Args),
    /// The Ansible playbook over a three-node cluster on this machine (installs ansible-core).
    Fleet(fleet::Args),
    /// Every cargo-fuzz target for a while (needs cargo-fuzz; stable via RUSTC_BOOTSTRAP).
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Unoptimised targets: a quicker build for a short smoke run (CI).
        #[arg(long)]
        dev: bool,
    },
    /// Release build, man page, shell completions and SHA256SUMS under target/dist.
    Release,
    /// Find or start the test servers (and start the TLS-only ones), print the environment
    /// that points tests at them, and keep them until stdin closes: for running single tests.
    Servers,
    /// Benchmarks against the peer tools (see `cargo xtask bench db`).
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Test { nextest_args } => test(&nextest_args),
        Task::Conformance { fixtures } => conformance(fixtures),
        Task::Fixture(args) => fixture::run(&args),
        Task::Bench { args } if args.first().is_some_and(|a| a == "online") => {
            bench_online::run(&args[1..])
        }
        Task::Bench { args } => bench::run(&args),
        Task::Release => release::run(),
        Task::Fuzz { seconds, dev } => fuzz::run(seconds, dev),
        Task::Integration(args) => integration::run(&args),
        Task::Faults(args) => faults::run(&args),
        Task::Fleet(args) => fleet::run(&args),
        Task::Servers => servers::hold(),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask lives one level below it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// `cargo` in the workspace root.
fn cargo() -> Command {
    cargo_in(&workspace_root())
}

/// `cargo` in `dir`, without the package variables `cargo run` gave this process. Build
/// scripts such as ring's and cc's declare `rerun-if-env-changed=CARGO_PKG_NAME` (and
/// `CARGO_MANIFEST_DIR`, …): left in, every inner cargo call would rebuild ring and all that
/// depends on it, and the next `cargo xtask` would rebuild them back.
fn cargo_in(dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(dir);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_by_cargo_run = name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || matches!(
                &*name,
                "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
            );
        if set_by_cargo_run {
            cmd.env_remove(&*name);
        }
    }
    cmd
}

fn run_step(name: &str, cmd: &mut Command) -> Result<()> {
    println!("==> {name}");
    let started = Instant::now();
    let status = cmd.status().with_context(|| format!("starting {name}"))?;
    if !status.success() {
        bail!("{name} failed ({status})");
    }
    println!("    {name}: ok in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Test filter: conformance tests run only under `cargo xtask conformance`.
const NOT_CONFORMANCE: &str = "not test(/conformance::/)";
const CONFORMANCE: &str = "test(/conformance::/)";

fn test(nextest_args: &[String]) -> Result<()> {
    let started = Instant::now();
    run_step(
        "cargo fmt --check",
        cargo().args(["fmt", "--all", "--", "--check"]),
    )?;
    run_step(
        "cargo clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    let servers = servers::Servers::find_or_start()?;
    servers.print();
    let tls_servers = servers::TlsServers::start()?;
    tls_servers.print();
    let stream_servers = servers::StreamServers::start()?;
    stream_servers.print();
    let counts = count_tests_per_vendor(&servers, NOT_CONFORMANCE)?;
    println!("==> tests per vendor: {counts}");
    counts.require_every_vendor()?;
    let mut nextest = nextest_run();
    nextest.args(["-E", NOT_CONFORMANCE]).args(nextest_args);
    servers.apply(&mut nextest);
    tls_servers.apply(&mut nextest);
    stream_servers.apply(&mut nextest);
    run_step("cargo nextest run (all but conformance)", &mut nextest)?;
    println!(
        "==> cargo xtask test: passed in {:.0}s against {}; {counts}",
        started.elapsed().as_secs_f64(),
        servers.names()
    );
    Ok(())
}

fn conformance(fixtures: Option<PathBuf>) -> Result<()> {
    let dir = fixtures.unwrap_or_else(|| workspace_root().join("../shared/carbon-fixtures"));
    if !dir.is_dir() {
        // A suite that passes without its inputs proves nothing: missing fixtures fail everywhere.
        bail!(
            "WSO2 fixtures not found at {}; pass --fixtures DIR",
            dir.display()
        );
    }
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;
    let parsed = every_fixture_xml_parses(&dir)?;
    println!("==> conformance: {parsed} fixture XML files parse (quick-xml, to the last event)");
    let servers = servers::Servers::find_or_start()?;
    servers.print();
    let mut nextest = nextest_run();
    nextest
        .args(["--no-tests=warn", "-E", CONFORMANCE])
        .env("CARBON_FIXTURES", &dir);
    servers.apply(&mut nextest);
    run_step("cargo nextest run (conformance)", &mut nextest)
}

/// `cargo nextest run --workspace --no-fail-fast`: every failure reported, not just the first.
fn nextest_run() -> Command {
    let mut cmd = cargo();
    cmd.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    cmd
}

/// The first conformance check: every `.xml` and `.wsdl` file among the fixtures is
/// well-formed as far as quick-xml can tell (matching end tags checked).
fn every_fixture_xml_parses(dir: &Path) -> Result<usize> {
    let mut parsed = 0;
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.with_context(|| format!("walking {}", dir.display()))?;
        let path = entry.path();
        let is_xml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("xml" | "wsdl" | "xsd")
        );
        if !entry.file_type().is_file() || !is_xml {
            continue;
        }
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let mut reader = quick_xml::Reader::from_reader(bytes.as_slice());
        reader.config_mut().check_end_names = true;
        let mut buf = Vec::new();
        loop {
            match reader.read_event_into(&mut buf) {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(_) => buf.clear(),
                Err(err) => bail!(
                    "{} does not parse at byte {}: {err}",
                    path.display(),
                    reader.buffer_position()
                ),
            }
        }
        parsed += 1;
    }
    if parsed == 0 {
        bail!("no XML files under {}", dir.display());
    }
    Ok(parsed)
}

/// How many tests exercise each vendor, by the naming convention (vendor in the test path).
#[derive(Debug, Default)]
struct VendorCounts {
    postgres: usize,
    mariadb: usize,
    sqlite: usize,
    total: usize,
}

impl VendorCounts {
    fn require_every_vendor(&self) -> Result<()> {
        for (vendor, n) in [
            ("postgres", self.postgres),
            ("mariadb", self.mariadb),
            ("sqlite", self.sqlite),
        ] {
            if n == 0 {
                bail!("no test exercises {vendor}: the suite would report success without it");
            }
        }
        Ok(())
    }
}

impl std::fmt::Display for VendorCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} tests in all; postgres {}, mariadb {}, sqlite {}",
            self.total, self.postgres, self.mariadb, self.sqlite
        )
    }
}

fn count_tests_per_vendor(servers: &servers::Servers, filter: &str) -> Result<VendorCounts> {
    let mut list = cargo();
    list.args([
        "nextest",
        "list",
        "--workspace",
        "--message-format",
        "json",
        "-E",
        filter,
    ]);
    servers.apply(&mut list);
    let output = list.output().context("cargo nextest list")?;
    if !output.status.success() {
        bail!(
            "cargo nextest list failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("parsing `cargo nextest list` output")?;
    let mut counts = VendorCounts::default();
    let suites = json["rust-suites"].as_object().into_iter().flatten();
    for (_, suite) in suites {
        let cases = suite["testcases"].as_object().into_iter().flatten();
        for (name, case) in cases {
            if case["filter-match"]["status"] != "matches" {
                continue;
            }
            counts.total += 1;
            let name = name.to_lowercase();
            counts.postgres += usize::from(name.contains("postgres") || name.contains("pg_"));
            counts.mariadb += usize::from(name.contains("mariadb") || name.contains("mysql"));
            counts.sqlite += usize::from(name.contains("sqlite"));
        }
    }
    Ok(counts)
}

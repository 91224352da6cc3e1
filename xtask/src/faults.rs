//! `cargo xtask faults`: fault injection against `carbon-upgrade run`.
//!
//! 1. SIGKILL at seeded moments spread over every step (an unkilled run first times each
//!    step; the kill lands at a uniform moment inside the chosen step's span after the journal
//!    records that it started, the journal read every 200 µs), then `resume`
//!    until done; after each: staging equal to the source (rows and counters, computed by the
//!    server), the source and the old home unchanged, trees equal to their manifests
//!    (`sha256sum -c`), each configuration edit applied exactly once, report `completed`.
//! 2. The database sessions of the tool killed by the server while it copies
//!    (`pg_terminate_backend`, MariaDB `KILL`): the run must fail cleanly or succeed with
//!    complete data, never report success with rows missing; then `resume` finishes it.

use carbon_upgrade_cli::runbook::journal::Event;
use carbon_upgrade_cli::runbook::step::Step;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use mysql::prelude::Queryable;

use crate::integration::{Kill, Kind, Scenario, StepTimes, prepare_binary};
use crate::servers::{Servers, database_url};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// SIGKILLs per vendor (spread evenly over the steps).
    #[arg(long, default_value_t = 20)]
    kills: u32,
    #[arg(long)]
    seed: Option<u64>,
    /// Only these vendors: postgres, mariadb, sqlite.
    #[arg(long, value_delimiter = ',')]
    vendors: Vec<String>,
}

const STEPS: &[&str] = &[
    "preflight",
    "backup-home",
    "backup-db:WSO2_CARBON_DB",
    "copy:WSO2_CARBON_DB",
    "connect",
    "carry-over",
    "replicate",
    "connect-userstores",
    "verify-home",
];

pub fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    let seed = args.seed.unwrap_or_else(crate::integration::time_seed);
    println!("==> faults: seed {seed} (replay with --seed {seed})");
    let servers = Servers::find_or_start()?;
    servers.print();
    let root = crate::workspace_root().join("target/faults");
    let binary = prepare_binary(&root)?;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut summary = Vec::new();
    for kind in [Kind::Postgres, Kind::MariaDb, Kind::Sqlite] {
        if !args.vendors.is_empty() && !args.vendors.iter().any(|v| v == kind.name()) {
            continue;
        }
        let times = time_steps(&root, kind, &servers, &binary)?;
        // A seeded rotation: a short run (fewer kills than steps) reaches other steps each time.
        let offset = rng.usize(..STEPS.len());
        let (mut landed, mut attempted) = (0, 0);
        let mut by_step: BTreeMap<String, u32> = BTreeMap::new();
        for n in 0..args.kills {
            let step = step_for(n, args.kills, offset);
            // A uniform moment inside the step as the timing run saw it.
            let span = times
                .get(step)
                .copied()
                .unwrap_or(Duration::from_millis(40));
            let delay = Duration::from_micros(rng.u64(0..(span.as_micros() as u64).max(1)));
            let scenario = Scenario::create(&root, kind, &format!("k{n}"), &servers)?;
            let kills =
                scenario.run_to_completion(&binary, Some(Kill::AfterStep(step.into(), delay)))?;
            scenario
                .check()
                .with_context(|| format!("{} killed {delay:?} into {step}", kind.name()))?;
            let killed_in = scenario.killed_in();
            scenario.cleanup(&servers)?;
            attempted += 1;
            landed += kills;
            let what = if kills == 0 {
                "the run ended first".to_owned()
            } else {
                *by_step.entry(killed_in.clone()).or_default() += 1;
                format!("killed {killed_in}")
            };
            println!(
                "    {}: SIGKILL {:>7.2}ms after {step} started (step took {:.2}ms): {what}; resumed and verified",
                kind.name(),
                delay.as_secs_f64() * 1e3,
                span.as_secs_f64() * 1e3,
            );
        }
        let sessions = match kind {
            Kind::Postgres | Kind::MariaDb => session_kill(&root, kind, &servers, &binary)?,
            _ => "n/a".to_owned(),
        };
        // In run order: within each step, then between it and the next.
        let by_step: Vec<String> = std::iter::once("before the first step".to_owned())
            .chain(
                STEPS
                    .iter()
                    .flat_map(|s| [format!("in {s}"), format!("after {s} ended")]),
            )
            .filter_map(|place| Some(format!("{place} {}", by_step.get(&place)?)))
            .collect();
        summary.push(format!(
            "{}: {landed} kills landed in {attempted} runs, all survived (resumed, verified); by step: {}; session kill: {sessions}",
            kind.name(),
            by_step.join(", ")
        ));
    }
    println!(
        "==> faults: passed in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    for line in summary {
        println!("    {line}");
    }
    Ok(())
}

/// The step the `n`th of `kills` kills aims at: spread evenly over the steps, rotated by
/// `offset`.
fn step_for(n: u32, kills: u32, offset: usize) -> &'static str {
    let spread = n as usize * STEPS.len() / kills.max(1) as usize;
    STEPS[(spread + offset) % STEPS.len()]
}

/// One unkilled run of the scenario, timing each step (and checked like every other run).
fn time_steps(root: &Path, kind: Kind, servers: &Servers, binary: &Path) -> Result<StepTimes> {
    let scenario = Scenario::create(root, kind, "timing", servers)?;
    let times = scenario.time_steps(binary)?;
    scenario.check().context("the timing run")?;
    scenario.cleanup(servers)?;
    let spans: Vec<String> = STEPS
        .iter()
        .filter_map(|s| Some(format!("{s} {:.1}ms", times.get(*s)?.as_secs_f64() * 1e3)))
        .collect();
    println!("    {}: step times {}", kind.name(), spans.join(", "));
    Ok(times)
}

/// Kills the tool's database sessions while it copies; returns what the run did.
fn session_kill(root: &Path, kind: Kind, servers: &Servers, binary: &Path) -> Result<String> {
    let scenario = Scenario::create(root, kind, "sessions", servers)?;
    let source_before = scenario.fingerprint(&scenario.source)?;
    let journal = scenario.dir.join("state/journal.jsonl");
    let mut child = scenario
        .command(binary, "run")
        .stderr(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait()?.is_none()
        && !crate::integration::journal_events(&journal)
            .iter()
            .any(|e| {
                matches!(
                    e,
                    Event::Started {
                        step: Step::Copy(_),
                        ..
                    }
                )
            })
    {
        ensure!(
            Instant::now() < deadline,
            "the run never reached the copy step"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut terminated = 0;
    while child.try_wait()?.is_none() {
        terminated += kill_sessions(kind, servers, &scenario)?;
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.wait()?;
    ensure!(
        scenario.fingerprint(&scenario.source)? == source_before,
        "{}: the source changed",
        kind.name()
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(scenario.dir.join("state/report.json"))?)?;
    let outcome = if status.success() {
        // Success claimed: it must be complete.
        scenario
            .check()
            .context("a run that survived killed sessions")?;
        format!("{terminated} sessions terminated, the run retried and completed verified")
    } else {
        ensure!(
            report["status"] == "failed",
            "{}: a failed run reported {}",
            kind.name(),
            report["status"]
        );
        let output = scenario.command(binary, "resume").output()?;
        ensure!(
            output.status.success(),
            "resume failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        scenario.check().context("resumed after killed sessions")?;
        format!(
            "{terminated} sessions terminated, the run failed cleanly (report: failed), resume completed verified"
        )
    };
    scenario.cleanup(servers)?;
    Ok(outcome)
}

fn kill_sessions(kind: Kind, servers: &Servers, scenario: &Scenario) -> Result<u32> {
    match kind {
        Kind::Postgres => {
            let mut admin = postgres::Client::connect(
                &database_url(&servers.postgres, "postgres"),
                postgres::NoTls,
            )?;
            let rows = admin.query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = 'carbon-upgrade' AND pid <> pg_backend_pid()",
                &[],
            )?;
            Ok(rows.len() as u32)
        }
        _ => {
            let database = |url: &str| url.rsplit('/').next().unwrap_or_default().to_owned();
            let mut admin =
                mysql::Conn::new(mysql::Opts::from_url(&database_url(&servers.mariadb, ""))?)?;
            let ids: Vec<u64> = admin.exec(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB IN (?, ?) AND ID <> CONNECTION_ID()",
                (database(&scenario.source), database(&scenario.staging)),
            )?;
            for id in &ids {
                let _ = admin.query_drop(format!("KILL {id}"));
            }
            Ok(ids.len() as u32)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kills_spread_evenly_over_the_steps() {
        let aimed = |kills: u32, offset| -> Vec<&str> {
            (0..kills).map(|n| step_for(n, kills, offset)).collect()
        };
        for step in STEPS {
            let hits = aimed(20, 3).iter().filter(|s| *s == step).count();
            assert!((2..=3).contains(&hits), "{step}: {hits} of 20");
        }
        let short = aimed(5, 0);
        assert_eq!(
            short,
            [
                "preflight",
                "backup-home",
                "copy:WSO2_CARBON_DB",
                "carry-over",
                "connect-userstores"
            ]
        );
        let distinct: std::collections::BTreeSet<_> = short.iter().collect();
        assert_eq!(distinct.len(), 5);
        assert_ne!(aimed(5, 4), short, "the offset rotates the steps");
    }
}

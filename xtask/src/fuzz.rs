//! `cargo xtask fuzz [--seconds N]`: every cargo-fuzz target in `fuzz/` for N seconds each.
//!
//! libFuzzer needs `-Zsanitizer=…`/coverage flags that only nightly accepts; the stable
//! toolchain builds them with `RUSTC_BOOTSTRAP=1`. `--sanitizer none`: the targets are safe
//! Rust, so panics (the defects looked for) are caught without AddressSanitizer, at several
//! times the speed. The committed seeds are in `fuzz/seeds/<target>`; what libFuzzer learns
//! goes to `fuzz/corpus/<target>` (not committed) and a crashing input to
//! `fuzz/artifacts/<target>/`.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// One per parser: XML path editor, path language, JDBC URL (carbon-config), database URL
/// (carbon-db), manifest (carbon-fs), runbook journal (carbon-upgrade-cli).
pub const TARGETS: &[&str] = &[
    "xml_editor",
    "xpath",
    "jdbc_url",
    "db_url",
    "manifest",
    "journal",
];

fn cargo_fuzz(dir: &Path) -> Command {
    let mut cmd = crate::cargo_in(dir);
    cmd.env("RUSTC_BOOTSTRAP", "1").arg("fuzz");
    cmd
}

fn ensure_cargo_fuzz(dir: &Path) -> Result<()> {
    let present = cargo_fuzz(dir)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    println!("==> cargo install cargo-fuzz --locked (not installed)");
    let status = crate::cargo_in(dir)
        .args(["install", "cargo-fuzz", "--locked"])
        .status()
        .context("starting cargo install cargo-fuzz")?;
    if !status.success() {
        bail!("cargo install cargo-fuzz --locked failed ({status})");
    }
    Ok(())
}

/// The executions libFuzzer reports with `-print_final_stats=1`.
fn executions(stderr: &str) -> Option<u64> {
    stderr.lines().find_map(|line| {
        line.strip_prefix("stat::number_of_executed_units:")
            .and_then(|n| n.trim().parse().ok())
    })
}

pub fn run(seconds: u64, dev: bool) -> Result<()> {
    // `--dev` builds without optimisation: minutes less for CI's short smoke run.
    let profile: &[&str] = if dev { &["--dev"] } else { &[] };
    let dir = crate::workspace_root().join("fuzz");
    ensure_cargo_fuzz(&dir)?;
    println!(
        "==> cargo fuzz build --sanitizer none{} (RUSTC_BOOTSTRAP=1)",
        if dev { " --dev" } else { "" }
    );
    let status = cargo_fuzz(&dir)
        .args(["build", "--sanitizer", "none"])
        .args(profile)
        .status()
        .context("starting cargo fuzz build")?;
    if !status.success() {
        bail!("cargo fuzz build failed ({status})");
    }
    let mut failed = Vec::new();
    for target in TARGETS {
        let corpus = dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("creating {}", corpus.display()))?;
        let started = Instant::now();
        let output = cargo_fuzz(&dir)
            .args(["run", "--sanitizer", "none"])
            .args(profile)
            .arg(target)
            .arg(&corpus)
            .arg(dir.join("seeds").join(target))
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg("-print_final_stats=1")
            .output()
            .with_context(|| format!("starting cargo fuzz run {target}"))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let runs = executions(&stderr).map_or_else(|| "?".to_owned(), |n| n.to_string());
        let elapsed = started.elapsed().as_secs_f64();
        if output.status.success() {
            println!("    {target}: no crash, {runs} executions in {elapsed:.0}s");
        } else {
            let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
            for line in tail.iter().rev() {
                eprintln!("    {line}");
            }
            eprintln!(
                "    {target}: FAILED after {runs} executions ({}); the input is under {}",
                output.status,
                dir.join("artifacts").join(target).display()
            );
            failed.push(*target);
        }
    }
    if !failed.is_empty() {
        bail!("fuzz targets failed: {}", failed.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_final_executions() {
        let stderr = "#2\tINITED\nDone 842372 runs in 11 second(s)\nstat::number_of_executed_units: 842372\nstat::average_exec_per_sec:     76579\n";
        assert_eq!(executions(stderr), Some(842_372));
        assert_eq!(executions("Done"), None);
    }

    #[test]
    fn every_target_has_seeds() {
        for target in TARGETS {
            let seeds = crate::workspace_root().join("fuzz/seeds").join(target);
            let count = std::fs::read_dir(&seeds)
                .map(|d| d.count())
                .unwrap_or_default();
            assert!(count > 0, "{} has no seed", seeds.display());
        }
    }
}

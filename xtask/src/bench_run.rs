//! The offline downtime of a whole `carbon-upgrade run` on the bench's source: a small old
//! and new home whose one datasource is that database, the run timed, and from its report the
//! downtime (the critical path), the total with the background database backup, and the copy
//! step (copy + verification), so that `downtime / copy step` can be read against the
//! issue's target (≤ 1.3×).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use carbon_config::fixture::{CarbonVersion, ContentScale, HomeSpec, write_home};
use carbon_db::Vendor;
use carbon_db::testkit::TestDb;
use mysql::prelude::Queryable;

/// What one run measured.
pub(super) struct OfflineRun {
    pub wall_s: f64,
    pub downtime_ms: u64,
    /// `None` from a build whose report has no total (its downtime summed every step).
    pub total_ms: Option<u64>,
    pub copy_ms: u64,
    pub backup_ms: u64,
    pub rss_kib: u64,
}

impl OfflineRun {
    pub(super) fn line(&self) -> String {
        let total = self.total_ms.map_or_else(
            || "no total in this build's report (backup on the critical path)".to_owned(),
            |t| format!("total {:.1}s with the background backup", t as f64 / 1e3),
        );
        format!(
            "downtime {:.1}s (critical path), {total}; copy step {:.1}s, backup-db {:.1}s; downtime / copy step {:.2}×; wall {:.1}s, peak RSS {:.1} MiB",
            self.downtime_ms as f64 / 1e3,
            self.copy_ms as f64 / 1e3,
            self.backup_ms as f64 / 1e3,
            self.downtime_ms as f64 / self.copy_ms.max(1) as f64,
            self.wall_s,
            self.rss_kib as f64 / 1024.0
        )
    }
}

/// Runs `bin run` on homes made under `work` for `src`, then drops the staging database the
/// run made and removes the homes and backups.
pub(super) fn offline_run(
    bin: &Path,
    vendor: Vendor,
    src: &TestDb,
    work: &Path,
) -> Result<OfflineRun> {
    let dir = work.join("offline-run");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let (scheme, user, driver) = match vendor {
        Vendor::Postgres => ("postgresql", "postgres", "org.postgresql.Driver"),
        _ => ("mysql", "root", "com.mysql.jdbc.Driver"),
    };
    let tenant_ids: Vec<i64> = match vendor {
        Vendor::Postgres => src
            .pg_client()
            .query("SELECT um_id::int8 FROM um_tenant ORDER BY 1", &[])?
            .iter()
            .map(|r| r.get(0))
            .collect(),
        _ => src
            .mysql_conn()
            .query("SELECT UM_ID FROM UM_TENANT ORDER BY 1")?,
    };
    let datasource = crate::integration::server_datasource(scheme, src.url(), user, driver);
    let mut old = HomeSpec::new(CarbonVersion::V4_4_6);
    old.tenant_ids = tenant_ids;
    old.content = ContentScale::Tiny;
    old.datasources = vec![datasource];
    write_home(&dir.join("old"), &old)?;
    let mut new = HomeSpec::new(CarbonVersion::V4_4_7);
    new.tenant_ids = Vec::new();
    write_home(&dir.join("new"), &new)?;
    let staging = format!("{}_staging", src.name());
    let result = run(bin, &dir);
    carbon_db::drop_database(&carbon_db::DbUrl::parse(src.url())?, &staging)?;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run(bin: &Path, dir: &Path) -> Result<OfflineRun> {
    let timing = dir.join("time.out");
    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&timing)
        .arg(bin)
        .arg("run")
        .arg("--old-home")
        .arg(dir.join("old"))
        .arg("--new-home")
        .arg(dir.join("new"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .output()
        .context("starting carbon-upgrade run")?;
    let wall_s = started.elapsed().as_secs_f64();
    let report: serde_json::Value = std::fs::read(dir.join("state/report.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if !out.status.success() || report["status"] != "completed" {
        bail!(
            "carbon-upgrade run failed ({}, report {}): {}",
            out.status,
            report["status"],
            carbon_db::redact_raw(
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            )
        );
    }
    let step = |prefix: &str| {
        report["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
            .filter_map(|s| s["duration_ms"].as_u64())
            .sum::<u64>()
    };
    Ok(OfflineRun {
        wall_s,
        downtime_ms: report["downtime_ms"].as_u64().unwrap_or(0),
        total_ms: report["total_ms"].as_u64(),
        copy_ms: step("copy:"),
        backup_ms: step("backup-db:"),
        rss_kib: std::fs::read_to_string(&timing)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0),
    })
}

//! `state_dir/report.json` for machines and `state_dir/report.md` for people, both derived
//! from the journal, so the report can never claim a step the journal does not record.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use super::Settings;
use super::journal::Event;
use super::results::{BackupResult, StepResult};
use super::step::Step;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub run_id: String,
    /// `completed`, `failed` or `interrupted`.
    pub status: String,
    pub stopped_at: Option<Step>,
    pub error: Option<String>,
    pub old_home: PathBuf,
    pub new_home: PathBuf,
    /// The critical path: the durations of the steps that ran one after another (every step
    /// but the databases' backups, which run in the background beside them) — the downtime
    /// the guide asks to keep short.
    pub downtime_ms: u64,
    /// From the first step started to the last one finished, background backups included
    /// (and any pause between an interrupted attempt and its resume).
    pub total_ms: u64,
    pub steps: Vec<StepRecord>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub name: Step,
    /// `completed`, `failed` or `started` (cut off).
    pub status: String,
    pub attempts: u32,
    pub duration_ms: u64,
    pub error: Option<String>,
    /// What the step recorded when it completed (`null` until it has).
    pub detail: Option<StepResult>,
}

pub fn from_journal(settings: &Settings, events: &[Event]) -> Report {
    let mut run_id = String::new();
    let mut steps: Vec<StepRecord> = Vec::new();
    // When each step last started (a background backup overlaps the steps after it).
    let mut started: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    let (mut first, mut last) = (None::<u64>, 0u64);
    for event in events {
        match event {
            Event::Run { run_id: id, .. } => run_id.clone_from(id),
            Event::Started { step, at_ms } => {
                started.insert(step.to_string(), *at_ms);
                first.get_or_insert(*at_ms);
                last = last.max(*at_ms);
                match steps.iter_mut().find(|s| &s.name == step) {
                    Some(record) => {
                        record.attempts += 1;
                        record.status = "started".into();
                    }
                    None => steps.push(StepRecord {
                        name: step.clone(),
                        status: "started".into(),
                        attempts: 1,
                        duration_ms: 0,
                        error: None,
                        detail: None,
                    }),
                }
            }
            Event::Completed {
                step,
                at_ms,
                detail,
            } => {
                last = last.max(*at_ms);
                let started_at = started.get(&step.to_string()).copied();
                if let Some(record) = steps.iter_mut().find(|s| &s.name == step) {
                    record.status = "completed".into();
                    record.duration_ms += at_ms.saturating_sub(started_at.unwrap_or(*at_ms));
                    // A detail this version cannot read is left out, never guessed.
                    record.detail = StepResult::read(step, detail)
                        .map_err(|e| tracing::warn!("{e:#}"))
                        .ok();
                    record.error = None;
                }
            }
            Event::StagingClaimed { .. } => {}
            Event::Failed { step, at_ms, error } => {
                last = last.max(*at_ms);
                let started_at = started.get(&step.to_string()).copied();
                if let Some(record) = steps.iter_mut().find(|s| &s.name == step) {
                    record.status = "failed".into();
                    record.duration_ms += at_ms.saturating_sub(started_at.unwrap_or(*at_ms));
                    record.error = Some(error.clone());
                }
            }
        }
    }
    let unfinished = steps.iter().find(|s| s.status != "completed");
    let (status, stopped_at, error) = match unfinished {
        None => ("completed".to_owned(), None, None),
        Some(step) if step.status == "failed" => (
            "failed".to_owned(),
            Some(step.name.clone()),
            step.error.clone(),
        ),
        Some(step) => ("interrupted".to_owned(), Some(step.name.clone()), None),
    };
    Report {
        run_id,
        status,
        stopped_at,
        error,
        old_home: settings.old_home.clone(),
        new_home: settings.new_home.clone(),
        downtime_ms: steps
            .iter()
            .filter(|s| !matches!(s.name, Step::BackupDb(_)))
            .map(|s| s.duration_ms)
            .sum(),
        total_ms: first.map_or(0, |f| last.saturating_sub(f)),
        steps,
    }
}

/// Writes both forms atomically (temp + rename); returns their paths.
pub fn write(state_dir: &Path, report: &Report) -> Result<(PathBuf, PathBuf)> {
    write_named(state_dir, "report", report)
}

/// [`write`] as `STEM.json` and `STEM.md` (one report per scope).
pub fn write_named(state_dir: &Path, stem: &str, report: &Report) -> Result<(PathBuf, PathBuf)> {
    let json_path = state_dir.join(format!("{stem}.json"));
    let md_path = state_dir.join(format!("{stem}.md"));
    let json = serde_json::to_vec_pretty(report).context("encoding the report")?;
    write_atomic(&json_path, &json)?;
    write_atomic(&md_path, render_markdown(report).as_bytes())?;
    Ok((json_path, md_path))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    carbon_fs::write_atomic(path, bytes, None)
        .with_context(|| format!("writing {}", path.display()))
}

fn seconds(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

pub(crate) fn render_markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# carbon-upgrade report\n");
    let _ = writeln!(out, "- run: `{}`", report.run_id);
    let _ = writeln!(out, "- status: **{}**", report.status);
    if let Some(step) = &report.stopped_at {
        let _ = writeln!(out, "- stopped at: `{step}`");
    }
    if let Some(error) = &report.error {
        let _ = writeln!(out, "- error: {error}");
    }
    let _ = writeln!(out, "- old home: `{}`", report.old_home.display());
    let _ = writeln!(out, "- new home: `{}`", report.new_home.display());
    let _ = writeln!(
        out,
        "- downtime (critical path: every step but the background database backups): {}\n- total (until the backups finished too): {}\n",
        seconds(report.downtime_ms),
        seconds(report.total_ms)
    );
    let _ = writeln!(out, "| step | status | attempts | duration |");
    let _ = writeln!(out, "|---|---|---|---|");
    for step in &report.steps {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            step.name,
            step.status,
            step.attempts,
            seconds(step.duration_ms)
        );
    }
    for step in &report.steps {
        render_step(&mut out, step);
    }
    out
}

fn render_step(out: &mut String, step: &StepRecord) {
    let _ = writeln!(out, "\n## {}\n", step.name);
    if let Some(error) = &step.error {
        let _ = writeln!(out, "Error: {error}\n");
    }
    match &step.detail {
        None => {}
        Some(StepResult::Preflight(r)) => {
            for check in &r.checks {
                let status = serde_json::to_value(check.status).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "- {} **{}**: {}",
                    status.as_str().unwrap_or_default(),
                    check.name,
                    check.detail
                );
            }
        }
        Some(StepResult::BackupHome(r)) => {
            render_backup(out, r);
            if let Some(tenants) = &r.tenants {
                render_backup(out, tenants);
            }
        }
        Some(StepResult::BackupDb(r)) => {
            for file in &r.files {
                let _ = writeln!(
                    out,
                    "- `{}` {} bytes sha256 `{}` ({})",
                    file.path.display(),
                    file.bytes,
                    file.sha256,
                    file.method
                );
            }
        }
        Some(StepResult::Copy(r)) => render_copy(out, &r.copy),
        Some(StepResult::SchemaProof(r)) => super::schema_proof::render(out, r),
        Some(StepResult::Migrate(r)) => super::migration::render(out, r),
        Some(StepResult::Connect(r)) => {
            render_diff(out, &r.diff);
            render_notices(out, &r.notices);
        }
        Some(StepResult::CarryOver(r)) => {
            render_diff(out, &r.diff);
            if let Some(files) = &r.files {
                super::secrets::render_carry(out, &files.plan);
                for copied in &files.copied_now {
                    let _ = writeln!(out, "- copied `{}`", copied.display());
                }
            }
            for item in &r.to_review {
                let json = |v: &Option<String>| serde_json::to_string(v).unwrap_or_default();
                let kind = serde_json::to_value(item.kind).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "- review `{}` {} ({}): old {} / new {}",
                    item.file.display(),
                    item.key,
                    kind.as_str().unwrap_or_default(),
                    json(&item.old),
                    json(&item.new)
                );
            }
        }
        Some(StepResult::Replicate(r)) => {
            for part in &r.parts {
                let s = &part.summary;
                let _ = writeln!(
                    out,
                    "- {}: {} files copied ({} bytes), {} identical, {} conflicts; manifest `{}`",
                    part.name,
                    s.files_copied,
                    s.bytes_copied,
                    s.identical,
                    s.conflicts,
                    part.manifest
                        .as_ref()
                        .map(|m| m.sha256sums.display().to_string())
                        .unwrap_or_default()
                );
                for conflict in &part.conflicts {
                    let resolution = serde_json::to_value(conflict.resolution).unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "  - conflict `{}` ({})",
                        conflict.path,
                        resolution.as_str().unwrap_or_default()
                    );
                }
            }
        }
        Some(StepResult::ConnectUserstores(r)) => {
            for edit in &r.edits {
                let _ = writeln!(
                    out,
                    "- edited `{}`: sha256 `{}` (as replicated) → `{}`",
                    edit.file.display(),
                    edit.sha256_before,
                    edit.sha256_after
                );
            }
            render_diff(out, &r.diff);
            render_notices(out, &r.notices);
        }
        Some(StepResult::Start(_) | StepResult::VerifyServer(_)) => {}
        Some(StepResult::VerifyHome(r)) => {
            for tree in &r.trees {
                let _ = writeln!(
                    out,
                    "- `{}` against its manifest: {}",
                    tree.dir.display(),
                    tree.result
                );
            }
            if let Some(s) = &r.secrets {
                let _ = writeln!(
                    out,
                    "- encrypted values: {} of {} open with the new home's key{}",
                    s.opening,
                    s.values,
                    s.key.as_ref().map_or(String::new(), |k| format!(" ({k})"))
                );
                for (lines, label) in [
                    (&s.introduced, "does not open (introduced)"),
                    (&s.pre_existing, "pre-existing"),
                    (&s.warnings, "warning"),
                ] {
                    for line in lines {
                        let _ = writeln!(out, "  - {label}: {line}");
                    }
                }
            }
            for (findings, title) in [
                (&r.introduced, "Introduced by the upgrade"),
                (
                    &r.pre_existing,
                    "Pre-existing (the old home and database have them too)",
                ),
            ] {
                if !findings.is_empty() {
                    let _ = writeln!(out, "\n{title}:\n");
                    for finding in findings {
                        let _ = writeln!(out, "- {finding}");
                    }
                }
            }
        }
    }
}

fn render_backup(out: &mut String, r: &BackupResult) {
    let _ = writeln!(
        out,
        "- backup `{}`: {} files, {} bytes, manifest `{}`, re-read: {}",
        r.path.display(),
        r.files,
        r.bytes,
        r.manifest.display(),
        r.verified
    );
}

fn render_copy(out: &mut String, copy: &carbon_db::CopyReport) {
    let (tables, mismatches) = copy
        .verify
        .as_ref()
        .map_or((0, 0), |v| (v.tables.len(), v.mismatches.len()));
    let _ = writeln!(
        out,
        "{} → {} by `{}`: {} tables, {} rows, {} counters; verified: {tables} tables compared, {mismatches} mismatches",
        copy.source, copy.target, copy.method, copy.tables, copy.rows, copy.counters,
    );
    if let Some(verify) = &copy.verify {
        let _ = writeln!(out, "\n| table | rows | digest |\n|---|---|---|");
        for table in &verify.tables {
            let _ = writeln!(
                out,
                "| {} | {} | `{}` |",
                table.table, table.rows, table.digest
            );
        }
    }
}

fn render_diff(out: &mut String, diff: &str) {
    if !diff.is_empty() {
        let _ = writeln!(out, "```diff\n{diff}```");
    }
}

fn render_notices(out: &mut String, notices: &[String]) {
    for notice in notices {
        let _ = writeln!(out, "- note: {notice}");
    }
}

//! `state_dir/report.json` for machines and `state_dir/report.md` for people, both derived
//! from the journal, so the report can never claim a step the journal does not record.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;

use super::Settings;
use super::journal::Event;
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
    /// Sum of the steps' durations: the downtime the guide asks to keep short.
    pub downtime_ms: u64,
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
    pub detail: Value,
}

pub fn from_journal(settings: &Settings, events: &[Event]) -> Report {
    let mut run_id = String::new();
    let mut steps: Vec<StepRecord> = Vec::new();
    let mut started_at: Option<u64> = None;
    for event in events {
        match event {
            Event::Run { run_id: id, .. } => run_id.clone_from(id),
            Event::Started { step, at_ms } => {
                started_at = Some(*at_ms);
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
                        detail: Value::Null,
                    }),
                }
            }
            Event::Completed {
                step,
                at_ms,
                detail,
            } => {
                if let Some(record) = steps.iter_mut().find(|s| &s.name == step) {
                    record.status = "completed".into();
                    record.duration_ms += at_ms.saturating_sub(started_at.unwrap_or(*at_ms));
                    record.detail = detail.clone();
                    record.error = None;
                }
            }
            Event::StagingClaimed { .. } => {}
            Event::Failed { step, at_ms, error } => {
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
        downtime_ms: steps.iter().map(|s| s.duration_ms).sum(),
        steps,
    }
}

/// Writes both forms atomically (temp + rename); returns their paths.
pub fn write(state_dir: &Path, report: &Report) -> Result<(PathBuf, PathBuf)> {
    let json_path = state_dir.join("report.json");
    let md_path = state_dir.join("report.md");
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

pub fn render_markdown(report: &Report) -> String {
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
        "- downtime (sum of steps): {}\n",
        seconds(report.downtime_ms)
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
    let detail = &step.detail;
    let _ = writeln!(out, "\n## {}\n", step.name);
    if let Some(error) = &step.error {
        let _ = writeln!(out, "Error: {error}\n");
    }
    if let Some(checks) = detail["checks"].as_array() {
        for check in checks {
            let _ = writeln!(
                out,
                "- {} **{}**: {}",
                check["status"].as_str().unwrap_or(""),
                check["name"].as_str().unwrap_or(""),
                check["detail"].as_str().unwrap_or("")
            );
        }
    }
    if let Some(copy) = detail.get("copy") {
        let verify = &copy["verify"];
        let _ = writeln!(
            out,
            "{} → {} by `{}`: {} tables, {} rows, {} counters; verified: {} tables compared, {} mismatches",
            copy["source"].as_str().unwrap_or(""),
            copy["target"].as_str().unwrap_or(""),
            copy["method"].as_str().unwrap_or(""),
            copy["tables"],
            copy["rows"],
            copy["counters"],
            verify["tables"].as_array().map_or(0, Vec::len),
            verify["mismatches"].as_array().map_or(0, Vec::len),
        );
        if let Some(tables) = verify["tables"].as_array() {
            let _ = writeln!(out, "\n| table | rows | digest |\n|---|---|---|");
            for table in tables {
                let _ = writeln!(
                    out,
                    "| {} | {} | `{}` |",
                    table["table"].as_str().unwrap_or(""),
                    table["rows"],
                    table["digest"].as_str().unwrap_or("")
                );
            }
        }
    }
    if let Some(files) = detail["files"].as_array() {
        for file in files {
            let _ = writeln!(
                out,
                "- `{}` {} bytes sha256 `{}` ({})",
                file["path"].as_str().unwrap_or(""),
                file["bytes"],
                file["sha256"].as_str().unwrap_or(""),
                file["method"].as_str().unwrap_or("")
            );
        }
    }
    if let Some(path) = detail["path"].as_str() {
        let _ = writeln!(
            out,
            "- backup `{path}`: {} files, {} bytes, manifest `{}`, re-read: {}",
            detail["files"],
            detail["bytes"],
            detail["manifest"].as_str().unwrap_or(""),
            detail["verified"].as_str().unwrap_or("")
        );
    }
    if let Some(parts) = detail["parts"].as_array() {
        for part in parts {
            let s = &part["summary"];
            let _ = writeln!(
                out,
                "- {}: {} files copied ({} bytes), {} identical, {} conflicts; manifest `{}`",
                part["name"].as_str().unwrap_or(""),
                s["files_copied"],
                s["bytes_copied"],
                s["identical"],
                s["conflicts"],
                part["manifest"]["sha256sums"].as_str().unwrap_or("")
            );
            for conflict in part["conflicts"].as_array().into_iter().flatten() {
                let _ = writeln!(
                    out,
                    "  - conflict `{}` ({})",
                    conflict["path"].as_str().unwrap_or(""),
                    conflict["resolution"].as_str().unwrap_or("")
                );
            }
        }
    }
    if let Some(trees) = detail["trees"].as_array() {
        for tree in trees {
            let _ = writeln!(
                out,
                "- `{}` against its manifest: {}",
                tree["dir"].as_str().unwrap_or(""),
                tree["result"].as_str().unwrap_or("")
            );
        }
    }
    for edit in detail["edits"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "- edited `{}`: sha256 `{}` (as replicated) → `{}`",
            edit["file"].as_str().unwrap_or(""),
            edit["sha256_before"].as_str().unwrap_or(""),
            edit["sha256_after"].as_str().unwrap_or("")
        );
    }
    for (key, title) in [
        ("introduced", "Introduced by the upgrade"),
        (
            "pre_existing",
            "Pre-existing (the old home and database have them too)",
        ),
    ] {
        if let Some(findings) = detail[key].as_array().filter(|f| !f.is_empty()) {
            let _ = writeln!(out, "\n{title}:\n");
            for finding in findings {
                let _ = writeln!(out, "- {}", finding.as_str().unwrap_or(""));
            }
        }
    }
    if let Some(diff) = detail["diff"].as_str().filter(|d| !d.is_empty()) {
        let _ = writeln!(out, "```diff\n{}```", diff);
    }
    for notice in detail["notices"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "- note: {}", notice.as_str().unwrap_or(""));
    }
    for item in detail["to_review"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "- review `{}` {} ({}): old {} / new {}",
            item["file"].as_str().unwrap_or(""),
            item["key"].as_str().unwrap_or(""),
            item["kind"].as_str().unwrap_or(""),
            item["old"],
            item["new"]
        );
    }
}

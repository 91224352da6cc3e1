//! `carbon-upgrade plan`: everything a run would do, computed without writing anything.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use carbon_config::carry::{CarryKind, carry_over};
use carbon_config::connect::{ConnectTarget, connect, user_stores};
use carbon_fs::{CarbonHomeOptions, ReplicateOptions, replicate_carbon_home};
use serde::Serialize;

use super::datasources::{Pair, PairView, embedded_files};
use super::{Homes, Settings};

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub old_home: PathBuf,
    pub new_home: PathBuf,
    pub old_version: Option<String>,
    pub new_version: Option<String>,
    pub state_dir: PathBuf,
    pub backup_dir: PathBuf,
    pub databases: Vec<PairView>,
    pub embedded_files: Vec<PathBuf>,
    pub replicate: Vec<ReplicatePart>,
    pub replicate_skipped: Vec<String>,
    /// The datasource edits, as a unified diff with secrets redacted.
    pub connect_diff: String,
    pub connect_notices: Vec<String>,
    /// The edits of replicated user-store files that use an old database, applied after
    /// replication, as a unified diff with secrets redacted.
    pub userstore_diff: String,
    pub userstore_notices: Vec<String>,
    pub carried: Vec<Carried>,
    pub live_tests: Option<String>,
    /// The migration scripts of each datasource, as they will run on staging.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub migrations: Vec<String>,
    /// The schema proof of each datasource's source against the new home's fresh scripts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schema_proof: Vec<String>,
    pub steps: Vec<super::step::Step>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplicatePart {
    pub name: String,
    pub src: PathBuf,
    pub dst: PathBuf,
    pub files_to_copy: u64,
    pub bytes_to_copy: u64,
    pub identical: u64,
    pub conflicts: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Carried {
    pub file: PathBuf,
    pub key: String,
    pub kind: CarryKind,
    pub old: Option<String>,
    pub new: Option<String>,
    /// Whether `run` applies it (customisations with an edit); others are for the operator.
    pub applied_by_run: bool,
}

/// The connect targets for the new home: every datasource of every pair that the new home
/// also defines, pointed at that pair's staging database.
pub(crate) fn connect_targets(homes: &Homes, pairs: &[Pair]) -> (Vec<ConnectTarget>, Vec<String>) {
    let mut targets = Vec::new();
    let mut notices = Vec::new();
    for pair in pairs {
        for name in std::iter::once(&pair.name).chain(&pair.also_used_by) {
            let Some(current) = homes.new.datasource(name) else {
                notices.push(format!(
                    "the new home has no datasource {name}: it is not connected"
                ));
                continue;
            };
            let unchanged = current
                .url
                .as_ref()
                .is_some_and(|u| u.as_str() == pair.staging_jdbc.as_str());
            if pair.embedded && unchanged {
                continue; // the file lands where the new home already looks
            }
            targets.push(ConnectTarget {
                datasource: name.clone(),
                url: pair.staging_jdbc.clone(),
                username: pair.staging_username.clone(),
                password: pair.staging_password.clone(),
            });
        }
    }
    (targets, notices)
}

/// Where the user stores of the old home go: for every datasource of every pair, the staging
/// database that replaces its database (whether or not the new home defines that datasource).
pub(crate) fn store_targets(pairs: &[Pair]) -> Vec<ConnectTarget> {
    pairs
        .iter()
        .flat_map(|pair| {
            std::iter::once(&pair.name)
                .chain(&pair.also_used_by)
                .map(|name| ConnectTarget {
                    datasource: name.clone(),
                    url: pair.staging_jdbc.clone(),
                    username: pair.staging_username.clone(),
                    password: pair.staging_password.clone(),
                })
        })
        .collect()
}

pub fn build(settings: &Settings, homes: &Homes, pairs: &[Pair]) -> Result<Plan> {
    let replicate_report = replicate_carbon_home(
        &settings.old_home,
        &settings.new_home,
        &CarbonHomeOptions {
            replicate: ReplicateOptions {
                dry_run: true,
                ..ReplicateOptions::default()
            },
            ..homes.tenants_dirs()
        },
        &carbon_fs::NoProgress,
    )
    .context("planning the replication")?;
    let replicate = replicate_report
        .parts
        .iter()
        .map(|(part, report)| ReplicatePart {
            name: part.name.clone(),
            src: part.src.clone(),
            dst: part.dst.clone(),
            files_to_copy: report.summary.files_copied,
            bytes_to_copy: report.summary.bytes_copied,
            identical: report.summary.identical,
            conflicts: report.conflicts.iter().map(|c| c.path.clone()).collect(),
        })
        .collect();
    let (targets, mut connect_notices) = connect_targets(homes, pairs);
    let connect_plan = connect(&homes.new, &targets, Some(&homes.old))
        .context("planning the connection to staging")?;
    connect_notices.extend(connect_plan.notices.iter().map(|n| n.message.clone()));
    let store_plan = user_stores(&homes.old, &homes.new, &store_targets(pairs))
        .context("planning the user-store edits")?;
    let carry = carry_over(&settings.old_home, &settings.new_home, None)
        .context("comparing the configurations")?;
    let carried = carry
        .actionable()
        .map(|item| Carried {
            file: item.file.clone(),
            key: item.key.clone(),
            kind: item.kind,
            old: item.old.clone(),
            new: item.new.clone(),
            applied_by_run: applies(item.kind) && item.edit.is_some(),
        })
        .collect();
    Ok(Plan {
        old_home: settings.old_home.clone(),
        new_home: settings.new_home.clone(),
        old_version: super::preflight::version_of(&homes.old),
        new_version: super::preflight::version_of(&homes.new),
        state_dir: settings.state_dir.clone(),
        backup_dir: settings.backup_dir.clone(),
        databases: pairs.iter().map(Pair::view).collect(),
        embedded_files: pairs
            .iter()
            .filter(|p| p.embedded)
            .flat_map(embedded_files)
            .collect(),
        replicate,
        replicate_skipped: replicate_report
            .skipped
            .iter()
            .map(|s| format!("{}: {}", s.path.display(), s.reason))
            .collect(),
        connect_diff: connect_plan.unified_diff(),
        connect_notices,
        userstore_diff: store_plan.unified_diff(),
        userstore_notices: store_plan
            .notices
            .iter()
            .map(|n| n.message.clone())
            .collect(),
        carried,
        live_tests: settings
            .verify
            .as_ref()
            .map(|v| format!("against {} as {}", v.server_url, v.username)),
        migrations: pairs
            .iter()
            .filter(|p| super::migration::applies(settings, p))
            .flat_map(|p| super::migration::plan_lines(settings, p))
            .collect(),
        schema_proof: pairs
            .iter()
            .filter(|p| super::schema_proof::applies(settings, p))
            .flat_map(|p| super::schema_proof::plan_lines(settings, p))
            .collect(),
        steps: super::steps::names(settings, pairs),
    })
}

/// Which carried differences `run` applies by itself: the operator's customisations.
pub(crate) fn applies(kind: CarryKind) -> bool {
    matches!(kind, CarryKind::Customised | CarryKind::OnlyInOld)
}

pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    let v = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
    let _ = writeln!(out, "Upgrade plan");
    let _ = writeln!(
        out,
        "  old home  {} ({})",
        plan.old_home.display(),
        v(&plan.old_version)
    );
    let _ = writeln!(
        out,
        "  new home  {} ({})",
        plan.new_home.display(),
        v(&plan.new_version)
    );
    let _ = writeln!(
        out,
        "  state     {} (backup {})",
        plan.state_dir.display(),
        plan.backup_dir.display()
    );
    let _ = writeln!(out, "\nDatabases ({})", plan.databases.len());
    for db in &plan.databases {
        let shared = if db.also_used_by.is_empty() {
            String::new()
        } else {
            format!(" (also {})", db.also_used_by.join(", "))
        };
        let how = if db.embedded {
            "files"
        } else {
            "copy + verify"
        };
        let _ = writeln!(
            out,
            "  {}{shared} [{}]: {} -> {} ({how})",
            db.datasource, db.vendor, db.source, db.staging
        );
    }
    for file in &plan.embedded_files {
        let _ = writeln!(out, "  embedded file {}", file.display());
    }
    let _ = writeln!(out, "\nReplicate");
    for part in &plan.replicate {
        let _ = writeln!(
            out,
            "  {}: {} files ({} bytes) to copy, {} identical, {} conflicts (new product's file kept)",
            part.name,
            part.files_to_copy,
            part.bytes_to_copy,
            part.identical,
            part.conflicts.len()
        );
        for conflict in &part.conflicts {
            let _ = writeln!(out, "    conflict {conflict}");
        }
    }
    for skipped in &plan.replicate_skipped {
        let _ = writeln!(out, "  skipped {skipped}");
    }
    let _ = writeln!(out, "\nConfiguration: connect to staging");
    if plan.connect_diff.is_empty() {
        let _ = writeln!(out, "  (no datasource edit needed)");
    }
    for line in plan.connect_diff.lines() {
        let _ = writeln!(out, "  {line}");
    }
    for notice in &plan.connect_notices {
        let _ = writeln!(out, "  note: {notice}");
    }
    let _ = writeln!(
        out,
        "\nConfiguration: user stores on an old database, pointed at staging after replicate"
    );
    if plan.userstore_diff.is_empty() {
        let _ = writeln!(out, "  (no user-store edit needed)");
    }
    for line in plan.userstore_diff.lines() {
        let _ = writeln!(out, "  {line}");
    }
    for notice in &plan.userstore_notices {
        let _ = writeln!(out, "  note: {notice}");
    }
    let _ = writeln!(
        out,
        "\nConfiguration: carried from the old home ({})",
        plan.carried.len()
    );
    for item in &plan.carried {
        let action = if item.applied_by_run {
            "apply"
        } else {
            "review"
        };
        let _ = writeln!(
            out,
            "  [{action}] {} {}: {} -> {}",
            item.file.display(),
            item.key,
            v(&item.new),
            v(&item.old)
        );
    }
    let _ = writeln!(
        out,
        "\nLive tests: {}",
        plan.live_tests
            .clone()
            .unwrap_or_else(|| "not configured ([verify])".into())
    );
    if !plan.migrations.is_empty() {
        let _ = writeln!(out, "\nMigration scripts (on staging only, after the copy)");
        for line in &plan.migrations {
            let _ = writeln!(out, "  {line}");
        }
    }
    if !plan.schema_proof.is_empty() {
        let _ = writeln!(
            out,
            "\nSchema proof (the source against the new home's fresh-install scripts; run again on staging after the copy)"
        );
        for line in &plan.schema_proof {
            let _ = writeln!(out, "  {line}");
        }
    }
    let steps: Vec<String> = plan.steps.iter().map(ToString::to_string).collect();
    let _ = writeln!(out, "\nSteps: {}", steps.join(" -> "));
    out
}

//! What each step records when it completes: typed, written into the journal's `completed`
//! event as JSON (the same keys as ever) and read back by the report and by xtask.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::preflight::Check;
use super::step::Step;
use super::userstores::EditRecord;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreflightResult {
    pub checks: Vec<Check>,
}

/// A verified backup of one tree (`backup-home`; tenants kept outside the home nested).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupResult {
    pub path: PathBuf,
    pub files: u64,
    pub bytes: u64,
    pub manifest: PathBuf,
    /// The re-read of the backup against its manifest, as one line.
    pub verified: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<Box<BackupResult>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupDbResult {
    pub datasource: String,
    pub files: Vec<carbon_db::backup::BackupFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CopyResult {
    pub datasource: String,
    pub copy: carbon_db::CopyReport,
}

/// `migrate:<datasource>`: the migration scripts applied to staging.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MigrateResult {
    pub datasource: String,
    /// The statement journal (`resume` continues from it).
    pub journal: PathBuf,
    pub migration: carbon_db::migrate::MigrationReport,
}

/// `schema-proof:<datasource>`: staging against the new home's fresh-install scripts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SchemaProofResult {
    pub datasource: String,
    /// The scripts that ran in the scratch database; empty when none creates a table of
    /// this datasource (nothing to prove).
    pub scripts: Vec<PathBuf>,
    pub staging_tables: usize,
    pub fresh_tables: usize,
    /// The differences left (after `align`, when it ran).
    pub diff: carbon_db::schema::SchemaDiff,
    /// `align` statements that ran on staging.
    #[serde(default)]
    pub aligned: Vec<String>,
    /// Missing differences the operator accepted in upgrade.toml.
    #[serde(default)]
    pub accepted_missing: Vec<String>,
    pub elapsed_ms: u64,
}

/// `connect`: the edits that point the new home's datasources at staging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectResult {
    /// Redacted unified diff.
    pub diff: String,
    pub backups: Vec<PathBuf>,
    pub notices: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CarryOverResult {
    pub applied: Vec<carbon_config::carry::CarryItem>,
    /// Redacted unified diff of what was applied.
    pub diff: String,
    pub to_review: Vec<carbon_config::carry::CarryItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicatedPart {
    pub name: String,
    pub src: PathBuf,
    pub dst: PathBuf,
    pub summary: carbon_fs::Summary,
    pub conflicts: Vec<carbon_fs::Conflict>,
    pub manifest: Option<carbon_fs::ManifestPaths>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicateResult {
    pub parts: Vec<ReplicatedPart>,
    pub skipped: Vec<carbon_fs::SkippedPart>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectUserstoresResult {
    pub edits: Vec<EditRecord>,
    /// Edits applied by this attempt (an interrupted one may have applied some already).
    pub applied_now: usize,
    pub diff: String,
    pub notices: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartResult {
    pub https_port: u16,
    pub log: PathBuf,
}

/// One replicated tree re-read against its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeResult {
    pub dir: PathBuf,
    pub manifest: PathBuf,
    pub result: String,
    pub edited_by_connect_userstores: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyHomeResult {
    pub trees: Vec<TreeResult>,
    pub datasources_point_at_staging: bool,
    pub strict: bool,
    pub pre_existing: Vec<String>,
    pub introduced: Vec<String>,
    pub findings: Vec<carbon_verify::Finding>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyServerResult {
    pub findings: Vec<carbon_verify::Finding>,
}

/// A completed step's result. Serialized without a tag (the journal's event already names
/// the step), read back through [`StepResult::read`] with that step.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum StepResult {
    Preflight(PreflightResult),
    BackupHome(BackupResult),
    BackupDb(BackupDbResult),
    Copy(Box<CopyResult>),
    Migrate(MigrateResult),
    SchemaProof(SchemaProofResult),
    Connect(ConnectResult),
    CarryOver(CarryOverResult),
    Replicate(ReplicateResult),
    ConnectUserstores(ConnectUserstoresResult),
    Start(StartResult),
    VerifyHome(VerifyHomeResult),
    VerifyServer(VerifyServerResult),
}

impl StepResult {
    /// Reads the detail a journal recorded for `step`.
    pub fn read(step: &Step, detail: &serde_json::Value) -> Result<StepResult> {
        fn de<T: serde::de::DeserializeOwned>(detail: &serde_json::Value) -> serde_json::Result<T> {
            T::deserialize(detail)
        }
        let result = match step {
            Step::Preflight => de(detail).map(StepResult::Preflight),
            Step::BackupHome => de(detail).map(StepResult::BackupHome),
            Step::BackupDb(_) => de(detail).map(StepResult::BackupDb),
            Step::Copy(_) => de(detail).map(|c| StepResult::Copy(Box::new(c))),
            Step::Migrate(_) => de(detail).map(StepResult::Migrate),
            Step::SchemaProof(_) => de(detail).map(StepResult::SchemaProof),
            Step::Connect => de(detail).map(StepResult::Connect),
            Step::CarryOver => de(detail).map(StepResult::CarryOver),
            Step::Replicate => de(detail).map(StepResult::Replicate),
            Step::ConnectUserstores => de(detail).map(StepResult::ConnectUserstores),
            Step::Start => de(detail).map(StepResult::Start),
            Step::VerifyHome => de(detail).map(StepResult::VerifyHome),
            Step::VerifyServer => de(detail).map(StepResult::VerifyServer),
        };
        result.with_context(|| format!("the recorded result of step {step}"))
    }

    /// The JSON the journal records.
    pub fn to_detail(&self) -> Result<serde_json::Value> {
        serde_json::to_value(self).context("encoding a step result")
    }
}

//! The `connect-userstores` step: secondary user stores that replication brought into the new
//! home still name the old databases in their `url`; they are pointed at staging.
//!
//! Order and proof: the step runs after `replicate` (the files only exist then) and edits the
//! replicated files in place, byte-exact and without a `.bak`. The replication manifest is left
//! as replication wrote it (it proves what was copied); instead, before the first byte changes,
//! the step records each edit (file, SHA-256 before = the manifest's, SHA-256 after) in
//! `state_dir/userstore-edits.json`. verify-home accepts a manifest difference only for a
//! recorded file whose bytes are exactly the recorded result. A resumed step reads the record:
//! files already at their result are skipped, files still at their original are edited, any
//! other content stops the run. So every edit is applied exactly once.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use carbon_config::ConnectPlan;
use carbon_config::edit::apply_without_backup;
use carbon_fs::{Mark, VerifyItem, sha256_hex};
use serde::{Deserialize, Serialize};

pub const RECORD_FILE: &str = "userstore-edits.json";

/// What the step does, written before it does it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Record {
    pub edits: Vec<EditRecord>,
    /// Redacted unified diff of every edit.
    pub diff: String,
    pub notices: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EditRecord {
    pub file: PathBuf,
    pub sha256_before: String,
    pub sha256_after: String,
}

impl Record {
    pub fn of(plan: &ConnectPlan) -> Record {
        Record {
            edits: plan
                .plans
                .iter()
                .map(|p| EditRecord {
                    file: p.file().to_path_buf(),
                    sha256_before: p.sha256_before(),
                    sha256_after: p.sha256_after(),
                })
                .collect(),
            diff: plan.unified_diff(),
            notices: plan.notices.iter().map(|n| n.message.clone()).collect(),
        }
    }

    pub fn read(state_dir: &Path) -> Result<Option<Record>> {
        let path = state_dir.join(RECORD_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .with_context(|| format!("reading {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// temp + fsync + rename: a record is whole or absent.
    pub fn write(&self, state_dir: &Path) -> Result<()> {
        let path = state_dir.join(RECORD_FILE);
        let tmp = path.with_extension("tmp");
        let bytes = serde_json::to_vec_pretty(self)?;
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &path))
            .and_then(|()| std::fs::File::open(state_dir)?.sync_all())
            .with_context(|| format!("writing {}", path.display()))
    }
}

/// Applies the recorded edits that are not applied yet, from `plan` (made from the files as
/// they are now). Returns how many were applied by this call.
pub fn apply(record: &Record, plan: &ConnectPlan) -> Result<usize> {
    let mut applied = 0;
    for edit in &record.edits {
        let current = file_sha256(&edit.file)?;
        if current == edit.sha256_after {
            continue; // applied by an attempt that was cut off
        }
        if current != edit.sha256_before {
            bail!(
                "{} changed since its edit was planned; restore it from the old home and resume",
                edit.file.display()
            );
        }
        let Some(file_plan) = plan
            .plans
            .iter()
            .find(|p| p.file() == edit.file && p.sha256_after() == edit.sha256_after)
        else {
            bail!(
                "{}: the recorded edit can no longer be planned",
                edit.file.display()
            );
        };
        apply_without_backup(file_plan)
            .with_context(|| format!("editing {}", edit.file.display()))?;
        applied += 1;
    }
    Ok(applied)
}

fn file_sha256(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(sha256_hex(&bytes))
}

/// Whether a manifest difference in `dir` is a recorded user-store edit: the file differs
/// from what replication wrote only by being exactly the recorded result.
pub fn is_recorded_edit(dir: &Path, item: &VerifyItem, record: &Record) -> bool {
    if item.mark != Mark::Differs {
        return false;
    }
    let path = dir.join(&item.path);
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    record.edits.iter().any(|edit| {
        canonical(&edit.file) == canonical(&path)
            && file_sha256(&path).is_ok_and(|sum| sum == edit.sha256_after)
    })
}

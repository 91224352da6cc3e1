//! `backup_home`: the whole PRODUCT_HOME, reflinked where possible, with a manifest read back.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::copy::CopyMethod;
use crate::replicate::plan;
use crate::{
    ConflictPolicy, FsError, ManifestPaths, Progress, ReplicateOptions, Report, VerifyOptions,
    VerifyReport, verify_with,
};

/// A backup that was written and then verified against its own manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupReport {
    pub copy: Report,
    pub verify: VerifyReport,
}

/// Backs up `home` into `dest` with its manifest beside `dest`, then re-reads every file against
/// that manifest. `dest` must be absent, empty, or an interrupted backup of the same home (no
/// manifest yet, nothing foreign in it): the run then finishes it without recopying verified
/// files. Links are kept as links even when they point outside the home: a backup reproduces,
/// it never follows.
pub fn backup_home(
    home: &Path,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<BackupReport, FsError> {
    let manifest = ManifestPaths::beside(dest);
    if manifest.jsonl.exists() {
        return Err(FsError::BackupExists {
            path: dest.to_path_buf(),
        });
    }
    let options = ReplicateOptions {
        allow_escaping_links: true,
        copy_method: CopyMethod::Reflink,
        // Resuming: whatever differs from the home is stale and replaced.
        conflicts: ConflictPolicy::PreferOld,
        manifest: Some(manifest.clone()),
        ..ReplicateOptions::default()
    };
    let plan = plan(home, dest, &options, progress)?;
    if let Some(foreign) = plan.destination_only().next() {
        return Err(FsError::DestinationNotEmpty {
            path: dest.join(foreign),
        });
    }
    let copy = plan.execute(progress)?;
    let verify = verify_with(dest, &manifest.jsonl, &VerifyOptions::default(), progress)?;
    if !verify.is_ok() {
        return Err(FsError::BackupMismatch {
            path: dest.to_path_buf(),
            summary: verify.summary_line(),
        });
    }
    Ok(BackupReport { copy, verify })
}

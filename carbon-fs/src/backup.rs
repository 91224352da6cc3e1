//! `backup_home`: the whole PRODUCT_HOME, reflinked where possible, with a manifest read back.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::copy::CopyMethod;
use crate::{
    FsError, ManifestPaths, Progress, ReplicateOptions, Report, VerifyOptions, VerifyReport,
    replicate_with, verify_with,
};

/// A backup that was written and then verified against its own manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupReport {
    pub copy: Report,
    pub verify: VerifyReport,
}

/// Backs up `home` into `dest` (absent or empty) with its manifest beside `dest`, then re-reads
/// every file against that manifest. Links are kept as links even when they point outside the
/// home: a backup reproduces, it never follows.
pub fn backup_home(
    home: &Path,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<BackupReport, FsError> {
    refuse_non_empty(dest)?;
    let manifest = ManifestPaths::beside(dest);
    let options = ReplicateOptions {
        allow_escaping_links: true,
        copy_method: CopyMethod::Reflink,
        manifest: Some(manifest.clone()),
        ..ReplicateOptions::default()
    };
    let copy = replicate_with(home, dest, &options, progress)?;
    let verify = verify_with(dest, &manifest.jsonl, &VerifyOptions::default(), progress)?;
    if !verify.is_ok() {
        return Err(FsError::BackupMismatch {
            path: dest.to_path_buf(),
            summary: verify.summary_line(),
        });
    }
    Ok(BackupReport { copy, verify })
}

fn refuse_non_empty(dest: &Path) -> Result<(), FsError> {
    match fs::read_dir(dest) {
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => Err(FsError::DestinationNotEmpty {
                path: dest.to_path_buf(),
            }),
        },
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(FsError::io("reading", dest)(err)),
    }
}

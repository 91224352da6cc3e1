//! Embedded H2: nothing here reads H2, so its database files are copied byte for byte
//! (via `.partial` files renamed into place) and compared by SHA-256.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::progress::{Progress, ProgressEvent};
use crate::report::{FileCheck, VerifyReport};
use crate::{CopyOptions, CopyReport, DbError, DbUrl, Vendor};

/// H2 1.x page store and 1.4+ MVStore files.
const DATA_SUFFIXES: &[&str] = &[".h2.db", ".mv.db"];

fn with_suffix(base: &Path, suffix: &str) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The database files of an H2 URL's base path that exist.
pub fn data_files(base: &Path) -> Vec<(String, PathBuf)> {
    DATA_SUFFIXES
        .iter()
        .map(|s| (s.to_string(), with_suffix(base, s)))
        .filter(|(_, p)| p.is_file())
        .collect()
}

fn base(url: &DbUrl) -> PathBuf {
    url.path().map(Path::to_path_buf).unwrap_or_default()
}

/// A database's base path and its data files; one without any is missing (`SourceMissing`).
pub(crate) fn source_files(from: &DbUrl) -> Result<(PathBuf, Vec<(String, PathBuf)>), DbError> {
    let src = base(from);
    let files = data_files(&src);
    if files.is_empty() {
        return Err(DbError::SourceMissing {
            url: from.to_string(),
        });
    }
    Ok((src, files))
}

/// Copies `from` to `to` (when given, synced) or only reads it, returning its size and SHA-256.
pub(crate) fn hash_copy(
    from: &Path,
    to: Option<&Path>,
    progress: &dyn Progress,
) -> Result<(u64, String), DbError> {
    let mut input = File::open(from).map_err(|e| DbError::io(from, e))?;
    let mut out = match to {
        Some(p) => Some(File::create(p).map_err(|e| DbError::io(p, e))?),
        None => None,
    };
    let on_chunk = |n| progress.event(ProgressEvent::Rows { rows: 0, bytes: n });
    let (total, sum) = carbon_fs::sha256_copy(
        &mut input,
        out.as_mut().map(|o| o as &mut dyn std::io::Write),
        on_chunk,
    )
    .map_err(|e| match e {
        carbon_fs::HashError::Read(e) => DbError::io(from, e),
        carbon_fs::HashError::Write(e) => DbError::io(to.unwrap_or(from), e),
    })?;
    if let (Some(o), Some(p)) = (out, to) {
        o.sync_all().map_err(|e| DbError::io(p, e))?;
    }
    Ok((total, sum))
}

pub(crate) fn copy(
    from: &DbUrl,
    to: &DbUrl,
    _opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<CopyReport, DbError> {
    let started = Instant::now();
    let (src, files) = source_files(from)?;
    let dst = base(to);
    let present: Vec<String> = DATA_SUFFIXES
        .iter()
        .map(|s| with_suffix(&dst, s))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !present.is_empty() {
        return Err(DbError::TargetNotEmpty {
            url: to.to_string(),
            objects: present.join(", "),
        });
    }
    let mut warnings = Vec::new();
    let lock = with_suffix(&src, ".lock.db");
    if lock.exists() {
        warnings.push(format!(
            "{} exists: H2 may still be open (or a killed server left it); stop the server before trusting this copy",
            lock.display()
        ));
    }
    if with_suffix(&src, ".lobs.db").exists() {
        return Err(DbError::Unsupported {
            url: from.to_string(),
            reason: "a .lobs.db directory (external H2 LOB storage) is not copied by this tool"
                .into(),
        });
    }
    if let Some(dir) = dst.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| DbError::io(dir, e))?;
    }
    progress.event(ProgressEvent::Phase("files"));
    let mut bytes = 0;
    for (suffix, path) in &files {
        let target = with_suffix(&dst, suffix);
        let partial = with_suffix(&target, ".partial");
        let (n, _) = hash_copy(path, Some(&partial), progress)?;
        std::fs::rename(&partial, &target).map_err(|e| DbError::io(&target, e))?;
        bytes += n;
        progress.event(ProgressEvent::TableDone {
            table: suffix,
            rows: 0,
        });
    }
    Ok(CopyReport {
        bytes,
        warnings,
        copy_ms: started.elapsed().as_millis() as u64,
        ..CopyReport::new(Vendor::H2, from, to, "files")
    })
}

pub(crate) fn verify(
    from: &DbUrl,
    to: &DbUrl,
    progress: &dyn Progress,
) -> Result<VerifyReport, DbError> {
    let (_, files) = source_files(from)?;
    let dst = base(to);
    let mut report = VerifyReport {
        vendor: Vendor::H2,
        objects: files.len(),
        tables: Vec::new(),
        rows: 0,
        counters: 0,
        files: Vec::new(),
        mismatches: Vec::new(),
        elapsed_ms: 0,
    };
    for (suffix, path) in files {
        let (n, s) = hash_copy(&path, None, progress)?;
        let target = with_suffix(&dst, &suffix);
        let (ok, detail) = if target.is_file() {
            let (tn, ts) = hash_copy(&target, None, progress)?;
            (
                tn == n && ts == s,
                format!("sha256 {s} ({n} bytes) vs {ts} ({tn} bytes)"),
            )
        } else {
            (false, "absent from the target".to_owned())
        };
        if !ok {
            report.mismatches.push(crate::report::Mismatch {
                object: target.display().to_string(),
                kind: "content".into(),
                detail,
            });
        }
        report.files.push(FileCheck {
            file: path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            bytes: n,
            sha256: s,
            ok,
        });
    }
    Ok(report)
}

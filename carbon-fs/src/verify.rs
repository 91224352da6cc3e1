//! `verify`: a tree against its manifest, one rclone-style mark per path.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::manifest::{Manifest, ManifestEntry};
use crate::pool::{default_workers, parallel_map};
use crate::scan::{EntryKind, Mtime, Node, relative_utf8};
use crate::{FsError, NoProgress, Phase, Progress, copy};

/// rclone `check --combined` marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mark {
    /// `=` same as recorded.
    #[serde(rename = "=")]
    Same,
    /// `-` recorded but missing from the tree.
    #[serde(rename = "-")]
    Missing,
    /// `+` in the tree but not recorded.
    #[serde(rename = "+")]
    Extra,
    /// `*` differs (type, size, mode, mtime, link target or content).
    #[serde(rename = "*")]
    Differs,
    /// `!` could not be read or hashed.
    #[serde(rename = "!")]
    Error,
}

impl Mark {
    pub fn symbol(self) -> char {
        match self {
            Mark::Same => '=',
            Mark::Missing => '-',
            Mark::Extra => '+',
            Mark::Differs => '*',
            Mark::Error => '!',
        }
    }
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.symbol())
    }
}

/// One path and its mark; `detail` says what differs or failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyItem {
    pub mark: Mark,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Marks per kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkCounts {
    pub same: u64,
    pub missing: u64,
    pub extra: u64,
    pub differs: u64,
    pub errors: u64,
}

/// The result of a verification: ok only when every mark is `=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub dir: PathBuf,
    pub manifest: PathBuf,
    /// Whether file content was re-hashed (otherwise only structure was compared).
    pub data: bool,
    pub counts: MarkCounts,
    /// Sorted by path.
    pub items: Vec<VerifyItem>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.items.iter().all(|i| i.mark == Mark::Same)
    }

    /// Every item that is not `=`.
    pub fn problems(&self) -> impl Iterator<Item = &VerifyItem> {
        self.items.iter().filter(|i| i.mark != Mark::Same)
    }

    /// `12 same, 1 missing, 0 extra, 1 differ, 0 errors`.
    pub fn summary_line(&self) -> String {
        let c = &self.counts;
        format!(
            "{} same, {} missing, {} extra, {} differ, {} errors",
            c.same, c.missing, c.extra, c.differs, c.errors
        )
    }
}

/// How `verify` reads.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Re-hash every file (default); `false` compares names, types, sizes, modes, mtimes and links only.
    pub data: bool,
    /// Hashing threads; 0 picks the machine's parallelism capped at 4.
    pub workers: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            data: true,
            workers: 0,
        }
    }
}

/// Verifies `dir` against the JSON-lines manifest at `manifest`, re-hashing every file.
pub fn verify(dir: &Path, manifest: &Path) -> Result<VerifyReport, FsError> {
    verify_with(dir, manifest, &VerifyOptions::default(), &NoProgress)
}

/// Verifies `dir` against `manifest`. Errors only when the manifest or the root cannot be read;
/// problems with single paths become `!` marks.
pub fn verify_with(
    dir: &Path,
    manifest_path: &Path,
    options: &VerifyOptions,
    progress: &dyn Progress,
) -> Result<VerifyReport, FsError> {
    let manifest = Manifest::read(manifest_path)?;
    let root = fs::symlink_metadata(dir).map_err(FsError::io("reading", dir))?;
    if !root.is_dir() {
        return Err(FsError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    let recorded: HashMap<&str, &ManifestEntry> = manifest
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e))
        .collect();
    let ignored = manifest_files_inside(dir, manifest_path);
    let mut items = Vec::new();
    let mut seen = HashSet::new();
    let mut to_hash: Vec<(String, &str, u64)> = Vec::new();
    let walk = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1);
    for entry in walk {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                let path = err.path().unwrap_or(dir).to_path_buf();
                items.push(item(
                    Mark::Error,
                    relative_lossy(dir, &path),
                    Some(err.to_string()),
                ));
                continue;
            }
        };
        let rel = match relative_utf8(dir, entry.path()) {
            Ok(rel) => rel,
            Err(err) => {
                items.push(item(
                    Mark::Extra,
                    relative_lossy(dir, entry.path()),
                    Some(crate::error::error_chain(&err)),
                ));
                continue;
            }
        };
        if ignored.contains(&rel) {
            continue;
        }
        let Some(expected) = recorded.get(rel.as_str()) else {
            items.push(item(Mark::Extra, rel, None));
            continue;
        };
        seen.insert(expected.path.as_str());
        let found = entry
            .metadata()
            .map_err(|err| err.to_string())
            .and_then(|meta| {
                Node::from_metadata(rel.clone(), entry.path(), &meta)
                    .map_err(|err| crate::error::error_chain(&err))
            });
        match found {
            Err(detail) => items.push(item(Mark::Differs, rel, Some(detail))),
            Ok(found) => match structural_difference(expected, &found) {
                Some(detail) => items.push(item(Mark::Differs, rel, Some(detail))),
                None if options.data && expected.kind == EntryKind::File => {
                    to_hash.push((
                        rel,
                        expected.sha256.as_deref().unwrap_or_default(),
                        expected.size,
                    ));
                }
                None => items.push(item(Mark::Same, rel, None)),
            },
        }
    }
    for entry in &manifest.entries {
        if !seen.contains(entry.path.as_str()) {
            items.push(item(Mark::Missing, entry.path.clone(), None));
        }
    }
    items.extend(hash_marks(dir, &to_hash, options, progress)?);
    items.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(VerifyReport {
        dir: dir.to_path_buf(),
        manifest: manifest_path.to_path_buf(),
        data: options.data,
        counts: count(&items),
        items,
    })
}

fn item(mark: Mark, path: String, detail: Option<String>) -> VerifyItem {
    VerifyItem { mark, path, detail }
}

fn relative_lossy(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// A manifest kept inside the tree it describes is not an extra file.
fn manifest_files_inside(dir: &Path, manifest: &Path) -> HashSet<String> {
    let paths = crate::ManifestPaths::from_jsonl(manifest);
    [paths.jsonl, paths.sha256sums]
        .iter()
        .filter_map(|p| p.strip_prefix(dir).ok())
        .filter_map(|p| p.to_str().map(str::to_owned))
        .collect()
}

/// What differs besides content. Directory mtimes are not compared: adding and removing
/// entries changes them, and those changes already show as `+` and `-`.
fn structural_difference(expected: &ManifestEntry, found: &Node) -> Option<String> {
    if expected.kind != found.kind {
        return Some(format!(
            "type {} -> {}",
            expected.kind.name(),
            found.kind.name()
        ));
    }
    if expected.link_target != found.target {
        return Some(format!(
            "link target {:?} -> {:?}",
            expected.link_target.as_deref().unwrap_or_default(),
            found.target.as_deref().unwrap_or_default()
        ));
    }
    if expected.size != found.size {
        return Some(format!("size {} -> {}", expected.size, found.size));
    }
    if expected.mode != found.mode {
        return Some(format!("mode {:04o} -> {:04o}", expected.mode, found.mode));
    }
    if expected.kind != EntryKind::Dir && expected.mtime != found.mtime {
        return Some(format!(
            "mtime {} -> {}",
            show(expected.mtime),
            show(found.mtime)
        ));
    }
    None
}

fn show(mtime: Mtime) -> String {
    format!("{}.{:09}", mtime.secs, mtime.nanos)
}

fn hash_marks(
    dir: &Path,
    to_hash: &[(String, &str, u64)],
    options: &VerifyOptions,
    progress: &dyn Progress,
) -> Result<Vec<VerifyItem>, FsError> {
    let workers = match options.workers {
        0 => default_workers(),
        n => n,
    };
    let bytes = to_hash.iter().map(|(_, _, size)| size).sum();
    progress.start(Phase::Verifying, to_hash.len() as u64, bytes);
    let marks = parallel_map(to_hash, workers, |(rel, expected, _)| {
        let path = dir.join(rel);
        let mark = match copy::hash_file(&path, progress) {
            Ok((sum, _)) if sum == *expected => item(Mark::Same, rel.clone(), None),
            Ok(_) => item(Mark::Differs, rel.clone(), Some("content differs".into())),
            Err(err) => item(
                Mark::Error,
                rel.clone(),
                Some(crate::error::error_chain(&err)),
            ),
        };
        progress.file_done(&path);
        Ok::<_, FsError>(mark)
    })?;
    progress.finish(Phase::Verifying);
    Ok(marks)
}

fn count(items: &[VerifyItem]) -> MarkCounts {
    let mut counts = MarkCounts::default();
    for item in items {
        match item.mark {
            Mark::Same => counts.same += 1,
            Mark::Missing => counts.missing += 1,
            Mark::Extra => counts.extra += 1,
            Mark::Differs => counts.differs += 1,
            Mark::Error => counts.errors += 1,
        }
    }
    counts
}

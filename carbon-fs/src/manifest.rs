//! The manifest: the record, written last, that a tree landed complete.
//!
//! Two files with the same content: GNU `SHA256SUMS` (regular files only, so `sha256sum -c`
//! works from the tree's root without this tool) and JSON lines with every entry's type, size,
//! mode, mtime, owner, link target and sha256.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::FsError;
use crate::scan::{EntryKind, Mtime, Node};

/// Where an entry's content came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// From the source tree (written by this run, or already identical in the destination).
    Source,
    /// A conflict: the destination's own version was kept.
    Kept,
    /// Only in the destination (e.g. shipped by the new product); left untouched.
    Destination,
}

/// One entry of a tree as it stands after replication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// `/`-separated path relative to the tree's root.
    pub path: String,
    #[serde(rename = "type")]
    pub kind: EntryKind,
    pub size: u64,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub mtime: Mtime,
    pub uid: u32,
    pub gid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_target: Option<String>,
    /// Lower-case hex SHA-256 of a regular file's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub origin: Origin,
}

impl ManifestEntry {
    pub(crate) fn new(node: Node, sha256: Option<String>, origin: Origin) -> ManifestEntry {
        ManifestEntry {
            path: node.rel,
            kind: node.kind,
            size: node.size,
            mode: node.mode,
            mtime: node.mtime,
            uid: node.uid,
            gid: node.gid,
            link_target: node.target,
            sha256,
            origin,
        }
    }
}

/// Every entry of a tree, sorted by path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub entries: Vec<ManifestEntry>,
}

/// The two files of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestPaths {
    /// JSON lines, the full record (what `verify` reads).
    pub jsonl: PathBuf,
    /// GNU `SHA256SUMS` for `cd <tree> && sha256sum -c <file>`.
    pub sha256sums: PathBuf,
}

impl ManifestPaths {
    /// `<dir>/<name>.manifest.jsonl` and `<dir>/<name>.SHA256SUMS` beside `tree`, outside it.
    pub fn beside(tree: &Path) -> ManifestPaths {
        let name = tree
            .file_name()
            .map_or_else(|| "tree".into(), |n| n.to_string_lossy().into_owned());
        let dir = tree.parent().unwrap_or(Path::new("."));
        ManifestPaths {
            jsonl: dir.join(format!("{name}.manifest.jsonl")),
            sha256sums: dir.join(format!("{name}.SHA256SUMS")),
        }
    }

    /// `FILE` holds the JSON lines; the SHA256SUMS sits beside it (`FILE` minus `.jsonl`, plus `.SHA256SUMS`).
    pub fn from_jsonl(jsonl: impl Into<PathBuf>) -> ManifestPaths {
        let jsonl = jsonl.into();
        let text = jsonl.to_string_lossy();
        let stem = text.strip_suffix(".jsonl").unwrap_or(&text);
        let stem = stem.strip_suffix(".manifest").unwrap_or(stem);
        ManifestPaths {
            sha256sums: PathBuf::from(format!("{stem}.SHA256SUMS")),
            jsonl,
        }
    }

    /// Removes both files; says whether the JSONL one was there.
    pub(crate) fn remove_stale(&self) -> Result<bool, FsError> {
        let mut found = false;
        for path in [&self.jsonl, &self.sha256sums] {
            match fs::remove_file(path) {
                Ok(()) => found |= path == &self.jsonl,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(FsError::io("removing stale manifest", path)(err)),
            }
        }
        Ok(found)
    }
}

impl Manifest {
    /// One JSON object per line, sorted by path.
    pub fn to_jsonl(&self) -> String {
        let mut out = String::new();
        for entry in &self.entries {
            // Serialising plain data into a String cannot fail.
            out.push_str(&serde_json::to_string(entry).unwrap_or_default());
            out.push('\n');
        }
        out
    }

    /// GNU coreutils format: `<hex>  <path>`, with a leading `\` and escaped `\\`, `\n`, `\r`
    /// for names that need it, exactly as `sha256sum` writes them.
    pub fn to_sha256sums(&self) -> String {
        let mut out = String::new();
        for entry in &self.entries {
            let Some(sum) = &entry.sha256 else { continue };
            let needs_escape = entry.path.contains(['\\', '\n', '\r']);
            if needs_escape {
                out.push('\\');
            }
            out.push_str(sum);
            out.push_str("  ");
            if needs_escape {
                out.push_str(
                    &entry
                        .path
                        .replace('\\', "\\\\")
                        .replace('\n', "\\n")
                        .replace('\r', "\\r"),
                );
            } else {
                out.push_str(&entry.path);
            }
            out.push('\n');
        }
        out
    }

    /// Reads a JSON-lines manifest.
    pub fn read(path: &Path) -> Result<Manifest, FsError> {
        let text = fs::read_to_string(path).map_err(FsError::io("reading manifest", path))?;
        let mut entries = Vec::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let entry = serde_json::from_str(line).map_err(|err| FsError::BadManifest {
                path: path.to_path_buf(),
                line: index + 1,
                // serde quotes the offending text, which may hold a line break: keep one line.
                reason: err.to_string().replace('\n', "\\n").replace('\r', "\\r"),
            })?;
            entries.push(entry);
        }
        Ok(Manifest { entries })
    }

    /// Writes both files atomically (SHA256SUMS first, the JSON lines last as the commit record).
    pub fn write(&self, paths: &ManifestPaths) -> Result<(), FsError> {
        write_atomic(&paths.sha256sums, self.to_sha256sums().as_bytes())?;
        write_atomic(&paths.jsonl, self.to_jsonl().as_bytes())
    }

    pub fn files(&self) -> impl Iterator<Item = &ManifestEntry> {
        self.entries.iter().filter(|e| e.kind == EntryKind::File)
    }
}

/// Through the workspace's one atomic write, naming the file on failure.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    crate::atomic::write_atomic(path, bytes, None).map_err(FsError::io("writing", path))
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), FsError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(FsError::io("syncing directory", dir))
}

pub(crate) use crate::atomic::parent_dir;

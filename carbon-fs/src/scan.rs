//! Walking a tree into [`Node`]s without following symlinks, refusing what cannot be copied.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, Metadata};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::FsError;

/// The three kinds of entry a product home may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
}

impl EntryKind {
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Dir => "directory",
            EntryKind::Symlink => "symlink",
        }
    }
}

/// A modification time with nanoseconds, as `stat` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Mtime {
    pub secs: i64,
    pub nanos: u32,
}

impl Mtime {
    pub(crate) fn of(meta: &Metadata) -> Mtime {
        Mtime {
            secs: meta.mtime(),
            nanos: u32::try_from(meta.mtime_nsec()).unwrap_or(0),
        }
    }

    pub(crate) fn to_system_time(self) -> SystemTime {
        let nanos = Duration::from_nanos(u64::from(self.nanos));
        let secs = Duration::from_secs(self.secs.unsigned_abs());
        if self.secs >= 0 {
            SystemTime::UNIX_EPOCH + secs + nanos
        } else {
            SystemTime::UNIX_EPOCH - secs + nanos
        }
    }
}

/// One entry of a tree, relative to its root, as `lstat` saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    /// `/`-separated path relative to the root; never empty.
    pub rel: String,
    pub kind: EntryKind,
    pub size: u64,
    /// Permission bits including setuid/setgid/sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub mtime: Mtime,
    pub uid: u32,
    pub gid: u32,
    pub target: Option<String>,
    /// Hard-link count: files linked several times are copied as separate files.
    pub nlink: u64,
}

impl Node {
    pub(crate) fn from_metadata(
        rel: String,
        path: &Path,
        meta: &Metadata,
    ) -> Result<Node, FsError> {
        let kind = kind_of(path, meta)?;
        let target = match kind {
            EntryKind::Symlink => Some(read_link_utf8(path)?),
            _ => None,
        };
        Ok(Node {
            rel,
            kind,
            size: if kind == EntryKind::Dir {
                0
            } else {
                meta.len()
            },
            mode: meta.mode() & 0o7777,
            mtime: Mtime::of(meta),
            uid: meta.uid(),
            gid: meta.gid(),
            target,
            nlink: meta.nlink(),
        })
    }
}

fn kind_of(path: &Path, meta: &Metadata) -> Result<EntryKind, FsError> {
    let ft = meta.file_type();
    let special = |kind| FsError::SpecialFile {
        path: path.to_path_buf(),
        kind,
    };
    if ft.is_file() {
        Ok(EntryKind::File)
    } else if ft.is_dir() {
        Ok(EntryKind::Dir)
    } else if ft.is_symlink() {
        Ok(EntryKind::Symlink)
    } else if ft.is_fifo() {
        Err(special("FIFO"))
    } else if ft.is_socket() {
        Err(special("socket"))
    } else if ft.is_block_device() {
        Err(special("block device"))
    } else if ft.is_char_device() {
        Err(special("character device"))
    } else {
        Err(special("file of unknown type"))
    }
}

fn read_link_utf8(path: &Path) -> Result<String, FsError> {
    let target = fs::read_link(path).map_err(FsError::io("reading link", path))?;
    target
        .into_os_string()
        .into_string()
        .map_err(|_| FsError::NonUtf8Name {
            path: path.to_path_buf(),
        })
}

/// Temporary files are `.<name>.<pid>-<n>.carbon-tmp` beside their final name.
pub(crate) const TEMP_SUFFIX: &str = ".carbon-tmp";

pub(crate) fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(TEMP_SUFFIX)
}

/// A whole tree: its entries in sorted (parents-first) order, plus our own temp leftovers.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    pub nodes: Vec<Node>,
    pub temp_leftovers: Vec<String>,
}

/// How strict a walk is: sources refuse reserved names, destinations collect them as leftovers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Source,
    Destination,
}

/// Walks `root` (which must be a real directory) in sorted order without following links.
pub(crate) fn scan_tree(root: &Path, side: Side) -> Result<Tree, FsError> {
    let mut tree = Tree::default();
    let walk = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1);
    for entry in walk {
        let entry = entry.map_err(|err| walk_error(root, err))?;
        let rel = relative_utf8(root, entry.path())?;
        let name = entry.file_name().to_str().unwrap_or_default();
        if is_temp_name(name) && entry.depth() > 0 {
            match side {
                Side::Source => {
                    return Err(FsError::ReservedName {
                        path: entry.path().to_path_buf(),
                    });
                }
                Side::Destination => {
                    tree.temp_leftovers.push(rel);
                    continue;
                }
            }
        }
        let meta = entry
            .metadata()
            .map_err(|err| walk_error(entry.path(), err))?;
        tree.nodes
            .push(Node::from_metadata(rel, entry.path(), &meta)?);
    }
    Ok(tree)
}

fn walk_error(fallback: &Path, err: walkdir::Error) -> FsError {
    let path = err.path().unwrap_or(fallback).to_path_buf();
    let error = err
        .into_io_error()
        .unwrap_or_else(|| std::io::Error::other("filesystem loop"));
    FsError::Io {
        op: "walking",
        path,
        error,
    }
}

pub(crate) fn relative_utf8(root: &Path, path: &Path) -> Result<String, FsError> {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.to_str()
        .map(str::to_owned)
        .ok_or_else(|| FsError::NonUtf8Name {
            path: path.to_path_buf(),
        })
}

/// Refuses every symlink whose target, resolved inside the tree (following the tree's own
/// links), would leave the root. Dangling links inside the tree are fine: we never follow them.
pub(crate) fn check_links_stay_inside(root: &Path, nodes: &[Node]) -> Result<(), FsError> {
    let links: HashMap<&str, &str> = nodes
        .iter()
        .filter_map(|n| n.target.as_deref().map(|t| (n.rel.as_str(), t)))
        .collect();
    for (rel, target) in &links {
        if escapes(&links, rel, target) {
            return Err(FsError::EscapingLink {
                path: root.join(rel),
                target: (*target).to_owned(),
            });
        }
    }
    Ok(())
}

/// Symlink hops allowed before a chain counts as a loop (Linux's own limit).
const MAX_HOPS: usize = 40;

fn escapes(links: &HashMap<&str, &str>, link_rel: &str, target: &str) -> bool {
    let mut dir: Vec<&str> = link_rel.split('/').collect();
    dir.pop();
    if target.starts_with('/') {
        return true;
    }
    let mut pending: VecDeque<&str> = target.split('/').collect();
    let mut hops = 0;
    while let Some(part) = pending.pop_front() {
        match part {
            "" | "." => {}
            ".." => {
                if dir.pop().is_none() {
                    return true;
                }
            }
            name => {
                dir.push(name);
                let Some(next) = links.get(dir.join("/").as_str()) else {
                    continue;
                };
                hops += 1;
                if hops > MAX_HOPS {
                    return false; // a loop: dangling for everyone, and we never follow it
                }
                if next.starts_with('/') {
                    return true;
                }
                // The link is replaced by its target, resolved from the link's own directory.
                dir.pop();
                for part in next.split('/').rev() {
                    pending.push_front(part);
                }
            }
        }
    }
    false
}

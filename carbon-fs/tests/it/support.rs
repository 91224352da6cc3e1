//! Real trees on disk: a small language to build them and helpers to compare them.

use std::collections::BTreeMap;
use std::fs::{self, FileTimes};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use carbon_fs::{ManifestPaths, Outcome, Report, verify};

/// One entry of a test tree.
#[derive(Debug, Clone, Copy)]
pub enum Item<'a> {
    /// Path, content, mode.
    File(&'a str, &'a [u8], u32),
    /// Path, mode.
    Dir(&'a str, u32),
    /// Path, target.
    Link(&'a str, &'a str),
}

/// A fixed, recognisable mtime with nanoseconds, so preservation is visible.
pub fn fixed_mtime(n: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::new(1_500_000_000 + n * 1000, 123_456_789)
}

/// Writes `items` under `root` (creating parents); directories get their mode and mtime last.
pub fn build(root: &Path, items: &[Item<'_>]) {
    fs::create_dir_all(root).unwrap();
    for (n, item) in items.iter().enumerate() {
        match *item {
            Item::File(path, content, mode) => {
                let path = root.join(path);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(&path, content).unwrap();
                let file = fs::File::options().write(true).open(&path).unwrap();
                file.set_times(FileTimes::new().set_modified(fixed_mtime(n as u64)))
                    .unwrap();
                fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            }
            Item::Dir(path, _) => fs::create_dir_all(root.join(path)).unwrap(),
            Item::Link(path, target) => {
                let path = root.join(path);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                symlink(target, &path).unwrap();
            }
        }
    }
    for (n, item) in items.iter().enumerate().rev() {
        if let Item::Dir(path, mode) = *item {
            let path = root.join(path);
            let dir = fs::File::open(&path).unwrap();
            dir.set_times(FileTimes::new().set_modified(fixed_mtime(n as u64)))
                .unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

/// A product-home-like tree with every kind of entry the issue names.
pub fn mixed_tree() -> Vec<Item<'static>> {
    vec![
        Item::File("axis2services/Version.aar", b"version service", 0o644),
        Item::File("axis2services/services.list", b"Version.aar\n", 0o644),
        Item::File("bin/run.sh", b"#!/bin/sh\necho hi\n", 0o755),
        Item::File("empty.txt", b"", 0o600),
        Item::File(
            "webapps/caf\u{e9} r\u{e9}sum\u{e9}/index \u{65e5}\u{672c}.html",
            b"<p>unicode & spaces</p>",
            0o644,
        ),
        Item::Dir("empty-dir", 0o750),
        Item::Dir("read-only-dir", 0o555),
        Item::Link("links/to-file", "../axis2services/services.list"),
        Item::Link("links/to-dir", "../webapps"),
        Item::Link("links/dangling", "nowhere/at/all"),
    ]
}

/// Everything about an entry that replication must keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub kind: &'static str,
    pub mode: u32,
    pub mtime: (i64, i64),
    pub content: Vec<u8>,
}

/// The whole tree under `root` (not following links), by relative path.
pub fn snapshot(root: &Path) -> BTreeMap<String, Seen> {
    let mut seen = BTreeMap::new();
    if !root.exists() {
        return seen;
    }
    for entry in walkdir_sorted(root) {
        let rel = entry
            .strip_prefix(root)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let meta = fs::symlink_metadata(&entry).unwrap();
        let (kind, content) = if meta.file_type().is_symlink() {
            (
                "symlink",
                fs::read_link(&entry)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes(),
            )
        } else if meta.is_dir() {
            ("dir", Vec::new())
        } else if meta.is_file() {
            ("file", fs::read(&entry).unwrap())
        } else {
            ("special", Vec::new()) // never opened: a FIFO would block
        };
        seen.insert(
            rel,
            Seen {
                kind,
                mode: if kind == "symlink" {
                    0
                } else {
                    meta.mode() & 0o7777
                },
                mtime: (meta.mtime(), meta.mtime_nsec()),
                content,
            },
        );
    }
    seen
}

fn walkdir_sorted(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut children: Vec<PathBuf> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        children.sort();
        for child in children {
            if fs::symlink_metadata(&child).unwrap().is_dir() {
                stack.push(child.clone());
            }
            out.push(child);
        }
    }
    out
}

/// `cd tree && sha256sum -c --strict <sums>` succeeds.
pub fn assert_sha256sum_accepts(tree: &Path, sums: &Path) {
    let out = Command::new("sha256sum")
        .arg("-c")
        .arg("--strict")
        .arg("--quiet")
        .arg(sums)
        .current_dir(tree)
        .output()
        .expect("sha256sum (coreutils) must be installed");
    assert!(
        out.status.success(),
        "sha256sum -c failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The destination mirrors every source entry (type, mode, mtime, content, link target),
/// the manifest passes `sha256sum -c` and `verify`, and no temp file is left.
/// Files found identical are left alone, so only their content is compared.
pub fn assert_replicated(src: &Path, dst: &Path, report: &Report) {
    let source = snapshot(src);
    let destination = snapshot(dst);
    for (path, seen) in &source {
        let landed = destination
            .get(path)
            .unwrap_or_else(|| panic!("{path} missing after replication"));
        let identical = report
            .items
            .iter()
            .any(|i| i.path == *path && i.outcome == Outcome::Identical);
        if identical {
            assert_eq!(
                (landed.kind, &landed.content),
                (seen.kind, &seen.content),
                "{path}"
            );
        } else {
            assert_eq!(landed, seen, "{path} differs after replication");
        }
    }
    assert_manifest_holds(dst, report.manifest.as_ref().expect("manifest written"));
    assert_no_temp_files(dst);
}

pub fn assert_manifest_holds(dst: &Path, manifest: &ManifestPaths) {
    assert_sha256sum_accepts(dst, &manifest.sha256sums);
    let verified = verify(dst, &manifest.jsonl).unwrap();
    assert!(
        verified.is_ok(),
        "verify: {:?}",
        verified.problems().collect::<Vec<_>>()
    );
}

pub fn assert_no_temp_files(root: &Path) {
    if !root.exists() {
        return;
    }
    for path in walkdir_sorted(root) {
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(
            !name.ends_with(".carbon-tmp"),
            "temp file left: {}",
            path.display()
        );
    }
}

/// In a failed run, every source file standing under its final name has the source's content
/// (files only the destination has are its own).
pub fn assert_no_wrong_content(src: &Path, dst: &Path) {
    let source = snapshot(src);
    for (path, seen) in snapshot(dst) {
        if let Some(original) = source.get(&path).filter(|_| seen.kind == "file") {
            assert_eq!(
                original.content, seen.content,
                "{path} stands with wrong content"
            );
        }
    }
    assert_no_temp_files(dst);
}

pub fn assert_no_manifest(dst: &Path) {
    let paths = ManifestPaths::beside(dst);
    assert!(
        !paths.jsonl.exists(),
        "manifest must be absent after a failure"
    );
    assert!(
        !paths.sha256sums.exists(),
        "SHA256SUMS must be absent after a failure"
    );
}

pub fn running_as_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A small tmpfs mounted for the duration of a test (root only), unmounted on drop.
pub struct Mount {
    pub path: PathBuf,
}

impl Mount {
    pub fn tmpfs(path: &Path, options: &str) -> Mount {
        fs::create_dir_all(path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(path)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mounting a tmpfs at {} failed; this test needs root with CAP_SYS_ADMIN",
            path.display()
        );
        Mount {
            path: path.to_path_buf(),
        }
    }

    pub fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.path)
            .status()
            .unwrap();
        assert!(status.success(), "remount {options} failed");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

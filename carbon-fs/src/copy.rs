//! Copying one file: one read of the source, hashed on the way, into a temp name renamed into place.

use std::fs::{self, File, FileTimes, OpenOptions, Permissions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::hash::{BUFFER, HashError, sha256_copy};
use crate::manifest::parent_dir;
use crate::scan::{Mtime, Node, TEMP_SUFFIX};
use crate::{FsError, Progress};

/// How file content is moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CopyMethod {
    /// Read once, hash and write the same bytes (the fastest with a hash on non-CoW filesystems).
    #[default]
    Stream,
    /// Share extents with the source (`FICLONE`) where the filesystem allows, then hash the
    /// source; falls back to `Stream` elsewhere.
    Reflink,
}

/// What the copy needs to know besides the paths.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CopySettings {
    pub method: CopyMethod,
    pub fsync_each: bool,
    pub preserve_owner: bool,
}

/// A unique temporary name beside `dst`.
pub(crate) fn temp_path(dst: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = dst
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    parent_dir(dst).join(format!(".{name}.{}-{n}{TEMP_SUFFIX}", std::process::id()))
}

/// Removes the temp file unless the copy reached its rename.
struct TempGuard<'a> {
    path: &'a Path,
    armed: bool,
}

impl Drop for TempGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(self.path);
        }
    }
}

/// Copies `src` (scanned as `expected`) to `dst` and returns the hex SHA-256 of what was written.
/// On any error nothing stands under `dst`'s name that was not there before.
pub(crate) fn copy_file(
    src: &Path,
    dst: &Path,
    expected: &Node,
    settings: CopySettings,
    progress: &dyn Progress,
) -> Result<String, FsError> {
    let mut input = File::open(src).map_err(FsError::io("opening", src))?;
    let before = input
        .metadata()
        .map_err(FsError::io("reading metadata of", src))?;
    ensure_unchanged(
        src,
        expected.size,
        expected.mtime,
        &before,
        "since the scan",
    )?;

    let temp = temp_path(dst);
    let mut guard = TempGuard {
        path: &temp,
        armed: true,
    };
    let mut output = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .map_err(FsError::io("creating", &temp))?;
    let (sha256, copied) = match settings.method {
        CopyMethod::Reflink if rustix::fs::ioctl_ficlone(&output, &input).is_ok() => {
            hash_reader(&mut input, src, progress)?
        }
        _ => stream(&mut input, &mut output, before.len(), src, &temp, progress)?,
    };

    let after = input
        .metadata()
        .map_err(FsError::io("reading metadata of", src))?;
    ensure_unchanged(
        src,
        before.len(),
        Mtime::of(&before),
        &after,
        "during the copy",
    )?;
    if copied != before.len() {
        return Err(FsError::SourceChanged {
            path: src.to_path_buf(),
            detail: format!("read {copied} bytes of {}", before.len()),
        });
    }
    finish_metadata(&output, &temp, expected, settings.preserve_owner)?;
    if settings.fsync_each {
        output.sync_all().map_err(FsError::io("syncing", &temp))?;
    }
    drop(output);
    fs::rename(&temp, dst).map_err(FsError::io("renaming into place", dst))?;
    guard.armed = false;
    progress.file_done(src);
    Ok(sha256)
}

fn ensure_unchanged(
    path: &Path,
    size: u64,
    mtime: Mtime,
    now: &fs::Metadata,
    when: &str,
) -> Result<(), FsError> {
    let now_mtime = Mtime::of(now);
    if now.len() != size || now_mtime != mtime {
        return Err(FsError::SourceChanged {
            path: path.to_path_buf(),
            detail: format!(
                "size {size} -> {}, mtime {}.{:09} -> {}.{:09} {when}",
                now.len(),
                mtime.secs,
                mtime.nanos,
                now_mtime.secs,
                now_mtime.nanos
            ),
        });
    }
    Ok(())
}

/// Copies until EOF or `expected` bytes: growth past `expected` shows in the size check after.
fn stream(
    input: &mut File,
    output: &mut File,
    expected: u64,
    src: &Path,
    temp: &Path,
    progress: &dyn Progress,
) -> Result<(String, u64), FsError> {
    BUFFER.with_borrow_mut(|buf| {
        let mut hasher = Sha256::new();
        let mut total = 0u64;
        // Saves the EOF read, one syscall per file: most files are small.
        while total < expected {
            let n = read_some(input, buf, src)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            output
                .write_all(&buf[..n])
                .map_err(FsError::io("writing", temp))?;
            total += n as u64;
            progress.bytes(src, n as u64);
        }
        Ok((hex::encode(hasher.finalize()), total))
    })
}

fn read_some(input: &mut File, buf: &mut [u8], path: &Path) -> Result<usize, FsError> {
    loop {
        match input.read(buf) {
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other.map_err(FsError::io("reading", path)),
        }
    }
}

fn hash_reader(
    input: &mut File,
    path: &Path,
    progress: &dyn Progress,
) -> Result<(String, u64), FsError> {
    input.rewind().map_err(FsError::io("seeking", path))?;
    let (len, sum) = sha256_copy(input, None, |n| progress.bytes(path, n))
        .map_err(|e| FsError::io("reading", path)(HashError::into_io(e)))?;
    Ok((sum, len))
}

/// Hex SHA-256 and length of a file's content (one read).
pub(crate) fn hash_file(path: &Path, progress: &dyn Progress) -> Result<(String, u64), FsError> {
    let mut file = File::open(path).map_err(FsError::io("opening", path))?;
    hash_reader(&mut file, path, progress)
}

/// Owner (when root), mode, then mtime: chown clears setuid bits, and chmod leaves mtime alone.
fn finish_metadata(
    file: &File,
    path: &Path,
    node: &Node,
    preserve_owner: bool,
) -> Result<(), FsError> {
    if preserve_owner {
        std::os::unix::fs::fchown(file, Some(node.uid), Some(node.gid))
            .map_err(FsError::io("changing owner of", path))?;
    }
    file.set_permissions(Permissions::from_mode(node.mode))
        .map_err(FsError::io("changing mode of", path))?;
    file.set_times(FileTimes::new().set_modified(node.mtime.to_system_time()))
        .map_err(FsError::io("setting mtime of", path))
}

/// Gives a directory its source owner, mode and mtime (after its children are written).
pub(crate) fn finish_dir(path: &Path, node: &Node, preserve_owner: bool) -> Result<(), FsError> {
    let dir = File::open(path).map_err(FsError::io("opening", path))?;
    if preserve_owner {
        std::os::unix::fs::fchown(&dir, Some(node.uid), Some(node.gid))
            .map_err(FsError::io("changing owner of", path))?;
    }
    dir.set_permissions(Permissions::from_mode(node.mode))
        .map_err(FsError::io("changing mode of", path))?;
    dir.set_times(FileTimes::new().set_modified(node.mtime.to_system_time()))
        .map_err(FsError::io("setting mtime of", path))
}

/// Recreates a symlink (never following it) under a temp name, then renames it into place.
pub(crate) fn copy_symlink(dst: &Path, node: &Node, preserve_owner: bool) -> Result<(), FsError> {
    let target = node.target.as_deref().unwrap_or_default();
    let temp = temp_path(dst);
    std::os::unix::fs::symlink(target, &temp).map_err(FsError::io("creating symlink", &temp))?;
    let mut guard = TempGuard {
        path: &temp,
        armed: true,
    };
    if preserve_owner {
        std::os::unix::fs::lchown(&temp, Some(node.uid), Some(node.gid))
            .map_err(FsError::io("changing owner of", &temp))?;
    }
    set_link_mtime(&temp, node.mtime)?;
    fs::rename(&temp, dst).map_err(FsError::io("renaming into place", dst))?;
    guard.armed = false;
    Ok(())
}

fn set_link_mtime(path: &Path, mtime: Mtime) -> Result<(), FsError> {
    use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, UTIME_OMIT, utimensat};
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT,
        },
        last_modification: Timespec {
            tv_sec: mtime.secs,
            tv_nsec: i64::from(mtime.nanos),
        },
    };
    utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|err| FsError::io("setting mtime of", path)(err.into()))
}

/// Whether this process may give files away (chown), as `rsync -o` assumes.
pub(crate) fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

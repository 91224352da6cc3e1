//! One error enum for the crate; every variant names the path it concerns.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can stop a replication, verification or backup.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// A system call on `path` failed; `op` says what was being done ("reading", "renaming", …).
    /// The io::Error is the `source()`, not repeated in the message: print with its chain.
    #[error("{op} {}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        error: io::Error,
    },
    /// FIFOs, sockets and devices have no place in a product home and are never recreated.
    #[error("{}: is a {kind}; FIFOs, sockets and devices are refused", path.display())]
    SpecialFile { path: PathBuf, kind: &'static str },
    /// A symlink whose target leaves the copied tree (absolute, or too many `..`).
    #[error(
        "{}: symlink to {target:?} points outside the tree (allow escaping links to copy it as a link)",
        path.display()
    )]
    EscapingLink { path: PathBuf, target: String },
    /// Manifests store UTF-8 paths; a name that is not UTF-8 cannot be recorded faithfully.
    #[error("{}: file name is not valid UTF-8", path.display())]
    NonUtf8Name { path: PathBuf },
    /// The name pattern of our temporary files is reserved; such a source file would be deleted on resume.
    #[error("{}: name is reserved for carbon-fs temporary files", path.display())]
    ReservedName { path: PathBuf },
    /// The source changed under us: a server is probably still running.
    #[error("{}: source changed while it was being copied ({detail}); stop the server and run again", path.display())]
    SourceChanged { path: PathBuf, detail: String },
    /// `ConflictPolicy::Fail` found files that differ; nothing was written.
    #[error("{}: {} conflict(s) with the source, first {first:?}; nothing was written", dst.display(), paths.len())]
    Conflicts {
        dst: PathBuf,
        first: String,
        paths: Vec<String>,
    },
    /// Replacing a directory (or putting a file where a directory is) would delete the new product's files.
    #[error("{}: cannot replace a {found} in the destination with a {wanted} from the source", path.display())]
    TypeConflict {
        path: PathBuf,
        found: &'static str,
        wanted: &'static str,
    },
    /// We never write through a symlink in the destination.
    #[error("{}: is a symlink; refusing to write through it", path.display())]
    DestinationIsSymlink { path: PathBuf },
    /// Source and destination overlap (one inside the other).
    #[error("{} and {} overlap; refusing to copy a tree into itself", src.display(), dst.display())]
    Overlap { src: PathBuf, dst: PathBuf },
    /// The path should be a directory.
    #[error("{}: not a directory", path.display())]
    NotADirectory { path: PathBuf },
    /// A manifest line that cannot be parsed.
    #[error("{}: line {line}: {reason}", path.display())]
    BadManifest {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    /// A backup destination holds something that is not part of the home being backed up.
    #[error("{}: backup destination is not empty (holds files not from this home)", path.display())]
    DestinationNotEmpty { path: PathBuf },
    /// A complete backup (its manifest exists) is never overwritten.
    #[error("{}: already holds a complete backup (its manifest exists); choose a new destination", path.display())]
    BackupExists { path: PathBuf },
    /// The backup was written but reading it back did not match its manifest.
    #[error("{}: backup does not match its manifest ({summary})", path.display())]
    BackupMismatch { path: PathBuf, summary: String },
    /// Configuration is re-applied to the new product, never copied between servers.
    #[error("{}: lies in repository/conf; configuration is never copied", path.display())]
    ConfigurationDirectory { path: PathBuf },
}

impl FsError {
    /// Conflicts and a backup that does not verify are failed checks; a source that changes
    /// under us means a server is running (unsafe); anything else is input or the system.
    pub fn kind(&self) -> crate::ErrorKind {
        use crate::ErrorKind;
        match self {
            FsError::Io { .. } => ErrorKind::Io,
            FsError::SourceChanged { .. } => ErrorKind::Unsafe,
            FsError::Conflicts { .. } | FsError::BackupMismatch { .. } => ErrorKind::CheckFailed,
            FsError::SpecialFile { .. }
            | FsError::EscapingLink { .. }
            | FsError::NonUtf8Name { .. }
            | FsError::ReservedName { .. }
            | FsError::TypeConflict { .. }
            | FsError::DestinationIsSymlink { .. }
            | FsError::Overlap { .. }
            | FsError::NotADirectory { .. }
            | FsError::BadManifest { .. }
            | FsError::DestinationNotEmpty { .. }
            | FsError::BackupExists { .. }
            | FsError::ConfigurationDirectory { .. } => ErrorKind::BadInput,
        }
    }

    pub(crate) fn io<'a>(
        op: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(io::Error) -> FsError + 'a {
        move |error| FsError::Io {
            op,
            path: path.to_path_buf(),
            error,
        }
    }
}

/// An error and its causes on one line, joined by `: ` as anyhow's `{:#}` prints them: for
/// errors kept as text (a report, a warning, a panic), which would otherwise lose the cause
/// that every error of the workspace holds in `source()` rather than repeats in its message.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

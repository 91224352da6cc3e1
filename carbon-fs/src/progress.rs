//! Progress reporting: libraries never print, they call this.

use std::path::Path;

/// A stage of the work, announced with its totals before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Comparing files present on both sides (read-only).
    Comparing,
    /// Copying files into the destination.
    Copying,
    /// Flushing the destination to disk.
    Syncing,
    /// Hashing destination-only files for the manifest.
    Hashing,
    /// Re-reading a tree against its manifest.
    Verifying,
}

/// Receives progress from worker threads; every method has a do-nothing default.
pub trait Progress: Sync {
    /// A phase starts with `files` files of `bytes` bytes to process.
    fn start(&self, _phase: Phase, _files: u64, _bytes: u64) {}
    /// `bytes` more bytes of `path` were processed (called per chunk, from worker threads).
    fn bytes(&self, _path: &Path, _bytes: u64) {}
    /// One more file finished.
    fn file_done(&self, _path: &Path) {}
    /// The phase is over.
    fn finish(&self, _phase: Phase) {}
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

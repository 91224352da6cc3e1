//! The workspace's one file hasher: SHA-256 (lower-case hex) and length of what is read, in
//! one pass, optionally copied on the way. Replication, backups, H2 copies, verification and
//! edit records all hash through it, so a digest means the same thing everywhere.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

/// Large enough to amortise syscalls and let SHA-NI stream; small enough per worker.
pub(crate) const CHUNK: usize = 256 * 1024;

thread_local! {
    /// One buffer per thread: replication hashes many small files on a few workers.
    pub(crate) static BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; CHUNK]);
}

/// Reads `input` to its end, writing every byte to `out` when given and telling `on_chunk`
/// each chunk's size; returns (length, hex SHA-256). Reading and writing errors are told
/// apart by [`HashError`].
pub fn sha256_copy(
    input: &mut dyn Read,
    mut out: Option<&mut dyn Write>,
    mut on_chunk: impl FnMut(u64),
) -> Result<(u64, String), HashError> {
    BUFFER.with_borrow_mut(|buf| {
        let mut hasher = Sha256::new();
        let mut total = 0u64;
        loop {
            let n = match input.read(buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(HashError::Read(e)),
            };
            hasher.update(&buf[..n]);
            if let Some(out) = out.as_mut() {
                out.write_all(&buf[..n]).map_err(HashError::Write)?;
            }
            total += n as u64;
            on_chunk(n as u64);
        }
        Ok((total, hex::encode(hasher.finalize())))
    })
}

/// Length and hex SHA-256 of a file's content, read once.
pub fn sha256_file(path: &Path) -> io::Result<(u64, String)> {
    let mut file = File::open(path)?;
    sha256_copy(&mut file, None, |_| {}).map_err(HashError::into_io)
}

/// Hex SHA-256 of bytes in memory.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Which side of a [`sha256_copy`] failed.
#[derive(Debug)]
pub enum HashError {
    Read(io::Error),
    Write(io::Error),
}

impl HashError {
    pub fn into_io(self) -> io::Error {
        match self {
            HashError::Read(e) | HashError::Write(e) => e,
        }
    }
}

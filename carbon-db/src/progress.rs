//! Progress reporting: the library never prints; it calls a [`Progress`] sink.

/// One thing that happened during a copy or verification.
#[derive(Debug, Clone, Copy)]
pub enum ProgressEvent<'a> {
    /// A phase started ("schema", "data", "post-data", "sequences", "verify", ...).
    Phase(&'a str),
    /// The data phase knows its work: tables and their estimated bytes.
    Planned { tables: usize, bytes: u64 },
    /// More rows and bytes moved (increments, not totals).
    Rows { rows: u64, bytes: u64 },
    /// A table finished (copied or digested).
    TableDone { table: &'a str, rows: u64 },
    /// Something worth telling the operator that is not an error.
    Warning(&'a str),
}

/// Receives progress from worker threads.
pub trait Progress: Send + Sync {
    fn event(&self, event: ProgressEvent<'_>);
}

impl<F> Progress for F
where
    F: Fn(ProgressEvent<'_>) + Send + Sync,
{
    fn event(&self, event: ProgressEvent<'_>) {
        self(event);
    }
}

/// Discards all progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _event: ProgressEvent<'_>) {}
}

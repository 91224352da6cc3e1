//! Online copy: copy a live database at a snapshot, follow its changes into the copy, and
//! prove the two equal once the writers have stopped.
//!
//! A [`Stream`] has a direction: changes flow from `from` into `to`. The online upgrade runs
//! old → staging; the fallback window after cut-over runs the same engine staging → old.
//! Nothing here knows which way it runs.
//!
//! Footprint on `from`: PostgreSQL, one logical replication slot using `test_decoding` named
//! [`Stream::name`]; MariaDB/MySQL, a binlog client while connected. Footprint on `to`: the
//! applied changes and the stream position, committed in the same transaction
//! (PostgreSQL: a replication origin named [`Stream::name`]; MariaDB: a database named
//! [`Stream::name`] holding one `position` row). Every object created is in
//! [`State::created`] and removed by [`remove`].
//!
//! Vendor code lives in `pg.rs` and `my.rs`; this module holds what both share: the stream,
//! its persisted state, and the dispatch.

mod my;
mod pg;

/// Test support: the PostgreSQL follower stops right after a target commit, before the slot
/// advance, as a crash there would.
#[cfg(feature = "testkit")]
pub use pg::crash_before_slot_advance;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

use crate::{DbError, DbUrl, Progress, Vendor, VerifyReport};

/// One direction of change following between two databases of the same vendor.
#[derive(Debug, Clone)]
pub struct Stream {
    pub from: DbUrl,
    pub to: DbUrl,
    /// The state directory of this stream (state.json, touched keys).
    pub dir: PathBuf,
    /// Name of every object the stream creates (slot, origin, position database):
    /// `carbon_upgrade_<16 hex>`, so that an orphan is found by its name.
    pub name: String,
}

impl Stream {
    /// A stream whose object names derive from `id` (say, the state directory and the
    /// datasource name), stable across restarts.
    pub fn new(from: DbUrl, to: DbUrl, dir: PathBuf, id: &str) -> Stream {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(id.as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Stream {
            from,
            to,
            dir,
            name: format!("{NAME_PREFIX}{hex}"),
        }
    }

    pub fn state_file(&self) -> PathBuf {
        self.dir.join("state.json")
    }
}

/// Every object the online engine creates on a server starts with this.
pub const NAME_PREFIX: &str = "carbon_upgrade_";

/// How to follow.
#[derive(Debug, Clone)]
pub struct OnlineOptions {
    /// Copy workers for the snapshot copy.
    pub jobs: usize,
    /// Stop following (with an error) when the source retains more than this many bytes of
    /// WAL for our slot, rather than fill its disk.
    pub max_retained_bytes: u64,
    /// How long slot creation may wait for the source's running transactions.
    pub lock_timeout_ms: u64,
    /// Changes read per batch (PostgreSQL peeks are bounded by this).
    pub batch_changes: usize,
    /// Pause between polls when nothing arrived.
    pub poll_ms: u64,
}

impl Default for OnlineOptions {
    fn default() -> Self {
        OnlineOptions {
            jobs: 2,
            max_retained_bytes: 8 << 30,
            lock_timeout_ms: 120_000,
            batch_changes: 10_000,
            poll_ms: 200,
        }
    }
}

/// One requirement of following that the source does not meet, as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet {
    /// The setting or privilege, e.g. `wal_level`.
    pub setting: String,
    pub found: String,
    pub needed: String,
    /// Changing it needs a restart of the source server.
    pub restart: bool,
}

impl std::fmt::Display for Unmet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is {}, online mode needs {}",
            self.setting, self.found, self.needed
        )?;
        if self.restart {
            write!(f, " (changing it needs a restart of the source server)")?;
        }
        Ok(())
    }
}

/// Where following stands; persisted in `state.json` (written atomically).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum Phase {
    /// Nothing created yet.
    #[default]
    New,
    /// The slot / start position exists; the snapshot copy is running or was interrupted.
    Copying,
    /// The copy is verified at the snapshot; changes are being followed.
    Following,
    /// The source's writers were proved stopped and every change up to its end applied.
    Drained,
    /// Target proved equal to the source at [`State::applied`].
    Proven,
    /// Every object the stream created is removed.
    Removed,
}

/// An object the stream created on a server, and when it was removed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Created {
    /// `replication slot`, `replication origin`, `database`.
    pub kind: String,
    pub name: String,
    /// `source` or `target`, and the redacted URL.
    pub side: String,
    pub server: String,
    /// Milliseconds since the Unix epoch.
    pub created_ms: u64,
    pub removed_ms: Option<u64>,
}

/// The persisted state of one stream. The authoritative applied position is the one
/// committed on the target beside the changes; `applied` here is a copy for status.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub name: String,
    pub phase: Phase,
    pub created: Vec<Created>,
    /// The snapshot the copy was read at: PostgreSQL `pg_current_snapshot()` text,
    /// MariaDB `file:position`.
    pub snapshot: Option<String>,
    /// The position following starts from (PostgreSQL LSN `X/Y`, MariaDB `file:position`).
    pub start: Option<String>,
    /// The last position applied to the target.
    pub applied: Option<String>,
    /// Tables whose changes cannot be applied by key (PostgreSQL tables without a primary
    /// key): copied again in full at cut-over.
    pub dirty: BTreeSet<String>,
    /// Transactions and rows applied, per table.
    pub transactions: u64,
    pub rows: BTreeMap<String, u64>,
    /// Largest lag seen, milliseconds between a change's commit and its apply.
    pub max_lag_ms: u64,
    /// When the last applied source transaction committed (ms since the epoch): the lag in
    /// seconds is now minus this while changes wait, zero once caught up.
    #[serde(default)]
    pub last_commit_ms: Option<u64>,
    /// MariaDB: the target holds every source commit made before this time (ms since the
    /// epoch): when a read of the binary log to its end, since fully applied, was requested.
    /// The lag in seconds is now minus this while following.
    #[serde(default)]
    pub caught_up_ms: Option<u64>,
    /// The snapshot copy's verification (at the snapshot).
    pub snapshot_verified: Option<String>,
    /// The snapshot copy's report (its verification at the snapshot included).
    #[serde(default)]
    pub copy: Option<crate::CopyReport>,
}

impl State {
    /// Reads `state.json`, or a new state when the directory has none.
    pub fn load(stream: &Stream) -> Result<State, OnlineError> {
        let path = stream.state_file();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| OnlineError::State {
                path: path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State {
                name: stream.name.clone(),
                ..State::default()
            }),
            Err(source) => Err(OnlineError::State { path, source }),
        }
    }

    /// Writes `state.json` atomically (temp + rename + fsync).
    pub fn save(&self, stream: &Stream) -> Result<(), OnlineError> {
        let path = stream.state_file();
        let state_err = |source| OnlineError::State {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&stream.dir).map_err(state_err)?;
        let bytes =
            serde_json::to_vec_pretty(self).map_err(|e| state_err(std::io::Error::other(e)))?;
        carbon_fs::write_atomic(&path, &bytes, None).map_err(state_err)
    }

    /// Everything created is gone from the servers (each removal time set once): saved as
    /// `Phase::Removed`.
    fn save_removed(&mut self, stream: &Stream) -> Result<(), OnlineError> {
        let now = now_ms();
        for created in &mut self.created {
            created.removed_ms.get_or_insert(now);
        }
        self.phase = Phase::Removed;
        self.save(stream)
    }
}

/// How far following should go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Until the stop flag is set (the foreground follower).
    Stopped,
    /// Until everything the source has written so far is applied (cut-over, after its
    /// writers were proved stopped), or the stop flag.
    SourceEnd,
}

/// What one call of [`follow`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FollowReport {
    pub transactions: u64,
    pub rows: u64,
    pub applied: Option<String>,
    pub elapsed_ms: u64,
}

/// Lag of the target behind the source.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Lag {
    /// Source's current position and the applied one.
    pub source_position: String,
    pub applied: Option<String>,
    /// Bytes of change stream not yet applied (PostgreSQL: WAL bytes; MariaDB: binlog bytes).
    pub bytes: u64,
    /// Bytes the source retains for us (PostgreSQL slot; MariaDB: 0).
    pub retained_bytes: u64,
}

/// The cut-over proof of one stream.
#[derive(Debug, Clone, Serialize)]
pub struct Proof {
    /// The position the target was proved equal at.
    pub position: String,
    /// Dirty tables copied again in full.
    pub recopied: Vec<String>,
    pub counters_set: usize,
    /// Keys touched by the stream compared on both sides (0 with `full`).
    pub keys_compared: u64,
    pub verify: VerifyReport,
    pub drain_ms: u64,
    pub recopy_ms: u64,
    pub counters_ms: u64,
    pub proof_ms: u64,
    /// What the proof's reads cost, per side and step (empty when not measured).
    pub proof_steps: String,
}

#[derive(Debug, thiserror::Error)]
pub enum OnlineError {
    #[error("{url}: online mode needs: {}", unmet.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Requirements { url: String, unmet: Vec<Unmet> },
    #[error(
        "{vendor} databases are files: online mode follows PostgreSQL and MariaDB/MySQL only; stop the servers and use `run`"
    )]
    NotAServer { vendor: Vendor },
    #[error("online state {path}")]
    State {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{url}: table {table} diverged at {position}: {what} (key {key})")]
    Divergence {
        url: String,
        table: String,
        key: String,
        position: String,
        what: String,
    },
    #[error(
        "{url}: schema changed on the source while following ({what}); online mode cannot follow DDL: abort, then start again"
    )]
    Ddl { url: String, what: String },
    #[error(
        "{url}: the source retains {retained} bytes of WAL for slot {slot}, over the limit of {limit}: following stopped to protect its disk"
    )]
    Retention {
        url: String,
        slot: String,
        retained: u64,
        limit: u64,
    },
    #[error("online stream {name}: {what}")]
    Phase { name: String, what: String },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl OnlineError {
    /// Refusals before anything is done and stops that protect the source are unsafe to
    /// proceed; a divergence is a failed check; a bad state file is the system underneath.
    pub fn kind(&self) -> carbon_fs::ErrorKind {
        use carbon_fs::ErrorKind;
        match self {
            OnlineError::Requirements { .. }
            | OnlineError::Ddl { .. }
            | OnlineError::Retention { .. } => ErrorKind::Unsafe,
            OnlineError::NotAServer { .. } | OnlineError::Phase { .. } => ErrorKind::BadInput,
            OnlineError::Divergence { .. } => ErrorKind::CheckFailed,
            OnlineError::State { .. } => ErrorKind::Io,
            OnlineError::Db(e) => e.kind(),
        }
    }
}

/// Checks that `from` can be followed (one line per unmet requirement).
pub fn requirements(from: &DbUrl) -> Result<Vec<Unmet>, OnlineError> {
    match from.vendor() {
        Vendor::Postgres => pg::requirements(from),
        Vendor::MySql => my::requirements(from),
        vendor => Err(OnlineError::NotAServer { vendor }),
    }
}

/// Checks that changes can be applied into `to` (one line per unmet requirement): on
/// PostgreSQL a superuser role; MariaDB needs nothing the copy does not.
pub fn staging_requirements(to: &DbUrl) -> Result<Vec<Unmet>, OnlineError> {
    match to.vendor() {
        Vendor::Postgres => pg::staging_requirements(to),
        Vendor::MySql => Ok(Vec::new()),
        vendor => Err(OnlineError::NotAServer { vendor }),
    }
}

/// Creates the stream's start point on `from` (slot / binlog position), copies `from` into
/// the empty `to` at that point and verifies the copy at the snapshot. Continues an
/// interrupted call from [`State`].
pub fn begin(
    stream: &Stream,
    opts: &OnlineOptions,
    progress: &dyn Progress,
) -> Result<State, OnlineError> {
    crate::check_pair(&stream.from, &stream.to)?;
    let mut state = match stream.from.vendor() {
        Vendor::Postgres => pg::begin(stream, opts, progress),
        Vendor::MySql => my::begin(stream, opts, progress),
        vendor => Err(OnlineError::NotAServer { vendor }),
    }?;
    if let Some(copy) = state.copy.as_mut() {
        counters_set_at_cutover(copy);
    }
    Ok(state)
}

/// At the snapshot, counters (sequences, AUTO_INCREMENT) are the only thing allowed to
/// differ: the source keeps drawing from them, and the cut-over sets them from it. They move
/// from the copy's mismatches to a warning that says so.
fn counters_set_at_cutover(copy: &mut crate::CopyReport) {
    let Some(verify) = copy.verify.as_mut() else {
        return;
    };
    let (counters, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut verify.mismatches)
        .into_iter()
        .partition(|m| m.kind == "counter");
    verify.mismatches = rest;
    if !counters.is_empty() {
        let names: Vec<&str> = counters.iter().map(|m| m.object.as_str()).collect();
        copy.warnings.push(format!(
            "{} counter(s) moved on the live source after the snapshot ({}): set from the source at cut-over",
            counters.len(),
            names.join(", ")
        ));
    }
}

/// Starts a stream between two databases already proven equal while nothing writes to
/// either (the fallback after cut-over): no copy, the start point is "now".
pub fn begin_equal(stream: &Stream, opts: &OnlineOptions) -> Result<State, OnlineError> {
    crate::check_pair(&stream.from, &stream.to)?;
    match stream.from.vendor() {
        Vendor::Postgres => pg::begin_equal(stream, opts),
        Vendor::MySql => my::begin_equal(stream, opts),
        vendor => Err(OnlineError::NotAServer { vendor }),
    }
}

/// Applies the source's changes to the target, each source transaction with the position it
/// ends at, until `until` or `stop`.
pub fn follow(
    stream: &Stream,
    opts: &OnlineOptions,
    until: Until,
    stop: &AtomicBool,
    progress: &dyn Progress,
) -> Result<FollowReport, OnlineError> {
    match stream.from.vendor() {
        Vendor::Postgres => pg::follow(stream, opts, until, stop, progress),
        Vendor::MySql => my::follow(stream, opts, until, stop, progress),
        vendor => Err(OnlineError::NotAServer { vendor }),
    }
}

/// The source's position against the applied one.
pub fn lag(stream: &Stream) -> Result<Lag, OnlineError> {
    match stream.from.vendor() {
        Vendor::Postgres => pg::lag(stream),
        Vendor::MySql => my::lag(stream),
        vendor => Err(OnlineError::NotAServer { vendor }),
    }
}

/// After [`follow`] with [`Until::SourceEnd`] on a source whose writers are stopped: copies
/// dirty tables again, sets every counter from the source, and proves the target equal to the
/// source (the keys the stream touched and every counter; every table with `full`).
pub fn prove(
    stream: &Stream,
    opts: &OnlineOptions,
    full: bool,
    progress: &dyn Progress,
) -> Result<Proof, OnlineError> {
    match stream.from.vendor() {
        Vendor::Postgres => pg::prove(stream, opts, full, progress),
        Vendor::MySql => my::prove(stream, opts, full, progress),
        vendor => Err(OnlineError::NotAServer { vendor }),
    }
}

/// Removes every object the stream created (slot, origin, position database), also one
/// orphaned by a crash (found by [`Stream::name`]). Idempotent.
pub fn remove(stream: &Stream) -> Result<State, OnlineError> {
    match stream.from.vendor() {
        Vendor::Postgres => pg::remove(stream),
        Vendor::MySql => my::remove(stream),
        vendor => Err(OnlineError::NotAServer { vendor }),
    }
}

/// Objects named like ours on `url`'s server (slots and origins on PostgreSQL, databases on
/// MariaDB): what a crash may have left behind.
pub fn leftovers(url: &DbUrl) -> Result<Vec<String>, OnlineError> {
    match url.vendor() {
        Vendor::Postgres => pg::leftovers(url),
        Vendor::MySql => my::leftovers(url),
        vendor => Err(OnlineError::NotAServer { vendor }),
    }
}

/// Now, milliseconds since the Unix epoch, for [`Created`].
#[allow(dead_code)] // used by the vendor engines
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

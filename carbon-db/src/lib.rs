//! carbon-db: same-vendor copy of a Carbon database to a staging database, with proof.
//!
//! Vendors: PostgreSQL, MySQL/MariaDB, SQLite, and embedded H2 as files.
//!
//! ```text
//! let from = DbUrl::parse("jdbc:postgresql://db:5432/WSO2CARBON_DB")?.with_credentials(user, pass);
//! let report = carbon_db::copy(&from, &to, &CopyOptions::default(), &NoProgress)?;
//! assert!(report.is_ok()); // complete and verified
//! ```
//!
//! Invariants: nothing is ever written to the source (its sessions are read-only); no
//! password appears in any error, report, log or journal; a target that is not empty is
//! refused unless the journal shows it is this very copy being resumed.

pub mod backup;
mod contents;
mod engine;
mod error;
mod h2;
mod journal;
pub mod migrate;
mod my;
pub mod online;
mod pg;
mod progress;
mod report;
pub mod schema;
pub mod script;
mod session;
mod sqlite;
pub mod staging;
mod tls;
mod url;

use std::path::PathBuf;
use std::time::Instant;

/// The one vendor model, owned by carbon-config's JDBC URL model.
pub use carbon_config::Vendor;
pub use contents::{Contents, DbObject, contents};
pub use error::{DbError, DriverError, error_chain};
pub use h2::data_files as h2_data_files;
pub use progress::{NoProgress, Progress, ProgressEvent};
pub use report::{
    CopyReport, DbState, FileCheck, Inspection, KindTime, Mismatch, PhaseTime, Phases, RowDigest,
    TableCheck, TableInfo, TableTime, VerifyReport,
};
pub use session::{Access, Session, TextRows, create_database, drop_database};
pub use tls::{TlsMode, TlsOptions};
pub use url::{DbUrl, redact_raw};

/// Test support: fresh, uniquely named databases that drop themselves.
#[cfg(feature = "testkit")]
pub mod testkit;

/// Generator of Carbon-shaped schemas and data on every vendor (tests, demo, benchmarks).
#[cfg(feature = "fixture")]
pub mod fixture;

/// The drivers behind the testkit's connections, for tests and tools outside this crate.
#[cfg(feature = "testkit")]
pub mod drivers {
    pub use mysql;
    pub use postgres;
    pub use rusqlite;
}

/// How to copy.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Worker sessions (each holds one source and one target connection).
    pub jobs: usize,
    /// PostgreSQL: stream rows even when a template copy would be possible.
    pub logical: bool,
    /// Verify after copying (on by default).
    pub verify: bool,
    /// Resume journal; `None` copies without one.
    pub journal: Option<PathBuf>,
    /// The source is live (online mode): every row comes from one snapshot, whose position
    /// is recorded in [`CopyReport::snapshot_point`]; never resumed from a journal.
    pub online: bool,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            jobs: 2,
            logical: false,
            verify: true,
            journal: None,
            online: false,
        }
    }
}

/// Refuses pairs that must never be copied: different vendors, or the target being the source.
pub fn check_pair(from: &DbUrl, to: &DbUrl) -> Result<(), DbError> {
    if from.vendor() != to.vendor() {
        return Err(DbError::VendorMismatch {
            from: from.vendor(),
            to: to.vendor(),
            from_url: from.to_string(),
            to_url: to.to_string(),
        });
    }
    if from.same_database(to) {
        return Err(DbError::SameDatabase {
            url: to.to_string(),
        });
    }
    Ok(())
}

/// Copies `from` into the empty (or absent) `to`, then verifies unless told not to.
/// Check [`CopyReport::is_ok`]: a verification mismatch is reported, not raised.
pub fn copy(
    from: &DbUrl,
    to: &DbUrl,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<CopyReport, DbError> {
    check_pair(from, to)?;
    let mut report = match from.vendor() {
        Vendor::Postgres => pg::copy(from, to, opts, progress)?,
        Vendor::MySql => my::copy(from, to, opts, progress)?,
        Vendor::Sqlite => sqlite::copy(from, to, opts, progress)?,
        Vendor::H2 => h2::copy(from, to, opts, progress)?,
        _ => return Err(DbError::not_copyable(from)),
    };
    if opts.verify {
        progress.event(ProgressEvent::Phase("verify"));
        let streamed = report.stream_digests.take();
        let v = verify_inner(from, to, opts.jobs, streamed, progress)?;
        if report.rows == 0 {
            report.rows = v.rows;
        }
        report.phases.add("verify", v.elapsed_ms);
        report.verify = Some(v);
    }
    Ok(report)
}

/// Reads one side's inventory, per-table digests and counters (source sessions read-only).
pub fn read_state(url: &DbUrl, jobs: usize, progress: &dyn Progress) -> Result<DbState, DbError> {
    read_state_inner(url, jobs, true, progress)
}

fn read_state_inner(
    url: &DbUrl,
    jobs: usize,
    with_digests: bool,
    progress: &dyn Progress,
) -> Result<DbState, DbError> {
    match url.vendor() {
        Vendor::Postgres => pg::read_state(url, jobs, with_digests, progress),
        Vendor::MySql => my::read_state(url, jobs, with_digests, progress),
        Vendor::Sqlite => sqlite::read_state(url, jobs, progress),
        Vendor::H2 => Err(DbError::Unsupported {
            url: url.to_string(),
            reason: "H2 databases are compared as files".into(),
        }),
        _ => Err(DbError::not_copyable(url)),
    }
}

/// Proves `to` equal to `from`: inventory, exact row counts, per-table content digests
/// (computed on both sides from the same text form) and counters. Both sides are read
/// concurrently, read-only.
pub fn verify(
    from: &DbUrl,
    to: &DbUrl,
    jobs: usize,
    progress: &dyn Progress,
) -> Result<VerifyReport, DbError> {
    verify_inner(from, to, jobs, None, progress)
}

/// With `streamed`, the source's table digests are those taken while its rows were copied
/// (under the copy's snapshot); only its catalog and counters are read again.
fn verify_inner(
    from: &DbUrl,
    to: &DbUrl,
    jobs: usize,
    streamed: Option<std::collections::BTreeMap<String, RowDigest>>,
    progress: &dyn Progress,
) -> Result<VerifyReport, DbError> {
    check_pair(from, to)?;
    let started = Instant::now();
    if from.vendor() == Vendor::H2 {
        let mut r = h2::verify(from, to, progress)?;
        r.elapsed_ms = started.elapsed().as_millis() as u64;
        return Ok(r);
    }
    if from.vendor() == Vendor::Sqlite
        && let Some(mut r) = sqlite::verify_identical(from, to, progress)?
    {
        r.elapsed_ms = started.elapsed().as_millis() as u64;
        return Ok(r);
    }
    let per_side = jobs.max(1);
    if from.vendor() == Vendor::Postgres && streamed.is_none() {
        // Both sides still to read: read them side by side, hashing only where they differ.
        let paired = pg::paired::read_states(from, to, per_side, progress)?;
        let mut report = VerifyReport::compare(from.vendor(), &paired.source, &paired.target);
        for table in report.tables.iter_mut().filter(|t| t.ok) {
            if paired.identical.contains(&table.table) {
                "identical rows, compared byte for byte".clone_into(&mut table.digest);
            }
        }
        report.elapsed_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }
    let (s, t) = std::thread::scope(|scope| {
        let s = scope.spawn(|| {
            let mut state = read_state_inner(from, per_side, streamed.is_none(), progress)?;
            if let Some(tables) = streamed {
                state.tables = tables;
            }
            Ok(state)
        });
        let t = read_state(to, per_side, progress);
        let s = s.join().unwrap_or(Err(DbError::Aborted));
        (s, t)
    });
    let (s, t) = (s?, t?);
    let mut report = VerifyReport::compare(from.vendor(), &s, &t);
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Objects, tables (exact rows, sizes) and counters of one database.
pub fn inspect(url: &DbUrl) -> Result<Inspection, DbError> {
    match url.vendor() {
        Vendor::Postgres => pg::inspect(url),
        Vendor::MySql => my::inspect(url),
        Vendor::Sqlite => sqlite::inspect(url),
        Vendor::H2 => {
            let (base, files) = h2::source_files(url)?;
            let mut objects = std::collections::BTreeMap::new();
            objects.insert("file".to_owned(), files.len());
            let bytes = files
                .iter()
                .map(|(_, p)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
                .sum();
            Ok(Inspection {
                vendor: Vendor::H2,
                url: url.to_string(),
                identity: format!("h2:{}", base.display()),
                tables: Vec::new(),
                objects,
                counters: 0,
                bytes,
            })
        }
        _ => Err(DbError::not_copyable(url)),
    }
}

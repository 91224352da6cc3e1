//! SQLite → SQLite, written to a `.partial` file and renamed into place, so an interrupted
//! copy never looks complete.
//!
//! A rollback-journal database (every mode but WAL) is copied byte for byte while a read
//! transaction holds its SHARED lock: no writer can commit until it ends, so the bytes are one
//! consistent state, and verification can then prove the copy by comparing the two files. A
//! WAL database keeps committed pages in its `-wal` file, so it goes through the online backup
//! API (one `step(-1)`) and is verified row by row.
//!
//! POSIX locks belong to the process and the inode: closing *any* descriptor of the file drops
//! SQLite's lock too. So the file is opened once, read to the end, and closed before the read
//! transaction ends, never while a read still depends on the lock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use crate::progress::{Progress, ProgressEvent};
use crate::report::{DbState, FileCheck, RowDigest, TableInfo, VerifyReport};
use crate::{CopyOptions, CopyReport, DbError, DbUrl, Vendor};

fn path_of(url: &DbUrl) -> PathBuf {
    url.path().map(Path::to_path_buf).unwrap_or_default()
}

pub(crate) fn open_read(url: &DbUrl) -> Result<Connection, DbError> {
    let path = path_of(url);
    if !path.is_file() {
        return Err(DbError::SourceMissing {
            url: url.to_string(),
        });
    }
    Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(|e| DbError::connect(url, e))
}

pub(crate) fn identity(url: &DbUrl) -> String {
    use std::os::unix::fs::MetadataExt;
    let path = path_of(url);
    let canon = std::fs::canonicalize(&path).unwrap_or(path);
    let ino = std::fs::metadata(&canon).map(|m| m.ino()).unwrap_or(0);
    format!("sqlite:{}:{ino}", canon.display())
}

pub(crate) fn copy(
    from: &DbUrl,
    to: &DbUrl,
    _opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<CopyReport, DbError> {
    let started = Instant::now();
    let src = open_read(from)?;
    let target = path_of(to);
    if target.exists() {
        let c = Connection::open_with_flags(&target, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| DbError::connect(to, e))?;
        crate::contents::of_sqlite(&c, to)?.require_empty()?;
    }
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| DbError::io(dir, e))?;
    }
    let mut partial = target.clone().into_os_string();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let _ = std::fs::remove_file(&partial);
    let method = if journal_mode(&src, from)? == "wal" {
        backup(&src, &partial, to, progress)?;
        "backup"
    } else {
        progress.event(ProgressEvent::Phase("file copy"));
        let bytes = with_shared_lock(&src, from, || copy_synced(&path_of(from), &partial))?;
        progress.event(ProgressEvent::Rows { rows: 0, bytes });
        "file"
    };
    std::fs::rename(&partial, &target).map_err(|e| DbError::io(&target, e))?;
    let bytes = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
    let state = table_names(&src, from)?;
    Ok(CopyReport {
        tables: state.len(),
        bytes,
        copy_ms: started.elapsed().as_millis() as u64,
        ..CopyReport::new(Vendor::Sqlite, from, to, method)
    })
}

/// Copies the file in the kernel (`copy_file_range`) and syncs it; verification reads both
/// files afterwards, so nothing is hashed here.
fn copy_synced(from: &Path, to: &Path) -> Result<u64, DbError> {
    let mut input = std::fs::File::open(from).map_err(|e| DbError::io(from, e))?;
    let mut output = std::fs::File::create(to).map_err(|e| DbError::io(to, e))?;
    let bytes = std::io::copy(&mut input, &mut output).map_err(|e| DbError::io(to, e))?;
    output.sync_all().map_err(|e| DbError::io(to, e))?;
    Ok(bytes)
}

/// `delete`, `truncate`, `persist`, `memory`, `off` or `wal`, as the database file says.
fn journal_mode(c: &Connection, url: &DbUrl) -> Result<String, DbError> {
    c.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
        .map(|m| m.to_ascii_lowercase())
        .map_err(|e| DbError::sql(url, "reading the journal mode", e))
}

/// Runs `f` inside a read transaction that has taken the database's SHARED lock.
fn with_shared_lock<T>(
    c: &Connection,
    url: &DbUrl,
    f: impl FnOnce() -> Result<T, DbError>,
) -> Result<T, DbError> {
    c.execute_batch("BEGIN")
        .map_err(|e| DbError::sql(url, "starting a read transaction", e))?;
    // The first read takes the lock (and fails on a hot journal a reader may not roll back).
    let locked = c
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(|e| DbError::sql(url, "locking the database for reading", e));
    let result = locked.and_then(|_| f());
    let _ = c.execute_batch("COMMIT");
    result
}

/// The online backup API into `partial`, synced.
fn backup(
    src: &Connection,
    partial: &Path,
    to: &DbUrl,
    progress: &dyn Progress,
) -> Result<(), DbError> {
    progress.event(ProgressEvent::Phase("backup"));
    {
        let mut dst = Connection::open(partial).map_err(|e| DbError::connect(to, e))?;
        let backup =
            Backup::new(src, &mut dst).map_err(|e| DbError::sql(to, "starting the backup", e))?;
        loop {
            match backup
                .step(-1)
                .map_err(|e| DbError::sql(to, "backup step", e))?
            {
                StepResult::Done => break,
                StepResult::More => {}
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
    std::fs::File::open(partial)
        .and_then(|f| f.sync_all())
        .map_err(|e| DbError::io(partial, e))
}

/// Proves a copy by its bytes: when the source is a rollback-journal database and the target
/// file is identical to it under the source's SHARED lock, every page (and so every object,
/// row and counter) is equal. `None` when that cannot be shown; then rows are compared.
pub(crate) fn verify_identical(
    from: &DbUrl,
    to: &DbUrl,
    progress: &dyn Progress,
) -> Result<Option<VerifyReport>, DbError> {
    let target = path_of(to);
    let src = open_read(from)?;
    if !target.is_file() || journal_mode(&src, from)? == "wal" {
        return Ok(None);
    }
    let (state, source_hash, target_hash) = with_shared_lock(&src, from, || {
        let state = counted_state(&src, from, progress)?;
        let (s, t) = std::thread::scope(|scope| {
            let t = scope.spawn(|| crate::h2::hash_copy(&target, None, progress));
            let s = crate::h2::hash_copy(&path_of(from), None, progress);
            (s, t.join().unwrap_or(Err(DbError::Aborted)))
        });
        Ok((state, s?, t?))
    })?;
    if source_hash != target_hash {
        return Ok(None);
    }
    let mut report = VerifyReport::compare(Vendor::Sqlite, &state, &state);
    for table in &mut report.tables {
        table.digest = "identical file".to_owned();
    }
    let (bytes, sha256) = target_hash;
    report.files = [path_of(from), target]
        .iter()
        .map(|p| FileCheck {
            file: p.display().to_string(),
            bytes,
            sha256: sha256.clone(),
            ok: true,
        })
        .collect();
    Ok(Some(report))
}

fn table_names(c: &Connection, url: &DbUrl) -> Result<Vec<String>, DbError> {
    let mut stmt = c
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY 1")
        .map_err(|e| DbError::sql(url, "listing tables", e))?;
    stmt.query_map([], |r| r.get::<_, String>(0))
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| DbError::sql(url, "listing tables", e))
}

fn qi(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn digest(c: &Connection, url: &DbUrl, table: &str) -> Result<RowDigest, DbError> {
    let mut stmt = c
        .prepare(&format!("SELECT * FROM {}", qi(table)))
        .map_err(|e| DbError::table(url, table, e))?;
    let n = stmt.column_count();
    let mut rows = stmt.query([]).map_err(|e| DbError::table(url, table, e))?;
    let mut d = RowDigest::default();
    let mut buf = Vec::new();
    while let Some(row) = rows.next().map_err(|e| DbError::table(url, table, e))? {
        buf.clear();
        for i in 0..n {
            let v = row.get_ref(i).map_err(|e| DbError::table(url, table, e))?;
            match v {
                ValueRef::Null => buf.push(b'N'),
                ValueRef::Integer(x) => {
                    buf.push(b'I');
                    buf.extend_from_slice(&x.to_le_bytes());
                }
                ValueRef::Real(x) => {
                    buf.push(b'R');
                    buf.extend_from_slice(&x.to_bits().to_le_bytes());
                }
                ValueRef::Text(t) | ValueRef::Blob(t) => {
                    buf.push(if matches!(v, ValueRef::Text(_)) {
                        b'T'
                    } else {
                        b'B'
                    });
                    buf.extend_from_slice(&(t.len() as u64).to_le_bytes());
                    buf.extend_from_slice(t);
                }
            }
        }
        d.add_row(&buf);
    }
    Ok(d)
}

pub(crate) fn read_state(
    url: &DbUrl,
    jobs: usize,
    progress: &dyn Progress,
) -> Result<DbState, DbError> {
    let c = open_read(url)?;
    let mut state = schema_and_counters(&c, url)?;
    // Tables in parallel, one read-only connection per worker.
    let tables = Mutex::new(BTreeMap::new());
    carbon_fs::run_pool(
        jobs,
        table_names(&c, url)?,
        || open_read(url),
        |conn, table| {
            let d = digest(conn, url, &table)?;
            progress.event(ProgressEvent::TableDone {
                table: &table,
                rows: d.rows,
            });
            tables
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(table, d);
            Ok(())
        },
    )?;
    state.tables = tables.into_inner().unwrap_or_else(|p| p.into_inner());
    Ok(state)
}

/// Objects, counters and exact row counts (no content digests: the bytes prove the content).
fn counted_state(c: &Connection, url: &DbUrl, progress: &dyn Progress) -> Result<DbState, DbError> {
    let mut state = schema_and_counters(c, url)?;
    for table in table_names(c, url)? {
        let rows: i64 = c
            .query_row(&format!("SELECT count(*) FROM {}", qi(&table)), [], |r| {
                r.get(0)
            })
            .map_err(|e| DbError::table(url, &table, e))?;
        let rows = u64::try_from(rows).unwrap_or(0);
        progress.event(ProgressEvent::TableDone {
            table: &table,
            rows,
        });
        state.tables.insert(table, RowDigest { rows, sum: 0 });
    }
    Ok(state)
}

/// The schema objects (with their SQL), `user_version` / `application_id`, and every
/// AUTOINCREMENT counter.
fn schema_and_counters(c: &Connection, url: &DbUrl) -> Result<DbState, DbError> {
    let mut state = DbState::default();
    let mut stmt = c
        .prepare("SELECT type, name, coalesce(sql, '') FROM sqlite_schema")
        .map_err(|e| DbError::sql(url, "reading the schema", e))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| DbError::sql(url, "reading the schema", e))?;
    for (ty, name, sql) in rows {
        state.inventory.insert(format!("{ty} {name}"), sql);
    }
    for pragma in ["user_version", "application_id"] {
        let v: i64 = c
            .query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0))
            .map_err(|e| DbError::sql(url, pragma, e))?;
        state
            .inventory
            .insert(format!("pragma {pragma}"), v.to_string());
    }
    let has_seq: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_sequence'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| DbError::sql(url, "sqlite_sequence", e))?;
    if has_seq > 0 {
        let mut stmt = c
            .prepare("SELECT name, seq FROM sqlite_sequence")
            .map_err(|e| DbError::sql(url, "sqlite_sequence", e))?;
        let seqs = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| DbError::sql(url, "sqlite_sequence", e))?;
        for (name, seq) in seqs {
            state
                .counters
                .insert(format!("autoincrement {name}"), i128::from(seq) + 1);
        }
    }
    Ok(state)
}

pub(crate) fn inspect(url: &DbUrl) -> Result<crate::Inspection, DbError> {
    let state = read_state(url, 1, &crate::NoProgress)?;
    let mut objects = BTreeMap::new();
    for key in state.inventory.keys() {
        *objects
            .entry(key.split(' ').next().unwrap_or("").to_owned())
            .or_insert(0usize) += 1;
    }
    let bytes = std::fs::metadata(path_of(url))
        .map(|m| m.len())
        .unwrap_or(0);
    Ok(crate::Inspection {
        vendor: Vendor::Sqlite,
        url: url.to_string(),
        identity: identity(url),
        tables: state
            .tables
            .iter()
            .map(|(t, d)| TableInfo {
                table: t.clone(),
                rows: d.rows,
                bytes: 0,
            })
            .collect(),
        objects,
        counters: state.counters.len(),
        bytes,
    })
}

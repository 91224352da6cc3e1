//! SQLite → SQLite with the online backup API (one `step(-1)`), written to a `.partial`
//! file and renamed into place, so an interrupted copy never looks complete.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use crate::progress::{Progress, ProgressEvent};
use crate::report::{DbState, RowDigest, TableInfo};
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

fn objects(c: &Connection, url: &DbUrl) -> Result<Vec<String>, DbError> {
    let mut stmt = c
        .prepare("SELECT type || ' ' || name FROM sqlite_schema ORDER BY 1 LIMIT 6")
        .map_err(|e| DbError::sql(url, "reading the schema", e))?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| DbError::sql(url, "reading the schema", e))?;
    Ok(rows)
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
        let objs = objects(&c, to)?;
        if !objs.is_empty() {
            let mut names: Vec<String> = objs.iter().take(5).cloned().collect();
            if objs.len() > 5 {
                names.push("…".into());
            }
            return Err(DbError::TargetNotEmpty {
                url: to.to_string(),
                objects: names.join(", "),
            });
        }
    }
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| DbError::io(dir, e))?;
    }
    let mut partial = target.clone().into_os_string();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let _ = std::fs::remove_file(&partial);
    progress.event(ProgressEvent::Phase("backup"));
    {
        let mut dst = Connection::open(&partial).map_err(|e| DbError::connect(to, e))?;
        let backup =
            Backup::new(&src, &mut dst).map_err(|e| DbError::sql(to, "starting the backup", e))?;
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
    let _ = std::fs::File::open(&partial).and_then(|f| f.sync_all());
    std::fs::rename(&partial, &target).map_err(|e| DbError::io(&target, e))?;
    let bytes = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
    let state = table_names(&src, from)?;
    Ok(CopyReport {
        tables: state.len(),
        bytes,
        copy_ms: started.elapsed().as_millis() as u64,
        ..CopyReport::new(Vendor::Sqlite, from, to, "backup")
    })
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
    // Tables in parallel, one read-only connection per worker.
    let tables = Mutex::new(BTreeMap::new());
    crate::pool::run_pool(
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

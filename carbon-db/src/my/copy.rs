//! The copy: target created like the source, snapshot readers, tables, data, counters, then
//! views, routines and triggers.

use std::sync::Mutex;
use std::time::Instant;

use mysql::Conn;
use mysql::prelude::Queryable;

use super::state::counters;
use super::tables::{Table, columns, copy_table, list_tables, show_create};
use super::{
    cell, cell_s, connect, connect_meta, connect_source, connect_target, identity, lit, q, run,
    start_snapshot, strings,
};
use crate::engine::CopyRun;
use crate::progress::Progress;
use crate::{CopyOptions, CopyReport, DbError, DbUrl, Vendor};

/// The whole copy. The caller has checked vendors and that the target is not the source.
pub(crate) fn copy(
    from: &DbUrl,
    to: &DbUrl,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<CopyReport, DbError> {
    let started = Instant::now();
    if opts.online && opts.journal.is_some() {
        // Rows copied by an earlier attempt were read under another snapshot: the change
        // stream would start at the wrong place for them.
        return Err(DbError::Unsupported {
            url: from.to_string(),
            reason: "an online copy reads one snapshot and cannot be resumed from a journal".into(),
        });
    }
    let report = CopyReport::new(Vendor::MySql, from, to, "logical");
    let mut meta = connect_meta(from)?;
    let source_id = identity(&mut meta, from)?;
    create_target_like_source(&mut meta, from, to)?;
    let mut dst = connect_target(to)?;
    let target_id = identity(&mut dst, to)?;
    let held = crate::contents::of_mysql(&mut dst, to);
    let mut run = CopyRun::begin(
        report,
        started,
        opts,
        (&source_id, &target_id),
        held,
        progress,
    )?;

    let tables = list_tables(&mut meta, from, from.database())?;
    let cols = columns(&mut meta, from, from.database())?;
    let todo: Vec<Table> = run.pending(tables, |t| &t.name);
    let readers = opts.jobs.max(1).min(todo.len().max(1));
    let conns = open_readers(&mut meta, from, readers, opts.online, &mut run.report)?;
    warn_about_events(&mut meta, from, &mut run.report)?;

    run.phase("schema");
    run.once("pre-data", || create_tables(&mut meta, from, to))?;

    run.announce(&todo, |t| t.bytes);
    let conns = Mutex::new(conns);
    let resumed = run.resumed();
    run.data(
        readers,
        todo,
        || {
            let reader = conns.lock().unwrap_or_else(|p| p.into_inner()).pop();
            Ok((reader.ok_or(DbError::Aborted)?, connect_target(to)?))
        },
        |(s, d), table| {
            let Some(tc) = cols.get(&table.name) else {
                return Err(DbError::table(from, &table.name, "has no readable columns"));
            };
            copy_table(s, d, from, to, &table.name, tc, resumed, progress)
        },
    )?;

    // Counters, read last.
    run.phase("counters");
    run.report.counters = copy_counters(&mut meta, &mut dst, from, to)?;

    // Views (in dependency passes), routines and triggers after the data.
    run.phase("post-data");
    run.once("post-data", || {
        post_data(&mut meta, &mut dst, from, to, from.database())
    })?;
    run.finish()
}

/// Creates the target like the source (charset, collation) when it is absent.
fn create_target_like_source(meta: &mut Conn, from: &DbUrl, to: &DbUrl) -> Result<(), DbError> {
    let mut admin = connect(to, false)?;
    let exists: Option<String> = admin
        .exec_first(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (to.database(),),
        )
        .map_err(|e| DbError::sql(to, "listing databases", e))?;
    if exists.is_some() {
        return Ok(());
    }
    let cs = strings(
        meta,
        from,
        &format!(
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {}",
            lit(from.database())
        ),
        "reading the database charset",
    )?;
    let row = cs.first().cloned().unwrap_or_default();
    admin
        .query_drop(format!(
            "CREATE DATABASE {} CHARACTER SET {} COLLATE {}",
            q(to.database()),
            cell(&row, 0),
            cell(&row, 1)
        ))
        .map_err(|e| DbError::sql(to, "creating the target database", e))
}

/// `readers` source sessions sharing one consistent view: FLUSH TABLES WITH READ LOCK while
/// each starts its snapshot, then release. Without RELOAD, rely on a quiesced source.
///
/// `online`: the source is live. One reader on MariaDB takes no lock: its snapshot's position
/// is `Binlog_snapshot_file/position`. Several readers need the lock (refused without RELOAD,
/// or when not granted within [`ONLINE_LOCK_WAIT_S`]), and the binary log position read under
/// it (`SHOW MASTER STATUS`) is the snapshot's place in the change stream. Either way
/// [`CopyReport::snapshot_point`] = `file:position`; how long writes waited for the lock goes
/// into [`CopyReport::snapshot_lock_ms`].
fn open_readers(
    meta: &mut Conn,
    from: &DbUrl,
    readers: usize,
    online: bool,
    report: &mut CopyReport,
) -> Result<Vec<Conn>, DbError> {
    if online && readers == 1 {
        // One reader needs no global lock on MariaDB: its snapshot's binary log position is
        // in Binlog_snapshot_file/position (MySQL has no such status: the lock below).
        let mut c = connect_source(from)?;
        start_snapshot(&mut c, from)?;
        if let Some(point) = snapshot_position(&mut c, from)? {
            report.snapshot_point = Some(point);
            return Ok(vec![c]);
        }
    }
    let lock_started = Instant::now();
    if online {
        // Waiting for the lock blocks the source's writers: give up rather than stall them
        // behind a long-running statement.
        meta.query_drop(format!(
            "SET SESSION lock_wait_timeout = {ONLINE_LOCK_WAIT_S}"
        ))
        .map_err(|e| DbError::sql(from, "setting lock_wait_timeout", e))?;
    }
    let locked = match meta.query_drop("FLUSH TABLES WITH READ LOCK") {
        Ok(()) => true,
        Err(e) if online => {
            return Err(DbError::Unsupported {
                url: from.to_string(),
                reason: format!(
                    "online copy with several readers needs a short FLUSH TABLES WITH READ LOCK (RELOAD privilege, granted within {ONLINE_LOCK_WAIT_S} s), so that every reader and the binary log position share one snapshot; or copy with one reader ({e})"
                ),
            });
        }
        Err(_) => false,
    };
    let locked_at = Instant::now();
    let mut conns = Vec::new();
    let opened = (0..readers).try_for_each(|_| {
        let mut c = connect_source(from)?;
        start_snapshot(&mut c, from)?;
        conns.push(c);
        Ok::<(), DbError>(())
    });
    let point = if online && opened.is_ok() {
        Some(master_position(meta, from))
    } else {
        None
    };
    if locked {
        let _ = meta.query_drop("UNLOCK TABLES");
    }
    let held_ms = locked_at.elapsed().as_millis() as u64;
    if locked {
        // From the lock request (new writes on the server wait from then on) to UNLOCK.
        report.snapshot_lock_ms = Some(lock_started.elapsed().as_millis() as u64);
    }
    opened?;
    if let Some(point) = point {
        let (file, pos) = point?;
        report.snapshot_point = Some(format!("{file}:{pos}"));
        tracing::info!(
            held_ms,
            wait_ms = (locked_at - lock_started).as_millis() as u64,
            readers,
            "online copy: FLUSH TABLES WITH READ LOCK held while the readers started their snapshots"
        );
    }
    if !locked {
        report.snapshot_consistent = false;
        report.warnings.push(
            "no RELOAD privilege for FLUSH TABLES WITH READ LOCK: readers share no single snapshot; the source must be stopped".into(),
        );
    }
    Ok(conns)
}

/// Seconds an online copy waits for FLUSH TABLES WITH READ LOCK.
const ONLINE_LOCK_WAIT_S: u32 = 10;

/// MariaDB: the binary log position of this session's consistent snapshot, `file:position`
/// (`None` where the server has no such status, MySQL).
fn snapshot_position(c: &mut Conn, url: &DbUrl) -> Result<Option<String>, DbError> {
    let rows = strings(
        c,
        url,
        "SHOW SESSION STATUS WHERE Variable_name IN ('Binlog_snapshot_file', 'Binlog_snapshot_position')",
        "reading the snapshot's binary log position",
    )?;
    let get = |n: &str| {
        rows.iter()
            .find(|r| cell(r, 0).eq_ignore_ascii_case(n))
            .map(|r| cell(r, 1))
            .filter(|v| !v.is_empty())
    };
    Ok(
        match (get("Binlog_snapshot_file"), get("Binlog_snapshot_position")) {
            (Some(file), Some(pos)) => Some(format!("{file}:{pos}")),
            _ => None,
        },
    )
}

/// The binary log's current end, `SHOW MASTER STATUS` (file, position).
pub(crate) fn master_position(c: &mut Conn, url: &DbUrl) -> Result<(String, u64), DbError> {
    let rows = strings(
        c,
        url,
        "SHOW MASTER STATUS",
        "reading the binary log position",
    )?;
    match rows.first() {
        Some(r) if !cell(r, 0).is_empty() => {
            let pos = cell(r, 1).parse::<u64>().map_err(|_| DbError::Sql {
                url: url.to_string(),
                context: "reading the binary log position".into(),
                detail: format!("position {:?} is not a number", cell(r, 1)),
            })?;
            Ok((cell(r, 0), pos))
        }
        _ => Err(DbError::Unsupported {
            url: url.to_string(),
            reason: "the binary log is off (log_bin=OFF): online mode needs it".into(),
        }),
    }
}

/// Scheduled events are not copied (the guide's schemas have none): say so, never silently.
fn warn_about_events(
    meta: &mut Conn,
    from: &DbUrl,
    report: &mut CopyReport,
) -> Result<(), DbError> {
    let events = strings(
        meta,
        from,
        &format!(
            "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {}",
            lit(from.database())
        ),
        "listing events",
    )?;
    if !events.is_empty() {
        let names: Vec<String> = events.iter().map(|r| cell(r, 0)).collect();
        report.warnings.push(format!(
            "scheduled events are not copied: {}",
            names.join(", ")
        ));
    }
    Ok(())
}

/// Sessions creating tables at once: each CREATE TABLE waits on the server's fsyncs (a new
/// tablespace file, the redo log), not on a core, so several overlap well even on 2 cores.
const DDL_SESSIONS: usize = 4;

/// Every table's `SHOW CREATE TABLE`, replayed verbatim, over [`DDL_SESSIONS`] target
/// sessions (foreign key checks are off in them: a table may name one not created yet).
fn create_tables(meta: &mut Conn, from: &DbUrl, to: &DbUrl) -> Result<(), DbError> {
    let ddl: Vec<String> = list_tables(meta, from, from.database())?
        .iter()
        .map(|t| show_create(meta, from, "TABLE", &t.name, 1).map(|r| cell_s(&r, 1)))
        .collect::<Result<_, _>>()?;
    carbon_fs::run_pool(
        DDL_SESSIONS,
        ddl,
        || connect_target(to),
        |dst, stmt| {
            dst.query_drop(&stmt)
                .map_err(|e| DbError::sql(to, "creating tables", e))
        },
    )
}

/// Sets each target AUTO_INCREMENT that differs from the source's; returns how many counters.
pub(crate) fn copy_counters(
    meta: &mut Conn,
    dst: &mut Conn,
    from: &DbUrl,
    to: &DbUrl,
) -> Result<usize, DbError> {
    let src_counters = counters(meta, from, from.database())?;
    let dst_counters = counters(dst, to, to.database())?;
    for (table, value) in &src_counters {
        if dst_counters.get(table) != Some(value) {
            dst.query_drop(format!("ALTER TABLE {} AUTO_INCREMENT = {value}", q(table)))
                .map_err(|e| DbError::table(to, table, e))?;
        }
    }
    Ok(src_counters.len())
}

pub(super) fn post_data(
    meta: &mut Conn,
    dst: &mut Conn,
    from: &DbUrl,
    to: &DbUrl,
    db: &str,
) -> Result<(), DbError> {
    let existing: Vec<String> = strings(
        dst,
        to,
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'VIEW'",
        "listing views",
    )?
    .iter()
    .map(|r| cell(r, 0))
    .collect();
    let mut views: Vec<(String, String)> = Vec::new();
    for r in strings(
        meta,
        from,
        &format!(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} AND TABLE_TYPE = 'VIEW' ORDER BY 1",
            lit(db)
        ),
        "listing views",
    )? {
        let name = cell(&r, 0);
        if !existing.contains(&name) {
            let v = show_create(meta, from, "VIEW", &name, 1)?;
            views.push((name, cell_s(&v, 1)));
        }
    }
    // A view may read another view: create in passes until a pass makes no progress.
    while !views.is_empty() {
        let before = views.len();
        let mut left = Vec::new();
        let mut last_err = None;
        for (name, ddl) in views {
            if let Err(e) = dst.query_drop(&ddl) {
                last_err = Some(DbError::table(to, &name, e));
                left.push((name, ddl));
            }
        }
        if left.len() == before {
            return Err(last_err.unwrap_or(DbError::Aborted));
        }
        views = left;
    }
    for r in strings(
        meta,
        from,
        &format!(
            "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {}",
            lit(db)
        ),
        "listing routines",
    )? {
        let (name, kind) = (cell(&r, 0), cell(&r, 1));
        let def = show_create(meta, from, &kind, &name, 2)?;
        create_with_mode(dst, to, &name, &cell_s(&def, 1), &cell_s(&def, 2))?;
    }
    for r in strings(
        meta,
        from,
        &format!(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {} ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER",
            lit(db)
        ),
        "listing triggers",
    )? {
        let name = cell(&r, 0);
        let def = show_create(meta, from, "TRIGGER", &name, 2)?;
        create_with_mode(dst, to, &name, &cell_s(&def, 1), &cell_s(&def, 2))?;
    }
    run(
        dst,
        to,
        &["SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'"],
        "session settings",
    )
}

pub(super) fn create_with_mode(
    dst: &mut Conn,
    to: &DbUrl,
    name: &str,
    sql_mode: &str,
    ddl: &str,
) -> Result<(), DbError> {
    dst.query_drop(format!("SET SESSION sql_mode = {}", lit(sql_mode)))
        .and_then(|()| dst.query_drop(ddl))
        .map_err(|e| DbError::table(to, name, e))
}

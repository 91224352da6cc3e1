//! MySQL/MariaDB → same: consistent-snapshot read-only source sessions, `SHOW CREATE`
//! replayed verbatim, rows streamed through `LOAD DATA LOCAL INFILE` (rows and warnings
//! checked), views/triggers/routines after the data, AUTO_INCREMENT set to the source's.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use mysql::prelude::Queryable;
use mysql::{Conn, LocalInfileHandler, Value};

use crate::journal::JournalPlan;
use crate::pool::run_pool;
use crate::progress::{Progress, ProgressEvent};
use crate::report::{DbState, RowDigest, TableInfo};
use crate::{CopyOptions, CopyReport, DbError, DbUrl, Vendor};

/// Text forms identical on both sides: binary results (no charset conversion), UTC.
const READ_SESSION: &[&str] = &[
    "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    "SET NAMES binary",
    "SET time_zone = '+00:00'",
    "SET SESSION net_write_timeout = 86400, net_read_timeout = 86400, wait_timeout = 86400",
];

const WRITE_SESSION: &[&str] = &[
    "SET NAMES utf8mb4",
    "SET time_zone = '+00:00'",
    "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
    "SET SESSION foreign_key_checks = 0, unique_checks = 0",
    "SET SESSION net_write_timeout = 86400, net_read_timeout = 86400, wait_timeout = 86400",
];

fn q(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

pub(crate) fn connect(url: &DbUrl, with_db: bool) -> Result<Conn, DbError> {
    url.connect_mysql(url.mysql_builder(with_db))
        .map_err(|e| match &e {
            mysql::Error::MySqlError(me) if me.code == 1049 => DbError::SourceMissing {
                url: url.to_string(),
            },
            _ => DbError::connect(url, e),
        })
}

fn run(c: &mut Conn, url: &DbUrl, stmts: &[&str], what: &str) -> Result<(), DbError> {
    for s in stmts {
        c.query_drop(s).map_err(|e| DbError::sql(url, what, e))?;
    }
    Ok(())
}

fn connect_source(url: &DbUrl) -> Result<Conn, DbError> {
    let mut c = connect(url, true)?;
    run(&mut c, url, READ_SESSION, "source session settings")?;
    Ok(c)
}

pub(crate) fn connect_meta(url: &DbUrl) -> Result<Conn, DbError> {
    let mut c = connect(url, true)?;
    run(
        &mut c,
        url,
        &[
            "SET SESSION TRANSACTION READ ONLY",
            "SET NAMES utf8mb4",
            "SET time_zone = '+00:00'",
        ],
        "source session settings",
    )?;
    let _ = c.query_drop("SET SESSION information_schema_stats_expiry = 0");
    Ok(c)
}

fn connect_target(url: &DbUrl) -> Result<Conn, DbError> {
    let mut c = connect(url, true)?;
    run(&mut c, url, WRITE_SESSION, "target session settings")?;
    let _ = c.query_drop("SET SESSION sql_log_bin = 0");
    Ok(c)
}

fn start_snapshot(c: &mut Conn, url: &DbUrl) -> Result<(), DbError> {
    // Sent by hand: the crate's start_transaction panics when this fails.
    c.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        .map_err(|e| DbError::sql(url, "starting a consistent snapshot", e))
}

fn strings(
    c: &mut Conn,
    url: &DbUrl,
    sql: &str,
    what: &str,
) -> Result<Vec<Vec<Option<String>>>, DbError> {
    let rows: Vec<mysql::Row> = c.query(sql).map_err(|e| DbError::sql(url, what, e))?;
    Ok(rows
        .into_iter()
        .map(|r| {
            // `Row::unwrap` hands over the row's values; it cannot fail.
            mysql::Row::unwrap(r)
                .into_iter()
                .map(|v| match v {
                    Value::NULL => None,
                    Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                    other => Some(other.as_sql(true).trim_matches('\'').to_owned()),
                })
                .collect()
        })
        .collect())
}

fn cell(row: &[Option<String>], i: usize) -> String {
    row.get(i).cloned().flatten().unwrap_or_default()
}

pub(crate) fn identity(c: &mut Conn, url: &DbUrl) -> Result<String, DbError> {
    let rows = strings(
        c,
        url,
        "SELECT @@hostname, @@port, DATABASE()",
        "reading the server identity",
    )?;
    let row = rows.first().cloned().unwrap_or_default();
    let uuid = c
        .query_first::<String, _>("SELECT @@server_uuid")
        .ok()
        .flatten()
        .unwrap_or_default();
    Ok(format!(
        "mysql:{}:{}:{}:{uuid}",
        cell(&row, 0),
        cell(&row, 1),
        cell(&row, 2)
    ))
}

struct Table {
    name: String,
    bytes: u64,
}

fn list_tables(c: &mut Conn, url: &DbUrl, db: &str) -> Result<Vec<Table>, DbError> {
    let rows = strings(
        c,
        url,
        &format!(
            "SELECT TABLE_NAME, COALESCE(DATA_LENGTH, 0) + COALESCE(INDEX_LENGTH, 0) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = {} AND TABLE_TYPE = 'BASE TABLE' ORDER BY 2 DESC, 1",
            lit(db)
        ),
        "listing tables",
    )?;
    Ok(rows
        .iter()
        .map(|r| Table {
            name: cell(r, 0),
            bytes: cell(r, 1).parse().unwrap_or(0),
        })
        .collect())
}

/// Column list of a table for reading (non-generated; BIT as a number) and for loading.
struct Columns {
    select: Vec<String>,
    load: Vec<String>,
    set: Vec<String>,
}

fn columns(c: &mut Conn, url: &DbUrl, db: &str) -> Result<BTreeMap<String, Columns>, DbError> {
    let rows = strings(
        c,
        url,
        &format!(
            "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, EXTRA FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = {} ORDER BY TABLE_NAME, ORDINAL_POSITION",
            lit(db)
        ),
        "listing columns",
    )?;
    let mut out: BTreeMap<String, Columns> = BTreeMap::new();
    for r in &rows {
        let (table, col, ty, extra) = (
            cell(r, 0),
            cell(r, 1),
            cell(r, 2),
            cell(r, 3).to_ascii_uppercase(),
        );
        if extra.contains("VIRTUAL") || extra.contains("STORED") || extra.contains("PERSISTENT") {
            continue;
        }
        let entry = out.entry(table).or_insert(Columns {
            select: Vec::new(),
            load: Vec::new(),
            set: Vec::new(),
        });
        if ty.eq_ignore_ascii_case("bit") {
            let var = format!("@c{}", entry.load.len());
            entry.select.push(format!("{}+0", q(&col)));
            entry
                .set
                .push(format!("{} = CAST({var} AS UNSIGNED)", q(&col)));
            entry.load.push(var);
        } else {
            entry.select.push(q(&col));
            entry.load.push(q(&col));
        }
    }
    Ok(out)
}

/// One row in LOAD DATA's default text form (tab-separated, `\N` for NULL, escapes).
fn encode_row(values: &[Value], out: &mut Vec<u8>) {
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        match v {
            Value::NULL => out.extend_from_slice(b"\\N"),
            Value::Bytes(b) => {
                for &byte in b {
                    match byte {
                        b'\\' => out.extend_from_slice(b"\\\\"),
                        b'\t' => out.extend_from_slice(b"\\t"),
                        b'\n' => out.extend_from_slice(b"\\n"),
                        0 => out.extend_from_slice(b"\\0"),
                        other => out.push(other),
                    }
                }
            }
            other => out.extend_from_slice(other.as_sql(true).trim_matches('\'').as_bytes()),
        }
    }
}

/// Streams a table's rows in the shared text form into `sink` (one buffer per ~256 KiB).
fn read_rows(
    c: &mut Conn,
    url: &DbUrl,
    table: &str,
    cols: &Columns,
    mut sink: impl FnMut(Vec<u8>) -> bool,
) -> Result<RowDigest, DbError> {
    let sql = format!("SELECT {} FROM {}", cols.select.join(", "), q(table));
    let result = c
        .query_iter(sql)
        .map_err(|e| DbError::table(url, table, e))?;
    let mut digest = RowDigest::default();
    let mut buf = Vec::with_capacity(300 << 10);
    for row in result {
        let row = row.map_err(|e| DbError::table(url, table, e))?;
        let values = mysql::Row::unwrap(row); // the row's values; cannot fail
        let start = buf.len();
        encode_row(&values, &mut buf);
        digest.add_row(&buf[start..]);
        buf.push(b'\n');
        if buf.len() >= 256 << 10
            && !sink(std::mem::replace(&mut buf, Vec::with_capacity(300 << 10)))
        {
            return Err(DbError::Aborted);
        }
    }
    if !buf.is_empty() && !sink(buf) {
        return Err(DbError::Aborted);
    }
    Ok(digest)
}

#[allow(clippy::too_many_arguments)]
fn copy_table(
    src: &mut Conn,
    dst: &mut Conn,
    from: &DbUrl,
    to: &DbUrl,
    table: &str,
    cols: &Columns,
    resumed: bool,
    progress: &dyn Progress,
) -> Result<(RowDigest, u64), DbError> {
    let (tx, rx) = sync_channel::<Vec<u8>>(8);
    dst.query_drop("START TRANSACTION")
        .map_err(|e| DbError::table(to, table, e))?;
    // Rows left by an interrupted run go in the same transaction as the reload. A fresh
    // target is known empty: no DELETE, so MariaDB's empty-table bulk insert path applies.
    if resumed {
        dst.query_drop(format!("DELETE FROM {}", q(table)))
            .map_err(|e| DbError::table(to, table, e))?;
    }
    let mut load_sql = format!(
        "LOAD DATA LOCAL INFILE 'carbon-copy' INTO TABLE {} CHARACTER SET binary ({})",
        q(table),
        cols.load.join(", ")
    );
    if !cols.set.is_empty() {
        load_sql.push_str(" SET ");
        load_sql.push_str(&cols.set.join(", "));
    }
    let (produced, loaded) = std::thread::scope(|scope| {
        let producer = scope.spawn(move || {
            let mut bytes = 0u64;
            let d = read_rows(src, from, table, cols, |chunk| {
                bytes += chunk.len() as u64;
                progress.event(ProgressEvent::Rows {
                    rows: chunk.iter().filter(|&&b| b == b'\n').count() as u64,
                    bytes: chunk.len() as u64,
                });
                tx.send(chunk).is_ok()
            });
            d.map(|d| (d, bytes))
        });
        dst.set_local_infile_handler(Some(LocalInfileHandler::new(move |_name, w| {
            for chunk in rx.iter() {
                w.write_all(&chunk)?;
            }
            w.flush()
        })));
        let loaded = dst.query_drop(&load_sql).map(|()| {
            (
                dst.affected_rows(),
                dst.warnings(),
                dst.info_str().into_owned(),
            )
        });
        // Dropping the handler drops the receiver, so a blocked producer ends.
        dst.set_local_infile_handler(None);
        let produced = producer
            .join()
            .unwrap_or_else(|_| Err(DbError::table(from, table, "reader thread panicked")));
        (produced, loaded)
    });
    let fail = |dst: &mut Conn, e: DbError| {
        let _ = dst.query_drop("ROLLBACK");
        Err(e)
    };
    let (digest, bytes) = match produced {
        Ok((d, b)) => (d, b),
        Err(e) => return fail(dst, e),
    };
    let rows = digest.rows;
    let (affected, warnings, info) = match loaded {
        Ok(v) => v,
        Err(e) => return fail(dst, DbError::table(to, table, e)),
    };
    if affected != rows || warnings != 0 {
        let detail = match dst.query::<(String, u32, String), _>("SHOW WARNINGS LIMIT 1") {
            Ok(w) => w
                .first()
                .map(|(l, c, m)| format!("; first warning: {l} {c} {m}"))
                .unwrap_or_default(),
            Err(_) => String::new(),
        };
        return fail(
            dst,
            DbError::table(
                to,
                table,
                format!(
                    "sent {rows} rows, LOAD DATA loaded {affected} with {warnings} warnings ({info}){detail}"
                ),
            ),
        );
    }
    dst.query_drop("COMMIT")
        .map_err(|e| DbError::table(to, table, e))?;
    progress.event(ProgressEvent::TableDone { table, rows });
    Ok((digest, bytes))
}

fn show_create(
    c: &mut Conn,
    url: &DbUrl,
    kind: &str,
    name: &str,
    col: usize,
) -> Result<Vec<String>, DbError> {
    let rows = strings(
        c,
        url,
        &format!("SHOW CREATE {kind} {}", q(name)),
        &format!("SHOW CREATE {kind} {name}"),
    )?;
    let row = rows.into_iter().next().unwrap_or_default();
    let _ = col;
    Ok(row.into_iter().map(Option::unwrap_or_default).collect())
}

fn strip_auto_increment(ddl: &str) -> String {
    let mut out = String::with_capacity(ddl.len());
    let mut rest = ddl;
    while let Some(i) = rest.find(" AUTO_INCREMENT=") {
        out.push_str(&rest[..i]);
        let after = &rest[i + " AUTO_INCREMENT=".len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

fn inventory(c: &mut Conn, url: &DbUrl, db: &str) -> Result<BTreeMap<String, String>, DbError> {
    let mut inv = BTreeMap::new();
    let objs = strings(
        c,
        url,
        &format!(
            "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} ORDER BY 1",
            lit(db)
        ),
        "listing tables",
    )?;
    for r in &objs {
        let (name, ty) = (cell(r, 0), cell(r, 1));
        if ty == "VIEW" {
            let v = show_create(c, url, "VIEW", &name, 1)?;
            inv.insert(format!("view {name}"), cell_s(&v, 1));
        } else {
            let t = show_create(c, url, "TABLE", &name, 1)?;
            inv.insert(
                format!("table {name}"),
                strip_auto_increment(&cell_s(&t, 1)),
            );
        }
    }
    for r in strings(
        c,
        url,
        &format!(
            "SELECT TRIGGER_NAME, CONCAT_WS(' ', ACTION_TIMING, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_ORDER, ACTION_STATEMENT) \
             FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {}",
            lit(db)
        ),
        "listing triggers",
    )? {
        inv.insert(format!("trigger {}", cell(&r, 0)), cell(&r, 1));
    }
    for r in strings(
        c,
        url,
        &format!(
            "SELECT CONCAT(ROUTINE_TYPE, ' ', ROUTINE_NAME), ROUTINE_DEFINITION FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {}",
            lit(db)
        ),
        "listing routines",
    )? {
        inv.insert(format!("routine {}", cell(&r, 0)), cell(&r, 1));
    }
    Ok(inv)
}

fn cell_s(row: &[String], i: usize) -> String {
    row.get(i).cloned().unwrap_or_default()
}

fn counters(c: &mut Conn, url: &DbUrl, db: &str) -> Result<BTreeMap<String, i128>, DbError> {
    let rows = strings(
        c,
        url,
        &format!(
            "SELECT TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} \
             AND TABLE_TYPE = 'BASE TABLE' AND AUTO_INCREMENT IS NOT NULL",
            lit(db)
        ),
        "reading AUTO_INCREMENT counters",
    )?;
    Ok(rows
        .iter()
        .map(|r| (cell(r, 0), cell(r, 1).parse::<i128>().unwrap_or(0)))
        .collect())
}

pub(crate) fn read_state(
    url: &DbUrl,
    jobs: usize,
    with_digests: bool,
    progress: &dyn Progress,
) -> Result<DbState, DbError> {
    let db = url.database().to_owned();
    let mut meta = connect_meta(url)?;
    let inventory = inventory(&mut meta, url, &db)?;
    let tables = if with_digests {
        list_tables(&mut meta, url, &db)?
    } else {
        Vec::new()
    };
    let cols = columns(&mut meta, url, &db)?;
    let digests = Mutex::new(BTreeMap::new());
    run_pool(
        jobs,
        tables.into_iter().map(|t| t.name).collect(),
        || {
            let mut c = connect_source(url)?;
            start_snapshot(&mut c, url)?;
            Ok(c)
        },
        |c, table| {
            let Some(tc) = cols.get(&table) else {
                return Err(DbError::table(url, &table, "has no readable columns"));
            };
            let d = read_rows(c, url, &table, tc, |_| true)?;
            progress.event(ProgressEvent::TableDone {
                table: &table,
                rows: d.rows,
            });
            digests
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(table, d);
            Ok(())
        },
    )?;
    let counters = counters(&mut meta, url, &db)?
        .into_iter()
        .map(|(t, v)| (format!("auto_increment {t}"), v))
        .collect();
    Ok(DbState {
        inventory,
        tables: digests.into_inner().unwrap_or_else(|p| p.into_inner()),
        counters,
    })
}

pub(crate) fn copy(
    from: &DbUrl,
    to: &DbUrl,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<CopyReport, DbError> {
    let started = Instant::now();
    let src_db = from.database().to_owned();
    let dst_db = to.database().to_owned();
    let mut report = CopyReport::new(Vendor::MySql, from, to, "logical");
    let mut meta = connect_meta(from)?;
    let source_id = identity(&mut meta, from)?;

    // Target: create it like the source (charset, collation) when absent.
    let mut admin = connect(to, false)?;
    let exists: Option<String> = admin
        .exec_first(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (dst_db.clone(),),
        )
        .map_err(|e| DbError::sql(to, "listing databases", e))?;
    if exists.is_none() {
        let cs = strings(
            &mut meta,
            from,
            &format!(
                "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {}",
                lit(&src_db)
            ),
            "reading the database charset",
        )?;
        let row = cs.first().cloned().unwrap_or_default();
        admin
            .query_drop(format!(
                "CREATE DATABASE {} CHARACTER SET {} COLLATE {}",
                q(&dst_db),
                cell(&row, 0),
                cell(&row, 1)
            ))
            .map_err(|e| DbError::sql(to, "creating the target database", e))?;
    }
    drop(admin);
    let mut dst = connect_target(to)?;
    let target_id = identity(&mut dst, to)?;
    let empty = crate::contents::of_mysql(&mut dst, to).and_then(|c| c.require_empty());
    let JournalPlan {
        mut journal,
        previous,
        resumed,
    } = JournalPlan::decide(
        opts.journal.as_deref(),
        Vendor::MySql,
        &source_id,
        &target_id,
        empty,
    )?;
    report.resumed = resumed;

    let tables = list_tables(&mut meta, from, &src_db)?;
    report.tables = tables.len();
    let cols = columns(&mut meta, from, &src_db)?;
    let todo: Vec<Table> = tables
        .into_iter()
        .filter(|t| !previous.tables.contains_key(&t.name))
        .collect();

    // A consistent view for all readers: FLUSH TABLES WITH READ LOCK while each reader
    // starts its snapshot, then release. Without RELOAD, rely on a quiesced source.
    let readers = opts.jobs.max(1).min(todo.len().max(1));
    let locked = meta.query_drop("FLUSH TABLES WITH READ LOCK").is_ok();
    let mut conns = Vec::new();
    let opened = (0..readers).try_for_each(|_| {
        let mut c = connect_source(from)?;
        start_snapshot(&mut c, from)?;
        conns.push(c);
        Ok::<(), DbError>(())
    });
    if locked {
        let _ = meta.query_drop("UNLOCK TABLES");
    }
    opened?;
    if !locked {
        report.snapshot_consistent = false;
        report.warnings.push(
            "no RELOAD privilege for FLUSH TABLES WITH READ LOCK: readers share no single snapshot; the source must be stopped".into(),
        );
    }
    // Scheduled events are not copied (the guide's schemas have none): say so, never silently.
    let events = strings(
        &mut meta,
        from,
        &format!(
            "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {}",
            lit(&src_db)
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
    if resumed {
        report.snapshot_consistent = false;
    }

    progress.event(ProgressEvent::Phase("schema"));
    if !previous.steps.contains("pre-data") {
        let ddl: Vec<String> = list_tables(&mut meta, from, &src_db)?
            .iter()
            .map(|t| show_create(&mut meta, from, "TABLE", &t.name, 1).map(|r| cell_s(&r, 1)))
            .collect::<Result<_, _>>()?;
        for stmt in &ddl {
            dst.query_drop(stmt)
                .map_err(|e| DbError::sql(to, "creating tables", e))?;
        }
        journal.step_done("pre-data")?;
    }

    progress.event(ProgressEvent::Phase("data"));
    progress.event(ProgressEvent::Planned {
        tables: todo.len(),
        bytes: todo.iter().map(|t| t.bytes).sum(),
    });
    let conns = Mutex::new(conns);
    let streamed = Mutex::new(BTreeMap::new());
    let journal_m = Mutex::new(&mut journal);
    let totals = Mutex::new((0u64, 0u64));
    run_pool(
        readers,
        todo,
        || {
            let s = conns
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop()
                .ok_or(DbError::Aborted)?;
            Ok((s, connect_target(to)?))
        },
        |(s, d), table| {
            let Some(tc) = cols.get(&table.name) else {
                return Err(DbError::table(from, &table.name, "has no readable columns"));
            };
            let (digest, bytes) = copy_table(s, d, from, to, &table.name, tc, resumed, progress)?;
            let rows = digest.rows;
            streamed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(table.name.clone(), digest);
            let mut t = totals.lock().unwrap_or_else(|p| p.into_inner());
            t.0 += rows;
            t.1 += bytes;
            drop(t);
            journal_m
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .table_done(&table.name, rows)
        },
    )?;
    let (rows, bytes) = totals.into_inner().unwrap_or_else(|p| p.into_inner());
    report.rows = rows + previous.tables.values().sum::<u64>();
    report.bytes = bytes;
    if report.snapshot_consistent {
        report.stream_digests = Some(streamed.into_inner().unwrap_or_else(|p| p.into_inner()));
    }

    // Counters, read last.
    progress.event(ProgressEvent::Phase("counters"));
    let src_counters = counters(&mut meta, from, &src_db)?;
    let dst_counters = counters(&mut dst, to, &dst_db)?;
    report.counters = src_counters.len();
    for (table, value) in &src_counters {
        if dst_counters.get(table) != Some(value) {
            dst.query_drop(format!("ALTER TABLE {} AUTO_INCREMENT = {value}", q(table)))
                .map_err(|e| DbError::table(to, table, e))?;
        }
    }

    // Views (in dependency passes), routines and triggers after the data.
    progress.event(ProgressEvent::Phase("post-data"));
    if !previous.steps.contains("post-data") {
        post_data(&mut meta, &mut dst, from, to, &src_db)?;
        journal.step_done("post-data")?;
    }
    journal.step_done("done")?;
    report.copy_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

fn post_data(
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

fn create_with_mode(
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

pub(crate) fn inspect(url: &DbUrl) -> Result<crate::Inspection, DbError> {
    let mut c = connect_meta(url)?;
    let db = url.database().to_owned();
    let identity = identity(&mut c, url)?;
    let inv = inventory(&mut c, url, &db)?;
    let mut objects = BTreeMap::new();
    for key in inv.keys() {
        let kind = key.split(' ').next().unwrap_or("").to_owned();
        *objects.entry(kind).or_insert(0usize) += 1;
    }
    let mut infos = Vec::new();
    for t in list_tables(&mut c, url, &db)? {
        let n: Option<u64> = c
            .query_first(format!("SELECT COUNT(*) FROM {}", q(&t.name)))
            .map_err(|e| DbError::table(url, &t.name, e))?;
        infos.push(TableInfo {
            table: t.name,
            rows: n.unwrap_or(0),
            bytes: t.bytes,
        });
    }
    let counters = counters(&mut c, url, &db)?.len();
    Ok(crate::Inspection {
        vendor: Vendor::MySql,
        url: url.to_string(),
        identity,
        bytes: infos.iter().map(|t| t.bytes).sum(),
        tables: infos,
        objects,
        counters,
    })
}

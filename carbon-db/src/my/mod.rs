//! MySQL/MariaDB → same: consistent-snapshot read-only source sessions, `SHOW CREATE`
//! replayed verbatim, rows streamed through `LOAD DATA LOCAL INFILE` (rows and warnings
//! checked), views/triggers/routines after the data, AUTO_INCREMENT set to the source's.
//!
//! `tables` reads the source's tables and streams one table, `copy` holds the copy's phases,
//! `state` reads one side for verification and `inspect`.

mod copy;
mod state;
mod tables;

use mysql::prelude::Queryable;
use mysql::{Conn, Value};

use crate::{DbError, DbUrl};

pub(crate) use copy::{copy, copy_counters, master_position};
pub(crate) use state::{counters, inspect, inventory, read_state, table_digest};

/// Text forms identical on both sides: binary results (no charset conversion), UTC.
const READ_SESSION: &[&str] = &[
    "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    "SET NAMES binary",
    "SET time_zone = '+00:00'",
    "SET SESSION net_write_timeout = 86400, net_read_timeout = 86400, wait_timeout = 86400",
];

/// Foreign keys are not checked (tables load in any order). Unique checks stay on: with
/// `unique_checks = 0` MariaDB 10.11 takes its empty-table bulk insert path (every index
/// buffered, sorted and merged at commit), which measured 1.5–2.5× the server CPU of plain
/// inserts arriving in primary key order on the apim shape (IDN_OAUTH2_ACCESS_TOKEN 6.8 s
/// against 2.7 s); a duplicate is refused rather than loaded, too.
const WRITE_SESSION: &[&str] = &[
    "SET NAMES utf8mb4",
    "SET time_zone = '+00:00'",
    "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
    "SET SESSION foreign_key_checks = 0, unique_checks = 1",
    "SET SESSION net_write_timeout = 86400, net_read_timeout = 86400, wait_timeout = 86400",
];

pub(crate) fn q(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

pub(crate) fn lit(s: &str) -> String {
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

pub(crate) fn connect_source(url: &DbUrl) -> Result<Conn, DbError> {
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

pub(crate) fn connect_target(url: &DbUrl) -> Result<Conn, DbError> {
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

pub(crate) fn strings(
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

pub(crate) fn cell(row: &[Option<String>], i: usize) -> String {
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

fn cell_s(row: &[String], i: usize) -> String {
    row.get(i).cloned().unwrap_or_default()
}

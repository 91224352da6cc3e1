//! The copy: the template fast path, or target creation, schema, parallel data under one
//! snapshot, post-data and sequences.

use std::io::{BufRead, Write};
use std::time::Instant;

use postgres::Client;

use super::dump::{apply_post_data, pg_dump_section};
use super::state::{begin_read, snapshot_session};
use super::tables::{Table, Unit, list_tables, read_counters, units};
use super::{
    SESSION, connect_source, connect_target, database_exists, identity, maintenance, quote_ident,
    quote_lit,
};
use crate::engine::CopyRun;
use crate::progress::{Progress, ProgressEvent};
use crate::report::{CopyDigest, RowDigest};
use crate::{CopyOptions, CopyReport, DbError, DbUrl, Vendor};

/// Copies one table: TRUNCATE + COPY FREEZE in one target transaction, rows piped from the
/// source's COPY without decoding (binary format when every column type is built-in).
/// Returns rows and bytes.
pub(super) fn copy_table(
    src: &mut Client,
    dst: &mut Client,
    from: &DbUrl,
    to: &DbUrl,
    table: &Unit,
    progress: &dyn Progress,
) -> Result<(RowDigest, u64), DbError> {
    let name = table.name.as_str();
    let mut tx = dst.transaction().map_err(|e| DbError::table(to, name, e))?;
    if table.range.is_none() {
        tx.batch_execute(&format!("TRUNCATE {name}"))
            .map_err(|e| DbError::table(to, name, e))?;
    }
    let mut writer = tx
        .copy_in(&table.copy_in_sql())
        .map_err(|e| DbError::table(to, name, e))?;
    let mut reader = src
        .copy_out(&table.copy_out_sql())
        .map_err(|e| DbError::table(from, name, e))?;
    let mut bytes = 0u64;
    let mut pending = 0u64;
    let mut digest = CopyDigest::new(table.binary);
    loop {
        let buf = reader
            .fill_buf()
            .map_err(|e| DbError::table(from, name, e))?;
        if buf.is_empty() {
            break;
        }
        let n = buf.len();
        digest.feed(buf);
        writer
            .write_all(buf)
            .map_err(|e| DbError::table(to, name, e))?;
        reader.consume(n);
        bytes += n as u64;
        pending += n as u64;
        if pending >= 1 << 20 {
            progress.event(ProgressEvent::Rows {
                rows: 0,
                bytes: pending,
            });
            pending = 0;
        }
    }
    drop(reader);
    let rows = writer.finish().map_err(|e| DbError::table(to, name, e))?;
    if rows != digest.digest.rows {
        return Err(DbError::table(
            to,
            name,
            format!(
                "source sent {} rows but the target loaded {rows}",
                digest.digest.rows
            ),
        ));
    }
    tx.commit().map_err(|e| DbError::table(to, name, e))?;
    progress.event(ProgressEvent::Rows {
        rows,
        bytes: pending,
    });
    Ok((digest.digest, bytes))
}

/// The whole copy. The caller has checked vendors and that the target is not the source.
pub(crate) fn copy(
    from: &DbUrl,
    to: &DbUrl,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<CopyReport, DbError> {
    let started = Instant::now();
    let mut report = CopyReport::new(Vendor::Postgres, from, to, "logical");
    if opts.online && opts.journal.is_some() {
        // A resumed copy reads its rows under two snapshots: no single point in the change
        // stream would describe it.
        return Err(DbError::Unsupported {
            url: from.to_string(),
            reason: "an online copy reads one snapshot and cannot be resumed from a journal".into(),
        });
    }
    // Fast path first, without ever connecting to the source (a session there, even one
    // just closed, makes CREATE DATABASE … TEMPLATE wait or refuse).
    let mut admin = maintenance(to)?;
    let target_exists = database_exists(&mut admin, to, to.database())?;
    if !target_exists
        && !opts.logical
        && !opts.online
        && from.same_server(to)
        && template_copy(&mut admin, from, to, &mut report, progress)?
    {
        report.copy_ms = started.elapsed().as_millis() as u64;
        report.phases.add("template copy", report.copy_ms);
        return Ok(report);
    }

    let mut src = open_source(from)?;
    if !target_exists {
        create_target(&mut admin, &mut src, from, to)?;
    }
    drop(admin);
    let mut dst = connect_target(to)?;
    let target_id = identity(&mut dst, to)?;
    let source_id = identity(&mut src, from)?;
    let held = crate::contents::of_postgres(&mut dst, to);
    let mut run = CopyRun::begin(
        report,
        started,
        opts,
        (&source_id, &target_id),
        held,
        progress,
    )?;

    // One snapshot for everything: pg_dump and all workers import it.
    begin_read(&mut src, from)?;
    // The same transaction's pg_current_snapshot() says which transactions the copy sees:
    // an online stream skips exactly those.
    let row = src
        .query_one(
            "SELECT pg_export_snapshot(), pg_current_snapshot()::text",
            &[],
        )
        .map_err(|e| DbError::sql(from, "exporting a snapshot", e))?;
    let snapshot: String = row.get(0);
    if opts.online {
        run.report.snapshot_point = Some(row.get(1));
    }

    run.phase("schema");
    // Both sections at once: two pg_dump processes under the same snapshot.
    let (pre, post_data) = std::thread::scope(|scope| {
        let pre = scope.spawn(|| pg_dump_section(from, "pre-data", &snapshot));
        let post = pg_dump_section(from, "post-data", &snapshot);
        (pre.join().unwrap_or(Err(DbError::Aborted)), post)
    });
    let post_data = post_data?;
    run.once("pre-data", || create_schema(&mut dst, to, &pre?))?;

    let tables = list_tables(&mut src, from)?;
    let sizes = tables.iter().map(|t| (t.name.clone(), t.bytes)).collect();
    let todo: Vec<Table> = run.pending(tables, |t| &t.name);
    run.announce(&todo, |t| t.bytes.max(0) as u64);
    let work = units(&todo, opts.jobs);
    if run.resumed() {
        empty_split_tables(&mut dst, to, &work)?;
    }
    drop(dst);
    run.data(
        opts.jobs,
        work,
        || snapshot_sessions(from, to, &snapshot),
        |(s, d), unit| copy_table(s, d, from, to, unit, progress),
    )?;

    // Indexes and constraints after the data: parallel, then FKs, then the rest.
    run.phase("post-data");
    run.report.phases.post_data = run.with_journal(|done, journal| {
        apply_post_data(to, &post_data, &sizes, opts.jobs, done, journal)
    })?;

    // Sequences last: they are not transactional, read them after the data.
    run.phase("sequences");
    let _ = src.batch_execute("COMMIT");
    run.report.counters = copy_sequences(&mut src, from, to)?;
    run.finish()
}

/// `CREATE DATABASE … TEMPLATE` on the same server; `Ok(false)` (with a warning in the
/// report) when the server refuses or someone is connected to the source.
fn template_copy(
    admin: &mut Client,
    from: &DbUrl,
    to: &DbUrl,
    report: &mut CopyReport,
    progress: &dyn Progress,
) -> Result<bool, DbError> {
    if !database_exists(admin, from, from.database())? {
        return Err(DbError::SourceMissing {
            url: from.to_string(),
        });
    }
    progress.event(ProgressEvent::Phase("template copy"));
    let others: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
            &[&from.database()],
        )
        .map_err(|e| DbError::sql(to, "checking sessions on the source", e))?
        .get(0);
    if others > 0 {
        report.warnings.push(format!(
            "{others} other session(s) on the source: streaming instead of a template copy"
        ));
        return Ok(false);
    }
    let sql = format!(
        "CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY",
        quote_ident(to.database()),
        quote_ident(from.database())
    );
    if let Err(e) = admin.batch_execute(&sql) {
        report.warnings.push(format!(
            "template copy refused ({}); streaming instead",
            crate::error::ErrText::text(&e)
        ));
        return Ok(false);
    }
    report.method = "template".into();
    let mut t = connect_source(to)?;
    let tables = list_tables(&mut t, to)?;
    report.tables = tables.len();
    report.bytes = tables.iter().map(|t| t.bytes.max(0) as u64).sum();
    report.counters = read_counters(&mut t, to)?.len();
    Ok(true)
}

/// A read-only session on the source, refusing what this tool cannot copy.
fn open_source(from: &DbUrl) -> Result<Client, DbError> {
    let mut src = connect_source(from)?;
    let lo: i64 = src
        .query_one("SELECT count(*) FROM pg_largeobject_metadata", &[])
        .map_err(|e| DbError::sql(from, "counting large objects", e))?
        .get(0);
    if lo > 0 {
        return Err(DbError::Unsupported {
            url: from.to_string(),
            reason: format!("{lo} large objects (pg_largeobject) cannot be copied by this tool"),
        });
    }
    Ok(src)
}

/// Creates the absent target with the source's encoding and collation.
fn create_target(
    admin: &mut Client,
    src: &mut Client,
    from: &DbUrl,
    to: &DbUrl,
) -> Result<(), DbError> {
    let row = src
        .query_one(
            "SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database WHERE datname = current_database()",
            &[],
        )
        .map_err(|e| DbError::sql(from, "reading the database encoding", e))?;
    let (enc, coll, ctype): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    admin
        .batch_execute(&format!(
            "CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}",
            quote_ident(to.database()),
            quote_lit(&enc),
            quote_lit(&coll),
            quote_lit(&ctype)
        ))
        .map_err(|e| DbError::sql(to, "creating the target database", e))
}

fn create_schema(dst: &mut Client, to: &DbUrl, pre_data: &str) -> Result<(), DbError> {
    dst.batch_execute(pre_data)
        .map_err(|e| DbError::sql(to, "creating the schema (pg_dump pre-data)", e))?;
    // Keep the target session's settings after the dump's SETs.
    dst.batch_execute(&format!(
        "RESET ALL; {SESSION}; SET synchronous_commit = off"
    ))
    .map_err(|e| DbError::sql(to, "target session settings", e))
}

/// A split table is loaded by several sessions, so nothing can TRUNCATE it in the same
/// transaction: on a resumed run, empty it first (a fresh target is empty already).
fn empty_split_tables(dst: &mut Client, to: &DbUrl, work: &[Unit]) -> Result<(), DbError> {
    let mut split: Vec<&str> = work
        .iter()
        .filter(|u| u.range.is_some())
        .map(|u| u.name.as_str())
        .collect();
    split.dedup();
    for name in split {
        dst.batch_execute(&format!("TRUNCATE {name}"))
            .map_err(|e| DbError::table(to, name, e))?;
    }
    Ok(())
}

/// A worker's sessions: a source session under the exported snapshot and a target session.
fn snapshot_sessions(
    from: &DbUrl,
    to: &DbUrl,
    snapshot: &str,
) -> Result<(Client, Client), DbError> {
    let s = snapshot_session(from, snapshot)?;
    let d = connect_target(to)?;
    Ok((s, d))
}

/// Sets every target sequence to the source's value; returns how many.
pub(crate) fn copy_sequences(src: &mut Client, from: &DbUrl, to: &DbUrl) -> Result<usize, DbError> {
    let counters = read_counters(src, from)?;
    if counters.is_empty() {
        return Ok(0);
    }
    let sql = counters
        .iter()
        .map(|(name, last, called, _)| {
            format!(
                "SELECT pg_catalog.setval({}, {last}, {called});",
                quote_lit(name)
            )
        })
        .collect::<String>();
    let mut dst = connect_target(to)?;
    dst.batch_execute(&sql)
        .map_err(|e| DbError::sql(to, "setting sequences", e))?;
    Ok(counters.len())
}

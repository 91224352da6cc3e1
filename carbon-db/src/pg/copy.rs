//! The copy: the template fast path, or target creation, schema, parallel data under one
//! snapshot, post-data and sequences.

use std::io::{BufRead, Write};
use std::sync::Mutex;
use std::time::Instant;

use postgres::Client;

use super::dump::{apply_post_data, pg_dump_section};
use super::state::begin_read;
use super::tables::{Pieces, Table, Unit, list_tables, read_counters, units};
use super::{
    SESSION, connect_source, connect_target, database_exists, identity, maintenance, quote_ident,
    quote_lit,
};
use crate::journal::JournalPlan;
use crate::progress::{Progress, ProgressEvent};
use crate::report::{CopyDigest, RowDigest};
use crate::{CopyOptions, CopyReport, DbError, DbUrl, Vendor};
use carbon_fs::run_pool;

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
    // Fast path first, without ever connecting to the source (a session there, even one
    // just closed, makes CREATE DATABASE … TEMPLATE wait or refuse).
    let mut admin = maintenance(to)?;
    let target_exists = database_exists(&mut admin, to, to.database())?;
    if !target_exists
        && !opts.logical
        && from.same_server(to)
        && template_copy(&mut admin, from, to, &mut report, progress)?
    {
        report.copy_ms = started.elapsed().as_millis() as u64;
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
    let JournalPlan {
        mut journal,
        previous,
        resumed,
    } = JournalPlan::decide(
        opts.journal.as_deref(),
        Vendor::Postgres,
        &source_id,
        &target_id,
        crate::contents::of_postgres(&mut dst, to),
    )?;
    report.resumed = resumed;
    report.snapshot_consistent = !resumed;

    // One snapshot for everything: pg_dump and all workers import it.
    begin_read(&mut src, from)?;
    let snapshot: String = src
        .query_one("SELECT pg_export_snapshot()", &[])
        .map_err(|e| DbError::sql(from, "exporting a snapshot", e))?
        .get(0);

    progress.event(ProgressEvent::Phase("schema"));
    // Both sections at once: two pg_dump processes under the same snapshot.
    let (pre, post_data) = std::thread::scope(|scope| {
        let pre = scope.spawn(|| pg_dump_section(from, "pre-data", &snapshot));
        let post = pg_dump_section(from, "post-data", &snapshot);
        (pre.join().unwrap_or(Err(DbError::Aborted)), post)
    });
    let post_data = post_data?;
    if !previous.steps.contains("pre-data") {
        create_schema(&mut dst, to, &pre?)?;
        journal.step_done("pre-data")?;
    }

    let tables = list_tables(&mut src, from)?;
    report.tables = tables.len();
    let todo: Vec<Table> = tables
        .into_iter()
        .filter(|t| !previous.tables.contains_key(&t.name))
        .collect();
    progress.event(ProgressEvent::Phase("data"));
    progress.event(ProgressEvent::Planned {
        tables: todo.len(),
        bytes: todo.iter().map(|t| t.bytes.max(0) as u64).sum(),
    });
    let work = units(&todo, opts.jobs);
    if resumed {
        empty_split_tables(&mut dst, to, &work)?;
    }
    drop(dst);
    let data = Data {
        from,
        to,
        snapshot: &snapshot,
        jobs: opts.jobs,
        progress,
    };
    let (streamed, bytes) = data.copy(work, &mut journal)?;
    report.rows =
        streamed.values().map(|d| d.rows).sum::<u64>() + previous.tables.values().sum::<u64>();
    report.bytes = bytes;
    // Tables copied by an earlier run were read under another snapshot: no stream digest.
    if !resumed {
        report.stream_digests = Some(streamed);
    }

    // Indexes and constraints after the data: parallel, then FKs, then the rest.
    progress.event(ProgressEvent::Phase("indexes"));
    apply_post_data(to, &post_data, opts.jobs, &previous.steps, &mut journal)?;

    // Sequences last: they are not transactional, read them after the data.
    progress.event(ProgressEvent::Phase("sequences"));
    let _ = src.batch_execute("COMMIT");
    report.counters = copy_sequences(&mut src, from, to)?;
    journal.step_done("done")?;
    report.copy_ms = started.elapsed().as_millis() as u64;
    Ok(report)
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

/// The data phase: `jobs` workers, each with a source session under the exported snapshot
/// and a target session.
struct Data<'a> {
    from: &'a DbUrl,
    to: &'a DbUrl,
    snapshot: &'a str,
    jobs: usize,
    progress: &'a dyn Progress,
}

impl Data<'_> {
    /// Copies every unit; returns each table's stream digest and the bytes moved.
    fn copy(
        &self,
        work: Vec<Unit>,
        journal: &mut crate::journal::Journal,
    ) -> Result<(std::collections::BTreeMap<String, RowDigest>, u64), DbError> {
        let pieces = Pieces::new(&work);
        let journal_m = Mutex::new(journal);
        let bytes_total = Mutex::new(0u64);
        run_pool(
            self.jobs,
            work,
            || self.sessions(),
            |(s, d), unit| {
                let (digest, bytes) = copy_table(s, d, self.from, self.to, &unit, self.progress)?;
                *bytes_total.lock().unwrap_or_else(|p| p.into_inner()) += bytes;
                if let Some(total) = pieces.done(&unit.name, digest) {
                    self.progress.event(ProgressEvent::TableDone {
                        table: &unit.name,
                        rows: total.rows,
                    });
                    journal_m
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .table_done(&unit.name, total.rows)?;
                }
                Ok(())
            },
        )?;
        let bytes = bytes_total.into_inner().unwrap_or_else(|p| p.into_inner());
        Ok((pieces.into_totals(), bytes))
    }

    fn sessions(&self) -> Result<(Client, Client), DbError> {
        let mut s = connect_source(self.from)?;
        begin_read(&mut s, self.from)?;
        s.batch_execute(&format!(
            "SET TRANSACTION SNAPSHOT {}",
            quote_lit(self.snapshot)
        ))
        .map_err(|e| DbError::sql(self.from, "importing the snapshot", e))?;
        let d = connect_target(self.to)?;
        Ok((s, d))
    }
}

/// Sets every target sequence to the source's value; returns how many.
fn copy_sequences(src: &mut Client, from: &DbUrl, to: &DbUrl) -> Result<usize, DbError> {
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

//! Reading the source's binary log and applying each source transaction to the target in one
//! target transaction, together with the position it ends at.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mysql::binlog::events::{EventData, RowsEventData};
use mysql::consts::CapabilityFlags;
use mysql::prelude::Queryable;
use mysql::{BinlogDumpFlags, BinlogRequest, Conn, Value};

use super::catalog::{self, TableMeta};
use super::{Pos, connect_meta, position_table, read_position};
use crate::online::{FollowReport, OnlineError, OnlineOptions, State, Stream, Until};
use crate::{DbError, DbUrl, Progress};

/// One row change of a source transaction.
#[derive(Debug)]
enum Change {
    Insert {
        table: String,
        after: Vec<Value>,
    },
    Update {
        table: String,
        before: Vec<Value>,
        after: Vec<Value>,
    },
    Delete {
        table: String,
        before: Vec<Value>,
    },
}

/// The apply session on the target: found-rows semantics (an UPDATE that matched a row counts
/// even when it changed nothing), UTC, binary strings converted per column, strict SQL mode.
fn connect_apply(to: &DbUrl) -> Result<Conn, DbError> {
    let builder = to
        .mysql_builder(true)
        .additional_capabilities(CapabilityFlags::CLIENT_FOUND_ROWS);
    let mut c = to
        .connect_mysql(builder)
        .map_err(|e| DbError::connect(to, e))?;
    for s in [
        "SET NAMES binary",
        "SET time_zone = '+00:00'",
        "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
        "SET SESSION foreign_key_checks = 0",
        "SET SESSION net_write_timeout = 86400, net_read_timeout = 86400, wait_timeout = 86400",
    ] {
        c.query_drop(s)
            .map_err(|e| DbError::sql(to, "apply session settings", e))?;
    }
    // The applied changes are not changes of the target's own: keep them out of its binlog
    // when allowed (a follower of the target, the fallback, starts after them anyway).
    let _ = c.query_drop("SET SESSION sql_log_bin = 0");
    Ok(c)
}

/// Our replica server id: derived from the stream's name, never the source's.
fn server_id(name: &str, source_id: u32) -> u32 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(name.as_bytes());
    let id = 0x4000_0000 | (u32::from_be_bytes([d[0], d[1], d[2], d[3]]) & 0x3FFF_FFFF);
    if id == source_id { id ^ 1 } else { id }
}

struct Follower<'a> {
    stream: &'a Stream,
    opts: &'a OnlineOptions,
    db: String,
    apply: Conn,
    tables: BTreeMap<String, TableMeta>,
    state: State,
    /// Position written on the target (with the last applied transaction, or alone).
    written: Pos,
    /// Position of the last transaction boundary read (foreign transactions skip ahead).
    boundary: Pos,
    report: FollowReport,
    last_save: Instant,
    touched: std::fs::File,
    server_id: u32,
    /// Source transactions read and not yet applied: applied together in one target
    /// transaction (never part of one), with the position after the last.
    batch: Vec<Txn>,
    batch_changes: usize,
    batch_started: Instant,
}

/// One source transaction of the followed database.
struct Txn {
    changes: Vec<Change>,
    at: Pos,
    /// Its commit time on the source (seconds since the epoch).
    ts: u32,
}

/// A batch is applied at the latest this long after its first transaction was read.
const BATCH_WAIT: Duration = Duration::from_millis(100);

/// state.json (what `status` reads, the lag among it) is saved this often while following.
const SAVE_EVERY: Duration = Duration::from_millis(250);

pub(super) fn follow(
    stream: &Stream,
    opts: &OnlineOptions,
    until: Until,
    stop: &AtomicBool,
    progress: &dyn Progress,
) -> Result<FollowReport, OnlineError> {
    let started = Instant::now();
    let state = State::load(stream)?;
    match state.phase {
        super::Phase::Following | super::Phase::Drained | super::Phase::Proven => {}
        ref other => {
            return Err(OnlineError::Phase {
                name: stream.name.clone(),
                what: format!("cannot follow in phase {other:?}: run begin first"),
            });
        }
    }
    let from = &stream.from;
    let mut meta = connect_meta(from)?;
    let source_id: u32 = meta
        .query_first("SELECT @@server_id")
        .map_err(|e| DbError::sql(from, "reading server_id", e))?
        .unwrap_or(0);
    let end = match until {
        Until::SourceEnd => Some(Pos::master(&mut meta, from)?),
        Until::Stopped => None,
    };
    drop(meta);
    // Row images are by column position: map them with the target's tables, which are the
    // source's at the snapshot (DDL is never applied), so that a later source DDL is seen as
    // such when its event arrives rather than as a changed table.
    let to = &stream.to;
    let tables = catalog::load(&mut connect_meta(to)?, to, to.database())?;
    let written = read_position(stream)?;
    let touched_path = stream.dir.join("touched-keys.jsonl");
    let touched = open_touched(&touched_path).map_err(|source| OnlineError::State {
        path: touched_path,
        source,
    })?;
    progress.event(crate::ProgressEvent::Phase("follow"));
    let mut f = Follower {
        stream,
        opts,
        db: from.database().to_owned(),
        apply: connect_apply(&stream.to)?,
        tables,
        state,
        boundary: written.clone(),
        written,
        report: FollowReport::default(),
        last_save: Instant::now(),
        touched,
        server_id: server_id(&stream.name, source_id),
        batch: Vec::new(),
        batch_changes: 0,
        batch_started: Instant::now(),
    };
    let result = f.run(end.as_ref(), stop);
    // Whatever happened, the position of skipped (foreign) transactions and the state.
    let flushed = if result.is_ok() {
        f.flush_position()
    } else {
        Ok(())
    };
    f.state.applied = Some(f.written.to_string());
    if result.is_ok()
        && flushed.is_ok()
        && until == Until::SourceEnd
        && !stop.load(Ordering::Relaxed)
        && end.as_ref().is_some_and(|e| f.written >= *e)
    {
        f.state.phase = super::Phase::Drained;
    }
    f.state.save(stream)?;
    result?;
    flushed?;
    f.report.applied = Some(f.written.to_string());
    f.report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(f.report)
}

impl Follower<'_> {
    fn run(&mut self, end: Option<&Pos>, stop: &AtomicBool) -> Result<(), OnlineError> {
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            if let Some(end) = end
                && self.boundary >= *end
            {
                return Ok(());
            }
            let before = (self.boundary.clone(), self.report.transactions);
            self.one_dump(end, stop)?;
            self.maybe_save()?;
            let progressed = (self.boundary.clone(), self.report.transactions) != before;
            if let Some(end) = end {
                if self.boundary >= *end {
                    return Ok(());
                }
                if !progressed {
                    return Err(OnlineError::Phase {
                        name: self.stream.name.clone(),
                        what: format!(
                            "the binary log ended at {} before the source's end {end}",
                            self.boundary
                        ),
                    });
                }
            } else if !progressed {
                self.flush_position()?;
                let until = Instant::now() + Duration::from_millis(self.opts.poll_ms);
                while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    /// One binlog dump from the boundary to the source's current end (non-blocking). Read to
    /// that end and applied, it makes the target hold every source commit made before the
    /// dump was requested: [`State::caught_up_ms`].
    fn one_dump(&mut self, end: Option<&Pos>, stop: &AtomicBool) -> Result<(), OnlineError> {
        let requested = super::super::now_ms();
        let from = &self.stream.from;
        let start = self.boundary.clone();
        let conn = from
            .connect_mysql(from.mysql_builder(false))
            .map_err(|e| DbError::connect(from, e))?;
        let binlog_err =
            |e: mysql::Error| DbError::sql(from, format!("reading the binary log from {start}"), e);
        let pos32 = u32::try_from(start.pos).map_err(|_| OnlineError::Phase {
            name: self.stream.name.clone(),
            what: format!("binary log position {start} is past 4 GiB"),
        })?;
        let request = BinlogRequest::new(self.server_id)
            .with_filename(start.file.as_bytes().to_vec())
            .with_pos(pos32)
            .with_flags(BinlogDumpFlags::BINLOG_DUMP_NON_BLOCK);
        let mut events = conn.get_binlog_stream(request).map_err(binlog_err)?;
        let mut file = start.file.clone();
        let mut tx: Option<Vec<Change>> = None;
        let mut tx_ts = 0u32;
        // Events before the first format description are parsed without knowing the checksum
        // algorithm: the opening (fake) rotate's file name would carry the CRC bytes.
        let mut described = false;
        while let Some(event) = events.next() {
            let event = event.map_err(binlog_err)?;
            let log_pos = u64::from(event.header().log_pos());
            let ts = event.header().timestamp();
            let data = event
                .read_data()
                .map_err(|e| binlog_err(mysql::Error::IoError(e)))?;
            match data {
                Some(EventData::FormatDescriptionEvent(_)) => {
                    described = true;
                    continue;
                }
                Some(EventData::RotateEvent(_)) if !described => continue,
                Some(EventData::RotateEvent(r)) => {
                    let next = Pos {
                        file: r.name().into_owned(),
                        pos: r.position(),
                    };
                    file.clone_from(&next.file);
                    if tx.is_none() && next > self.boundary {
                        self.boundary = next;
                    }
                    continue;
                }
                Some(EventData::QueryEvent(qe)) => {
                    let sql = qe.query();
                    let word = sql.trim().to_ascii_uppercase();
                    if word == "BEGIN" || word.starts_with("XA START") {
                        tx = Some(Vec::new());
                        tx_ts = ts;
                    } else if word == "COMMIT" || word.starts_with("XA COMMIT") {
                        let changes = tx.take().unwrap_or_default();
                        self.commit(
                            changes,
                            Pos {
                                file: file.clone(),
                                pos: log_pos,
                            },
                            tx_ts,
                        )?;
                    } else if word == "ROLLBACK" || word.starts_with("XA ") {
                        // XA END / PREPARE / ROLLBACK: nothing applied until the commit.
                        if word == "ROLLBACK" || word.starts_with("XA ROLLBACK") {
                            tx = None;
                        }
                    } else if touches(&qe.schema(), &sql, &self.db) {
                        return Err(OnlineError::Ddl {
                            url: from.to_string(),
                            what: format!("{} at {file}:{log_pos}", first_line(&sql)),
                        });
                    }
                }
                Some(EventData::RowsEvent(rows)) => {
                    let Some(tme) = events.get_tme(rows.table_id()) else {
                        return Err(OnlineError::Phase {
                            name: self.stream.name.clone(),
                            what: format!(
                                "row event for unknown table id {} at {file}:{log_pos}",
                                rows.table_id()
                            ),
                        });
                    };
                    if tme.database_name() != self.db.as_str() {
                        continue;
                    }
                    let table = tme.table_name().into_owned();
                    let Some(meta) = self.tables.get(&table) else {
                        return Err(OnlineError::Ddl {
                            url: from.to_string(),
                            what: format!(
                                "changes to table {table}, which did not exist when following started, at {file}:{log_pos}"
                            ),
                        });
                    };
                    let changes = tx.get_or_insert_with(Vec::new);
                    decode(&rows, tme, meta, changes).map_err(|what| OnlineError::Ddl {
                        url: from.to_string(),
                        what: format!("{what} at {file}:{log_pos}"),
                    })?;
                }
                Some(EventData::XidEvent(_)) => {
                    let changes = tx.take().unwrap_or_default();
                    self.commit(
                        changes,
                        Pos {
                            file: file.clone(),
                            pos: log_pos,
                        },
                        tx_ts,
                    )?;
                }
                _ => {}
            }
            if tx.is_none() {
                if log_pos > 0 {
                    let here = Pos {
                        file: file.clone(),
                        pos: log_pos,
                    };
                    if here > self.boundary {
                        self.boundary = here;
                    }
                }
                if stop.load(Ordering::Relaxed) || end.is_some_and(|e| self.boundary >= *e) {
                    return self.apply_batch();
                }
                self.maybe_save()?;
            }
        }
        self.apply_batch()?;
        if tx.is_none() {
            self.state.caught_up_ms = Some(requested);
        }
        Ok(())
    }

    /// Queues one source transaction (if it changed the followed database) with its end
    /// position; applies the batch when it is large or old enough.
    fn commit(&mut self, changes: Vec<Change>, at: Pos, ts: u32) -> Result<(), OnlineError> {
        if !changes.is_empty() {
            if self.batch.is_empty() {
                self.batch_started = Instant::now();
            }
            self.batch_changes += changes.len();
            self.batch.push(Txn {
                changes,
                at: at.clone(),
                ts,
            });
        }
        if at > self.boundary {
            self.boundary = at;
        }
        if self.batch_changes >= self.opts.batch_changes.max(1)
            || (!self.batch.is_empty() && self.batch_started.elapsed() >= BATCH_WAIT)
        {
            self.apply_batch()?;
        }
        Ok(())
    }

    /// Applies the queued source transactions and the boundary position in one target
    /// transaction (the touched keys are made durable first).
    fn apply_batch(&mut self) -> Result<(), OnlineError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        self.batch_changes = 0;
        for txn in &batch {
            self.record_touched(&txn.changes)?;
        }
        self.sync_touched()?;
        let at = self.boundary.clone();
        let to = &self.stream.to;
        let sql_err = |e: mysql::Error| DbError::sql(to, "applying followed transactions", e);
        self.apply
            .query_drop("START TRANSACTION")
            .map_err(sql_err)?;
        let mut applied: Result<BTreeMap<String, u64>, OnlineError> = Ok(BTreeMap::new());
        for txn in &batch {
            match self.apply_changes(&txn.changes, &txn.at) {
                Ok(rows) => {
                    if let Ok(total) = applied.as_mut() {
                        for (t, n) in rows {
                            *total.entry(t).or_insert(0) += n;
                        }
                    }
                }
                Err(e) => {
                    applied = Err(e);
                    break;
                }
            }
        }
        let applied = applied.and_then(|rows| {
            self.apply
                .exec_drop(
                    format!(
                        "UPDATE {} SET file = ?, pos = ? WHERE id = 1",
                        position_table(&self.stream.name)
                    ),
                    (at.file.as_str(), at.pos),
                )
                .map_err(|e| OnlineError::Db(sql_err(e)))?;
            Ok(rows)
        });
        let rows = match applied {
            Ok(rows) => rows,
            Err(e) => {
                let _ = self.apply.query_drop("ROLLBACK");
                return Err(e);
            }
        };
        self.apply.query_drop("COMMIT").map_err(sql_err)?;
        self.written = at;
        for (table, n) in rows {
            *self.state.rows.entry(table).or_insert(0) += n;
            self.report.rows += n;
        }
        let n = batch.len() as u64;
        self.state.transactions += n;
        self.report.transactions += n;
        let now = super::super::now_ms();
        for txn in &batch {
            let lag_ms = now.saturating_sub(u64::from(txn.ts) * 1000);
            self.state.max_lag_ms = self.state.max_lag_ms.max(lag_ms);
            self.state.last_commit_ms = Some(u64::from(txn.ts) * 1000);
        }
        Ok(())
    }

    fn apply_changes(
        &mut self,
        changes: &[Change],
        at: &Pos,
    ) -> Result<BTreeMap<String, u64>, OnlineError> {
        let mut rows: BTreeMap<String, u64> = BTreeMap::new();
        for change in changes {
            let table = match change {
                Change::Insert { table, .. }
                | Change::Update { table, .. }
                | Change::Delete { table, .. } => table,
            };
            let Some(m) = self.tables.get(table) else {
                return Err(OnlineError::Ddl {
                    url: self.stream.from.to_string(),
                    what: format!("changes to table {table}, unknown on the target"),
                });
            };
            let (sql, params, key_row, what) = match change {
                Change::Insert { after, .. } => (
                    m.insert_sql.clone(),
                    m.written_params(after),
                    after,
                    "INSERT",
                ),
                Change::Update { before, after, .. } => {
                    let mut p = m.written_params(after);
                    p.extend(m.filter_params(before));
                    (m.update_sql.clone(), p, before, "UPDATE")
                }
                Change::Delete { before, .. } => (
                    m.delete_sql.clone(),
                    m.filter_params(before),
                    before,
                    "DELETE",
                ),
            };
            let divergence =
                |what: String, key_row: &[Value], this: &Self| OnlineError::Divergence {
                    url: this.stream.to.to_string(),
                    table: table.clone(),
                    key: this
                        .tables
                        .get(table)
                        .map(|m| m.describe_key(key_row))
                        .unwrap_or_default(),
                    position: at.to_string(),
                    what,
                };
            match self.apply.exec_drop(&sql, params) {
                Ok(()) => {}
                Err(mysql::Error::MySqlError(e)) if e.code == 1062 => {
                    return Err(divergence(
                        format!("{what} of a row the target already holds ({})", e.message),
                        key_row,
                        self,
                    ));
                }
                Err(e) => {
                    return Err(OnlineError::Db(DbError::table(&self.stream.to, table, e)));
                }
            }
            let hit = self.apply.affected_rows();
            if hit != 1 {
                return Err(divergence(
                    format!("{what} matched {hit} rows on the target, expected exactly 1"),
                    key_row,
                    self,
                ));
            }
            *rows.entry(table.clone()).or_insert(0) += 1;
        }
        Ok(rows)
    }

    /// Appends the keys (the before- and after-images of tables without a primary key) this
    /// transaction touches, durably, before the target commit (a crash can only add keys).
    fn record_touched(&mut self, changes: &[Change]) -> Result<(), OnlineError> {
        let mut out = Vec::new();
        for change in changes {
            let (table, rows): (&String, Vec<&Vec<Value>>) = match change {
                Change::Insert { table, after } => (table, vec![after]),
                Change::Update {
                    table,
                    before,
                    after,
                } => (table, vec![before, after]),
                Change::Delete { table, before } => (table, vec![before]),
            };
            let Some(meta) = self.tables.get(table) else {
                continue;
            };
            for row in rows {
                // Without a primary key, the whole image: the proof counts its copies.
                let line = if meta.pk.is_empty() {
                    serde_json::json!({ "table": table, "key": [], "image": meta.image_of(row) })
                } else {
                    serde_json::json!({ "table": table, "key": meta.key_of(row) })
                };
                out.extend_from_slice(line.to_string().as_bytes());
                out.push(b'\n');
            }
        }
        let path = self.stream.dir.join("touched-keys.jsonl");
        self.touched
            .write_all(&out)
            .map_err(|source| OnlineError::State { path, source })
    }

    fn sync_touched(&mut self) -> Result<(), OnlineError> {
        self.touched
            .sync_data()
            .map_err(|source| OnlineError::State {
                path: self.stream.dir.join("touched-keys.jsonl"),
                source,
            })
    }

    /// Writes the boundary as the target's position when only foreign transactions passed.
    fn flush_position(&mut self) -> Result<(), OnlineError> {
        self.apply_batch()?;
        if self.boundary == self.written {
            return Ok(());
        }
        let to = &self.stream.to;
        self.apply
            .exec_drop(
                format!(
                    "UPDATE {} SET file = ?, pos = ? WHERE id = 1",
                    position_table(&self.stream.name)
                ),
                (self.boundary.file.as_str(), self.boundary.pos),
            )
            .map_err(|e| DbError::sql(to, "recording the followed position", e))?;
        self.written = self.boundary.clone();
        Ok(())
    }

    fn maybe_save(&mut self) -> Result<(), OnlineError> {
        if self.last_save.elapsed() >= SAVE_EVERY {
            self.flush_position()?;
            self.state.applied = Some(self.written.to_string());
            self.state.save(self.stream)?;
            self.last_save = Instant::now();
        }
        Ok(())
    }
}

fn decode(
    rows: &RowsEventData<'_>,
    tme: &mysql::binlog::events::TableMapEvent<'_>,
    meta: &TableMeta,
    out: &mut Vec<Change>,
) -> Result<(), String> {
    if tme.columns_count() as usize != meta.cols.len() {
        return Err(format!(
            "table {} has {} columns but the binary log maps {}: its definition changed",
            meta.name,
            meta.cols.len(),
            tme.columns_count()
        ));
    }
    for row in rows.rows(tme) {
        let (before, after) = row.map_err(|e| format!("decoding a row of {}: {e}", meta.name))?;
        let before = before.map(|r| meta.values(&r)).transpose()?;
        let after = after.map(|r| meta.values(&r)).transpose()?;
        let table = meta.name.clone();
        out.push(match (before, after) {
            (None, Some(after)) => Change::Insert { table, after },
            (Some(before), Some(after)) => Change::Update {
                table,
                before,
                after,
            },
            (Some(before), None) => Change::Delete { table, before },
            (None, None) => continue,
        });
    }
    Ok(())
}

/// A statement (not BEGIN/COMMIT) that concerns the followed database: run with it as the
/// default database, or naming it.
fn touches(schema: &str, sql: &str, db: &str) -> bool {
    if schema == db {
        return true;
    }
    let lower = sql.to_lowercase();
    let db = db.to_lowercase();
    lower.contains(&format!("`{db}`."))
        || lower.contains(&format!("{db}."))
        || lower.contains(&format!("`{db}`"))
}

fn first_line(sql: &str) -> String {
    let line = sql.lines().next().unwrap_or("").trim();
    if line.chars().count() > 120 {
        format!("{}…", line.chars().take(120).collect::<String>())
    } else {
        line.to_owned()
    }
}

/// Opens the touched-keys file for appending. A line cut by a crash belongs to a batch that
/// was not committed (its keys come again when it is read again): end it, so that it does
/// not swallow the next key.
fn open_touched(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)?;
    let len = f.metadata()?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        f.seek(SeekFrom::Start(len - 1))?;
        f.read_exact(&mut last)?;
        if last[0] != b'\n' {
            f.write_all(b"\n")?;
            f.sync_data()?;
        }
    }
    Ok(f)
}

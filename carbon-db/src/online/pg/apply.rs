//! Following: peek a bounded batch of whole transactions from the slot, apply the ones the
//! copy did not see in one target transaction that also sets the origin's progress, commit,
//! then advance the slot. A crash between the commit and the advance makes the next peek
//! return transactions already applied: those at or below the origin's progress are skipped.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use postgres::{Client, SimpleQueryMessage};

use super::decode::{self, Change, Column, Line, Snapshot, Value};
use super::{catalog_digest_on, catalog_file, primary_keys, slot_exists, target_session};
use crate::online::{FollowReport, Lag, OnlineError, OnlineOptions, Phase, State, Stream, Until};
use crate::pg::{connect, connect_source};
use crate::{DbError, DbUrl, Progress, ProgressEvent};

/// How often the source's catalog is compared with the one copied (DDL detection), besides
/// at every transaction that decodes to nothing (what DDL looks like in test_decoding).
const CATALOG_EVERY: Duration = Duration::from_secs(5);
const CATALOG_AT_EMPTY_MIN: Duration = Duration::from_millis(500);
const RETENTION_EVERY: Duration = Duration::from_secs(5);
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// How long a new follower waits for a killed one's sessions to go.
const TAKE_OVER: Duration = Duration::from_secs(15);
/// Statements sent per round trip.
const CHUNK_STATEMENTS: usize = 200;
const CHUNK_BYTES: usize = 4 << 20;

#[cfg(feature = "testkit")]
static CRASH_BEFORE_ADVANCE: AtomicBool = AtomicBool::new(false);

/// Test support: see [`crate::online::crash_before_slot_advance`].
#[cfg(feature = "testkit")]
pub fn crash_before_slot_advance(on: bool) {
    CRASH_BEFORE_ADVANCE.store(on, Ordering::Relaxed);
}

/// `X/Y` → a number.
pub(super) fn lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.trim().split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

fn lsn_text(n: u64) -> String {
    format!("{:X}/{:X}", n >> 32, n & 0xFFFF_FFFF)
}

/// One decoded source transaction.
struct Txn {
    xid: u32,
    /// End of its commit record: where the slot advances to, and the origin's progress.
    end: u64,
    at: Option<String>,
    changes: Vec<Change>,
}

/// One statement to run on the target, and what it must do.
struct Stmt {
    sql: String,
    /// UPDATE/DELETE by key: exactly one row.
    by_key: bool,
    insert: bool,
    table: String,
    key: String,
    position: u64,
}

/// The sessions and what following knows while it runs.
struct Follower<'a> {
    stream: &'a Stream,
    opts: &'a OnlineOptions,
    src: Client,
    dst: Client,
    state: State,
    pks: BTreeMap<String, Vec<String>>,
    snapshot: Option<Snapshot>,
    catalog: String,
    /// The origin's progress on the target (authoritative applied position).
    origin: u64,
    touched: File,
    last_catalog: Instant,
    last_retention: Instant,
    last_save: Instant,
    report: FollowReport,
}

pub(crate) fn follow(
    stream: &Stream,
    opts: &OnlineOptions,
    until: Until,
    stop: &AtomicBool,
    progress: &dyn Progress,
) -> Result<FollowReport, OnlineError> {
    let started = Instant::now();
    let state = State::load(stream)?;
    if !matches!(
        state.phase,
        Phase::Following | Phase::Drained | Phase::Proven
    ) {
        return Err(OnlineError::Phase {
            name: stream.name.clone(),
            what: format!("cannot follow in phase {:?} (begin first)", state.phase),
        });
    }
    let mut src = connect_source(&stream.from)?;
    if !slot_exists(&mut src, &stream.from, &stream.name)? {
        return Err(OnlineError::Phase {
            name: stream.name.clone(),
            what: "its replication slot is gone from the source: abort, then start again".into(),
        });
    }
    // A follower killed a moment ago may still hold the origin or the slot until the server
    // notices its closed socket.
    let deadline = Instant::now() + TAKE_OVER;
    let mut dst = loop {
        match target_session(&stream.to, &stream.name) {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => return Err(e),
        }
    };
    loop {
        let active: bool = src
            .query_one(
                "SELECT coalesce((SELECT active FROM pg_replication_slots WHERE slot_name = $1), false)",
                &[&stream.name],
            )
            .map_err(|e| DbError::sql(&stream.from, "reading the slot", e))?
            .get(0);
        if !active {
            break;
        }
        if Instant::now() >= deadline {
            return Err(OnlineError::Phase {
                name: stream.name.clone(),
                what: "its replication slot is in use by another session (another follower?)"
                    .into(),
            });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let origin = origin_progress(&mut dst, &stream.to, &stream.name)?.unwrap_or(0);
    let pks = primary_keys(&mut src, &stream.from)?;
    let catalog_path = catalog_file(stream);
    let catalog = std::fs::read_to_string(&catalog_path).map_err(|source| OnlineError::State {
        path: catalog_path,
        source,
    })?;
    let touched_path = super::prove::touched_file(stream);
    let touched = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&touched_path)
        .map_err(|source| OnlineError::State {
            path: touched_path,
            source,
        })?;
    let snapshot = state.snapshot.as_deref().and_then(Snapshot::parse);
    let mut f = Follower {
        stream,
        opts,
        src,
        dst,
        state,
        pks,
        snapshot,
        catalog,
        origin,
        touched,
        last_catalog: Instant::now(),
        last_retention: Instant::now(),
        last_save: Instant::now(),
        report: FollowReport::default(),
    };
    f.check_catalog()?;
    f.check_retention()?;
    let end: Option<String> = match until {
        Until::SourceEnd => Some(
            f.src
                .query_one("SELECT pg_current_wal_lsn()::text", &[])
                .map_err(|e| DbError::sql(&stream.from, "reading the WAL position", e))?
                .get(0),
        ),
        Until::Stopped => None,
    };
    while !stop.load(Ordering::Relaxed) {
        if f.last_catalog.elapsed() >= CATALOG_EVERY {
            f.check_catalog()?;
        }
        if f.last_retention.elapsed() >= RETENTION_EVERY {
            f.check_retention()?;
        }
        let txns = f.peek(end.as_deref())?;
        if txns.is_empty() {
            if until == Until::SourceEnd {
                break;
            }
            if f.last_save.elapsed() >= SAVE_EVERY {
                f.save_now()?;
            }
            std::thread::sleep(Duration::from_millis(opts.poll_ms));
            continue;
        }
        let (_, rows) = f.apply(&txns)?;
        progress.event(ProgressEvent::Rows { rows, bytes: 0 });
        if f.last_save.elapsed() >= SAVE_EVERY {
            f.save_now()?;
        }
    }
    if until == Until::SourceEnd && !stop.load(Ordering::Relaxed) {
        // DDL committed at the very end shows as nothing but an empty transaction.
        f.check_catalog()?;
    }
    f.save_now()?;
    f.report.elapsed_ms = started.elapsed().as_millis() as u64;
    f.report.applied.clone_from(&f.state.applied);
    Ok(f.report)
}

fn origin_progress(dst: &mut Client, to: &DbUrl, name: &str) -> Result<Option<u64>, OnlineError> {
    let p: Option<String> = dst
        .query_one(
            "SELECT pg_replication_origin_progress($1, false)::text",
            &[&name],
        )
        .map_err(|e| DbError::sql(to, format!("reading replication origin {name}"), e))?
        .get(0);
    Ok(p.as_deref().and_then(lsn))
}

impl Follower<'_> {
    fn from(&self) -> &DbUrl {
        &self.stream.from
    }

    fn save_now(&mut self) -> Result<(), OnlineError> {
        self.state.save(self.stream)?;
        self.last_save = Instant::now();
        Ok(())
    }

    fn check_catalog(&mut self) -> Result<(), OnlineError> {
        self.last_catalog = Instant::now();
        let now = catalog_digest_on(&mut self.src, &self.stream.from)?;
        if now != self.catalog.trim() {
            return Err(OnlineError::Ddl {
                url: self.from().to_string(),
                what: "its catalog (tables, columns, indexes, constraints, sequences, views, triggers, functions) differs from the one copied".into(),
            });
        }
        Ok(())
    }

    fn check_retention(&mut self) -> Result<(), OnlineError> {
        self.last_retention = Instant::now();
        let retained: Option<i64> = self
            .src
            .query_one(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::int8 FROM pg_replication_slots WHERE slot_name = $1",
                &[&self.stream.name],
            )
            .map_err(|e| DbError::sql(&self.stream.from, "reading the slot's retained WAL", e))?
            .get(0);
        let retained = retained.unwrap_or(0).max(0) as u64;
        if retained > self.opts.max_retained_bytes {
            return Err(OnlineError::Retention {
                url: self.from().to_string(),
                slot: self.stream.name.clone(),
                retained,
                limit: self.opts.max_retained_bytes,
            });
        }
        Ok(())
    }

    /// Whole transactions after the slot's position, at most about `batch_changes` lines.
    fn peek(&mut self, end: Option<&str>) -> Result<Vec<Txn>, OnlineError> {
        let from = self.stream.from.clone();
        let n = i32::try_from(self.opts.batch_changes.max(1)).unwrap_or(i32::MAX);
        let rows = self
            .src
            .query(
                "SELECT lsn::text, data FROM pg_logical_slot_peek_changes($1, $2::text::pg_lsn, $3,
                    'include-xids', '1', 'include-timestamp', '1', 'skip-empty-xacts', '0')",
                &[&self.stream.name, &end, &n],
            )
            .map_err(|e| {
                DbError::sql(
                    &from,
                    format!("reading changes from slot {}", self.stream.name),
                    e,
                )
            })?;
        let mut out = Vec::new();
        let mut open: Option<Txn> = None;
        for row in &rows {
            let at: String = row.get(0);
            let data: String = row.get(1);
            let line = decode::parse_line(&data).map_err(|decode::ParseError(e)| {
                DbError::sql(
                    &from,
                    "decoding a change",
                    format!("{e}: {}", crate::error::one_line(&truncate(&data, 300))),
                )
            })?;
            match line {
                Line::Begin { xid } => {
                    open = Some(Txn {
                        xid,
                        end: 0,
                        at: None,
                        changes: Vec::new(),
                    });
                }
                Line::Commit { xid, at: ts } => {
                    let Some(mut t) = open.take() else {
                        return Err(DbError::sql(
                            &from,
                            "decoding a change",
                            format!("COMMIT {xid} without BEGIN"),
                        )
                        .into());
                    };
                    t.end = lsn(&at).unwrap_or(0);
                    t.at = ts;
                    out.push(t);
                }
                Line::Change(c) => match open.as_mut() {
                    Some(t) => t.changes.push(c),
                    None => {
                        return Err(DbError::sql(
                            &from,
                            "decoding a change",
                            "a change outside a transaction",
                        )
                        .into());
                    }
                },
                Line::Message => {}
            }
        }
        // A transaction cut off by the batch bound is read again by the next peek.
        Ok(out)
    }

    /// Applies one batch; returns (transactions, rows) applied.
    fn apply(&mut self, txns: &[Txn]) -> Result<(u64, u64), OnlineError> {
        let mut stmts: Vec<Stmt> = Vec::new();
        let mut touched = String::new();
        let mut dirtied = false;
        let mut last_applied: Option<&Txn> = None;
        let mut applied_txns = 0u64;
        let mut rows_by_table: BTreeMap<String, u64> = BTreeMap::new();
        for t in txns {
            if t.end <= self.origin {
                continue; // applied before a crash, slot not advanced yet
            }
            if self.snapshot.as_ref().is_some_and(|s| s.sees(t.xid)) {
                continue; // the copy has it
            }
            if t.changes.is_empty() && self.last_catalog.elapsed() >= CATALOG_AT_EMPTY_MIN {
                self.check_catalog()?;
            }
            for c in &t.changes {
                for table in c.tables() {
                    *rows_by_table.entry(table.to_owned()).or_default() += 1;
                }
                dirtied |= self.statement(c, t.end, &mut stmts, &mut touched)?;
            }
            applied_txns += 1;
            last_applied = Some(t);
        }
        let Some(last) = txns.last() else {
            return Ok((0, 0));
        };
        if let Some(t) = last_applied {
            if dirtied {
                // Saved before the commit: a crash after it cannot lose a dirty table.
                self.save_now()?;
            }
            if !touched.is_empty() {
                let path = super::prove::touched_file(self.stream);
                let io = |source| OnlineError::State {
                    path: path.clone(),
                    source,
                };
                self.touched.write_all(touched.as_bytes()).map_err(io)?;
                self.touched.sync_data().map_err(io)?;
            }
            self.commit(&stmts, t)?;
            self.origin = t.end;
            let committed = t.at.as_deref().and_then(decode::commit_ms);
            let lag = committed.map_or(0, |ms| crate::online::now_ms().saturating_sub(ms));
            self.state.max_lag_ms = self.state.max_lag_ms.max(lag);
            if committed.is_some() {
                self.state.last_commit_ms = committed;
            }
        }
        #[cfg(feature = "testkit")]
        if CRASH_BEFORE_ADVANCE.load(Ordering::Relaxed) && last_applied.is_some() {
            return Err(OnlineError::Phase {
                name: self.stream.name.clone(),
                what: "simulated crash between the target commit and the slot advance".into(),
            });
        }
        // Then the slot: the source may forget what the target committed.
        let to = lsn_text(last.end);
        self.src
            .execute(
                "SELECT pg_replication_slot_advance($1, $2::text::pg_lsn)",
                &[&self.stream.name, &to],
            )
            .map_err(|e| {
                DbError::sql(
                    &self.stream.from,
                    format!("advancing slot {}", self.stream.name),
                    e,
                )
            })?;
        let rows: u64 = rows_by_table.values().sum();
        for (table, n) in rows_by_table {
            *self.state.rows.entry(table).or_default() += n;
        }
        self.state.transactions += applied_txns;
        self.state.applied = Some(to);
        self.report.transactions += applied_txns;
        self.report.rows += rows;
        Ok((applied_txns, rows))
    }

    /// The statement for one change (none for a dirty table); true when a table became dirty.
    fn statement(
        &mut self,
        c: &Change,
        position: u64,
        stmts: &mut Vec<Stmt>,
        touched: &mut String,
    ) -> Result<bool, OnlineError> {
        let mut dirtied = false;
        let mut dirty = |state: &mut State, t: &str| {
            if state.dirty.insert(t.to_owned()) {
                dirtied = true;
            }
        };
        match c {
            Change::Truncate { tables } => {
                for t in tables {
                    dirty(&mut self.state, t);
                }
            }
            Change::Insert { table, new } => {
                if self.state.dirty.contains(table) {
                    return Ok(false);
                }
                let cols: Vec<&Column> =
                    new.iter().filter(|c| c.value != Value::Unchanged).collect();
                let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
                let values: Vec<String> = cols.iter().map(|c| c.sql()).collect();
                let key = self.key_of(table, new);
                if let Some(k) = &key {
                    note_touched(touched, table, k);
                }
                stmts.push(Stmt {
                    sql: format!(
                        "INSERT INTO {table} ({}) OVERRIDING SYSTEM VALUE VALUES ({})",
                        names.join(", "),
                        values.join(", ")
                    ),
                    by_key: false,
                    insert: true,
                    table: table.clone(),
                    key: key.map(|k| decode::describe_key(&k)).unwrap_or_default(),
                    position,
                });
            }
            Change::Update { table, old, new } => {
                if self.state.dirty.contains(table) {
                    return Ok(false);
                }
                let Some(key) = self.key_of(table, old.as_deref().unwrap_or(new)) else {
                    dirty(&mut self.state, table);
                    return Ok(dirtied);
                };
                if let Some(new_key) = self.key_of(table, new) {
                    note_touched(touched, table, &new_key);
                }
                note_touched(touched, table, &key);
                let mut set: Vec<String> = new
                    .iter()
                    .filter(|c| c.value != Value::Unchanged)
                    .map(|c| format!("{} = {}", c.name, c.sql()))
                    .collect();
                if set.is_empty() {
                    set.push(format!("{0} = {0}", key[0].name));
                }
                stmts.push(Stmt {
                    sql: format!(
                        "UPDATE {table} SET {} WHERE {}",
                        set.join(", "),
                        where_key(&key)
                    ),
                    by_key: true,
                    insert: false,
                    table: table.clone(),
                    key: decode::describe_key(&key),
                    position,
                });
            }
            Change::Delete { table, old } => {
                if self.state.dirty.contains(table) {
                    return Ok(false);
                }
                let Some(key) = old.as_deref().and_then(|o| self.key_of(table, o)) else {
                    dirty(&mut self.state, table);
                    return Ok(dirtied);
                };
                note_touched(touched, table, &key);
                stmts.push(Stmt {
                    sql: format!("DELETE FROM {table} WHERE {}", where_key(&key)),
                    by_key: true,
                    insert: false,
                    table: table.clone(),
                    key: decode::describe_key(&key),
                    position,
                });
            }
        }
        Ok(dirtied)
    }

    /// The primary-key columns of `table` in `tuple`, or `None` when the table has no
    /// primary key or the tuple lacks one of its columns.
    fn key_of<'t>(&self, table: &str, tuple: &'t [Column]) -> Option<Vec<&'t Column>> {
        let pk = self.pks.get(table)?;
        if pk.is_empty() {
            return None;
        }
        pk.iter()
            .map(|name| {
                tuple
                    .iter()
                    .find(|c| &c.name == name && matches!(c.value, Value::Literal(_)))
            })
            .collect()
    }

    /// Runs the batch in one target transaction with the origin's progress; checks each
    /// UPDATE/DELETE hit exactly one row.
    fn commit(&mut self, stmts: &[Stmt], last: &Txn) -> Result<(), OnlineError> {
        let to = self.stream.to.clone();
        self.dst
            .batch_execute("BEGIN")
            .map_err(|e| DbError::sql(&to, "starting the apply transaction", e))?;
        let mut i = 0;
        while i < stmts.len() {
            let mut j = i;
            let mut bytes = 0;
            let mut sql = String::new();
            while j < stmts.len() && j - i < CHUNK_STATEMENTS && (bytes < CHUNK_BYTES || j == i) {
                sql.push_str(&stmts[j].sql);
                sql.push_str(";\n");
                bytes += stmts[j].sql.len();
                j += 1;
            }
            match self.dst.simple_query(&sql) {
                Ok(messages) => {
                    let counts = messages.iter().filter_map(|m| match m {
                        SimpleQueryMessage::CommandComplete(n) => Some(*n),
                        _ => None,
                    });
                    for (s, n) in stmts[i..j].iter().zip(counts) {
                        if s.by_key && n != 1 {
                            let _ = self.dst.batch_execute("ROLLBACK");
                            return Err(OnlineError::Divergence {
                                url: to.to_string(),
                                table: s.table.clone(),
                                key: s.key.clone(),
                                position: lsn_text(s.position),
                                what: format!(
                                    "{} matched {n} rows on the target, not exactly 1",
                                    s.sql.split(' ').next().unwrap_or("")
                                ),
                            });
                        }
                    }
                }
                Err(_) => {
                    let _ = self.dst.batch_execute("ROLLBACK");
                    return Err(self.explain_failure(&stmts[i..j]));
                }
            }
            i = j;
        }
        let ts = last.at.clone();
        let setup = self.dst.execute(
            "SELECT pg_replication_origin_xact_setup($1::text::pg_lsn, $2::text::timestamptz)",
            &[&lsn_text(last.end), &ts],
        );
        if let Err(e) = setup {
            let _ = self.dst.batch_execute("ROLLBACK");
            return Err(DbError::sql(&to, "recording the stream position", e).into());
        }
        self.dst
            .batch_execute("COMMIT")
            .map_err(|e| DbError::sql(&to, "committing applied changes", e))?;
        Ok(())
    }

    /// A chunk failed: run its statements one by one (in a transaction rolled back) to name
    /// the change, and say whether the source's schema changed underneath.
    fn explain_failure(&mut self, stmts: &[Stmt]) -> OnlineError {
        if let Err(e) = self.check_catalog() {
            return e;
        }
        let to = self.stream.to.clone();
        if self.dst.batch_execute("BEGIN").is_err() {
            return DbError::sql(&to, "applying changes", "the target session failed").into();
        }
        for s in stmts {
            if let Err(e) = self.dst.simple_query(&s.sql) {
                let _ = self.dst.batch_execute("ROLLBACK");
                if s.insert && e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) {
                    return OnlineError::Divergence {
                        url: to.to_string(),
                        table: s.table.clone(),
                        key: s.key.clone(),
                        position: lsn_text(s.position),
                        what: "INSERT found the row already on the target".into(),
                    };
                }
                return DbError::table(&to, &s.table, e).into();
            }
        }
        let _ = self.dst.batch_execute("ROLLBACK");
        DbError::sql(
            &to,
            "applying changes",
            "a batch failed but each statement alone succeeded",
        )
        .into()
    }
}

fn where_key(key: &[&Column]) -> String {
    key.iter()
        .map(|c| format!("{} = {}", c.name, c.sql()))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// One line per touched key: `table\t[[column, sql], …]` (JSON).
fn note_touched(out: &mut String, table: &str, key: &[&Column]) {
    let cols: Vec<(&str, String)> = key.iter().map(|c| (c.name.as_str(), c.sql())).collect();
    if let Ok(json) = serde_json::to_string(&cols) {
        out.push_str(table);
        out.push('\t');
        out.push_str(&json);
        out.push('\n');
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_owned();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

pub(crate) fn lag(stream: &Stream) -> Result<Lag, OnlineError> {
    let from = &stream.from;
    let mut src = connect_source(from)?;
    let row = src
        .query_one(
            "SELECT pg_current_wal_lsn()::text,
                    (SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::int8 FROM pg_replication_slots WHERE slot_name = $1),
                    (SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1)",
            &[&stream.name],
        )
        .map_err(|e| DbError::sql(from, "reading the WAL position", e))?;
    let current: String = row.get(0);
    let retained: Option<i64> = row.get(1);
    let confirmed: Option<String> = row.get(2);
    let mut dst = connect(&stream.to)?;
    let origin = origin_progress(&mut dst, &stream.to, &stream.name).unwrap_or(None);
    let applied = origin.max(confirmed.as_deref().and_then(lsn));
    let cur = lsn(&current).unwrap_or(0);
    Ok(Lag {
        source_position: current,
        applied: applied.map(lsn_text),
        bytes: applied.map_or(0, |a| cur.saturating_sub(a)),
        retained_bytes: retained.unwrap_or(0).max(0) as u64,
    })
}

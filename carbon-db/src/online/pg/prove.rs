//! Cut-over proof: drain, copy dirty tables again, set every sequence from the source, then
//! compare — every key the stream touched, dirty tables in full, every counter, the catalog
//! and the row count of every table; or, with `full`, [`crate::verify`] of everything.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use postgres::Client;

use super::apply::follow;
use crate::online::{OnlineError, OnlineOptions, Phase, Proof, State, Stream, Until};
use crate::pg::state::{begin_read, digest_table, inventory};
use crate::pg::tables::{Unit, list_tables, read_counters};
use crate::pg::{connect_source, connect_target};
use crate::report::{Mismatch, TableCheck, VerifyReport};
use crate::{DbError, DbUrl, NoProgress, Progress, ProgressEvent, Vendor};

/// Keys compared per query.
const KEYS_PER_QUERY: usize = 500;

pub(super) fn touched_file(stream: &Stream) -> PathBuf {
    stream.dir.join("pg-touched-keys.tsv")
}

pub(crate) fn prove(
    stream: &Stream,
    opts: &OnlineOptions,
    full: bool,
    progress: &dyn Progress,
) -> Result<Proof, OnlineError> {
    let state = State::load(stream)?;
    if !matches!(
        state.phase,
        Phase::Following | Phase::Drained | Phase::Proven
    ) {
        return Err(OnlineError::Phase {
            name: stream.name.clone(),
            what: format!("cannot prove in phase {:?}", state.phase),
        });
    }
    // Whatever is left (nothing, after the caller's drain) is applied first.
    follow(
        stream,
        opts,
        Until::SourceEnd,
        &AtomicBool::new(false),
        &NoProgress,
    )?;
    let mut state = State::load(stream)?;
    state.phase = Phase::Drained;
    state.save(stream)?;
    let (from, to) = (&stream.from, &stream.to);

    progress.event(ProgressEvent::Phase("re-copy dirty tables"));
    let started = Instant::now();
    let mut src = connect_source(from)?;
    begin_read(&mut src, from)?;
    let position: String = src
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .map_err(|e| DbError::sql(from, "reading the WAL position", e))?
        .get(0);
    let tables = list_tables(&mut src, from)?;
    let units: BTreeMap<String, Unit> = tables
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                Unit {
                    name: t.name.clone(),
                    binary: t.binary,
                    columns: t.columns.clone(),
                    range: None,
                },
            )
        })
        .collect();
    let mut recopied = Vec::new();
    for table in &state.dirty {
        let Some(unit) = units.get(table) else {
            return Err(OnlineError::Ddl {
                url: from.to_string(),
                what: format!("table {table} is gone"),
            });
        };
        recopy(&mut src, from, to, unit)?;
        recopied.push(table.clone());
    }
    let _ = src.batch_execute("COMMIT");
    let recopy_ms = started.elapsed().as_millis() as u64;

    progress.event(ProgressEvent::Phase("counters"));
    let started = Instant::now();
    let counters_set = crate::pg::copy::copy_sequences(&mut src, from, to)?;
    let counters_ms = started.elapsed().as_millis() as u64;

    progress.event(ProgressEvent::Phase("proof"));
    let started = Instant::now();
    let (mut verify, keys_compared) = if full {
        (crate::verify(from, to, opts.jobs, progress)?, 0)
    } else {
        touched_proof(stream, &state, &units)?
    };
    let proof_ms = started.elapsed().as_millis() as u64;
    verify.elapsed_ms = proof_ms;
    if verify.is_ok() {
        state.phase = Phase::Proven;
    }
    state.save(stream)?;
    Ok(Proof {
        position,
        recopied,
        counters_set,
        keys_compared,
        verify,
        drain_ms: 0,
        recopy_ms,
        counters_ms,
        proof_ms,
        proof_steps: String::new(),
    })
}

/// One target transaction: every row deleted, the source's rows copied (triggers and foreign
/// keys off, as for the applied changes).
fn recopy(src: &mut Client, from: &DbUrl, to: &DbUrl, unit: &Unit) -> Result<(), OnlineError> {
    let name = unit.name.as_str();
    let mut dst = connect_target(to)?;
    let mut tx = dst.transaction().map_err(|e| DbError::table(to, name, e))?;
    tx.batch_execute(&format!(
        "SET LOCAL session_replication_role = replica; DELETE FROM {name}"
    ))
    .map_err(|e| DbError::table(to, name, e))?;
    let mut writer = tx
        .copy_in(&format!(
            "COPY {name}{} FROM STDIN WITH (FORMAT {})",
            unit.column_list(),
            unit.format()
        ))
        .map_err(|e| DbError::table(to, name, e))?;
    let mut reader = src
        .copy_out(&unit.copy_out_sql())
        .map_err(|e| DbError::table(from, name, e))?;
    loop {
        let buf = reader
            .fill_buf()
            .map_err(|e| DbError::table(from, name, e))?;
        if buf.is_empty() {
            break;
        }
        let n = buf.len();
        writer
            .write_all(buf)
            .map_err(|e| DbError::table(to, name, e))?;
        reader.consume(n);
    }
    drop(reader);
    writer.finish().map_err(|e| DbError::table(to, name, e))?;
    tx.commit().map_err(|e| DbError::table(to, name, e))?;
    Ok(())
}

/// What one side shows for the fast proof.
#[derive(Default)]
struct Side {
    inventory: BTreeMap<String, String>,
    counters: BTreeMap<String, (i64, bool)>,
    counts: BTreeMap<String, u64>,
    dirty: BTreeMap<String, crate::RowDigest>,
    /// table → key text → row text.
    rows: BTreeMap<String, BTreeMap<String, String>>,
}

fn read_side(
    url: &DbUrl,
    units: &BTreeMap<String, Unit>,
    dirty: &BTreeSet<String>,
    keys: &TouchedKeys,
) -> Result<Side, OnlineError> {
    let mut c = connect_source(url)?;
    begin_read(&mut c, url)?;
    let mut side = Side {
        inventory: inventory(&mut c, url)?,
        ..Side::default()
    };
    for (name, last, called, _) in read_counters(&mut c, url)? {
        side.counters.insert(name, (last, called));
    }
    for name in units.keys() {
        let n: i64 = c
            .query_one(&format!("SELECT count(*) FROM {name}"), &[])
            .map_err(|e| DbError::table(url, name, e))?
            .get(0);
        side.counts.insert(name.clone(), n.max(0) as u64);
    }
    for name in dirty {
        if let Some(unit) = units.get(name) {
            let d = digest_table(&mut c, url, unit, &NoProgress)?;
            side.dirty.insert(name.clone(), d);
        }
    }
    for (table, (cols, tuples)) in keys {
        let list = cols.join(", ");
        let mut found = BTreeMap::new();
        for chunk in tuples.chunks(KEYS_PER_QUERY) {
            let sql = format!(
                "SELECT ROW({list})::text, t::text FROM {table} t WHERE ({list}) IN ({})",
                chunk.join(", ")
            );
            for r in c
                .query(&sql, &[])
                .map_err(|e| DbError::table(url, table, e))?
            {
                found.insert(r.get::<_, String>(0), r.get::<_, String>(1));
            }
        }
        side.rows.insert(table.clone(), found);
    }
    let _ = c.batch_execute("COMMIT");
    Ok(side)
}

/// Table → (key columns, distinct `(v1, v2)` tuples).
type TouchedKeys = BTreeMap<String, (Vec<String>, Vec<String>)>;

/// Reads the touched keys.
fn touched_keys(stream: &Stream) -> Result<TouchedKeys, OnlineError> {
    let path = touched_file(stream);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(source) => return Err(OnlineError::State { path, source }),
    };
    let mut by_table: BTreeMap<String, (Vec<String>, BTreeSet<String>)> = BTreeMap::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|source| OnlineError::State {
            path: path.clone(),
            source,
        })?;
        // A line cut by a crash is not a key the target committed.
        let Some((table, json)) = line.split_once('\t') else {
            continue;
        };
        let Ok(cols) = serde_json::from_str::<Vec<(String, String)>>(json) else {
            continue;
        };
        let names: Vec<String> = cols.iter().map(|c| c.0.clone()).collect();
        let tuple = format!(
            "({})",
            cols.iter()
                .map(|c| c.1.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        by_table
            .entry(table.to_owned())
            .or_insert_with(|| (names, BTreeSet::new()))
            .1
            .insert(tuple);
    }
    Ok(by_table
        .into_iter()
        .map(|(t, (cols, keys))| (t, (cols, keys.into_iter().collect())))
        .collect())
}

fn touched_proof(
    stream: &Stream,
    state: &State,
    units: &BTreeMap<String, Unit>,
) -> Result<(VerifyReport, u64), OnlineError> {
    let mut keys = touched_keys(stream)?;
    // Dirty tables are compared in full.
    keys.retain(|t, _| !state.dirty.contains(t) && units.contains_key(t));
    let compared: u64 = keys.values().map(|(_, k)| k.len() as u64).sum();
    let (s, t) = std::thread::scope(|scope| {
        let s = scope.spawn(|| read_side(&stream.from, units, &state.dirty, &keys));
        let t = read_side(&stream.to, units, &state.dirty, &keys);
        (
            s.join().unwrap_or(Err(OnlineError::Db(DbError::Aborted))),
            t,
        )
    });
    let (s, t) = (s?, t?);
    let mut mismatches = Vec::new();
    let mut push = |object: &str, kind: &str, detail: String| {
        mismatches.push(Mismatch {
            object: object.to_owned(),
            kind: kind.to_owned(),
            detail,
        });
    };
    for (k, v) in &s.inventory {
        match t.inventory.get(k) {
            None => push(k, "missing", "absent from the target".into()),
            Some(w) if w != v => push(k, "definition", format!("source {v:?} vs target {w:?}")),
            Some(_) => {}
        }
    }
    for k in t.inventory.keys().filter(|k| !s.inventory.contains_key(*k)) {
        push(k, "extra", "present in the target only".into());
    }
    for (name, v) in &s.counters {
        if t.counters.get(name) != Some(v) {
            push(
                &format!("sequence {name}"),
                "counter",
                format!("source {v:?} vs target {:?}", t.counters.get(name)),
            );
        }
    }
    let mut checks = Vec::new();
    let mut rows = 0;
    for (table, n) in &s.counts {
        rows += n;
        let mut ok = true;
        if t.counts.get(table) != Some(n) {
            ok = false;
            push(
                table,
                "rows",
                format!("source {n} rows vs target {:?}", t.counts.get(table)),
            );
        }
        let digest = s.dirty.get(table);
        if let Some(d) = digest
            && t.dirty.get(table) != Some(d)
        {
            ok = false;
            push(table, "content", "re-copied table differs".into());
        }
        if let (Some(a), Some(b)) = (s.rows.get(table), t.rows.get(table))
            && a != b
        {
            ok = false;
            let differing: Vec<&str> = a
                .keys()
                .chain(b.keys())
                .filter(|k| a.get(*k) != b.get(*k))
                .map(String::as_str)
                .take(3)
                .collect();
            push(
                table,
                "content",
                format!("touched rows differ, e.g. key {}", differing.join(", ")),
            );
        }
        checks.push(TableCheck {
            table: table.clone(),
            rows: *n,
            digest: digest.map(crate::RowDigest::hex).unwrap_or_default(),
            ok,
        });
    }
    Ok((
        VerifyReport {
            vendor: Vendor::Postgres,
            objects: s.inventory.len(),
            tables: checks,
            rows,
            counters: s.counters.len(),
            files: Vec::new(),
            mismatches,
            elapsed_ms: 0,
        },
        compared,
    ))
}

//! MariaDB/MySQL following: the binary log (ROW, FULL images) read as a replica would, each
//! source transaction applied to the target in one transaction with the position it ends at.
//!
//! - Start point: the copy's readers open their snapshots under a short FLUSH TABLES WITH READ
//!   LOCK and the binary log position read under that lock (`SHOW MASTER STATUS`) is where
//!   following starts: nothing before it is applied again, nothing after it was copied.
//! - Position: a database named [`Stream::name`] on the target's server holds one row
//!   `position(file, pos)`, updated in the same target transaction as the changes it covers.
//!   After a kill anywhere, following resumes from it.
//! - Footprint on the source: a binlog client (server id derived from the stream's name) while
//!   connected. Nothing is created there.
//!
//! `catalog` maps row images (values by column position) to columns and parameters;
//! `follow` reads the binary log and applies.

mod catalog;
mod follow;
mod proof;

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use mysql::Conn;
use mysql::prelude::Queryable;

use super::{
    Created, FollowReport, Lag, OnlineError, OnlineOptions, Phase, Proof, State, Stream, Unmet,
    Until, now_ms,
};
use crate::my::{cell, connect, connect_meta, lit, q, strings};
use crate::{CopyOptions, DbError, DbUrl, Progress, staging};

/// A binary log position.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Pos {
    pub(super) file: String,
    pub(super) pos: u64,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

impl Pos {
    fn parse(text: &str) -> Option<Pos> {
        let (file, pos) = text.rsplit_once(':')?;
        Some(Pos {
            file: file.to_owned(),
            pos: pos.parse().ok()?,
        })
    }

    /// The source's current end (`SHOW MASTER STATUS`).
    fn master(c: &mut Conn, url: &DbUrl) -> Result<Pos, DbError> {
        crate::my::master_position(c, url).map(|(file, pos)| Pos { file, pos })
    }
}

/// `<name>.position` quoted.
fn position_table(name: &str) -> String {
    format!("{}.`position`", q(name))
}

/// Retention below this is reported (the follow must not outlive the binary logs).
const ONE_DAY_SECS: u64 = 86_400;

pub(super) fn requirements(from: &DbUrl) -> Result<Vec<Unmet>, OnlineError> {
    let mut c = connect(from, false)?;
    let vars: std::collections::BTreeMap<String, String> = strings(
        &mut c,
        from,
        "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('log_bin', 'binlog_format', 'binlog_row_image', \
         'server_id', 'expire_logs_days', 'binlog_expire_logs_seconds')",
        "reading the binary log settings",
    )?
    .iter()
    .map(|r| (cell(r, 0).to_ascii_lowercase(), cell(r, 1)))
    .collect();
    let var = |n: &str| vars.get(n).cloned().unwrap_or_default();
    let mut unmet = Vec::new();
    let mut need = |setting: &str, found: String, needed: &str, restart: bool| {
        unmet.push(Unmet {
            setting: setting.to_owned(),
            found: if found.is_empty() {
                "unset".to_owned()
            } else {
                found
            },
            needed: needed.to_owned(),
            restart,
        });
    };
    if !var("log_bin").eq_ignore_ascii_case("ON") && var("log_bin") != "1" {
        need("log_bin", var("log_bin"), "ON (--log-bin)", true);
    }
    if !var("binlog_format").eq_ignore_ascii_case("ROW") {
        need("binlog_format", var("binlog_format"), "ROW", false);
    }
    if !var("binlog_row_image").eq_ignore_ascii_case("FULL") {
        need("binlog_row_image", var("binlog_row_image"), "FULL", false);
    }
    if var("server_id") == "0" {
        need(
            "server_id",
            var("server_id"),
            "a non-zero id (a replica needs its source to have one)",
            false,
        );
    }
    let grants: Vec<String> = strings(&mut c, from, "SHOW GRANTS", "reading the privileges")?
        .iter()
        .map(|r| cell(r, 0).to_ascii_uppercase())
        // The privileges only: between GRANT and ON *.* (never the user name or password).
        .filter_map(|g| {
            let (privs, _) = g.split_once(" ON *.* ")?;
            Some(privs.strip_prefix("GRANT ")?.to_owned())
        })
        .collect();
    let has = |p: &str| {
        grants
            .iter()
            .any(|g| g.contains("ALL PRIVILEGES") || g.contains(p))
    };
    let user = from.user().unwrap_or("the user").to_owned();
    for (privilege, alt, needed) in [
        ("REPLICATION SLAVE", None, "GRANT REPLICATION SLAVE ON *.*"),
        (
            "BINLOG MONITOR",
            Some("REPLICATION CLIENT"),
            "GRANT BINLOG MONITOR ON *.* (REPLICATION CLIENT before MariaDB 10.5 and on MySQL)",
        ),
        (
            "RELOAD",
            None,
            "GRANT RELOAD ON *.* for a snapshot copy with several readers (one reader needs no lock)",
        ),
    ] {
        if !has(privilege) && !alt.is_some_and(&has) {
            need(
                &format!("privilege {privilege}"),
                format!("not granted to {user}"),
                needed,
                false,
            );
        }
    }
    let retention = retention_secs(&var("expire_logs_days"), &var("binlog_expire_logs_seconds"));
    if retention > 0 && retention < ONE_DAY_SECS {
        need(
            "binlog_expire_logs_seconds",
            format!("{retention} s"),
            "a retention longer than the planned follow (0 = never expire, or at least one day)",
            false,
        );
    }
    Ok(unmet)
}

/// The binary log retention in seconds (0: never expire).
fn retention_secs(days: &str, secs: &str) -> u64 {
    let secs: u64 = secs.parse().unwrap_or(0);
    if secs > 0 {
        return secs;
    }
    days.parse::<f64>()
        .map(|d| (d * ONE_DAY_SECS as f64) as u64)
        .unwrap_or(0)
}

/// Requirements that block following (a short retention is a warning only; RELOAD is needed
/// only for a copy with several readers).
fn blocking(from: &DbUrl, readers: usize, progress: &dyn Progress) -> Result<(), OnlineError> {
    let (warn, unmet): (Vec<Unmet>, Vec<Unmet>) = requirements(from)?
        .into_iter()
        .filter(|u| readers > 1 || u.setting != "privilege RELOAD")
        .partition(|u| u.setting == "binlog_expire_logs_seconds");
    for w in &warn {
        progress.event(crate::ProgressEvent::Warning(&w.to_string()));
    }
    if unmet.is_empty() {
        Ok(())
    } else {
        Err(OnlineError::Requirements {
            url: from.to_string(),
            unmet,
        })
    }
}

/// Creates `<name>` with its `position` table on the target's server (idempotent) and records it.
fn create_position_db(stream: &Stream, state: &mut State) -> Result<(), OnlineError> {
    let to = &stream.to;
    let mut c = connect(to, false)?;
    for sql in [
        format!("CREATE DATABASE IF NOT EXISTS {}", q(&stream.name)),
        format!(
            "CREATE TABLE IF NOT EXISTS {} (id TINYINT NOT NULL PRIMARY KEY, file VARCHAR(512) NOT NULL, \
             pos BIGINT UNSIGNED NOT NULL) ENGINE = InnoDB",
            position_table(&stream.name)
        ),
    ] {
        c.query_drop(&sql)
            .map_err(|e| DbError::sql(to, "creating the position database", e))?;
    }
    if !state
        .created
        .iter()
        .any(|c| c.kind == "database" && c.name == stream.name && c.removed_ms.is_none())
    {
        state.created.push(Created {
            kind: "database".into(),
            name: stream.name.clone(),
            side: "target".into(),
            server: to.to_string(),
            created_ms: now_ms(),
            removed_ms: None,
        });
    }
    state.save(stream)
}

fn write_position(stream: &Stream, at: &Pos) -> Result<(), OnlineError> {
    let to = &stream.to;
    let mut c = connect(to, false)?;
    c.exec_drop(
        format!(
            "INSERT INTO {} (id, file, pos) VALUES (1, ?, ?) ON DUPLICATE KEY UPDATE file = VALUES(file), pos = VALUES(pos)",
            position_table(&stream.name)
        ),
        (at.file.as_str(), at.pos),
    )
    .map_err(|e| DbError::sql(to, "recording the start position", e))?;
    Ok(())
}

/// The position committed on the target beside the last applied changes.
fn read_position(stream: &Stream) -> Result<Pos, OnlineError> {
    let to = &stream.to;
    let mut c = connect(to, false)?;
    let row: Option<(String, u64)> = c
        .query_first(format!(
            "SELECT file, pos FROM {} WHERE id = 1",
            position_table(&stream.name)
        ))
        .map_err(|e| DbError::sql(to, "reading the followed position", e))?;
    row.map(|(file, pos)| Pos { file, pos })
        .ok_or_else(|| OnlineError::Phase {
            name: stream.name.clone(),
            what: format!("no position recorded on {to}: run begin first"),
        })
}

/// Where a run records how it claimed the staging database (before the copy's first write).
fn claim_file(stream: &Stream) -> std::path::PathBuf {
    stream.dir.join("staging-claim.json")
}

fn io_err(path: std::path::PathBuf) -> impl Fn(std::io::Error) -> OnlineError {
    move |source| OnlineError::State {
        path: path.clone(),
        source,
    }
}

pub(super) fn begin(
    stream: &Stream,
    opts: &OnlineOptions,
    progress: &dyn Progress,
) -> Result<State, OnlineError> {
    let mut state = State::load(stream)?;
    match state.phase {
        Phase::Following | Phase::Drained | Phase::Proven => return Ok(state),
        Phase::Removed => {
            return Err(OnlineError::Phase {
                name: stream.name.clone(),
                what: "was removed; start again with a new state directory".into(),
            });
        }
        Phase::New | Phase::Copying => {}
    }
    let (from, to) = (&stream.from, &stream.to);
    blocking(from, opts.jobs.max(1), progress)?;
    refuse_triggers(from)?;
    create_position_db(stream, &mut state)?;

    // The staging database: claimed before the first write; an interrupted copy is reset
    // (only what this run claimed) and copied again at a new snapshot.
    let claim_path = claim_file(stream);
    let claim = match std::fs::read(&claim_path) {
        Ok(bytes) => Some(
            serde_json::from_slice::<staging::Claim>(&bytes)
                .map_err(|e| io_err(claim_path.clone())(std::io::Error::other(e)))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(claim_path)(e)),
    };
    match (claim, &state.phase) {
        (Some(claim), Phase::Copying) => {
            staging::reset(from, to, claim)?;
        }
        _ => {
            let claim = staging::claim(to)?;
            let bytes = serde_json::to_vec(&claim)
                .map_err(|e| io_err(claim_path.clone())(std::io::Error::other(e)))?;
            carbon_fs::write_atomic(&claim_path, &bytes, None).map_err(io_err(claim_path))?;
        }
    }
    state.phase = Phase::Copying;
    state.save(stream)?;

    let report = crate::copy(
        from,
        to,
        &CopyOptions {
            jobs: opts.jobs,
            logical: true,
            verify: true,
            journal: None,
            online: true,
        },
        progress,
    )?;
    let point = report
        .snapshot_point
        .as_deref()
        .and_then(Pos::parse)
        .ok_or_else(|| OnlineError::Phase {
            name: stream.name.clone(),
            what: "the snapshot copy recorded no binary log position".into(),
        })?;
    let verify = report.verify.as_ref().ok_or_else(|| OnlineError::Phase {
        name: stream.name.clone(),
        what: "the snapshot copy was not verified".into(),
    })?;
    // Counters move while the source runs; they are set from the source at cut-over.
    let (counters, other): (Vec<_>, Vec<_>) =
        verify.mismatches.iter().partition(|m| m.kind == "counter");
    if let Some(first) = other.first() {
        return Err(OnlineError::Phase {
            name: stream.name.clone(),
            what: format!(
                "the snapshot copy differs from the source at {point}: {} {}: {} ({} differences)",
                first.kind,
                first.object,
                first.detail,
                other.len()
            ),
        });
    }
    write_position(stream, &point)?;
    state.snapshot = Some(point.to_string());
    state.start = Some(point.to_string());
    state.applied = Some(point.to_string());
    let lock = match report.snapshot_lock_ms {
        Some(ms) => format!("writes waited {ms} ms for FLUSH TABLES WITH READ LOCK"),
        None => "no global lock (one reader: Binlog_snapshot_position)".to_owned(),
    };
    state.copy = Some(report.clone());
    state.snapshot_verified = Some(format!(
        "{} tables, {} rows equal at {point}; {} counters excluded (set at cut-over); {lock}",
        verify.tables.len(),
        verify.rows,
        counters.len(),
    ));
    state.phase = Phase::Following;
    state.save(stream)?;
    Ok(state)
}

/// Triggers would fire again on the target for rows the binary log already carries.
fn refuse_triggers(from: &DbUrl) -> Result<(), OnlineError> {
    let mut c = connect_meta(from)?;
    let names: Vec<String> = strings(
        &mut c,
        from,
        &format!(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {}",
            lit(from.database())
        ),
        "listing triggers",
    )?
    .iter()
    .map(|r| cell(r, 0))
    .collect();
    if names.is_empty() {
        return Ok(());
    }
    Err(OnlineError::Db(DbError::Unsupported {
        url: from.to_string(),
        reason: format!(
            "online mode cannot follow a database with triggers (their effects are in the binary log and would run twice): {}",
            names.join(", ")
        ),
    }))
}

pub(super) fn begin_equal(stream: &Stream, _opts: &OnlineOptions) -> Result<State, OnlineError> {
    let mut state = State::load(stream)?;
    match state.phase {
        Phase::Following | Phase::Drained | Phase::Proven => return Ok(state),
        Phase::Removed => {
            return Err(OnlineError::Phase {
                name: stream.name.clone(),
                what: "was removed; start again with a new state directory".into(),
            });
        }
        Phase::New | Phase::Copying => {}
    }
    blocking(&stream.from, 1, &|_: crate::ProgressEvent<'_>| {})?;
    refuse_triggers(&stream.from)?;
    create_position_db(stream, &mut state)?;
    let mut meta = connect_meta(&stream.from)?;
    let now = Pos::master(&mut meta, &stream.from)?;
    write_position(stream, &now)?;
    state.start = Some(now.to_string());
    state.applied = Some(now.to_string());
    state.phase = Phase::Following;
    state.save(stream)?;
    Ok(state)
}

pub(super) fn follow(
    stream: &Stream,
    opts: &OnlineOptions,
    until: Until,
    stop: &AtomicBool,
    progress: &dyn Progress,
) -> Result<FollowReport, OnlineError> {
    follow::follow(stream, opts, until, stop, progress)
}

pub(super) fn lag(stream: &Stream) -> Result<Lag, OnlineError> {
    let from = &stream.from;
    let applied = read_position(stream)?;
    let mut c = connect(from, false)?;
    let end = Pos::master(&mut c, from)?;
    let bytes = if end.file == applied.file {
        end.pos.saturating_sub(applied.pos)
    } else {
        // Across files: the rest of the applied file, the files between, the current one.
        let logs = strings(&mut c, from, "SHOW BINARY LOGS", "listing binary logs")?;
        logs.iter()
            .map(|r| (cell(r, 0), cell(r, 1).parse::<u64>().unwrap_or(0)))
            .filter(|(f, _)| *f >= applied.file && *f <= end.file)
            .map(|(f, size)| {
                if f == applied.file {
                    size.saturating_sub(applied.pos)
                } else if f == end.file {
                    end.pos
                } else {
                    size
                }
            })
            .sum()
    };
    Ok(Lag {
        source_position: end.to_string(),
        applied: Some(applied.to_string()),
        bytes,
        retained_bytes: 0,
    })
}

pub(super) fn prove(
    stream: &Stream,
    opts: &OnlineOptions,
    full: bool,
    progress: &dyn Progress,
) -> Result<Proof, OnlineError> {
    let mut state = State::load(stream)?;
    if !matches!(state.phase, Phase::Drained | Phase::Proven) {
        return Err(OnlineError::Phase {
            name: stream.name.clone(),
            what: format!(
                "cannot prove in phase {:?}: follow to the source's end first",
                state.phase
            ),
        });
    }
    let (from, to) = (&stream.from, &stream.to);
    let position = read_position(stream)?;
    let started = Instant::now();
    let mut meta = connect_meta(from)?;
    let mut dst = crate::my::connect_target(to)?;
    let counters_set = crate::my::copy_counters(&mut meta, &mut dst, from, to)?;
    let counters_ms = started.elapsed().as_millis() as u64;
    drop((meta, dst));
    // The proof: every touched key and key-less row image, inventory, counters and row
    // counts; with `full`, the whole database compared again.
    let started = Instant::now();
    progress.event(crate::ProgressEvent::Phase("verify"));
    let (verify, keys_compared, proof_steps) = if full {
        (
            crate::verify(from, to, opts.jobs, progress)?,
            0,
            String::new(),
        )
    } else {
        proof::prove_touched(stream)?
    };
    let proof_ms = started.elapsed().as_millis() as u64;
    if verify.is_ok() {
        state.phase = Phase::Proven;
        state.applied = Some(position.to_string());
        state.save(stream)?;
    }
    Ok(Proof {
        position: position.to_string(),
        recopied: Vec::new(),
        counters_set,
        keys_compared,
        verify,
        drain_ms: 0,
        recopy_ms: 0,
        counters_ms,
        proof_ms,
        proof_steps,
    })
}

pub(super) fn remove(stream: &Stream) -> Result<State, OnlineError> {
    let mut state = State::load(stream)?;
    let to = &stream.to;
    let mut c = connect(to, false)?;
    c.query_drop(format!("DROP DATABASE IF EXISTS {}", q(&stream.name)))
        .map_err(|e| DbError::sql(to, "removing the position database", e))?;
    state.save_removed(stream)?;
    Ok(state)
}

pub(super) fn leftovers(url: &DbUrl) -> Result<Vec<String>, OnlineError> {
    let mut c = connect(url, false)?;
    let rows = strings(
        &mut c,
        url,
        &format!(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE {} ORDER BY 1",
            lit(&format!("{}%", super::NAME_PREFIX.replace('_', "\\_")))
        ),
        "listing online streams",
    )?;
    Ok(rows.iter().map(|r| cell(r, 0)).collect())
}

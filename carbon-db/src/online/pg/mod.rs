//! PostgreSQL following with `test_decoding` over SQL.
//!
//! Footprint on the source: one logical replication slot named [`Stream::name`], created by
//! `pg_create_logical_replication_slot` from a read-only session (the sync driver cannot open
//! a replication connection), and nothing else: every other source session is read-only.
//! Footprint on the target: the applied changes, and a replication origin named
//! [`Stream::name`] whose progress is set in the same transaction as the changes it covers
//! (`pg_replication_origin_xact_setup`), so a restart resumes exactly.
//!
//! The copy and the stream meet at the copy's snapshot: the slot exists before the snapshot
//! is taken, and a decoded transaction the snapshot already sees (`pg_current_snapshot()`
//! recorded by the copy) is skipped, every other one applied.
//!
//! `decode` parses test_decoding, `apply` follows, `prove` re-copies dirty tables, sets the
//! counters and proves the target equal.

mod apply;
mod decode;
mod prove;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use postgres::Client;

use super::{Created, OnlineError, OnlineOptions, Phase, State, Stream, Unmet, now_ms};
use crate::pg::{connect, connect_source, quote_lit};
use crate::{CopyOptions, DbError, DbUrl, Progress, ProgressEvent};

#[cfg(feature = "testkit")]
pub use apply::crash_before_slot_advance;
pub(super) use apply::{follow, lag};
pub(super) use prove::prove;

/// Transactions open longer than this are reported by [`requirements`]: slot creation waits
/// for every transaction running when it starts.
const LONG_TRANSACTION_S: i64 = 60;

/// What applying into `to` needs on its server: superuser (the apply session sets
/// `session_replication_role = replica` and commits a replication origin's position).
pub(super) fn staging_requirements(to: &DbUrl) -> Result<Vec<Unmet>, OnlineError> {
    let mut c = crate::pg::maintenance(to)?;
    let row = c
        .query_one(
            "SELECT current_user::text, rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .map_err(|e| DbError::sql(to, "reading the role", e))?;
    let (user, superuser): (String, bool) = (row.get(0), row.get(1));
    Ok(if superuser {
        Vec::new()
    } else {
        vec![Unmet {
            setting: format!("staging's role {user}"),
            found: "not superuser".into(),
            needed: format!(
                "superuser to apply changes (session_replication_role, a replication origin): ALTER ROLE {user} SUPERUSER, or connect staging as a superuser"
            ),
            restart: false,
        }]
    })
}

pub(super) fn requirements(from: &DbUrl) -> Result<Vec<Unmet>, OnlineError> {
    let mut c = connect_source(from)?;
    let q = |c: &mut Client, sql: &str, what: &str| {
        c.query_one(sql, &[])
            .map_err(|e| DbError::sql(from, what.to_owned(), e))
    };
    let mut unmet = Vec::new();
    let wal_level: String = q(
        &mut c,
        "SELECT current_setting('wal_level')",
        "reading wal_level",
    )?
    .get(0);
    if wal_level != "logical" {
        unmet.push(Unmet {
            setting: "wal_level".into(),
            found: wal_level,
            needed: "logical".into(),
            restart: true,
        });
    }
    let row = q(
        &mut c,
        "SELECT current_setting('max_replication_slots')::int8, (SELECT count(*) FROM pg_replication_slots)",
        "counting replication slots",
    )?;
    let (max, used): (i64, i64) = (row.get(0), row.get(1));
    if used >= max {
        unmet.push(Unmet {
            setting: "max_replication_slots".into(),
            found: format!("{max} with {used} in use"),
            needed: "one free slot (raise it, or drop an unused slot)".into(),
            restart: true,
        });
    }
    let row = q(
        &mut c,
        "SELECT current_user::text, rolsuper, rolreplication FROM pg_roles WHERE rolname = current_user",
        "reading the role",
    )?;
    let (user, sup, repl): (String, bool, bool) = (row.get(0), row.get(1), row.get(2));
    if !sup && !repl {
        unmet.push(Unmet {
            setting: format!("role {user}"),
            found: "without REPLICATION".into(),
            needed: format!("REPLICATION or superuser (ALTER ROLE {user} REPLICATION)"),
            restart: false,
        });
    }
    let row = q(
        &mut c,
        &format!(
            "SELECT count(*), coalesce(max(extract(epoch FROM now() - xact_start))::int8, 0),
                    count(*) FILTER (WHERE state LIKE 'idle in transaction%')
               FROM pg_stat_activity
              WHERE pid <> pg_backend_pid() AND xact_start < now() - interval '{LONG_TRANSACTION_S} seconds'
                AND (backend_xid IS NOT NULL OR state LIKE 'idle in transaction%')"
        ),
        "listing long transactions",
    )?;
    let (n, oldest, idle): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    if n > 0 {
        unmet.push(Unmet {
            setting: "long-running transactions".into(),
            found: format!("{n} open longer than {LONG_TRANSACTION_S} s ({idle} idle in transaction, oldest {oldest} s)"),
            needed: "none (creating the slot waits for them; end them or wait)".into(),
            restart: false,
        });
    }
    Ok(unmet)
}

/// The replication origin needs superuser on the target (PostgreSQL 15 grants
/// pg_replication_origin_* to superusers only unless granted).
fn target_session(to: &DbUrl, name: &str) -> Result<Client, OnlineError> {
    let mut c = crate::pg::connect_target(to)?;
    // Durable commits: the origin's progress must not be lost once the slot moved past it.
    // Replica role: the source's cascades and triggers already produced their own changes.
    c.batch_execute(&format!(
        "SET synchronous_commit = on; SET session_replication_role = replica; \
         SET standard_conforming_strings = on; \
         SELECT pg_replication_origin_session_setup({})",
        quote_lit(name)
    ))
    .map_err(|e| DbError::sql(to, format!("setting up replication origin {name}"), e))?;
    Ok(c)
}

fn slot_exists(c: &mut Client, url: &DbUrl, name: &str) -> Result<bool, OnlineError> {
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1",
            &[&name],
        )
        .map_err(|e| DbError::sql(url, "listing replication slots", e))?
        .get(0);
    Ok(n > 0)
}

fn origin_exists(c: &mut Client, url: &DbUrl, name: &str) -> Result<bool, OnlineError> {
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_replication_origin WHERE roname = $1",
            &[&name],
        )
        .map_err(|e| DbError::sql(url, "listing replication origins", e))?
        .get(0);
    Ok(n > 0)
}

/// Creates the slot (or finds the one an interrupted call created); returns its LSN.
fn create_slot(
    stream: &Stream,
    state: &mut State,
    opts: &OnlineOptions,
) -> Result<(), OnlineError> {
    let from = &stream.from;
    let mut src = connect_source(from)?;
    if slot_exists(&mut src, from, &stream.name)? {
        if state.start.is_none() {
            let lsn: Option<String> = src
                .query_one(
                    "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
                    &[&stream.name],
                )
                .map_err(|e| DbError::sql(from, "reading the slot", e))?
                .get(0);
            state.start = lsn;
        }
    } else {
        // A long transaction on the source makes slot creation wait for it: give up after
        // the lock timeout with a clear line instead.
        // The wait for a transaction is a lock wait: lock_timeout ends it. Transactions that
        // keep overlapping on a busy server only delay the consistent point: a statement
        // timeout five times as long bounds that.
        let t = opts.lock_timeout_ms;
        let whole = t.saturating_mul(5);
        src.batch_execute(&format!(
            "SET lock_timeout = {t}; SET statement_timeout = {whole}"
        ))
        .map_err(|e| DbError::sql(from, "setting the slot creation timeout", e))?;
        let lsn: String = src
            .query_one(
                "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'test_decoding')",
                &[&stream.name],
            )
            .map_err(|e| {
                DbError::sql(
                    from,
                    format!(
                        "creating logical replication slot {} (a transaction open on the source longer than {t} ms blocks it: end it, or retry)",
                        stream.name
                    ),
                    e,
                )
            })?
            .get(0);
        state.start = Some(lsn);
    }
    record(state, "replication slot", &stream.name, "source", from);
    Ok(())
}

fn create_origin(stream: &Stream, state: &mut State) -> Result<(), OnlineError> {
    let to = &stream.to;
    let mut dst = connect(to)?;
    if !origin_exists(&mut dst, to, &stream.name)? {
        dst.execute("SELECT pg_replication_origin_create($1)", &[&stream.name])
            .map_err(|e| {
                DbError::sql(
                    to,
                    format!(
                        "creating replication origin {} (needs superuser on the target)",
                        stream.name
                    ),
                    e,
                )
            })?;
    }
    record(state, "replication origin", &stream.name, "target", to);
    Ok(())
}

fn record(state: &mut State, kind: &str, name: &str, side: &str, url: &DbUrl) {
    if state
        .created
        .iter()
        .any(|c| c.kind == kind && c.name == name && c.removed_ms.is_none())
    {
        return;
    }
    state.created.push(Created {
        kind: kind.into(),
        name: name.into(),
        side: side.into(),
        server: url.to_string(),
        created_ms: now_ms(),
        removed_ms: None,
    });
}

/// The source's catalog as one digest (the verification inventory: tables, columns,
/// indexes, constraints, sequences' definitions, views, triggers, functions).
fn catalog_digest(url: &DbUrl) -> Result<String, OnlineError> {
    catalog_digest_on(&mut connect_source(url)?, url)
}

fn catalog_digest_on(c: &mut Client, url: &DbUrl) -> Result<String, OnlineError> {
    use sha2::{Digest, Sha256};
    let inventory = crate::pg::state::inventory(c, url)?;
    let mut h = Sha256::new();
    for (k, v) in &inventory {
        h.update(k.as_bytes());
        h.update(b"\t");
        h.update(v.as_bytes());
        h.update(b"\n");
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn catalog_file(stream: &Stream) -> PathBuf {
    stream.dir.join("pg-catalog.sha256")
}

fn claim_file(stream: &Stream) -> PathBuf {
    stream.dir.join("pg-target-claim.json")
}

fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<(), OnlineError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| OnlineError::State {
            path: dir.to_owned(),
            source,
        })?;
    }
    carbon_fs::write_atomic(path, bytes, None).map_err(|source| OnlineError::State {
        path: path.to_owned(),
        source,
    })
}

pub(super) fn begin(
    stream: &Stream,
    opts: &OnlineOptions,
    progress: &dyn Progress,
) -> Result<State, OnlineError> {
    let mut state = State::load(stream)?;
    match state.phase {
        Phase::New | Phase::Copying => {}
        Phase::Following | Phase::Drained | Phase::Proven => return Ok(state),
        Phase::Removed => {
            return Err(OnlineError::Phase {
                name: stream.name.clone(),
                what: "was removed: start a new stream".into(),
            });
        }
    }
    progress.event(ProgressEvent::Phase("replication slot"));
    let interrupted = state.phase == Phase::Copying;
    // The start point first: every transaction committing after it is decoded.
    create_slot(stream, &mut state, opts)?;
    state.phase = Phase::Copying;
    state.save(stream)?;

    // Who owns the target: claimed before the first write; an interrupted copy is reset
    // only under that claim.
    let claim_path = claim_file(stream);
    let claim: Option<crate::staging::Claim> = std::fs::read(&claim_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    match (interrupted, claim) {
        (true, Some(claim)) => {
            progress.event(ProgressEvent::Phase("reset staging"));
            crate::staging::reset(&stream.from, &stream.to, claim)?;
        }
        _ => {
            let claim = crate::staging::claim(&stream.to)?;
            let bytes = serde_json::to_vec(&claim).map_err(|e| OnlineError::State {
                path: claim_path.clone(),
                source: std::io::Error::other(e),
            })?;
            write_file(&claim_path, &bytes)?;
        }
    }

    let report = crate::copy(
        &stream.from,
        &stream.to,
        &CopyOptions {
            jobs: opts.jobs,
            logical: true,
            verify: true,
            journal: None,
            online: true,
        },
        progress,
    )?;
    let Some(point) = report.snapshot_point.clone() else {
        return Err(OnlineError::Phase {
            name: stream.name.clone(),
            what: "the copy recorded no snapshot point".into(),
        });
    };
    if decode::Snapshot::parse(&point).is_none() {
        return Err(OnlineError::Phase {
            name: stream.name.clone(),
            what: format!("unreadable snapshot {point:?}"),
        });
    }
    let verify = report.verify.as_ref();
    // Counters move while the source runs: they are set from the source at cut-over.
    let (counters, other): (Vec<_>, Vec<_>) = verify
        .map(|v| v.mismatches.iter().partition(|m| m.kind == "counter"))
        .unwrap_or_default();
    if let Some(m) = other.first() {
        return Err(OnlineError::Phase {
            name: stream.name.clone(),
            what: format!(
                "the snapshot copy differs from the source at the snapshot: {} {}: {} ({} differences)",
                m.object,
                m.kind,
                m.detail,
                other.len()
            ),
        });
    }
    if let Some(v) = verify {
        state.snapshot_verified = Some(format!(
            "{} objects, {} tables, {} rows equal at snapshot {point}; {} of {} counters differ while the source runs (excluded: set at cut-over)",
            v.objects,
            v.tables.len(),
            v.rows,
            counters.len(),
            v.counters
        ));
    }
    state.copy = Some(report.clone());
    // The catalog as copied (equal to the source's at the snapshot): DDL after it is refused.
    let digest = catalog_digest(&stream.to)?;
    write_file(&catalog_file(stream), digest.as_bytes())?;
    create_origin(stream, &mut state)?;
    state.snapshot = Some(point);
    state.phase = Phase::Following;
    state.save(stream)?;
    Ok(state)
}

pub(super) fn begin_equal(stream: &Stream, opts: &OnlineOptions) -> Result<State, OnlineError> {
    let mut state = State::load(stream)?;
    match state.phase {
        Phase::New | Phase::Copying => {}
        Phase::Removed => {
            return Err(OnlineError::Phase {
                name: stream.name.clone(),
                what: "was removed: start a new stream".into(),
            });
        }
        _ => return Ok(state),
    }
    create_slot(stream, &mut state, opts)?;
    state.phase = Phase::Copying;
    state.save(stream)?;
    let digest = catalog_digest(&stream.from)?;
    write_file(&catalog_file(stream), digest.as_bytes())?;
    create_origin(stream, &mut state)?;
    // Nothing is skipped: the two were equal when the slot was created.
    state.snapshot = None;
    state.phase = Phase::Following;
    state.save(stream)?;
    Ok(state)
}

/// Drops the slot (waiting a little for a killed follower's session to go) and the origin.
pub(super) fn remove(stream: &Stream) -> Result<State, OnlineError> {
    let mut state = State::load(stream)?;
    let name = &stream.name;
    let from = &stream.from;
    // A dropped source database still leaves its slot on the server.
    let mut src = connect(from).or_else(|_| connect(&from.with_database("postgres")))?;
    let deadline = Instant::now() + std::time::Duration::from_secs(15);
    while slot_exists(&mut src, from, name)? {
        match src.execute("SELECT pg_drop_replication_slot($1)", &[name]) {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
            Err(e) => {
                return Err(
                    DbError::sql(from, format!("dropping replication slot {name}"), e).into(),
                );
            }
        }
    }
    let to = &stream.to;
    let mut dst = connect(to).or_else(|_| connect(&to.with_database("postgres")))?;
    while origin_exists(&mut dst, to, name)? {
        match dst.execute("SELECT pg_replication_origin_drop($1)", &[name]) {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
            Err(e) => {
                return Err(
                    DbError::sql(to, format!("dropping replication origin {name}"), e).into(),
                );
            }
        }
    }
    state.save_removed(stream)?;
    Ok(state)
}

pub(super) fn leftovers(url: &DbUrl) -> Result<Vec<String>, OnlineError> {
    let mut c = connect(url)?;
    let pattern = format!("{}%", super::NAME_PREFIX.replace('_', "\\_"));
    let rows = c
        .query(
            "SELECT slot_name::text FROM pg_replication_slots WHERE slot_name LIKE $1
             UNION SELECT roname FROM pg_replication_origin WHERE roname LIKE $1 ORDER BY 1",
            &[&pattern],
        )
        .map_err(|e| DbError::sql(url, "listing replication slots and origins", e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Primary-key columns (as printed identifiers) of every user table, from `url`'s catalog.
fn primary_keys(c: &mut Client, url: &DbUrl) -> Result<BTreeMap<String, Vec<String>>, OnlineError> {
    let rows = c
        .query(
            &format!(
                "SELECT format('%I.%I', n.nspname, c.relname),
                        coalesce((SELECT array_agg(quote_ident(a.attname)::text ORDER BY array_position(i.indkey::int2[], a.attnum))
                                    FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                                   WHERE i.indrelid = c.oid AND i.indisprimary), '{{}}')
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.relkind IN ('r', 'p') AND {}",
                crate::pg::USER_NS
            ),
            &[],
        )
        .map_err(|e| DbError::sql(url, "reading primary keys", e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

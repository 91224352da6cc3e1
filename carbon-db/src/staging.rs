//! Claiming a staging database before the first write, and resetting it after a copy that
//! cannot be resumed (for example a `CREATE DATABASE … TEMPLATE` cut off by kill -9: the server
//! goes on creating the database after the client is gone, and no copy journal records it).
//!
//! The rule: a staging database is reset only when the caller's journal holds this run's
//! [`Claim`] on it — made by [`claim`] before anything was written, from what
//! [`crate::contents`] read — and it holds nothing that the source does not hold (nothing but
//! objects a copy of the source writes). A database the run created is dropped; one it only
//! proved empty is emptied object by object, never dropped and never with `WITH (FORCE)`, and a
//! session of someone else on it stops the reset with the sessions named.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::contents::{Contents, DbObject, drop_objects, summarise};
use crate::{DbError, DbUrl, Vendor};

const ORPHAN_WAIT: Duration = Duration::from_secs(60);

/// How a run came to own its staging database; recorded in the run's journal before the
/// first write, and the only thing that allows [`reset`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Claim {
    /// The database (or file) did not exist: this run creates it.
    Created,
    /// It existed and [`crate::contents`] found it empty.
    ProvedEmpty,
}

/// Reads `target` and says how this run may own it: `Created` when absent, `ProvedEmpty` when
/// it holds nothing, otherwise `TargetNotEmpty` naming what it holds.
pub fn claim(target: &DbUrl) -> Result<Claim, DbError> {
    let contents = crate::contents(target)?;
    if !contents.exists {
        return Ok(Claim::Created);
    }
    contents.require_empty()?;
    Ok(Claim::ProvedEmpty)
}

/// What [`reset`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    /// Nothing was there.
    Absent,
    /// The database this run created was dropped (or its files removed).
    Dropped,
    /// The objects a copy wrote into the proved-empty database were removed.
    Emptied,
}

/// Resets the staging database `target` of a copy of `source` that this run claimed with
/// `claim`, after checking that it holds nothing the source does not.
pub fn reset(source: &DbUrl, target: &DbUrl, claim: Claim) -> Result<Reset, DbError> {
    crate::check_pair(source, target)?;
    if target.vendor() == Vendor::Postgres {
        stop_orphans_postgres(target)?;
    }
    let held = crate::contents(target)?;
    if !held.exists {
        return Ok(Reset::Absent);
    }
    let source_holds = crate::contents(source)?;
    let foreign: Vec<&DbObject> = held.not_in(&source_holds);
    if !foreign.is_empty() {
        return Err(DbError::NotOurs {
            url: target.to_string(),
            objects: summarise(foreign.into_iter()),
        });
    }
    match (claim, target.vendor()) {
        (_, Vendor::Sqlite | Vendor::H2) => remove_files(target).map(|()| Reset::Dropped),
        (Claim::Created, Vendor::Postgres) => drop_postgres(target).map(|()| Reset::Dropped),
        (Claim::Created, Vendor::MySql) => {
            refuse_other_sessions(target)?;
            drop_mysql(target).map(|()| Reset::Dropped)
        }
        (Claim::Created, _) => Err(DbError::not_copyable(target)),
        (Claim::ProvedEmpty, _) => empty(target, &held).map(|()| Reset::Emptied),
    }
}

/// Removes the objects a copy wrote into a database this run did not create.
fn empty(target: &DbUrl, held: &Contents) -> Result<(), DbError> {
    refuse_other_sessions(target)?;
    drop_objects(target, held)?;
    let after = crate::contents(target)?;
    if after.is_empty() {
        return Ok(());
    }
    Err(DbError::NotOurs {
        url: target.to_string(),
        objects: after.summary(),
    })
}

/// Someone else's session on a database we are about to empty or drop: say so and stop.
fn refuse_other_sessions(target: &DbUrl) -> Result<(), DbError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sessions = crate::backup::other_sessions(target)?;
        if sessions.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let who: Vec<String> = sessions
                .iter()
                .map(|s| format!("{}@{} {}", s.user, s.host, s.application))
                .map(|s| s.trim().to_owned())
                .collect();
            return Err(DbError::InUse {
                url: target.to_string(),
                sessions: who.join(", "),
            });
        }
        // A killed run's own sessions end once the server notices the closed socket.
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Sessions of ours on the target, or still running its CREATE DATABASE, left by a killed run.
fn stop_orphans_postgres(target: &DbUrl) -> Result<(), DbError> {
    let mut admin = admin_postgres(target)?;
    let orphans = "SELECT pid FROM pg_stat_activity \
                   WHERE pid <> pg_backend_pid() AND application_name = 'carbon-upgrade' \
                     AND (datname = $1 OR (state = 'active' AND query ILIKE 'CREATE DATABASE%' AND position($1 in query) > 0))";
    let name = target.database();
    let deadline = Instant::now() + ORPHAN_WAIT;
    loop {
        let rows = admin
            .query(orphans, &[&name])
            .map_err(|e| DbError::sql(target, "listing sessions on the staging database", e))?;
        if rows.is_empty() {
            return Ok(());
        }
        for row in rows {
            let pid: i32 = row.get(0);
            admin
                .execute("SELECT pg_terminate_backend($1)", &[&pid])
                .map_err(|e| DbError::sql(target, "stopping an orphaned session", e))?;
        }
        if Instant::now() > deadline {
            return Err(DbError::Sql {
                url: target.to_string(),
                context: "resetting the staging database".into(),
                detail: "sessions of an earlier run did not end".into(),
            });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn admin_postgres(target: &DbUrl) -> Result<postgres::Client, DbError> {
    let admin_url = target.with_database("postgres");
    admin_url
        .connect_postgres(&admin_url.postgres_config())
        .map_err(|e| match e {
            DbError::Connect { detail, .. } => DbError::Connect {
                url: target.to_string(),
                detail,
            },
            other => other,
        })
}

/// Only for a database this run created (the claim says so).
fn drop_postgres(target: &DbUrl) -> Result<(), DbError> {
    crate::session::drop_database(target, target.database())
}

fn drop_mysql(target: &DbUrl) -> Result<(), DbError> {
    crate::session::drop_database(target, target.database())
}

fn remove_files(target: &DbUrl) -> Result<(), DbError> {
    let Some(path) = target.path() else {
        return Ok(());
    };
    let mut files = vec![path.to_path_buf()];
    if target.vendor() == Vendor::H2 {
        files = crate::h2_data_files(path)
            .into_iter()
            .map(|(_, p)| p)
            .collect();
    }
    for file in files {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(DbError::Io { path: file, source }),
        }
    }
    Ok(())
}

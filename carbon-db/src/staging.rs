//! Resetting a staging database this tool created, after an interrupted copy that cannot be
//! resumed (for example a `CREATE DATABASE … TEMPLATE` cut off by kill -9: the server goes on
//! creating the database after the client is gone, and no journal records it).
//!
//! Only ever called on a target that the caller proved empty or absent before it started
//! writing (the runbook's preflight); never on a source.

use std::time::{Duration, Instant};

use crate::{DbError, DbUrl, Vendor};

const ORPHAN_WAIT: Duration = Duration::from_secs(60);

/// Drops the staging database (or removes its files), first stopping any session of this
/// tool still working on it.
pub fn reset(target: &DbUrl) -> Result<(), DbError> {
    match target.vendor() {
        Vendor::Postgres => reset_postgres(target),
        Vendor::MySql => reset_mysql(target),
        Vendor::Sqlite | Vendor::H2 => reset_files(target),
    }
}

fn reset_postgres(target: &DbUrl) -> Result<(), DbError> {
    let admin_url = target.with_database("postgres");
    let mut admin = admin_url
        .connect_postgres(&admin_url.postgres_config())
        .map_err(|e| match e {
            DbError::Connect { detail, .. } => DbError::Connect {
                url: target.to_string(),
                detail,
            },
            other => other,
        })?;
    let name = target.database();
    // Sessions of ours on the target, or still running its CREATE DATABASE.
    let orphans = "SELECT pid FROM pg_stat_activity \
                   WHERE pid <> pg_backend_pid() AND application_name = 'carbon-upgrade' \
                     AND (datname = $1 OR (state = 'active' AND query ILIKE 'CREATE DATABASE%' AND position($1 in query) > 0))";
    let deadline = Instant::now() + ORPHAN_WAIT;
    loop {
        let rows = admin
            .query(orphans, &[&name])
            .map_err(|e| DbError::sql(target, "listing sessions on the staging database", e))?;
        if rows.is_empty() {
            break;
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
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
        .map_err(|e| DbError::sql(target, "dropping the staging database", e))
}

fn reset_mysql(target: &DbUrl) -> Result<(), DbError> {
    use mysql::prelude::Queryable;
    let mut conn = target
        .connect_mysql(target.mysql_builder(false))
        .map_err(|e| DbError::Connect {
            url: target.to_string(),
            detail: crate::error::one_line(&e.to_string()),
        })?;
    let quoted = format!("`{}`", target.database().replace('`', "``"));
    conn.query_drop(format!("DROP DATABASE IF EXISTS {quoted}"))
        .map_err(|e| DbError::sql(target, "dropping the staging database", e))
}

fn reset_files(target: &DbUrl) -> Result<(), DbError> {
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

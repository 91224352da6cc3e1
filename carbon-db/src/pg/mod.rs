//! PostgreSQL → PostgreSQL: template fast path, or a logical copy under one exported
//! snapshot (schema by `pg_dump --snapshot`, data COPY→COPY, indexes and constraints after
//! the data, every sequence set to the source's value).
//!
//! `copy` holds the copy's phases, `dump` what pg_dump gives and how post-data is applied,
//! `state` reading one side (inventory, digests, counters) for verification and `inspect`.

pub(crate) mod copy;
mod dump;
pub(crate) mod paired;
pub(crate) mod state;
pub(crate) mod tables;

use postgres::Client;

use crate::{DbError, DbUrl};

pub(crate) use copy::copy;
pub(crate) use state::{inspect, read_state};

/// Session settings that make text output identical on both sides (pg_dump's, plus UTC and hex).
const SESSION: &str = "SET DateStyle = ISO; SET IntervalStyle = postgres; SET extra_float_digits = 3; \
    SET TimeZone = 'UTC'; SET bytea_output = 'hex'; SET statement_timeout = 0; SET lock_timeout = 0; \
    SET idle_in_transaction_session_timeout = 0; SET row_security = off; SET synchronize_seqscans = off";

pub(crate) const USER_NS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
    AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'";

pub(crate) fn connect(url: &DbUrl) -> Result<Client, DbError> {
    crate::tls::connect_postgres(url, &url.postgres_config()).map_err(|e| match e {
        crate::tls::ConnectFailure::Setup(e) => e,
        crate::tls::ConnectFailure::Driver(e)
            if e.code() == Some(&postgres::error::SqlState::INVALID_CATALOG_NAME) =>
        {
            DbError::SourceMissing {
                url: url.to_string(),
            }
        }
        crate::tls::ConnectFailure::Driver(e) => DbError::connect(url, e),
    })
}

/// A source session: read-only by default, with the text settings.
pub(crate) fn connect_source(url: &DbUrl) -> Result<Client, DbError> {
    let mut c = connect(url)?;
    c.batch_execute(&format!(
        "SET default_transaction_read_only = on; {SESSION}"
    ))
    .map_err(|e| DbError::sql(url, "source session settings", e))?;
    Ok(c)
}

pub(crate) fn connect_target(url: &DbUrl) -> Result<Client, DbError> {
    let mut c = connect(url)?;
    c.batch_execute(&format!(
        "{SESSION}; SET synchronous_commit = off; SET maintenance_work_mem = '256MB'"
    ))
    .map_err(|e| DbError::sql(url, "target session settings", e))?;
    Ok(c)
}

pub(crate) fn maintenance(url: &DbUrl) -> Result<Client, DbError> {
    let admin = url.with_database("postgres");
    match connect(&admin) {
        Ok(c) => Ok(c),
        Err(_) => connect(&url.with_database("template1")).map_err(|e| match e {
            // Name the database the operator gave, not the maintenance one.
            DbError::Connect { detail, .. } => DbError::Connect {
                url: url.to_string(),
                detail,
            },
            other => other,
        }),
    }
}

pub(crate) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub(crate) fn quote_lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `pg:<system identifier>:<database oid>:<name>`: no address, no credential.
pub(crate) fn identity(c: &mut Client, url: &DbUrl) -> Result<String, DbError> {
    let row = c
        .query_one(
            "SELECT (SELECT system_identifier::text FROM pg_control_system()), oid::int8, current_database()::text \
             FROM pg_database WHERE datname = current_database()",
            &[],
        )
        .map_err(|e| DbError::sql(url, "reading the server identity", e))?;
    let sysid: Option<String> = row.get(0);
    let oid: i64 = row.get(1);
    let name: String = row.get(2);
    Ok(format!("pg:{}:{oid}:{name}", sysid.unwrap_or_default()))
}

fn database_exists(admin: &mut Client, url: &DbUrl, name: &str) -> Result<bool, DbError> {
    let n: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .map_err(|e| DbError::sql(url, "listing databases", e))?
        .get(0);
    Ok(n > 0)
}

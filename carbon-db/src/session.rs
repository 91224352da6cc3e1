//! The one way a crate outside carbon-db talks to a database: [`Session`] (read-only or
//! read-write, opened through [`DbUrl::connect_postgres`] / [`DbUrl::connect_mysql`] so a
//! URL's TLS is never forgotten), text rows, statements and scripts, a cheap size, and
//! [`create_database`] / [`drop_database`] on a server (the testkit and staging resets use
//! the same two).
//!
//! Read-only is enforced by the server, not by care: PostgreSQL
//! `default_transaction_read_only`, MySQL `SET SESSION TRANSACTION READ ONLY`, SQLite
//! `SQLITE_OPEN_READ_ONLY`.

use std::time::Duration;

use mysql::prelude::Queryable;

use crate::error::ErrText;
use crate::{DbError, DbUrl, Vendor};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a session may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Every transaction is read-only on the server side (sources, old databases).
    ReadOnly,
    /// Reads and writes (a database this run created, or DDL on one it owns).
    ReadWrite,
}

/// Rows of text cells, in column order; `None` is SQL `NULL`.
pub type TextRows = Vec<Vec<Option<String>>>;

enum Conn {
    Pg(Box<postgres::Client>),
    My(Box<mysql::Conn>),
    Lite(rusqlite::Connection),
}

/// An open session on one database.
pub struct Session {
    url: DbUrl,
    conn: Conn,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL redacts itself; the driver handles hold nothing worth showing.
        f.debug_struct("Session").field("url", &self.url).finish()
    }
}

impl Session {
    /// Opens a session on `url`'s database. H2 has no session (it is handled as files).
    pub fn open(url: &DbUrl, access: Access) -> Result<Session, DbError> {
        let read_only = access == Access::ReadOnly;
        let conn = match url.vendor() {
            Vendor::Postgres => Conn::Pg(Box::new(open_postgres(url, read_only)?)),
            Vendor::MySql => Conn::My(Box::new(open_mysql(url, read_only)?)),
            Vendor::Sqlite => Conn::Lite(open_sqlite(url, read_only)?),
            Vendor::H2 => {
                return Err(DbError::Unsupported {
                    url: url.to_string(),
                    reason: "an embedded H2 database cannot be queried (it is checked as files)"
                        .into(),
                });
            }
            _ => return Err(DbError::not_copyable(url)),
        };
        Ok(Session {
            url: url.clone(),
            conn,
        })
    }

    /// [`Session::open`] with [`Access::ReadOnly`].
    pub fn read_only(url: &DbUrl) -> Result<Session, DbError> {
        Session::open(url, Access::ReadOnly)
    }

    /// [`Session::open`] with [`Access::ReadWrite`].
    pub fn read_write(url: &DbUrl) -> Result<Session, DbError> {
        Session::open(url, Access::ReadWrite)
    }

    pub fn vendor(&self) -> Vendor {
        self.url.vendor()
    }

    pub fn url(&self) -> &DbUrl {
        &self.url
    }

    /// Rows of text cells; every selected column must already be text (cast it in SQL).
    pub fn query_text(&mut self, sql: &str) -> Result<TextRows, DbError> {
        let err = |e: &dyn ErrText| query_error(&self.url, "query", e);
        match &mut self.conn {
            Conn::Pg(client) => {
                let rows = client.query(sql, &[]).map_err(|e| err(&e))?;
                rows.iter()
                    .map(|row| (0..row.len()).map(|i| row.try_get(i)).collect())
                    .collect::<Result<_, postgres::Error>>()
                    .map_err(|e| err(&e))
            }
            Conn::My(conn) => {
                let rows: Vec<mysql::Row> = conn.query(sql).map_err(|e| err(&e))?;
                Ok(rows.into_iter().map(mysql_text_row).collect())
            }
            Conn::Lite(conn) => sqlite_rows(conn, sql).map_err(|e| err(&e)),
        }
    }

    /// Runs one statement that returns no rows.
    pub fn execute(&mut self, sql: &str) -> Result<(), DbError> {
        let err = |e: &dyn ErrText| query_error(&self.url, "statement", e);
        match &mut self.conn {
            Conn::Pg(client) => client.batch_execute(sql).map_err(|e| err(&e)),
            Conn::My(conn) => conn.query_drop(sql).map_err(|e| err(&e)),
            Conn::Lite(conn) => conn.execute_batch(sql).map_err(|e| err(&e)),
        }
    }

    /// Runs a script of `;`-separated statements (`--` comment lines skipped on MySQL, whose
    /// driver takes one statement at a time).
    pub fn run_script(&mut self, script: &str) -> Result<(), DbError> {
        let err = |e: &dyn ErrText| query_error(&self.url, "script", e);
        match &mut self.conn {
            Conn::Pg(client) => client.batch_execute(script).map_err(|e| err(&e)),
            Conn::My(conn) => split_statements(script)
                .iter()
                .try_for_each(|statement| conn.query_drop(statement))
                .map_err(|e| err(&e)),
            Conn::Lite(conn) => conn.execute_batch(script).map_err(|e| err(&e)),
        }
    }

    /// The database's size in bytes as the server accounts it (no table is scanned):
    /// `pg_database_size`, the sum of `information_schema.TABLES`, SQLite pages.
    pub fn size_bytes(&mut self) -> Result<u64, DbError> {
        let sql = match self.vendor() {
            Vendor::Postgres => "SELECT pg_database_size(current_database())::text",
            Vendor::MySql => {
                "SELECT CAST(COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) AS CHAR) \
                 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
            }
            _ => {
                "SELECT CAST(page_count * page_size AS TEXT) \
                 FROM pragma_page_count(), pragma_page_size()"
            }
        };
        let rows = self.query_text(sql)?;
        let text = rows
            .first()
            .and_then(|row| row.first().cloned().flatten())
            .unwrap_or_default();
        text.parse().map_err(|_| DbError::Sql {
            url: self.url.to_string(),
            context: "database size".into(),
            detail: format!("not a number: {text:?}"),
        })
    }
}

fn open_postgres(url: &DbUrl, read_only: bool) -> Result<postgres::Client, DbError> {
    let mut config = url.postgres_config();
    // Not `carbon-upgrade`: a staging reset ends that application's orphaned sessions.
    config
        .application_name("carbon-upgrade session")
        .connect_timeout(CONNECT_TIMEOUT);
    if read_only {
        config.options("-c default_transaction_read_only=on");
    }
    url.connect_postgres(&config)
}

fn open_mysql(url: &DbUrl, read_only: bool) -> Result<mysql::Conn, DbError> {
    let builder = url
        .mysql_builder(true)
        .tcp_connect_timeout(Some(CONNECT_TIMEOUT));
    let mut conn = url
        .connect_mysql(builder)
        .map_err(|e| DbError::connect(url, e))?;
    if read_only {
        conn.query_drop("SET SESSION TRANSACTION READ ONLY")
            .map_err(|e| query_error(url, "read-only session", &e))?;
    }
    Ok(conn)
}

fn open_sqlite(url: &DbUrl, read_only: bool) -> Result<rusqlite::Connection, DbError> {
    let path = url.path().unwrap_or_else(|| std::path::Path::new(""));
    // Never create a file: a missing database is an error, not an empty one.
    if !path.is_file() {
        return Err(DbError::SourceMissing {
            url: url.to_string(),
        });
    }
    let flags = if read_only {
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
    } else {
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
    };
    rusqlite::Connection::open_with_flags(path, flags | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| DbError::connect(url, e))
}

fn mysql_text_row(row: mysql::Row) -> Vec<Option<String>> {
    (0..row.len())
        .map(|i| {
            row.get_opt::<Option<String>, _>(i)
                .and_then(Result::ok)
                .flatten()
        })
        .collect()
}

fn sqlite_rows(conn: &rusqlite::Connection, sql: &str) -> Result<TextRows, rusqlite::Error> {
    let mut stmt = conn.prepare(sql)?;
    let columns = stmt.column_count();
    let rows = stmt.query_map([], |row| {
        (0..columns)
            .map(|i| row.get::<_, Option<String>>(i))
            .collect::<Result<Vec<_>, _>>()
    })?;
    rows.collect()
}

fn query_error(url: &DbUrl, context: &str, e: &dyn ErrText) -> DbError {
    DbError::Session {
        url: url.to_string(),
        context: context.to_owned(),
        source: crate::error::DriverError::new(e),
    }
}

/// Splits a SQL script on `;` at line ends, dropping `--` comment lines.
pub(crate) fn split_statements(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in script.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") || trimmed.is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            let statement = current.trim().trim_end_matches(';').trim().to_owned();
            if !statement.is_empty() {
                out.push(statement);
            }
            current.clear();
        }
    }
    let rest = current.trim();
    if !rest.is_empty() {
        out.push(rest.to_owned());
    }
    out
}

fn quote_pg(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_my(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Creates the empty database `name` on the server of `server` (any URL on that server; the
/// session goes to its maintenance database) and returns the new database's URL.
pub fn create_database(server: &DbUrl, name: &str) -> Result<DbUrl, DbError> {
    let options = match server.vendor() {
        Vendor::MySql => "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
        _ => "",
    };
    create_database_with(server, name, options)
}

/// [`create_database`] with the server's own `options` after the name (PostgreSQL
/// `TEMPLATE … ENCODING … LC_COLLATE …`, MySQL `CHARACTER SET … COLLATE …`): the schema
/// proof's scratch database takes staging's.
pub(crate) fn create_database_with(
    server: &DbUrl,
    name: &str,
    options: &str,
) -> Result<DbUrl, DbError> {
    let target = server.with_database(name);
    let sql = match server.vendor() {
        Vendor::Postgres => format!("CREATE DATABASE {} {options}", quote_pg(name)),
        Vendor::MySql => format!("CREATE DATABASE {} {options}", quote_my(name)),
        _ => {
            return Err(DbError::Unsupported {
                url: server.to_string(),
                reason: "only a PostgreSQL or MySQL/MariaDB server can create a database".into(),
            });
        }
    };
    admin(server, &target)?
        .execute(&sql)
        .map_err(|e| rename(e, &target, "creating the database"))?;
    Ok(target)
}

/// Drops database `name` on the server of `server` if it exists, ending sessions on it
/// (PostgreSQL `WITH (FORCE)`). Only for a database the caller created: the caller proves that.
pub fn drop_database(server: &DbUrl, name: &str) -> Result<(), DbError> {
    let target = server.with_database(name);
    let sql = match server.vendor() {
        Vendor::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_pg(name)),
        Vendor::MySql => format!("DROP DATABASE IF EXISTS {}", quote_my(name)),
        _ => return Ok(()),
    };
    admin(server, &target)?
        .execute(&sql)
        .map_err(|e| rename(e, &target, "dropping the database"))
}

/// A read-write session on the server's maintenance database (PostgreSQL `postgres`; MySQL
/// none), with errors naming `target`, the database the operator cares about.
fn admin(server: &DbUrl, target: &DbUrl) -> Result<Session, DbError> {
    let conn = match server.vendor() {
        Vendor::Postgres => {
            let admin = server.with_database("postgres");
            Conn::Pg(Box::new(open_postgres(&admin, false).map_err(|e| {
                rename(e, target, "connecting to the maintenance database")
            })?))
        }
        _ => {
            let builder = server
                .mysql_builder(false)
                .tcp_connect_timeout(Some(CONNECT_TIMEOUT));
            let conn = server
                .connect_mysql(builder)
                .map_err(|e| DbError::connect(target, e))?;
            Conn::My(Box::new(conn))
        }
    };
    Ok(Session {
        url: target.clone(),
        conn,
    })
}

/// The same error, naming `target` and saying what was being done.
fn rename(e: DbError, target: &DbUrl, context: &str) -> DbError {
    match e {
        DbError::Connect { detail, .. } => DbError::Connect {
            url: target.to_string(),
            detail,
        },
        DbError::Session { source, .. } => DbError::Session {
            url: target.to_string(),
            context: context.to_owned(),
            source,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_split_on_statement_ends_without_comments() {
        let script = "-- header\nCREATE TABLE A (X INT);\n\nINSERT INTO A\n  VALUES (1);\nSELECT 1";
        assert_eq!(
            split_statements(script),
            [
                "CREATE TABLE A (X INT)",
                "INSERT INTO A\n  VALUES (1)",
                "SELECT 1"
            ]
        );
    }
}

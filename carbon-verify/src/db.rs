//! The few queries verification needs, on PostgreSQL, MySQL/MariaDB and SQLite.
//!
//! Sessions opened with `read_only` are read-only on the server side (PostgreSQL
//! `default_transaction_read_only`, MySQL `SET SESSION TRANSACTION READ ONLY`, SQLite
//! `SQLITE_OPEN_READ_ONLY`): the old database is only ever opened that way.

use std::collections::BTreeMap;

use carbon_db::{DbUrl, Vendor};
use mysql::prelude::Queryable;

use crate::error::{VerifyError, scrub};

pub(crate) enum Conn {
    Pg(Box<postgres::Client>),
    My(Box<mysql::Conn>),
    Lite(rusqlite::Connection),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::Pg(_) => "Conn::Pg",
            Conn::My(_) => "Conn::My",
            Conn::Lite(_) => "Conn::Lite",
        })
    }
}

pub(crate) fn connect(url: &DbUrl, read_only: bool) -> Result<Conn, VerifyError> {
    match url.vendor() {
        Vendor::Postgres => {
            let mut config = postgres::Config::new();
            config
                .host(url.host())
                .port(url.port())
                .dbname(url.database())
                .application_name("carbon-upgrade verify")
                .user(url.user().unwrap_or("postgres"))
                .connect_timeout(std::time::Duration::from_secs(10));
            if let Some(password) = url.password() {
                config.password(password);
            }
            if read_only {
                config.options("-c default_transaction_read_only=on");
            }
            let client = url.connect_postgres(&config).map_err(|e| match e {
                carbon_db::DbError::Connect { detail, .. } => VerifyError::db(url, detail),
                other => VerifyError::db(url, other),
            })?;
            Ok(Conn::Pg(Box::new(client)))
        }
        Vendor::MySql => {
            let mut conn = url
                .connect_mysql(mysql_opts(url, true))
                .map_err(|e| VerifyError::db(url, e))?;
            if read_only {
                conn.query_drop("SET SESSION TRANSACTION READ ONLY")
                    .map_err(|e| VerifyError::db(url, e))?;
            }
            Ok(Conn::My(Box::new(conn)))
        }
        Vendor::Sqlite => {
            let path = url.path().unwrap_or_else(|| std::path::Path::new(""));
            if !path.is_file() {
                return Err(VerifyError::db(url, "no such SQLite file"));
            }
            let flags = if read_only {
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
            } else {
                rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
            };
            let conn = rusqlite::Connection::open_with_flags(path, flags)
                .map_err(|e| VerifyError::db(url, e))?;
            Ok(Conn::Lite(conn))
        }
        Vendor::H2 => Err(VerifyError::db(
            url,
            "an embedded H2 database cannot be queried here (it is checked as files)",
        )),
    }
}

fn mysql_opts(url: &DbUrl, with_db: bool) -> mysql::OptsBuilder {
    url.mysql_builder(with_db)
        .tcp_connect_timeout(Some(std::time::Duration::from_secs(10)))
}

/// Casts a column to text in this vendor's dialect.
fn text(vendor: Vendor, column: &str) -> String {
    match vendor {
        Vendor::MySql => format!("CAST({column} AS CHAR)"),
        _ => format!("CAST({column} AS TEXT)"),
    }
}

impl Conn {
    fn vendor(&self) -> Vendor {
        match self {
            Conn::Pg(_) => Vendor::Postgres,
            Conn::My(_) => Vendor::MySql,
            Conn::Lite(_) => Vendor::Sqlite,
        }
    }

    /// Rows of text cells; every selected column must already be text.
    pub(crate) fn rows(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
        match self {
            Conn::Pg(client) => {
                let rows = client.query(sql, &[]).map_err(|e| scrub(&e.to_string()))?;
                Ok(rows
                    .iter()
                    .map(|row| {
                        (0..row.len())
                            .map(|i| row.get::<_, Option<String>>(i))
                            .collect()
                    })
                    .collect())
            }
            Conn::My(conn) => {
                let rows: Vec<mysql::Row> = conn.query(sql).map_err(|e| scrub(&e.to_string()))?;
                Ok(rows
                    .into_iter()
                    .map(|row| {
                        (0..row.len())
                            .map(|i| {
                                row.get_opt::<Option<String>, _>(i)
                                    .and_then(Result::ok)
                                    .flatten()
                            })
                            .collect()
                    })
                    .collect())
            }
            Conn::Lite(conn) => {
                let mut stmt = conn.prepare(sql).map_err(|e| e.to_string())?;
                let columns = stmt.column_count();
                let rows = stmt
                    .query_map([], |row| {
                        (0..columns)
                            .map(|i| row.get::<_, Option<String>>(i))
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .map_err(|e| e.to_string())?;
                rows.collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Runs a script of `;`-separated statements.
    pub(crate) fn run_script(&mut self, script: &str) -> Result<(), String> {
        match self {
            Conn::Pg(client) => client
                .batch_execute(script)
                .map_err(|e| scrub(&e.to_string())),
            Conn::My(conn) => {
                for statement in split_statements(script) {
                    conn.query_drop(&statement)
                        .map_err(|e| scrub(&e.to_string()))?;
                }
                Ok(())
            }
            Conn::Lite(conn) => conn.execute_batch(script).map_err(|e| e.to_string()),
        }
    }

    /// `UM_TENANT` rows.
    pub(crate) fn tenants(&mut self) -> Result<Vec<TenantRow>, String> {
        let v = self.vendor();
        let sql = format!(
            "SELECT {}, UM_DOMAIN_NAME, {} FROM UM_TENANT ORDER BY UM_ID",
            text(v, "UM_ID"),
            text(v, "UM_ACTIVE")
        );
        self.rows(&sql)?
            .into_iter()
            .map(|row| {
                let id = cell_i64(&row, 0)?;
                Ok(TenantRow {
                    id,
                    domain: cell(&row, 1),
                    active: matches!(
                        cell(&row, 2).to_ascii_lowercase().as_str(),
                        "true" | "1" | "t"
                    ),
                })
            })
            .collect()
    }

    /// `UM_DOMAIN` rows: (tenant id, domain name upper-cased).
    pub(crate) fn domains(&mut self) -> Result<Vec<(i64, String)>, String> {
        let sql = format!(
            "SELECT {}, UM_DOMAIN_NAME FROM UM_DOMAIN",
            text(self.vendor(), "UM_TENANT_ID")
        );
        self.rows(&sql)?
            .into_iter()
            .map(|row| Ok((cell_i64(&row, 0)?, cell(&row, 1).to_ascii_uppercase())))
            .collect()
    }

    /// `UM_USER` rows per tenant id.
    pub(crate) fn user_counts(&mut self) -> Result<BTreeMap<i64, u64>, String> {
        let v = self.vendor();
        let sql = format!(
            "SELECT {}, {} FROM UM_USER GROUP BY UM_TENANT_ID",
            text(v, "UM_TENANT_ID"),
            text(v, "COUNT(*)")
        );
        let mut out = BTreeMap::new();
        for row in self.rows(&sql)? {
            let tenant = cell_i64(&row, 0)?;
            let count = cell(&row, 1)
                .parse::<u64>()
                .map_err(|_| format!("bad count {:?}", cell(&row, 1)))?;
            out.insert(tenant, count);
        }
        Ok(out)
    }

    /// Up to `n` user names of one tenant, in id order.
    pub(crate) fn sample_users(&mut self, tenant: i64, n: usize) -> Result<Vec<String>, String> {
        let sql = format!(
            "SELECT UM_USER_NAME FROM UM_USER WHERE UM_TENANT_ID = {tenant} ORDER BY UM_ID LIMIT {n}"
        );
        Ok(self.rows(&sql)?.into_iter().map(|r| cell(&r, 0)).collect())
    }

    /// Whether `UM_USER` exists and can be read.
    pub(crate) fn has_um_user(&mut self) -> bool {
        let sql = format!("SELECT {} FROM UM_USER", text(self.vendor(), "COUNT(*)"));
        self.rows(&sql).is_ok()
    }
}

/// A `UM_TENANT` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TenantRow {
    pub id: i64,
    pub domain: String,
    pub active: bool,
}

fn cell(row: &[Option<String>], i: usize) -> String {
    row.get(i).cloned().flatten().unwrap_or_default()
}

fn cell_i64(row: &[Option<String>], i: usize) -> Result<i64, String> {
    let text = cell(row, i);
    text.trim()
        .parse()
        .map_err(|_| format!("expected a number, got {text:?}"))
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

/// Creates database `name` on the server of `server` (a URL with a maintenance database)
/// and returns the URL of the new database.
pub(crate) fn create_database(server: &DbUrl, name: &str) -> Result<DbUrl, VerifyError> {
    let target = server.with_database(name);
    match server.vendor() {
        Vendor::Postgres => {
            let mut conn = connect(server, false)?;
            conn.run_script(&format!("CREATE DATABASE \"{name}\""))
                .map_err(|e| VerifyError::db(&target, e))?;
        }
        Vendor::MySql => {
            let mut conn = server
                .connect_mysql(mysql_opts(server, false))
                .map_err(|e| VerifyError::db(server, e))?;
            conn.query_drop(format!(
                "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            ))
            .map_err(|e| VerifyError::db(&target, e))?;
        }
        Vendor::Sqlite | Vendor::H2 => {
            return Err(VerifyError::db(
                server,
                "user-store databases need a PostgreSQL or MySQL/MariaDB server",
            ));
        }
    }
    Ok(target)
}

/// Drops a database this tool created.
pub(crate) fn drop_database(server: &DbUrl, name: &str) -> Result<(), VerifyError> {
    match server.vendor() {
        Vendor::Postgres => {
            let mut conn = connect(server, false)?;
            conn.run_script(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .map_err(|e| VerifyError::db(&server.with_database(name), e))
        }
        Vendor::MySql => {
            let mut conn = server
                .connect_mysql(mysql_opts(server, false))
                .map_err(|e| VerifyError::db(server, e))?;
            conn.query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
                .map_err(|e| VerifyError::db(&server.with_database(name), e))
        }
        Vendor::Sqlite | Vendor::H2 => Ok(()),
    }
}

/// The JDBC URL a Carbon server uses for this database.
pub(crate) fn jdbc_url(url: &DbUrl) -> String {
    let sub = match url.vendor() {
        Vendor::Postgres => "postgresql",
        _ => "mysql",
    };
    let host = if url.host().contains(':') {
        format!("[{}]", url.host())
    } else {
        url.host().to_owned()
    };
    let tls = tls_params(url);
    format!("jdbc:{sub}://{host}:{}/{}{tls}", url.port(), url.database())
}

/// The JDBC options that give a Carbon server the same TLS as ours: pgjdbc's `sslmode`, and
/// the Connector/J 5.1 options Carbon 4.4 products ship with for MySQL/MariaDB.
fn tls_params(url: &DbUrl) -> String {
    use carbon_db::TlsMode;
    let tls = url.tls();
    match (url.vendor(), tls.mode) {
        (_, TlsMode::Disable) => String::new(),
        (Vendor::Postgres, mode) => match &tls.root_cert {
            Some(root) => format!("?sslmode={mode}&sslrootcert={}", root.display()),
            None => format!("?sslmode={mode}"),
        },
        (_, TlsMode::Prefer) => "?useSSL=true".to_owned(),
        (_, TlsMode::Require) => {
            "?useSSL=true&requireSSL=true&verifyServerCertificate=false".to_owned()
        }
        (_, TlsMode::VerifyCa | TlsMode::VerifyFull) => {
            "?useSSL=true&requireSSL=true&verifyServerCertificate=true".to_owned()
        }
    }
}

/// The JDBC driver class for this database.
pub(crate) fn jdbc_driver(vendor: Vendor) -> &'static str {
    match vendor {
        Vendor::Postgres => "org.postgresql.Driver",
        _ => "com.mysql.jdbc.Driver",
    }
}

/// The kernel script name under `dbscripts/` for this vendor.
pub(crate) fn script_name(vendor: Vendor) -> &'static str {
    match vendor {
        Vendor::Postgres => "postgresql.sql",
        Vendor::MySql => "mysql.sql",
        Vendor::Sqlite => "sqlite.sql",
        Vendor::H2 => "h2.sql",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_ask_carbon_for_the_same_tls_as_ours() {
        let cases = [
            ("postgres://h:5432/s", "jdbc:postgresql://h:5432/s"),
            (
                "jdbc:postgresql://h/s?sslmode=verify-ca&sslrootcert=/etc/ca.pem",
                "jdbc:postgresql://h:5432/s?sslmode=verify-ca&sslrootcert=/etc/ca.pem",
            ),
            ("mysql://h:3306/s", "jdbc:mysql://h:3306/s"),
            (
                "jdbc:mysql://h/s?useSSL=true&requireSSL=true",
                "jdbc:mysql://h:3306/s?useSSL=true&requireSSL=true&verifyServerCertificate=false",
            ),
            (
                "jdbc:mariadb://h/s?useSsl=true",
                "jdbc:mysql://h:3306/s?useSSL=true&requireSSL=true&verifyServerCertificate=true",
            ),
        ];
        for (input, expected) in cases {
            let url = DbUrl::parse(input).expect("test URLs parse");
            assert_eq!(jdbc_url(&url), expected, "{input}");
        }
    }
}

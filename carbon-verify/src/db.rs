//! The queries verification asks of a Carbon database, on top of carbon-db's sessions (which
//! own connecting, TLS and read-only enforcement): the old database is only ever opened with
//! [`Session::read_only`].

use std::collections::BTreeMap;

use carbon_db::{DbError, DbUrl, Session, Vendor};

/// Casts a column to text in this vendor's dialect.
fn text(vendor: Vendor, column: &str) -> String {
    match vendor {
        Vendor::MySql => format!("CAST({column} AS CHAR)"),
        _ => format!("CAST({column} AS TEXT)"),
    }
}

/// A query's answer that is not what the schema promises (a number that is not one).
fn malformed(session: &Session, detail: String) -> DbError {
    DbError::Sql {
        url: session.url().to_string(),
        context: "reading UM_* tables".into(),
        detail,
    }
}

/// `UM_TENANT` rows.
pub(crate) fn tenants(session: &mut Session) -> Result<Vec<TenantRow>, DbError> {
    let v = session.vendor();
    let sql = format!(
        "SELECT {}, UM_DOMAIN_NAME, {} FROM UM_TENANT ORDER BY UM_ID",
        text(v, "UM_ID"),
        text(v, "UM_ACTIVE")
    );
    let rows = session.query_text(&sql)?;
    rows.into_iter()
        .map(|row| {
            Ok(TenantRow {
                id: cell_i64(&row, 0).map_err(|e| malformed(session, e))?,
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
pub(crate) fn domains(session: &mut Session) -> Result<Vec<(i64, String)>, DbError> {
    let sql = format!(
        "SELECT {}, UM_DOMAIN_NAME FROM UM_DOMAIN",
        text(session.vendor(), "UM_TENANT_ID")
    );
    let rows = session.query_text(&sql)?;
    rows.into_iter()
        .map(|row| {
            let tenant = cell_i64(&row, 0).map_err(|e| malformed(session, e))?;
            Ok((tenant, cell(&row, 1).to_ascii_uppercase()))
        })
        .collect()
}

/// `UM_USER` rows per tenant id.
pub(crate) fn user_counts(session: &mut Session) -> Result<BTreeMap<i64, u64>, DbError> {
    let v = session.vendor();
    let sql = format!(
        "SELECT {}, {} FROM UM_USER GROUP BY UM_TENANT_ID",
        text(v, "UM_TENANT_ID"),
        text(v, "COUNT(*)")
    );
    let mut out = BTreeMap::new();
    for row in session.query_text(&sql)? {
        let tenant = cell_i64(&row, 0).map_err(|e| malformed(session, e))?;
        let count = cell(&row, 1)
            .parse::<u64>()
            .map_err(|_| malformed(session, format!("bad count {:?}", cell(&row, 1))))?;
        out.insert(tenant, count);
    }
    Ok(out)
}

/// Up to `n` user names of one tenant, in id order.
pub(crate) fn sample_users(
    session: &mut Session,
    tenant: i64,
    n: usize,
) -> Result<Vec<String>, DbError> {
    let sql = format!(
        "SELECT UM_USER_NAME FROM UM_USER WHERE UM_TENANT_ID = {tenant} ORDER BY UM_ID LIMIT {n}"
    );
    Ok(session
        .query_text(&sql)?
        .into_iter()
        .map(|r| cell(&r, 0))
        .collect())
}

/// Whether `UM_USER` exists and can be read.
pub(crate) fn has_um_user(session: &mut Session) -> bool {
    let sql = format!("SELECT {} FROM UM_USER", text(session.vendor(), "COUNT(*)"));
    session.query_text(&sql).is_ok()
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

//! The queries verification asks of a Carbon database, on top of carbon-db's sessions (which
//! own connecting, TLS and read-only enforcement): the old database is only ever opened with
//! [`Session::read_only`].

use std::collections::BTreeMap;

use carbon_db::{DbError, Session, Vendor};

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

/// The kernel script name under `dbscripts/` for this vendor.
pub(crate) fn script_name(vendor: Vendor) -> String {
    format!("{}.sql", vendor.dbscript_stem().unwrap_or("h2"))
}

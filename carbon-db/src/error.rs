//! Errors of the copy engine. Every URL in a message is redacted; every variant names the
//! database, table or file it concerns.

use std::path::PathBuf;

use crate::Vendor;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("malformed database URL {url}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error(
        "unsupported vendor {vendor} in {url}: only PostgreSQL, MySQL/MariaDB, SQLite and H2 can be copied"
    )]
    UnsupportedVendor { vendor: String, url: String },
    #[error(
        "source {from_url} is {from} but target {to_url} is {to}: the copy must stay on one vendor"
    )]
    VendorMismatch {
        from: Vendor,
        to: Vendor,
        from_url: String,
        to_url: String,
    },
    #[error("target {url} is the source database itself")]
    SameDatabase { url: String },
    #[error("target {url} is not empty: it holds {objects}")]
    TargetNotEmpty { url: String, objects: String },
    #[error("staging {url} holds objects this run did not write ({objects}): it was not reset")]
    NotOurs { url: String, objects: String },
    #[error(
        "staging {url} is in use by {sessions}: it was not reset; end those sessions and resume"
    )]
    InUse { url: String, sessions: String },
    #[error("cannot connect to {url}: {detail}")]
    Connect { url: String, detail: String },
    #[error("{url}: {context}")]
    Session {
        url: String,
        context: String,
        #[source]
        source: DriverError,
    },
    #[error("source database {url} does not exist")]
    SourceMissing { url: String },
    #[error("{url}: {context}: {detail}")]
    Sql {
        url: String,
        context: String,
        detail: String,
    },
    #[error("table {table} ({url}): {detail}")]
    Table {
        url: String,
        table: String,
        detail: String,
    },
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{tool} failed for {url}: {detail}")]
    Tool {
        tool: String,
        url: String,
        detail: String,
    },
    #[error("journal {}: {reason}", path.display())]
    Journal { path: PathBuf, reason: String },
    #[error("{url}: {reason}")]
    Unsupported { url: String, reason: String },
    #[error("copy interrupted: another worker failed")]
    Aborted,
}

impl DbError {
    /// A refusal that protects data (a non-empty or foreign target, the source as target, a
    /// database in use) is unsafe; a failing connection, statement, tool or file is the system
    /// underneath; the rest is input that cannot be used.
    pub fn kind(&self) -> carbon_fs::ErrorKind {
        use carbon_fs::ErrorKind;
        match self {
            DbError::TargetNotEmpty { .. }
            | DbError::SameDatabase { .. }
            | DbError::NotOurs { .. }
            | DbError::InUse { .. } => ErrorKind::Unsafe,
            DbError::Connect { .. }
            | DbError::Sql { .. }
            | DbError::Table { .. }
            | DbError::Io { .. }
            | DbError::Tool { .. }
            | DbError::Session { .. }
            | DbError::Aborted => ErrorKind::Io,
            DbError::BadUrl { .. }
            | DbError::UnsupportedVendor { .. }
            | DbError::VendorMismatch { .. }
            | DbError::SourceMissing { .. }
            | DbError::Journal { .. }
            | DbError::Unsupported { .. } => ErrorKind::BadInput,
        }
    }
}

/// What a driver said, as one redacted line: kept as text because a driver's own message may
/// echo a connection string, and its error types would print it again in `source()`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DriverError(String);

impl DriverError {
    pub(crate) fn new(e: &dyn ErrText) -> DriverError {
        DriverError(crate::redact_raw(&one_line(&e.text())))
    }
}

/// Text of a driver error, including what the server said (postgres::Error's own
/// Display is only "db error").
pub(crate) trait ErrText {
    fn text(&self) -> String;
}

impl ErrText for postgres::Error {
    fn text(&self) -> String {
        match self.as_db_error() {
            Some(db) => {
                let mut s = format!("{}: {}", db.severity(), db.message());
                if let Some(d) = db.detail() {
                    s.push_str(&format!(" ({d})"));
                }
                s
            }
            None => {
                let mut s = self.to_string();
                let mut src = std::error::Error::source(self);
                while let Some(e) = src {
                    s.push_str(&format!(": {e}"));
                    src = e.source();
                }
                s
            }
        }
    }
}

macro_rules! display_text {
    ($($t:ty),*) => {$(
        impl ErrText for $t {
            fn text(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
display_text!(mysql::Error, rusqlite::Error, std::io::Error, String, &str);

impl DbError {
    /// A vendor no [`crate::DbUrl`] holds (parsing refuses it), as an error rather than a panic.
    pub(crate) fn not_copyable(url: &crate::DbUrl) -> DbError {
        DbError::UnsupportedVendor {
            vendor: url.vendor().to_string(),
            url: url.to_string(),
        }
    }

    pub(crate) fn sql(url: &crate::DbUrl, context: impl Into<String>, e: impl ErrText) -> DbError {
        DbError::Sql {
            url: url.to_string(),
            context: context.into(),
            detail: one_line(&e.text()),
        }
    }

    pub(crate) fn table(url: &crate::DbUrl, table: &str, e: impl ErrText) -> DbError {
        DbError::Table {
            url: url.to_string(),
            table: table.to_owned(),
            detail: one_line(&e.text()),
        }
    }

    pub(crate) fn connect(url: &crate::DbUrl, e: impl ErrText) -> DbError {
        DbError::Connect {
            url: url.to_string(),
            detail: one_line(&e.text()),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> DbError {
        DbError::Io {
            path: path.into(),
            source,
        }
    }
}

/// The workspace's one error-chain formatter, under carbon-db's name for its users.
pub use carbon_fs::error_chain;

/// Driver messages sometimes span lines (PostgreSQL DETAIL/HINT); errors are one line.
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

//! Errors that stop a verification before it can produce a report (bad input, unreadable
//! home). Everything found while checking is a [`crate::Finding`] instead.

use std::path::PathBuf;

/// No variant ever holds a password; URLs are redacted before they are stored.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    // The cause is part of the message, not a `source()`, so `{:#}` chains print it once.
    #[error("product home {home}: {error}")]
    Home {
        home: PathBuf,
        error: carbon_config::ConfigError,
    },
    #[error("database {url}: {reason}")]
    Db { url: String, reason: String },
    #[error("bad database URL: {error}")]
    DbUrl { error: carbon_db::DbError },
    #[error("server URL {url}: {reason}")]
    ServerUrl { url: String, reason: String },
    #[error("CA certificate {path}: {reason}")]
    CaCert { path: PathBuf, reason: String },
    #[error("{what}: {reason}")]
    Input { what: String, reason: String },
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl VerifyError {
    pub(crate) fn db(url: &carbon_db::DbUrl, reason: impl std::fmt::Display) -> VerifyError {
        VerifyError::Db {
            url: url.to_string(),
            reason: scrub(&reason.to_string()),
        }
    }
}

/// Driver messages can echo connection strings; strip any credentials they carry.
pub(crate) fn scrub(text: &str) -> String {
    carbon_db::redact_raw(text)
}

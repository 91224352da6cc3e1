//! Errors that stop a verification before it can produce a report (bad input, unreadable
//! home). Everything found while checking is a [`crate::Finding`] instead.

use std::path::PathBuf;

/// No variant ever holds a password; URLs are redacted before they are stored.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    // Causes are the `source()`, never repeated in the message: print with the chain.
    #[error("product home {home}")]
    Home {
        home: PathBuf,
        #[source]
        error: carbon_config::ConfigError,
    },
    #[error("bad database URL")]
    DbUrl {
        #[source]
        error: carbon_db::DbError,
    },
    #[error("server URL {url}: {reason}")]
    ServerUrl { url: String, reason: String },
    #[error("CA certificate {path}: {reason}")]
    CaCert { path: PathBuf, reason: String },
    #[error("{what}: {reason}")]
    Input { what: String, reason: String },
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
}

impl VerifyError {
    /// A home or URL that cannot be read says what its own error is; the rest is input.
    pub fn kind(&self) -> carbon_fs::ErrorKind {
        use carbon_fs::ErrorKind;
        match self {
            VerifyError::Home { error, .. } => error.kind(),
            VerifyError::DbUrl { error } => error.kind(),
            VerifyError::Io { .. } => ErrorKind::Io,
            VerifyError::ServerUrl { .. }
            | VerifyError::CaCert { .. }
            | VerifyError::Input { .. } => ErrorKind::BadInput,
        }
    }
}

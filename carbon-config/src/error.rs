//! The one error type of carbon-config. Every variant names the file, path expression or
//! datasource it concerns, and never carries a secret value.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The io::Error is the `source()`, not repeated in the message: print with its chain.
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        error: io::Error,
    },

    #[error("{}: malformed XML at byte {offset}: {message}", file.display())]
    Malformed {
        file: PathBuf,
        offset: u64,
        message: String,
    },

    #[error("{}: bytes are not valid {encoding}", file.display())]
    Encoding { file: PathBuf, encoding: String },

    #[error("{}: unsupported encoding `{encoding}` (only UTF-8 and ISO-8859-1)", file.display())]
    UnsupportedEncoding { file: PathBuf, encoding: String },

    #[error("bad path expression `{expr}`: {reason}")]
    PathSyntax { expr: String, reason: String },

    #[error("{}: `{expr}` matches nothing (longest matching prefix: `{prefix}`)", file.display())]
    NotFound {
        file: PathBuf,
        expr: String,
        prefix: String,
    },

    #[error("{}: `{expr}` matches {count} elements (lines {lines}); add a predicate", file.display())]
    Ambiguous {
        file: PathBuf,
        expr: String,
        count: usize,
        lines: String,
    },

    #[error("{}: `{expr}`: {reason}", file.display())]
    Unsupported {
        file: PathBuf,
        expr: String,
        reason: String,
    },

    #[error("{}: changed on disk since the plan was made; plan again", file.display())]
    ChangedSincePlan { file: PathBuf },

    #[error("{}: the edit produced XML that does not re-parse: {message}", file.display())]
    BrokenEdit { file: PathBuf, message: String },

    #[error("{}: not a Carbon product home ({reason})", home.display())]
    NotAProductHome { home: PathBuf, reason: String },

    #[error(
        "{}: Carbon 4.5+ product configured by repository/conf/deployment.toml; XML edits would be \
         overwritten at start-up, edit deployment.toml instead",
        home.display()
    )]
    TomlDriven { home: PathBuf },

    #[error("{}: {what}: {reason}", file.display())]
    Model {
        file: PathBuf,
        what: String,
        reason: String,
    },

    #[error("datasource `{name}` not found in {}", home.display())]
    UnknownDatasource { home: PathBuf, name: String },

    #[error("bad JDBC URL ({reason}): {redacted}")]
    JdbcUrl { redacted: String, reason: String },

    #[error("datasource `{name}`: {reason}")]
    Refused { name: String, reason: String },
}

impl ConfigError {
    /// Refusals that protect a file or a datasource are unsafe; an unreadable file is I/O;
    /// everything else is input that cannot be used.
    pub fn kind(&self) -> carbon_fs::ErrorKind {
        use carbon_fs::ErrorKind;
        match self {
            ConfigError::Io { .. } => ErrorKind::Io,
            ConfigError::Refused { .. }
            | ConfigError::TomlDriven { .. }
            | ConfigError::ChangedSincePlan { .. } => ErrorKind::Unsafe,
            _ => ErrorKind::BadInput,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, error: io::Error) -> Self {
        ConfigError::Io {
            path: path.into(),
            error,
        }
    }
}

/// Shorthand used across the crate.
pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

//! What kind of failure an error is, shared by every carbon-* library so that the CLI decides
//! exit codes from types in one place. It lives here because carbon-fs is the root of the
//! dependency graph (carbon-config, carbon-db and carbon-verify all depend on it).

/// The kind of a library error; each library error type answers it through `kind()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Malformed or impossible input: a bad URL, path, file or option.
    BadInput,
    /// Refused because proceeding could lose or corrupt data (a non-empty target, a source
    /// that changes under us, a file changed since its plan).
    Unsafe,
    /// The work ran and a check, comparison or verification failed.
    CheckFailed,
    /// The system failed underneath: a file, a connection or a tool.
    Io,
}

//! The one owner of exit codes: 0 done, 1 failed check or mismatch, 2 usage, bad input or a
//! failing system underneath, 3 unsafe to proceed. Commands return a [`Status`] or an error;
//! an error's code comes from the kind its types say ([`carbon_upgrade_cli::kind_of`]), never
//! from its text.

use std::process::ExitCode;

use carbon_fs::ErrorKind;

/// How a command that ran to its end finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Done and verified (exit 0).
    Ok,
    /// A check, verification or comparison failed (exit 1).
    CheckFailed,
    /// Refused because proceeding would be unsafe (exit 3).
    Unsafe,
}

impl Status {
    fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::CheckFailed => code(ErrorKind::CheckFailed),
            Status::Unsafe => code(ErrorKind::Unsafe),
        }
    }
}

/// The exit code of each kind of failure.
fn code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::CheckFailed => 1,
        ErrorKind::BadInput | ErrorKind::Io => 2,
        ErrorKind::Unsafe => 3,
    }
}

/// Turns a command's outcome into the process exit code, printing errors as one line.
pub fn finish(result: anyhow::Result<Status>) -> ExitCode {
    match result {
        Ok(status) => ExitCode::from(status.code()),
        Err(err) => {
            // `{:#}` joins the context chain on one line: "copying UM_USER: connection refused".
            eprintln!("error: {err:#}");
            ExitCode::from(code(carbon_upgrade_cli::kind_of(&err)))
        }
    }
}

//! Documented exit codes: 0 done, 1 failed check or mismatch, 2 usage or bad input,
//! 3 unsafe to proceed.

use std::fmt;
use std::process::ExitCode;

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
            Status::CheckFailed => 1,
            Status::Unsafe => 3,
        }
    }
}

/// An error that carries its own exit code; any other error exits with 2 (bad input).
#[derive(Debug)]
pub struct Failure {
    pub status: Status,
    pub message: String,
}

impl Failure {
    pub fn check_failed(message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Failure {
            status: Status::CheckFailed,
            message: message.into(),
        })
    }

    pub fn unsafe_to_proceed(message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Failure {
            status: Status::Unsafe,
            message: message.into(),
        })
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Turns a command's outcome into the process exit code, printing errors as one line.
pub fn finish(result: anyhow::Result<Status>) -> ExitCode {
    match result {
        Ok(status) => ExitCode::from(status.code()),
        Err(err) => {
            // `{:#}` joins the context chain on one line: "copying UM_USER: connection refused".
            eprintln!("error: {err:#}");
            let code = err
                .downcast_ref::<Failure>()
                .map_or(2, |failure| failure.status.code());
            ExitCode::from(code)
        }
    }
}

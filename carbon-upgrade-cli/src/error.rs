//! The errors of the CLI and its runbook, and the one rule that reads what kind a failure is
//! from the types in its chain (never from its text). `exit.rs` maps the kind to a code.

use carbon_fs::ErrorKind;

use crate::runbook::step::Step;

/// Failures the runbook and the commands decide themselves; the libraries' own errors say
/// their kind through `kind()`.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// A home is missing or both homes are the same: running would write where it must not.
    #[error("{detail}")]
    HomesRefused { detail: String },
    /// A preflight check failed, so the run stopped before writing anything.
    #[error("preflight failed: {failed}")]
    PreflightFailed { failed: String },
    /// The copy finished but its verification found differences.
    #[error("staging {staging} differs from the source: {summary}")]
    CopyDiffers { staging: String, summary: String },
    /// verify-home found errors.
    #[error("offline verification failed: {findings}")]
    VerifyHomeFailed { findings: String },
    /// verify-server found errors.
    #[error("live tests failed: {summary}")]
    LiveTestsFailed { summary: String },
    /// Online mode cannot be used as configured (an embedded database, a missing follower).
    #[error("{detail}")]
    OnlineRefused { detail: String },
    /// A comparison (`db verify`, `db copy`) found differences.
    #[error("{summary}")]
    Mismatch { summary: String },
}

impl UpgradeError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            UpgradeError::OnlineRefused { .. } => ErrorKind::BadInput,
            UpgradeError::HomesRefused { .. } | UpgradeError::PreflightFailed { .. } => {
                ErrorKind::Unsafe
            }
            UpgradeError::CopyDiffers { .. }
            | UpgradeError::VerifyHomeFailed { .. }
            | UpgradeError::LiveTestsFailed { .. }
            | UpgradeError::Mismatch { .. } => ErrorKind::CheckFailed,
        }
    }
}

/// The kind of one error in a chain, if its type says one.
fn kind_of_one(err: &(dyn std::error::Error + 'static)) -> Option<ErrorKind> {
    if let Some(e) = err.downcast_ref::<carbon_db::DbError>() {
        return Some(e.kind());
    }
    if let Some(e) = err.downcast_ref::<carbon_db::online::OnlineError>() {
        return Some(e.kind());
    }
    if let Some(e) = err.downcast_ref::<carbon_fs::FsError>() {
        return Some(e.kind());
    }
    if let Some(e) = err.downcast_ref::<carbon_db::schema::SchemaError>() {
        return Some(e.kind());
    }
    if let Some(e) = err.downcast_ref::<carbon_config::ConfigError>() {
        return Some(e.kind());
    }
    if let Some(e) = err.downcast_ref::<carbon_verify::VerifyError>() {
        return Some(e.kind());
    }
    if let Some(e) = err.downcast_ref::<carbon_verify::SecretsError>() {
        return Some(e.kind());
    }
    err.downcast_ref::<UpgradeError>().map(UpgradeError::kind)
}

/// The context a failed step puts on its error: "step copy:WSO2_CARBON_DB: …". A context
/// rather than a wrapper, so that the cause's own type stays reachable through the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailed {
    pub step: Step,
}

impl std::fmt::Display for StepFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "step {}", self.step)
    }
}

/// What kind a failure is: the outermost error in its chain whose type says a kind, so the
/// condition decides and not the command that met it (a non-empty target is unsafe from
/// `db copy` and from `run` alike). A failed step whose cause says nothing is a failed
/// check; any other untyped error (a flag, a file named on the command line) is bad input.
pub fn kind_of(err: &anyhow::Error) -> ErrorKind {
    if let Some(kind) = err.chain().find_map(kind_of_one) {
        return kind;
    }
    if err.downcast_ref::<StepFailed>().is_some() {
        ErrorKind::CheckFailed
    } else {
        ErrorKind::BadInput
    }
}

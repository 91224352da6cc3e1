//! The library behind `carbon-upgrade`: the runbook (the upgrade guide as typed steps, each
//! performed by a carbon-* library, journalled and reported) and the errors whose types decide
//! what kind a failure is. The binary (`main.rs`, `cmd/`, `exit.rs`) parses flags, prints and
//! exits; xtask and the fuzz targets read journals and reports through these types.

pub mod error;
pub mod runbook;

pub use error::{StepFailed, UpgradeError, kind_of};

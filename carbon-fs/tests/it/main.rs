#![allow(clippy::unwrap_used)]
//! carbon-fs integration tests: real trees on disk, one module per feature.

mod backup;
mod carbon;
mod conflicts;
mod conformance;
mod failures;
mod replicate;
mod snapshots;
mod support;
mod verify;

//! carbon-fs: checksummed replication of Carbon product-home directories, verification against
//! manifests, and verified PRODUCT_HOME backups.
//!
//! - [`replicate`] copies a tree: files to a temp name renamed into place, hashed while copied,
//!   mode/mtime (and owner as root) kept, symlinks as symlinks, specials refused, conflicts with
//!   the destination's own files kept/overwritten/refused by [`ConflictPolicy`]; then one sync,
//!   then the [`Manifest`] (GNU `SHA256SUMS` + JSON lines) as the record that it is complete.
//! - [`verify`] re-reads a tree against its manifest with rclone-style [`Mark`]s.
//! - [`backup_home`] and [`replicate_carbon_home`] are what the upgrade runbook calls.
//!
//! The library never prints; progress goes through [`Progress`].

mod atomic;
mod backup;
mod carbon;
mod copy;
mod error;
mod hash;
mod kind;
mod manifest;
mod pool;
mod progress;
mod replicate;
mod scan;
mod verify;

pub use atomic::write_atomic;
pub use backup::{BackupReport, backup_home};
pub use carbon::{
    CarbonHomeOptions, CarbonReport, DEPLOYMENT_SERVER, Part, SkippedPart, replicate_carbon_home,
};
pub use copy::CopyMethod;
pub use error::{FsError, error_chain};
pub use hash::{HashError, sha256_copy, sha256_file, sha256_hex};
pub use kind::ErrorKind;
pub use manifest::{Manifest, ManifestEntry, ManifestPaths, Origin};
pub use pool::run_pool;
pub use progress::{NoProgress, Phase, Progress};
pub use replicate::{
    Conflict, ConflictPolicy, Outcome, ReplicateOptions, Report, ReportItem, Resolution, Summary,
    replicate, replicate_with,
};
pub use scan::{EntryKind, Mtime};
pub use verify::{Mark, MarkCounts, VerifyItem, VerifyOptions, VerifyReport, verify, verify_with};

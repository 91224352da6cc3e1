//! carbon-verify: proves an upgraded Carbon product.
//!
//! * [`verify_home`]: offline checks of the new home against the staging database (and the
//!   old database/home): tenant rows ↔ tenant folders, user-store files ↔ `UM_DOMAIN` rows,
//!   user counts, datasources pointing at staging, user stores still pointing at the old
//!   database, encrypted passwords without the keystore, embedded H2 files.
//! * [`verify_secrets`]: every encrypted value (user stores, deployment files, secure vault)
//!   opens with the home's primary key; keystores compared with the old home's.
//! * [`verify_server`]: the guide's live tests over the admin SOAP services (server data,
//!   user stores, users, tenants, pre-existing data, clean-up).
//!
//! Both return a [`Report`] of [`Finding`]s and never print. No password (admin, tenant
//! admin, user-store, database) appears in any finding, error, log line or `Debug` output.

mod client;
mod db;
mod error;
mod live;
mod offline;
mod report;
pub mod secrets;
pub mod soap;
pub mod xml;

pub use client::{CallError, Trust};
pub use error::VerifyError;
pub use live::{ServerOptions, verify_server};
pub use offline::{HomeOptions, verify_home, verify_old_system};
pub use report::{Finding, NoProgress, Origin, Progress, Report, Severity};
pub use secrets::{SecretsError, SecretsOptions, SecretsReport, verify_secrets};

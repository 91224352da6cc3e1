//! carbon-db: same-vendor copy of a Carbon database to a staging database, with proof.
//!
//! Vendors: PostgreSQL, MySQL/MariaDB, SQLite, and embedded H2 as files.

mod vendor;

pub use vendor::Vendor;

/// Test support: fresh, uniquely named databases that drop themselves.
#[cfg(feature = "testkit")]
pub mod testkit;

/// Generator of Carbon-shaped schemas and data on every vendor (tests, demo, benchmarks).
#[cfg(feature = "testkit")]
pub mod fixture;

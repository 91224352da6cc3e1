//! carbon-config: byte-exact editing of WSO2 Carbon XML configuration, a typed model of a
//! Carbon 4.4.x product home, and connecting/carrying configuration over during an upgrade.
//!
//! The library never prints; it returns data ([`Plan`], product-home models, reports) and
//! [`ConfigError`]s that name the file or path expression at fault and never contain secrets.
//!
#![doc = include_str!("../README.md")]

pub mod carry;
pub mod connect;
mod doc;
pub mod edit;
mod error;
#[cfg(feature = "fixture")]
pub mod fixture;
pub mod home;
pub mod jdbc;
mod path;
pub mod redact;
pub mod running;
pub mod secret;

pub use carry::{CarryItem, CarryKind, CarryOver, carry_over};
pub use connect::{ConnectPlan, ConnectTarget, Notice, connect, user_stores};
pub use doc::{Encoding, NodeId, XmlDoc};
pub use edit::{Action, Change, Edit, Plan, apply, apply_without_backup, plan, plan_file};
pub use error::ConfigError;
pub use home::{Datasource, Keystore, Ports, ProductHome, RealmStore, UserStore};
pub use jdbc::{JdbcUrl, Server, Vendor};
pub use path::XPath;
pub use secret::Secret;

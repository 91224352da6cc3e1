//! carbon-config: byte-exact editing of WSO2 Carbon XML configuration, a typed model of a
//! Carbon 4.4.x product home, and connecting/carrying configuration over during an upgrade.
//!
//! The library never prints; it returns data ([`ProductHome`], plans, reports) and
//! [`ConfigError`]s that name the file or path expression at fault and never contain secrets.

pub mod error;
pub mod fixture;
pub mod secret;

pub use error::ConfigError;
pub use secret::Secret;

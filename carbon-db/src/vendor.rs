use std::fmt;

use serde::{Deserialize, Serialize};

/// A database vendor this crate can copy. The guide requires source and staging to share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vendor {
    Postgres,
    /// MySQL and MariaDB share a wire protocol and a driver.
    MySql,
    Sqlite,
    /// Carbon's embedded default; copied as files because nothing here reads H2.
    H2,
}

impl Vendor {
    pub fn name(self) -> &'static str {
        match self {
            Vendor::Postgres => "postgres",
            Vendor::MySql => "mysql",
            Vendor::Sqlite => "sqlite",
            Vendor::H2 => "h2",
        }
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

//! Passwords as they appear in Carbon configuration. `Debug` and `Display` never show a value.

use std::fmt;

use serde::Serialize;

/// A password-like value: plain text, a secure-vault alias (`svns:secretAlias`), a value
/// encrypted with the primary keystore (`encrypted="true"`), or nothing.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "alias", rename_all = "snake_case")]
pub enum Secret {
    /// Plain text in the file. Serialized without the value.
    #[serde(serialize_with = "serialize_hidden")]
    Plain(String),
    /// `svns:secretAlias="NAME"`: the real value lives in the secure vault.
    Alias(String),
    /// `encrypted="true"`: ciphertext made with the primary keystore. Serialized without the value.
    #[serde(serialize_with = "serialize_hidden")]
    Encrypted(String),
    /// No value at all.
    Empty,
}

fn serialize_hidden<S: serde::Serializer>(_: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_none()
}

impl Secret {
    /// The plain value, if this is a plain password (for the code that must use it).
    pub fn plain(&self) -> Option<&str> {
        match self {
            Secret::Plain(value) => Some(value),
            _ => None,
        }
    }

    /// The secure-vault alias, if any.
    pub fn alias(&self) -> Option<&str> {
        match self {
            Secret::Alias(alias) => Some(alias),
            _ => None,
        }
    }
}

/// A password given by the operator (environment, flag, derived): plain text.
impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret::Plain(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret::Plain(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Plain(_) => f.write_str("<plain, redacted>"),
            Secret::Alias(alias) => write!(f, "<secure-vault alias {alias}>"),
            Secret::Encrypted(_) => f.write_str("<encrypted, redacted>"),
            Secret::Empty => f.write_str("<empty>"),
        }
    }
}

/// Placeholder shown instead of a secret value.
pub const REDACTED: &str = "********";

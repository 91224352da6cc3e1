//! Keystores as Carbon names them: JKS (our reader, [`super::jks`]) and PKCS12
//! (`p12-keystore`), their certificates (fingerprints, expiry) and the RSA key of one alias.

use std::path::{Path, PathBuf};

use rsa::pkcs8::DecodePrivateKey;
use serde::Serialize;
use sha1::Digest as _;
use sha2::Digest as _;

use super::jks::{self, JksEntry, JksError};

/// The file format, as read (carbon.xml's `Type` is a hint: JKS magic bytes decide).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum StoreFormat {
    Jks,
    Pkcs12,
}

/// A certificate of a keystore entry. Holds no key material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    pub alias: String,
    /// Whether the entry holds a private key (else a trusted certificate).
    pub key_entry: bool,
    pub subject: String,
    /// Upper-case hex with colons, as `keytool -list -v` shows it.
    pub sha1: String,
    pub sha256: String,
    /// Seconds since the epoch.
    pub not_after: i64,
    /// `not_after` as `YYYY-MM-DD` (UTC).
    pub not_after_date: String,
    /// DER of the SubjectPublicKeyInfo (to match a private key to its certificate).
    #[serde(skip)]
    pub spki: Vec<u8>,
}

/// Why a keystore cannot be read. Holds no password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Jks(#[from] JksError),
    #[error("the keystore password is wrong, or the file is not a PKCS12 keystore ({0})")]
    Pkcs12(String),
    #[error("certificate of alias {alias}: {reason}")]
    Cert { alias: String, reason: String },
    #[error("no private key with alias {0}")]
    NoKey(String),
    #[error("the key of alias {alias} is not an RSA key ({reason})")]
    NotRsa { alias: String, reason: String },
}

impl StoreError {
    /// A wrong password is the operator's input; a damaged file too.
    pub fn is_password(&self) -> bool {
        matches!(
            self,
            StoreError::Jks(JksError::BadPassword | JksError::BadKeyPassword)
                | StoreError::Pkcs12(_)
        )
    }
}

enum KeyMaterial {
    /// JKS: still protected by the key password.
    Protected(Vec<u8>),
    /// PKCS12: the store password opened it; PKCS#8 DER.
    Open(Vec<u8>),
}

/// A keystore read into memory. `Debug` shows no key material.
pub struct Store {
    pub path: PathBuf,
    pub format: StoreFormat,
    pub certs: Vec<CertInfo>,
    keys: Vec<(String, KeyMaterial)>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("entries", &self.certs.len())
            .finish()
    }
}

/// `AB:CD:...` of a digest.
pub fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub fn cert_info(alias: &str, key_entry: bool, der: &[u8]) -> Result<CertInfo, StoreError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| StoreError::Cert {
        alias: alias.to_owned(),
        reason: e.to_string(),
    })?;
    let not_after = cert.validity().not_after;
    let date = not_after.to_datetime();
    Ok(CertInfo {
        alias: alias.to_owned(),
        key_entry,
        subject: cert.subject().to_string(),
        sha1: colon_hex(&sha1::Sha1::digest(der)),
        sha256: colon_hex(&sha2::Sha256::digest(der)),
        not_after: not_after.timestamp(),
        not_after_date: format!(
            "{:04}-{:02}-{:02}",
            date.year(),
            u8::from(date.month()),
            date.day()
        ),
        spki: cert.tbs_certificate.subject_pki.raw.to_vec(),
    })
}

impl Store {
    /// Reads `path` (already in `bytes`) with the store password.
    pub fn read(path: &Path, bytes: &[u8], password: &str) -> Result<Store, StoreError> {
        if jks::looks_like_jks(bytes) {
            return Store::read_jks(path, bytes, password);
        }
        let store = p12_keystore::KeyStore::from_pkcs12(
            bytes,
            password,
            p12_keystore::Pkcs12ImportPolicy::Strict,
        )
        .map_err(|e| StoreError::Pkcs12(e.to_string()))?;
        let mut certs = Vec::new();
        let mut keys = Vec::new();
        for (alias, entry) in store.entries() {
            match entry {
                p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) => {
                    if let Some(leaf) = chain.certs().first() {
                        certs.push(cert_info(alias, true, leaf.as_der())?);
                    }
                    keys.push((
                        alias.clone(),
                        KeyMaterial::Open(chain.key().as_der().to_vec()),
                    ));
                }
                p12_keystore::KeyStoreEntry::Certificate(cert) => {
                    certs.push(cert_info(alias, false, cert.as_der())?);
                }
                p12_keystore::KeyStoreEntry::Secret(_) => {}
            }
        }
        Ok(Store {
            path: path.to_path_buf(),
            format: StoreFormat::Pkcs12,
            certs,
            keys,
        })
    }

    fn read_jks(path: &Path, bytes: &[u8], password: &str) -> Result<Store, StoreError> {
        let mut certs = Vec::new();
        let mut keys = Vec::new();
        for entry in jks::parse(bytes, password)? {
            match entry {
                JksEntry::Key {
                    alias,
                    protected,
                    chain,
                } => {
                    if let Some(leaf) = chain.first() {
                        certs.push(cert_info(&alias, true, leaf)?);
                    }
                    keys.push((alias, KeyMaterial::Protected(protected)));
                }
                JksEntry::Cert { alias, der } => certs.push(cert_info(&alias, false, &der)?),
            }
        }
        Ok(Store {
            path: path.to_path_buf(),
            format: StoreFormat::Jks,
            certs,
            keys,
        })
    }

    /// Aliases compare case-insensitively, as JKS stores them in lower case.
    pub fn cert(&self, alias: &str) -> Option<&CertInfo> {
        self.certs
            .iter()
            .find(|c| c.alias.eq_ignore_ascii_case(alias))
    }

    /// The RSA private key of `alias`, opened with `key_password` (JKS) — PKCS12 keys were
    /// opened with the store password.
    pub fn private_key(
        &self,
        alias: &str,
        key_password: &str,
    ) -> Result<rsa::PrivateKey, StoreError> {
        let (_, material) = self
            .keys
            .iter()
            .find(|(a, _)| a.eq_ignore_ascii_case(alias))
            .ok_or_else(|| StoreError::NoKey(alias.to_owned()))?;
        let der = match material {
            KeyMaterial::Protected(protected) => jks::recover_key(protected, key_password)?,
            KeyMaterial::Open(der) => der.clone(),
        };
        rsa::PrivateKey::from_pkcs8_der(&der).map_err(|e| StoreError::NotRsa {
            alias: alias.to_owned(),
            reason: e.to_string(),
        })
    }
}

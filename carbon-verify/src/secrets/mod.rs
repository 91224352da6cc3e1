//! Proof, offline, that every encrypted secret a Carbon home must read opens with that home's
//! primary key ([`verify_secrets`]): the keystores `carbon.xml` names (JKS or PKCS12; passwords
//! plain or secure-vault aliases), every `encrypted="true"` value under the deployment and
//! tenants trees, every encrypted secure-vault entry, each decrypted in memory exactly as
//! Carbon 4.4.x does. Only "opens" / "does not open" ever leaves this module: no plaintext,
//! no password, no ciphertext in a finding, error, log line or `Debug` output.

pub mod carry;
mod crypt;
mod find;
#[cfg(feature = "fixture")]
pub mod fixture;
pub mod jks;
mod keystore;

use std::path::{Path, PathBuf};

use carbon_config::{ProductHome, Secret};
use serde::Serialize;

pub use crypt::{Outcome, Scheme};
pub use find::{
    CIPHER_TEXT, Found, SECRET_CONF, Source, Vault, VaultValue, find_encrypted, read_vault,
};
pub use keystore::{CertInfo, Store, StoreError, StoreFormat};

use crate::report::Report;

/// The environment variable holding the primary keystore's password when `carbon.xml` gives it
/// as a secure-vault alias (what the operator types at a secure-vault server's start-up).
pub const KEYSTORE_PASSWORD_ENV: &str = "CARBON_KEYSTORE_PASSWORD";
/// The same for the old home, when it differs (default: [`KEYSTORE_PASSWORD_ENV`]).
pub const OLD_KEYSTORE_PASSWORD_ENV: &str = "CARBON_OLD_KEYSTORE_PASSWORD";
/// Warn when the primary certificate expires within this many days.
pub const EXPIRY_WARN_DAYS: i64 = 90;

/// Errors that stop the check. Hold no password, plaintext or ciphertext.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("{path}")]
    Config {
        path: PathBuf,
        #[source]
        error: carbon_config::ConfigError,
    },
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("product home {home}: {reason}")]
    NoKeystore { home: PathBuf, reason: String },
    #[error("keystore {path} (carbon.xml Security/{role})")]
    Keystore {
        path: PathBuf,
        role: String,
        #[source]
        error: StoreError,
    },
    #[error("{path} changed since the carry was planned")]
    Changed { path: PathBuf },
    #[error("{file}: secure-vault alias {alias}: {reason}")]
    Vault {
        file: PathBuf,
        alias: String,
        reason: String,
    },
}

impl SecretsError {
    pub fn kind(&self) -> carbon_fs::ErrorKind {
        use carbon_fs::ErrorKind;
        match self {
            SecretsError::Config { error, .. } => error.kind(),
            SecretsError::Io { .. } => ErrorKind::Io,
            SecretsError::Changed { .. } => ErrorKind::Unsafe,
            SecretsError::NoKeystore { .. }
            | SecretsError::Keystore { .. }
            | SecretsError::Vault { .. } => ErrorKind::BadInput,
        }
    }
}

/// What to check.
#[derive(Debug, Clone)]
pub struct SecretsOptions {
    /// The home whose key must open the values (the new home after replication).
    pub home: PathBuf,
    /// The primary keystore's password when carbon.xml gives an alias ([`KEYSTORE_PASSWORD_ENV`]).
    pub keystore_password: Option<Secret>,
    /// The old home: its key names what a failing value needs, and its keystores are compared.
    pub old_home: Option<PathBuf>,
    pub old_keystore_password: Option<Secret>,
    /// "Now" in seconds since the epoch (expiry warnings).
    pub now: i64,
}

/// The primary key a home encrypts with, as shown (no key material).
#[derive(Debug, Clone, Serialize)]
pub struct KeySummary {
    pub keystore: PathBuf,
    pub format: StoreFormat,
    pub cert: CertInfo,
}

/// One encrypted value and whether it opens. Never holds the value.
#[derive(Debug, Clone, Serialize)]
pub struct ValueCheck {
    #[serde(flatten)]
    pub found: Found,
    pub opens: bool,
    /// How it opened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<Scheme>,
    /// Why it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// SHA-256 fingerprint of the certificate whose key opens it, when known (the old home's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needs: Option<String>,
    /// Given the old home: whether the old key opens it (`false` = the problem is pre-existing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_opens: Option<bool>,
}

/// The result of [`verify_secrets`].
#[derive(Debug, Clone, Serialize)]
pub struct SecretsReport {
    pub home: PathBuf,
    pub key: KeySummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_key: Option<KeySummary>,
    pub values: Vec<ValueCheck>,
    pub report: Report,
}

impl SecretsReport {
    pub fn opening(&self) -> usize {
        self.values.iter().filter(|v| v.opens).count()
    }
}

/// A home's keys, opened.
pub struct HomeKeys {
    pub root: PathBuf,
    pub primary: Store,
    pub alias: String,
    pub cert: CertInfo,
    key: rsa::PrivateKey,
    pub trust: Option<Result<Store, String>>,
    pub vault: Vault,
    /// `org.wso2.CipherTransformation` (kernel 4.4.21+), if set.
    pub transformation: Option<String>,
}

impl std::fmt::Debug for HomeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HomeKeys")
            .field("root", &self.root)
            .field("primary", &self.primary)
            .field("alias", &self.alias)
            .finish_non_exhaustive()
    }
}

impl HomeKeys {
    pub fn summary(&self) -> KeySummary {
        KeySummary {
            keystore: self.primary.path.clone(),
            format: self.primary.format,
            cert: self.cert.clone(),
        }
    }

    /// Whether `found` opens with this home's key; never returns the plaintext.
    pub fn try_open(&self, found: &Found) -> Outcome {
        let scheme = match found.source {
            Source::SecureVault => Scheme::Pkcs1,
            Source::UserStore | Source::Deployment => self
                .transformation
                .as_deref()
                .and_then(Scheme::from_transformation)
                .unwrap_or(Scheme::RawRsa),
        };
        crypt::try_open(&self.key, &self.cert.sha1, &found.ciphertext, scheme)
    }
}

/// A password from carbon.xml: plain, or an alias resolved from the environment value or the
/// vault's `[plain]` entry.
fn resolve(
    secret: &Secret,
    env: Option<&Secret>,
    vault: &Vault,
    what: &str,
) -> Result<Option<String>, SecretsError> {
    match secret {
        Secret::Plain(p) => Ok(Some(p.clone())),
        Secret::Empty => Ok(None),
        Secret::Encrypted(_) => Err(SecretsError::Vault {
            file: PathBuf::from(carbon_config::home::CARBON_XML),
            alias: what.to_owned(),
            reason: "an encrypted keystore password cannot be read".into(),
        }),
        Secret::Alias(alias) => {
            if let Some(p) = env.and_then(Secret::plain) {
                return Ok(Some(p.to_owned()));
            }
            match vault.get(alias) {
                Some(VaultValue::Plain(p)) => Ok(Some(p.clone())),
                Some(VaultValue::Encrypted(_)) => Err(SecretsError::Vault {
                    file: vault.file.clone(),
                    alias: alias.clone(),
                    reason: format!(
                        "the {what} is encrypted in the vault; give it in {KEYSTORE_PASSWORD_ENV}"
                    ),
                }),
                None => Err(SecretsError::Vault {
                    file: vault.file.clone(),
                    alias: alias.clone(),
                    reason: format!(
                        "carbon.xml names it for the {what} but the vault has no such entry"
                    ),
                }),
            }
        }
    }
}

fn read_store(ks: &carbon_config::Keystore, password: &str) -> Result<Store, SecretsError> {
    let bytes = std::fs::read(&ks.path).map_err(|error| SecretsError::Io {
        path: ks.path.clone(),
        error,
    })?;
    Store::read(&ks.path, &bytes, password).map_err(|error| SecretsError::Keystore {
        path: ks.path.clone(),
        role: ks.role.clone(),
        error,
    })
}

/// Opens the primary keystore (and its key) and the trust store `home`'s carbon.xml names.
pub fn open_keys(home: &Path, password: Option<&Secret>) -> Result<HomeKeys, SecretsError> {
    let product = ProductHome::open(home).map_err(|error| SecretsError::Config {
        path: home.to_path_buf(),
        error,
    })?;
    let vault = find::read_vault(home)?;
    let ks = product
        .primary_keystore()
        .ok_or_else(|| SecretsError::NoKeystore {
            home: home.to_path_buf(),
            reason: "carbon.xml names no Security/KeyStore".into(),
        })?;
    let store_password =
        resolve(&ks.password, password, &vault, "keystore password")?.ok_or_else(|| {
            SecretsError::NoKeystore {
                home: home.to_path_buf(),
                reason: "carbon.xml gives Security/KeyStore no Password".into(),
            }
        })?;
    let key_password = resolve(&ks.key_password, password, &vault, "key password")?
        .unwrap_or_else(|| store_password.clone());
    let alias = ks
        .key_alias
        .clone()
        .ok_or_else(|| SecretsError::NoKeystore {
            home: home.to_path_buf(),
            reason: "carbon.xml gives Security/KeyStore no KeyAlias".into(),
        })?;
    let primary = read_store(ks, &store_password)?;
    let key_err = |error| SecretsError::Keystore {
        path: ks.path.clone(),
        role: ks.role.clone(),
        error,
    };
    let cert = primary
        .cert(&alias)
        .filter(|c| c.key_entry)
        .cloned()
        .ok_or_else(|| key_err(StoreError::NoKey(alias.clone())))?;
    let key = primary
        .private_key(&alias, &key_password)
        .map_err(key_err)?;
    let trust = product
        .keystores
        .iter()
        .find(|k| k.role == "TrustStore")
        .map(|ts| {
            let pw = resolve(&ts.password, None, &vault, "trust store password")
                .map_err(|e| e.to_string())?
                .unwrap_or_default();
            read_store(ts, &pw).map_err(|e| carbon_fs::error_chain(&e))
        });
    Ok(HomeKeys {
        root: home.to_path_buf(),
        primary,
        alias,
        cert,
        key,
        trust,
        transformation: find::cipher_transformation(home)?,
        vault,
    })
}

fn object(found: &Found) -> String {
    format!("{}:{} {}", found.file.display(), found.line, found.element)
}

fn check_value(
    new: &HomeKeys,
    old: Option<&HomeKeys>,
    found: &Found,
    report: &mut Report,
) -> ValueCheck {
    let outcome = new.try_open(found);
    let mut check = ValueCheck {
        found: found.clone(),
        opens: false,
        scheme: None,
        reason: None,
        needs: None,
        old_opens: None,
    };
    match outcome {
        Outcome::Opens(scheme) => {
            check.opens = true;
            check.scheme = Some(scheme);
            report.info(
                "secret-opens",
                object(found),
                format!("opens with key {} ({})", new.alias, new.cert.sha256),
            );
        }
        Outcome::Unsupported(what) => {
            report.warning(
                "secret-opens",
                object(found),
                format!("cannot be checked: {what}"),
            );
            check.reason = Some(what);
        }
        Outcome::Fails { reason, thumbprint } => {
            let old_opens = old.filter(|o| matches!(o.try_open(found), Outcome::Opens(_)));
            check.old_opens = old.map(|_| old_opens.is_some());
            let needs = match (old_opens, &thumbprint) {
                (Some(o), _) => format!(
                    "it needs the old home's key {} ({}); the new home's key is {} ({}): carry the old keystore",
                    o.alias, o.cert.sha256, new.alias, new.cert.sha256
                ),
                (None, Some(tp)) => format!(
                    "it needs the key of the certificate with SHA-1 {tp}; this home's key is {} (SHA-1 {})",
                    new.alias, new.cert.sha1
                ),
                (None, None) => format!(
                    "this home's key is {} ({}); the key it needs is unknown",
                    new.alias, new.cert.sha256
                ),
            };
            check.needs = old_opens.map(|o| o.cert.sha256.clone()).or(thumbprint);
            report.error(
                "secret-opens",
                object(found),
                format!("does not open: {reason}; {needs}"),
            );
            check.reason = Some(reason);
        }
    }
    check
}

fn check_expiry(keys: &HomeKeys, now: i64, report: &mut Report) {
    let left = (keys.cert.not_after - now) / 86_400;
    let object = format!("{} {}", keys.primary.path.display(), keys.alias);
    if keys.cert.not_after <= now {
        report.warning(
            "keystore-expiry",
            object,
            format!("the certificate expired on {}", keys.cert.not_after_date),
        );
    } else if left < EXPIRY_WARN_DAYS {
        report.warning(
            "keystore-expiry",
            object,
            format!(
                "the certificate expires on {} ({left} days)",
                keys.cert.not_after_date
            ),
        );
    }
}

fn compare(old: &HomeKeys, new: &HomeKeys, report: &mut Report) {
    if old.cert.sha256 != new.cert.sha256 {
        report.warning(
            "keystore-key",
            format!("{} {}", new.primary.path.display(), new.alias),
            format!(
                "the new home's primary key ({}) is not the old home's ({} {}): values the old server encrypted open only with the old key",
                new.cert.sha256, old.alias, old.cert.sha256
            ),
        );
    }
    let (Some(Ok(old_trust)), Some(Ok(new_trust))) = (&old.trust, &new.trust) else {
        return;
    };
    for cert in &old_trust.certs {
        if !new_trust.certs.iter().any(|c| c.sha256 == cert.sha256) {
            report.warning(
                "truststore-entry",
                format!("{} {}", new_trust.path.display(), cert.alias),
                format!(
                    "the old trust store trusts {} ({}), the new one does not",
                    cert.subject, cert.sha256
                ),
            );
        }
    }
}

/// Aliases used in the home's configuration with no vault entry.
fn check_aliases(home: &Path, vault: &Vault, report: &mut Report) -> Result<(), SecretsError> {
    for (file, line, alias) in find::find_aliases(home)? {
        if vault.get(&alias).is_none() {
            report.error(
                "vault-alias",
                format!("{}:{line}", file.display()),
                format!(
                    "secure-vault alias {alias} has no entry in {}",
                    vault.file.display()
                ),
            );
        }
    }
    Ok(())
}

/// Every encrypted value of `home` (deployment and tenants trees, then the vault), without
/// opening any keystore: nothing to prove when it is empty.
pub fn encrypted_values(home: &Path) -> Result<Vec<Found>, SecretsError> {
    let mut found = find::find_encrypted(home)?;
    found.extend(find::vault_values(&find::read_vault(home)?));
    Ok(found)
}

/// Checks every encrypted value of `opts.home` against its own primary key.
pub fn verify_secrets(opts: &SecretsOptions) -> Result<SecretsReport, SecretsError> {
    let new = open_keys(&opts.home, opts.keystore_password.as_ref())?;
    let old = opts
        .old_home
        .as_deref()
        .map(|o| {
            open_keys(
                o,
                opts.old_keystore_password
                    .as_ref()
                    .or(opts.keystore_password.as_ref()),
            )
        })
        .transpose()?;
    let mut report = Report::default();
    if let Some(Err(reason)) = &new.trust {
        report.error("truststore", "Security/TrustStore", reason.clone());
    }
    check_aliases(&opts.home, &new.vault, &mut report)?;
    let mut found = find::find_encrypted(&opts.home)?;
    found.extend(find::vault_values(&new.vault));
    let values = found
        .iter()
        .map(|f| check_value(&new, old.as_ref(), f, &mut report))
        .collect();
    check_expiry(&new, opts.now, &mut report);
    if let Some(old) = &old {
        compare(old, &new, &mut report);
    }
    Ok(SecretsReport {
        home: opts.home.clone(),
        key: new.summary(),
        old_key: old.as_ref().map(HomeKeys::summary),
        values,
        report,
    })
}

//! What the operator added to the old home outside `deployment/server`, planned as file copies:
//! the keystores and trust stores the old carbon.xml names, the secure-vault files and
//! `repository/resources/security/*` (copied when the new home has none or the stock one;
//! a conflict when both sides are customised), and the extra files of
//! `repository/components/{lib,dropins,extensions,patches}` (listed; copied when asked).
//! Reads only: [`apply_carry`] writes into the new home, never into the old one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::SecretsError;
use super::find::{CIPHER_TEXT, SECRET_CONF};

/// SHA-256 of the keystores Carbon 4.4.x kernels ship (`wso2carbon.jks`,
/// `client-truststore.jks`, v4.4.6 and v4.4.7: the same blobs).
pub const STOCK_SHA256: &[&str] = &[
    "acf61f58531b860261d77df6ee173e6c7de3841498653969991015315741d33b",
    "0e7ad7356cf93f3bb3a89171f9282658ebdb976f161bbbc045eb8c380a3ab0a3",
];
/// The stock key's certificate (`wso2carbon`, CN=localhost, O=WSO2), SHA-256.
pub const STOCK_KEY_SHA256: &str = "1D:72:9F:B8:C4:68:EA:D8:20:A2:A0:BE:4A:DB:8F:BA:BE:D9:AB:1B:A1:26:C9:D2:14:66:C5:70:6E:8E:4D:30";

pub const SECURITY_DIR: &str = "repository/resources/security";
pub const COMPONENT_DIRS: &[&str] = &[
    "repository/components/lib",
    "repository/components/dropins",
    "repository/components/extensions",
    "repository/components/patches",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CarryAction {
    /// Copied into the new home (absent there, or the stock file).
    Copy,
    /// Both homes have their own version: left for the operator.
    Conflict,
    /// Already the same bytes.
    Same,
    /// A component the new home lacks, listed but not copied (`[carry] components = false`).
    Listed,
}

/// One file to carry, relative to both homes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarryFile {
    pub file: PathBuf,
    pub action: CarryAction,
    pub size: u64,
    pub sha256: String,
    /// The new home's file, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_sha256: Option<String>,
    /// Keystores: SHA-256 of the first key entry's certificate, old → new.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    pub reason: String,
}

/// The plan: security files and components.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarryFiles {
    pub security: Vec<CarryFile>,
    pub components: Vec<CarryFile>,
    pub warnings: Vec<String>,
}

impl CarryFiles {
    /// What [`apply_carry`] copies.
    pub fn copies(&self) -> impl Iterator<Item = &CarryFile> {
        self.security
            .iter()
            .chain(&self.components)
            .filter(|f| f.action == CarryAction::Copy)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SecretsError + '_ {
    move |error| SecretsError::Io {
        path: path.to_path_buf(),
        error,
    }
}

fn files_under(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), SecretsError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let meta = std::fs::symlink_metadata(&path).map_err(io(&path))?;
        if meta.is_dir() {
            files_under(root, &path, out)?;
        } else if meta.is_file() {
            out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
        }
    }
    Ok(())
}

/// The first key entry's certificate fingerprint, if the file is a keystore `password` opens.
fn key_fingerprint(path: &Path, bytes: &[u8], password: Option<&str>) -> Option<String> {
    let store = super::Store::read(path, bytes, password?).ok()?;
    store
        .certs
        .iter()
        .find(|c| c.key_entry)
        .map(|c| c.sha256.clone())
}

fn is_keystore(rel: &Path) -> bool {
    rel.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        matches!(
            e.to_ascii_lowercase().as_str(),
            "jks" | "p12" | "pfx" | "keystore"
        )
    })
}

/// What to carry besides the two homes.
#[derive(Debug, Clone, Copy, Default)]
pub struct CarryOptions<'a> {
    /// The keystores' password (for the fingerprints shown; the stock `wso2carbon` is tried too).
    pub password: Option<&'a str>,
    /// Copy the extra component files instead of only listing them.
    pub components: bool,
    /// The old product's unmodified distribution: a component file it has with the same bytes
    /// was not added by the operator and is not carried.
    pub old_dist: Option<&'a Path>,
}

/// Plans the carry from `old` into `new`.
pub fn plan_carry(
    old: &Path,
    new: &Path,
    opts: CarryOptions<'_>,
) -> Result<CarryFiles, SecretsError> {
    let CarryOptions {
        password,
        components,
        old_dist,
    } = opts;
    let mut plan = CarryFiles::default();
    let mut security = Vec::new();
    files_under(old, &old.join(SECURITY_DIR), &mut security)?;
    // Keystores named outside the security directory, and the secure-vault files.
    if let Ok(home) = carbon_config::ProductHome::open(old) {
        for ks in &home.keystores {
            if let Ok(rel) = ks.path.strip_prefix(old)
                && ks.exists
                && !security.iter().any(|s| s == rel)
            {
                security.push(rel.to_path_buf());
            }
        }
    }
    for vault in [CIPHER_TEXT, SECRET_CONF] {
        if old.join(vault).is_file() {
            security.push(PathBuf::from(vault));
        }
    }
    for rel in security {
        let src = old.join(&rel);
        let bytes = std::fs::read(&src).map_err(io(&src))?;
        let sha256 = carbon_fs::sha256_hex(&bytes);
        let dst = new.join(&rel);
        let new_bytes = match std::fs::read(&dst) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(&dst)(e)),
        };
        let new_sha256 = new_bytes.as_deref().map(carbon_fs::sha256_hex);
        let fingerprint = is_keystore(&rel).then(|| {
            let fp = |p: &Path, b: &[u8]| {
                key_fingerprint(p, b, password)
                    .or_else(|| key_fingerprint(p, b, Some("wso2carbon")))
                    .unwrap_or_else(|| "?".into())
            };
            match &new_bytes {
                Some(nb) => format!("{} → {}", fp(&src, &bytes), fp(&dst, nb)),
                None => fp(&src, &bytes),
            }
        });
        let old_stock = STOCK_SHA256.contains(&sha256.as_str());
        let new_stock = new_sha256
            .as_deref()
            .is_some_and(|h| STOCK_SHA256.contains(&h))
            || (is_keystore(&rel)
                && new_bytes.as_deref().is_some_and(|nb| {
                    key_fingerprint(&dst, nb, Some("wso2carbon")).as_deref()
                        == Some(STOCK_KEY_SHA256)
                }));
        let (action, reason) = match &new_sha256 {
            Some(h) if *h == sha256 => (CarryAction::Same, "the same in both homes".to_owned()),
            _ if old_stock => (
                CarryAction::Same,
                "the old home has the stock file".to_owned(),
            ),
            None => (CarryAction::Copy, "the new home has none".to_owned()),
            Some(_) if new_stock => (
                CarryAction::Copy,
                "the new home has the stock file; the old one replaces it".to_owned(),
            ),
            Some(_) => (
                CarryAction::Conflict,
                "both homes have their own version: merge by hand (keytool -importkeystore)"
                    .to_owned(),
            ),
        };
        plan.security.push(CarryFile {
            file: rel,
            action,
            size: bytes.len() as u64,
            sha256,
            new_sha256,
            fingerprint,
            reason,
        });
    }
    for dir in COMPONENT_DIRS {
        let mut files = Vec::new();
        files_under(old, &old.join(dir), &mut files)?;
        for rel in files {
            if new.join(&rel).exists() {
                continue;
            }
            let src = old.join(&rel);
            let (size, sha256) = carbon_fs::sha256_file(&src).map_err(io(&src))?;
            if let Some(dist) = old_dist
                && carbon_fs::sha256_file(&dist.join(&rel)).is_ok_and(|(_, h)| h == sha256)
            {
                continue;
            }
            plan.components.push(CarryFile {
                file: rel,
                action: if components {
                    CarryAction::Copy
                } else {
                    CarryAction::Listed
                },
                size,
                sha256,
                new_sha256: None,
                fingerprint: None,
                reason: if old_dist.is_some() {
                    "added to the old distribution; the new home lacks it".into()
                } else {
                    "the new home lacks it".into()
                },
            });
        }
    }
    if !plan.components.is_empty() {
        plan.warnings.push(format!(
            "{} component file(s) the new home lacks: bundles and jars built for the old version may need rebuilding for the new one",
            plan.components.len()
        ));
    }
    Ok(plan)
}

/// Copies what the plan says into `new` (atomically, each file re-hashed against the plan);
/// a file already there with the planned bytes is left as it is, so a resumed run repeats
/// nothing. Returns the files written.
pub fn apply_carry(
    old: &Path,
    new: &Path,
    plan: &CarryFiles,
) -> Result<Vec<PathBuf>, SecretsError> {
    let mut written = Vec::new();
    for file in plan.copies() {
        let src = old.join(&file.file);
        let dst = new.join(&file.file);
        if std::fs::read(&dst).is_ok_and(|b| carbon_fs::sha256_hex(&b) == file.sha256) {
            continue;
        }
        let bytes = std::fs::read(&src).map_err(io(&src))?;
        if carbon_fs::sha256_hex(&bytes) != file.sha256 {
            return Err(SecretsError::Changed { path: src });
        }
        if let Some(dir) = dst.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        // The source's mode: a keystore stays as private as the operator made it.
        let mode = std::fs::metadata(&src).map_err(io(&src))?.permissions();
        carbon_fs::write_atomic(&dst, &bytes, Some(mode)).map_err(io(&dst))?;
        written.push(file.file.clone());
    }
    Ok(written)
}

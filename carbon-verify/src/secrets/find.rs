//! Every encrypted value a Carbon server reads at start-up or deployment: `encrypted="true"`
//! elements in the deployment tree (user stores of the super tenant and of every tenant, event
//! publishers, ...) and the encrypted entries of the secure vault (`cipher-text.properties`).

use std::path::{Path, PathBuf};

use carbon_config::XmlDoc;
use serde::Serialize;

use super::SecretsError;

pub const DEPLOYMENT_DIR: &str = "repository/deployment/server";
pub const CIPHER_TEXT: &str = "repository/conf/security/cipher-text.properties";
pub const SECRET_CONF: &str = "repository/conf/security/secret-conf.properties";
pub const CARBON_PROPERTIES: &str = "repository/conf/carbon.properties";

/// Where an encrypted value lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// A secondary user store (`.../userstores/*.xml`).
    UserStore,
    /// Another deployment file with an `encrypted="true"` element.
    Deployment,
    /// An encrypted secure-vault entry.
    SecureVault,
}

/// One encrypted value. The ciphertext is kept for the check and never serialized or shown.
#[derive(Clone, Serialize)]
pub struct Found {
    /// Relative to the home (or absolute when the tenants directory is outside it).
    pub file: PathBuf,
    /// `UserStoreManager/Property[@name='password']`, or the vault alias.
    pub element: String,
    pub line: usize,
    pub source: Source,
    #[serde(skip)]
    pub ciphertext: String,
}

impl std::fmt::Debug for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{} {}", self.file.display(), self.line, self.element)
    }
}

/// A secure-vault entry: `[plain]` (brackets) or a ciphertext. `Debug` shows neither.
#[derive(Clone)]
pub enum VaultValue {
    Plain(String),
    Encrypted(String),
}

impl std::fmt::Debug for VaultValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VaultValue::Plain(_) => "<plain, redacted>",
            VaultValue::Encrypted(_) => "<encrypted, redacted>",
        })
    }
}

/// `cipher-text.properties`: alias → value, with line numbers.
#[derive(Clone, Default)]
pub struct Vault {
    pub file: PathBuf,
    pub entries: Vec<(String, usize, VaultValue)>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Vault({}, {} entries)",
            self.file.display(),
            self.entries.len()
        )
    }
}

impl Vault {
    pub fn get(&self, alias: &str) -> Option<&VaultValue> {
        self.entries
            .iter()
            .find(|(a, _, _)| a == alias)
            .map(|(_, _, v)| v)
    }
}

/// Reads a Java properties file's `key=value` lines (no continuation lines: the cipher tool
/// writes none). A missing file is an empty vault.
pub fn read_vault(home: &Path) -> Result<Vault, SecretsError> {
    let path = home.join(CIPHER_TEXT);
    let text = match std::fs::read(&path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Vault {
                file: PathBuf::from(CIPHER_TEXT),
                entries: Vec::new(),
            });
        }
        Err(error) => return Err(SecretsError::Io { path, error }),
    };
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some(at) = line.find(['=', ':']) else {
            continue;
        };
        let key = line[..at].trim().to_owned();
        let value = line[at + 1..].trim();
        let value = match value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            Some(plain) => VaultValue::Plain(plain.to_owned()),
            None => VaultValue::Encrypted(value.to_owned()),
        };
        entries.push((key, i + 1, value));
    }
    Ok(Vault {
        file: PathBuf::from(CIPHER_TEXT),
        entries,
    })
}

/// `org.wso2.CipherTransformation` from `repository/conf/carbon.properties` (kernel 4.4.23+).
pub fn cipher_transformation(home: &Path) -> Result<Option<String>, SecretsError> {
    let path = home.join(CARBON_PROPERTIES);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(SecretsError::Io { path, error }),
    };
    Ok(text.lines().find_map(|l| {
        let l = l.trim();
        let rest = l.strip_prefix("org.wso2.CipherTransformation")?;
        let value = rest.trim_start().strip_prefix(['=', ':'])?.trim();
        (!value.is_empty()).then(|| value.to_owned())
    }))
}

fn xml_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), SecretsError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => {
            return Err(SecretsError::Io {
                path: dir.to_path_buf(),
                error,
            });
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let meta = std::fs::symlink_metadata(&path).map_err(|error| SecretsError::Io {
            path: path.clone(),
            error,
        })?;
        if meta.is_dir() {
            xml_files(&path, out)?;
        } else if meta.is_file() && path.extension().is_some_and(|e| e == "xml") {
            out.push(path);
        }
    }
    Ok(())
}

/// A name for an element: its path from the root, with `[@name='x']` where it has a name.
fn element_name(doc: &XmlDoc, id: carbon_config::NodeId) -> String {
    let mut parts = Vec::new();
    let mut at = Some(id);
    while let Some(node) = at {
        let mut part = doc.local_name(node).to_owned();
        if let Some(name) = doc.attr(node, "name") {
            part.push_str(&format!("[@name='{name}']"));
        }
        parts.push(part);
        at = doc.parent(node);
    }
    parts.reverse();
    parts.join("/")
}

fn has_encrypted_attr(bytes: &[u8]) -> bool {
    bytes
        .windows(9)
        .any(|w| w.eq_ignore_ascii_case(b"encrypted"))
}

fn scan_file(home: &Path, path: &Path, out: &mut Vec<Found>) -> Result<(), SecretsError> {
    let bytes = std::fs::read(path).map_err(|error| SecretsError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    if !has_encrypted_attr(&bytes) {
        return Ok(());
    }
    let doc = XmlDoc::parse(path, bytes).map_err(|error| SecretsError::Config {
        path: path.to_path_buf(),
        error,
    })?;
    let rel = path.strip_prefix(home).unwrap_or(path).to_path_buf();
    let is_store = path
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|d| d == "userstores");
    let mut stack = vec![doc.root()];
    while let Some(id) = stack.pop() {
        let children: Vec<_> = doc.children(id).collect();
        stack.extend(children.into_iter().rev());
        if !doc
            .attr(id, "encrypted")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        {
            continue;
        }
        let Some(text) = doc.text_trimmed(id).filter(|t| !t.is_empty()) else {
            continue;
        };
        out.push(Found {
            file: rel.clone(),
            element: element_name(&doc, id),
            line: doc.line(id),
            source: if is_store {
                Source::UserStore
            } else {
                Source::Deployment
            },
            ciphertext: text,
        });
    }
    Ok(())
}

/// Every `encrypted="true"` value under the deployment tree and the tenants directory, in
/// path order.
pub fn find_encrypted(home: &Path) -> Result<Vec<Found>, SecretsError> {
    let tenants = carbon_config::home::tenants_dir(home).map_err(|error| SecretsError::Config {
        path: home.to_path_buf(),
        error,
    })?;
    let mut files = Vec::new();
    xml_files(&home.join(DEPLOYMENT_DIR), &mut files)?;
    xml_files(&tenants, &mut files)?;
    let mut found = Vec::new();
    for file in &files {
        scan_file(home, file, &mut found)?;
    }
    Ok(found)
}

/// The vault's encrypted entries as values to check.
pub fn vault_values(vault: &Vault) -> Vec<Found> {
    vault
        .entries
        .iter()
        .filter_map(|(alias, line, value)| match value {
            VaultValue::Encrypted(text) => Some(Found {
                file: vault.file.clone(),
                element: alias.clone(),
                line: *line,
                source: Source::SecureVault,
                ciphertext: text.clone(),
            }),
            VaultValue::Plain(_) => None,
        })
        .collect()
}

/// `svns:secretAlias` attributes in `repository/conf` and the deployment tree:
/// (file relative to the home, line, alias).
pub fn find_aliases(home: &Path) -> Result<Vec<(PathBuf, usize, String)>, SecretsError> {
    let mut files = Vec::new();
    xml_files(&home.join("repository/conf"), &mut files)?;
    xml_files(&home.join(DEPLOYMENT_DIR), &mut files)?;
    let mut out = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).map_err(|error| SecretsError::Io {
            path: path.clone(),
            error,
        })?;
        if !bytes.windows(11).any(|w| w == b"secretAlias") {
            continue;
        }
        let doc = XmlDoc::parse(path, bytes).map_err(|error| SecretsError::Config {
            path: path.clone(),
            error,
        })?;
        let rel = path.strip_prefix(home).unwrap_or(path).to_path_buf();
        let mut stack = vec![doc.root()];
        while let Some(id) = stack.pop() {
            let children: Vec<_> = doc.children(id).collect();
            stack.extend(children.into_iter().rev());
            if let Some(alias) = doc.attr(id, "secretAlias") {
                out.push((rel.clone(), doc.line(id), alias));
            }
        }
    }
    Ok(out)
}

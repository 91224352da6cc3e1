//! Which database each datasource of the old home uses, and where its staging copy goes.
//!
//! Every `<datasource>` in every `*-datasources.xml` of the old home is considered. Default
//! staging: the same server and credentials, database `<source>_staging`. Embedded databases
//! (H2, SQLite files) are copied as files into the new home at the same relative path.
//! Datasources that share one database are copied once.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use carbon_config::home::{Datasource, ProductHome};
use carbon_config::jdbc::JdbcUrl;
use carbon_config::secret::Secret;
use carbon_db::{DbUrl, Vendor};
use serde::Serialize;

use super::config::{DatasourceConfig, Settings};

/// One database to copy, and every datasource of the old home that uses it.
#[derive(Debug, Clone)]
pub struct Pair {
    /// The first datasource naming this database; others are in `also_used_by`.
    pub name: String,
    pub also_used_by: Vec<String>,
    pub vendor: Vendor,
    pub source: DbUrl,
    pub staging: DbUrl,
    /// What the new home's datasource should say (no credentials in it).
    pub staging_jdbc: JdbcUrl,
    pub staging_username: Option<String>,
    pub staging_password: Option<Secret>,
    /// Embedded: copied as files into the new home.
    pub embedded: bool,
}

/// What the plan and report show of a pair: redacted, no secret.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PairView {
    pub datasource: String,
    pub also_used_by: Vec<String>,
    pub vendor: Vendor,
    pub source: String,
    pub staging: String,
    pub staging_jdbc: String,
    pub embedded: bool,
}

impl Pair {
    pub fn view(&self) -> PairView {
        PairView {
            datasource: self.name.clone(),
            also_used_by: self.also_used_by.clone(),
            vendor: self.vendor,
            source: self.source.to_string(),
            staging: self.staging.to_string(),
            staging_jdbc: self.staging_jdbc.redacted(),
            embedded: self.embedded,
        }
    }

    /// A file-system-safe name for backups and journals.
    pub fn slug(&self) -> String {
        self.name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    }
}

/// The pair that copied the database `home`'s user realm uses (user-mgt.xml), else the first.
pub fn realm_pair<'a>(home: &ProductHome, pairs: &'a [Pair]) -> Option<&'a Pair> {
    let realm = home
        .user_mgt
        .datasource
        .as_deref()
        .and_then(|jndi| home.datasource_by_jndi(jndi))
        .map(|d| d.name.as_str());
    pairs
        .iter()
        .find(|p| realm.is_some_and(|r| p.name == r || p.also_used_by.iter().any(|a| a == r)))
        .or_else(|| pairs.first())
}

/// Resolves every datasource of `old` into a pair; errors name the datasource at fault.
pub fn resolve(settings: &Settings, old: &ProductHome, new: &ProductHome) -> Result<Vec<Pair>> {
    let mut pairs: Vec<Pair> = Vec::new();
    for ds in &old.datasources {
        let config = settings
            .datasources
            .get(&ds.name)
            .cloned()
            .unwrap_or_default();
        let pair = resolve_one(ds, &config, &old.root, &new.root)
            .with_context(|| format!("datasource {} ({})", ds.name, ds.file.display()))?;
        match pairs
            .iter_mut()
            .find(|p| p.source.same_database(&pair.source))
        {
            Some(existing) => existing.also_used_by.push(pair.name),
            None => pairs.push(pair),
        }
    }
    for name in settings.datasources.keys() {
        if old.datasource(name).is_none() {
            bail!(
                "[datasources.{name}] in the configuration: the old home has no datasource {name}"
            );
        }
    }
    Ok(pairs)
}

fn resolve_one(
    ds: &Datasource,
    config: &DatasourceConfig,
    old_root: &Path,
    new_root: &Path,
) -> Result<Pair> {
    let Some(jdbc) = &ds.url else {
        bail!(
            "{}",
            ds.url_problem.clone().unwrap_or_else(|| "no <url>".into())
        );
    };
    let source_password = source_password(ds, config)?;
    let source = DbUrl::parse_in(&jdbc.as_str(), Some(old_root))?
        .with_credentials(ds.username.clone(), source_password.clone());
    let embedded = matches!(source.vendor(), Vendor::H2 | Vendor::Sqlite);
    let (staging_jdbc, staging_username, staging_password) = match &config.staging_url {
        Some(url) => {
            let password = match &config.staging_password_env {
                Some(var) => Some(env_secret(var)?),
                None => source_password.clone(),
            };
            let username = config
                .staging_username
                .clone()
                .or_else(|| ds.username.clone());
            (JdbcUrl::parse(url)?, username, password)
        }
        None if embedded => {
            let jdbc = embedded_staging(jdbc, &source, old_root)?;
            (jdbc, ds.username.clone(), source_password.clone())
        }
        None => {
            let staging_db = format!("{}_staging", source.database());
            let password = match &config.staging_password_env {
                Some(var) => Some(env_secret(var)?),
                None => source_password.clone(),
            };
            let username = config
                .staging_username
                .clone()
                .or_else(|| ds.username.clone());
            (jdbc.with_database(&staging_db), username, password)
        }
    };
    let staging_home = if embedded { new_root } else { old_root };
    let staging = DbUrl::parse_in(&staging_jdbc.as_str(), Some(staging_home))?
        .with_credentials(staging_username.clone(), staging_password.clone());
    Ok(Pair {
        name: ds.name.clone(),
        also_used_by: Vec::new(),
        vendor: source.vendor(),
        source,
        staging,
        staging_jdbc,
        staging_username,
        staging_password: staging_password.map(Secret::from),
        embedded,
    })
}

/// Inside the old home, an embedded database keeps its relative path (it lands in the new
/// home); elsewhere, the staging file sits beside it with `_staging` added to its name.
fn embedded_staging(jdbc: &JdbcUrl, source: &DbUrl, old_root: &Path) -> Result<JdbcUrl> {
    let Some(path) = source.path() else {
        return Ok(jdbc.clone());
    };
    let inside = path
        .canonicalize()
        .ok()
        .zip(old_root.canonicalize().ok())
        .is_some_and(|(p, r)| p.starts_with(r))
        || path.starts_with(old_root);
    if inside {
        return Ok(jdbc.clone());
    }
    let written = path.display().to_string();
    let staged = match (path.file_stem(), path.extension()) {
        (Some(stem), Some(ext)) => path.with_file_name(format!(
            "{}_staging.{}",
            stem.to_string_lossy(),
            ext.to_string_lossy()
        )),
        _ => PathBuf::from(format!("{written}_staging")),
    };
    let text = jdbc.as_str();
    if !text.contains(&written) {
        bail!(
            "cannot derive a staging file from {}: set staging_url",
            jdbc.redacted()
        );
    }
    Ok(JdbcUrl::parse(&text.replacen(
        &written,
        &staged.display().to_string(),
        1,
    ))?)
}

fn source_password(ds: &Datasource, config: &DatasourceConfig) -> Result<Option<String>> {
    if let Some(var) = &config.source_password_env {
        return env_secret(var).map(Some);
    }
    match &ds.password {
        Secret::Plain(password) => Ok(Some(password.clone())),
        Secret::Empty => Ok(None),
        Secret::Alias(alias) => bail!(
            "the password is the secure-vault alias {alias}; set source_password_env in [datasources.{}]",
            ds.name
        ),
        Secret::Encrypted(_) => bail!(
            "the password is encrypted; set source_password_env in [datasources.{}]",
            ds.name
        ),
    }
}

/// Reads a secret from the environment variable the configuration names.
pub fn env_secret(var: &str) -> Result<String> {
    std::env::var(var).with_context(|| {
        format!("environment variable {var} (named in the configuration) is not set")
    })
}

/// Files an embedded source consists of, relative to the old home, for the plan.
pub fn embedded_files(pair: &Pair) -> Vec<PathBuf> {
    let Some(path) = pair.source.path() else {
        return Vec::new();
    };
    match pair.vendor {
        Vendor::H2 => carbon_db::h2_data_files(path)
            .into_iter()
            .map(|(_, p)| p)
            .collect(),
        _ if path.exists() => vec![path.to_path_buf()],
        _ => Vec::new(),
    }
}

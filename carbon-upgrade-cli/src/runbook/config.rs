//! `upgrade.toml`: what to upgrade, where staging goes, and the optional live tests.
//! Unknown keys are errors, so a typo never silently falls back to a default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UpgradeConfig {
    pub old_home: Option<PathBuf>,
    pub new_home: Option<PathBuf>,
    /// Journal and report; default `./carbon-upgrade-state`.
    pub state_dir: Option<PathBuf>,
    /// Default `<state_dir>/backup`.
    pub backup_dir: Option<PathBuf>,
    #[serde(default)]
    pub datasources: BTreeMap<String, DatasourceConfig>,
    pub verify: Option<VerifyConfig>,
}

/// Per-datasource overrides; without them staging is `<source database>_staging` on the
/// source's server with the source's credentials.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DatasourceConfig {
    pub staging_url: Option<String>,
    pub staging_username: Option<String>,
    /// The name of an environment variable holding the password, never the password.
    pub staging_password_env: Option<String>,
    /// Needed when the old home's password is a secure-vault alias.
    pub source_password_env: Option<String>,
    /// Migration scripts (files, or directories holding the vendor's script as WSO2's
    /// migration resources lay them out), applied in order to staging after the copy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub migration_scripts: Vec<PathBuf>,
    /// Schema proof: the fresh-install scripts (files or directories, in order) instead of
    /// those of the new home's `dbscripts/` that create a table staging holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fresh_scripts: Vec<PathBuf>,
    /// Schema proof: differences classed *missing* that the operator accepts: `*`, a table
    /// (`IDN_AUTH_WAIT`) or a table and object (`UM_USER_ATTRIBUTE index UM_USER_ID_INDEX`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accept_missing: Vec<String>,
    /// Schema proof: run the safe `align` statements on staging (widen columns, add missing
    /// indexes, rename indexes, set defaults), then prove again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub align: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VerifyConfig {
    pub server_url: String,
    pub username: String,
    pub password_env: String,
}

/// The resolved settings a run works with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub old_home: PathBuf,
    pub new_home: PathBuf,
    pub state_dir: PathBuf,
    pub backup_dir: PathBuf,
    pub datasources: BTreeMap<String, DatasourceConfig>,
    pub verify: Option<VerifyConfig>,
}

/// Flags that override keys of the file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArgs {
    /// The upgrade.toml to read.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// The old product home (overrides `old_home`).
    #[arg(long)]
    pub old_home: Option<PathBuf>,
    /// The new product home (overrides `new_home`).
    #[arg(long)]
    pub new_home: Option<PathBuf>,
    /// Journal and report directory (overrides `state_dir`).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Backup directory (overrides `backup_dir`).
    #[arg(long)]
    pub backup_dir: Option<PathBuf>,
}

impl UpgradeConfig {
    pub fn parse(text: &str, path: &Path) -> Result<UpgradeConfig> {
        // toml's message spans lines; keep the first, which names the key and position.
        toml::from_str(text).map_err(|err| {
            let message = err.to_string();
            let first = message
                .lines()
                .next()
                .unwrap_or("invalid TOML")
                .trim()
                .to_owned();
            let detail = message.lines().last().unwrap_or_default().trim().to_owned();
            anyhow::anyhow!(
                "{}: {first}{}",
                path.display(),
                if detail.is_empty() || detail == first {
                    String::new()
                } else {
                    format!(": {detail}")
                }
            )
        })
    }
}

impl ConfigArgs {
    pub fn resolve(&self) -> Result<Settings> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                UpgradeConfig::parse(&text, path)?
            }
            None => UpgradeConfig::default(),
        };
        let pick =
            |flag: &Option<PathBuf>, key: &Option<PathBuf>| flag.clone().or_else(|| key.clone());
        let Some(old_home) = pick(&self.old_home, &file.old_home) else {
            bail!("old_home is not set: give --old-home or old_home in --config");
        };
        let Some(new_home) = pick(&self.new_home, &file.new_home) else {
            bail!("new_home is not set: give --new-home or new_home in --config");
        };
        let state_dir = pick(&self.state_dir, &file.state_dir)
            .unwrap_or_else(|| PathBuf::from("carbon-upgrade-state"));
        let backup_dir =
            pick(&self.backup_dir, &file.backup_dir).unwrap_or_else(|| state_dir.join("backup"));
        Ok(Settings {
            old_home,
            new_home,
            state_dir,
            backup_dir,
            datasources: file.datasources,
            verify: file.verify,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_example_parses() {
        let text = r#"
old_home = "/opt/wso2am-2.0.0-beta2"
new_home = "/opt/wso2am-2.0.0"
state_dir = "/var/lib/carbon-upgrade/run1"
backup_dir = "/backups/run1"
[datasources.WSO2_CARBON_DB]
staging_url = "jdbc:postgresql://db:5432/carbon_staging"
staging_username = "wso2"
staging_password_env = "STAGING_DB_PASSWORD"
source_password_env = "OLD_DB_PASSWORD"
[verify]
server_url = "https://localhost:9443"
username = "admin"
password_env = "CARBON_ADMIN_PASSWORD"
"#;
        let config = UpgradeConfig::parse(text, Path::new("upgrade.toml")).unwrap();
        assert_eq!(
            config.datasources["WSO2_CARBON_DB"]
                .staging_username
                .as_deref(),
            Some("wso2")
        );
        assert_eq!(config.verify.unwrap().username, "admin");
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        let err = UpgradeConfig::parse("old_hme = \"/x\"\n", Path::new("u.toml")).unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("old_hme"), "{message}");
        assert!(!message.contains('\n'), "one line: {message}");
    }
}

//! The upgrade runbook: the guide's steps in order, each performed by a library and recorded
//! in a journal, so that a run can be planned, checked, resumed and reported.
//!
//! This module is glue: it decides the order, what is skipped on resume and what goes into
//! the report. Copying, replicating, editing and verifying belong to the carbon-* crates.

mod config;
pub mod datasources;
pub mod journal;
mod migration;
pub mod online;
pub mod plan;
pub mod preflight;
pub mod report;
mod results;
mod schema_proof;
pub mod scope;
mod secrets;
pub mod step;
pub mod steps;
mod userstores;

use std::path::PathBuf;

use anyhow::{Context, Result};
use carbon_config::home::ProductHome;

pub use config::{ConfigArgs, Settings};

/// Both product homes, read.
#[derive(Debug, Clone)]
pub struct Homes {
    pub old: ProductHome,
    pub new: ProductHome,
}

impl Homes {
    pub fn open(settings: &Settings) -> Result<Homes> {
        let old = ProductHome::open(&settings.old_home)
            .with_context(|| format!("reading the old home {}", settings.old_home.display()))?;
        let new = ProductHome::open(&settings.new_home)
            .with_context(|| format!("reading the new home {}", settings.new_home.display()))?;
        Ok(Homes { old, new })
    }

    /// Replication options carrying where each home keeps its tenants (ProductHome's answer).
    pub fn tenants_dirs(&self) -> carbon_fs::CarbonHomeOptions {
        carbon_fs::CarbonHomeOptions {
            old_tenants_dir: Some(self.old.tenants_dir.clone()),
            new_tenants_dir: Some(self.new.tenants_dir.clone()),
            ..carbon_fs::CarbonHomeOptions::default()
        }
    }
}

/// What pins a journal to one run: the homes and the databases, never a secret.
pub fn identity(settings: &Settings, pairs: &[datasources::Pair]) -> serde_json::Value {
    let canonical = |p: &PathBuf| p.canonicalize().unwrap_or_else(|_| p.clone());
    serde_json::json!({
        "old_home": canonical(&settings.old_home),
        "new_home": canonical(&settings.new_home),
        "databases": pairs
            .iter()
            .map(|p| serde_json::json!({"datasource": p.name, "source": p.source.to_string(), "staging": p.staging.to_string()}))
            .collect::<Vec<_>>(),
    })
}

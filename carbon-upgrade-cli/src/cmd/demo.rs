//! `carbon-upgrade demo`: the main job on an embedded default, with no database server.
//!
//! Writes a Carbon 4.4.6-shaped home whose WSO2_CARBON_DB is an embedded SQLite database of
//! realistic content (tenants, users, roles, claims, registry resources and blobs) and a
//! customised port offset, a 4.4.7-shaped home, then performs the full `run` on them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use carbon_config::fixture::{CarbonVersion, ContentScale, DatasourceSpec, HomeSpec, write_home};
use carbon_db::fixture::{Scale, generate_sqlite_file};

use crate::Status;
use crate::cmd::upgrade::{RunArgs, run};
use carbon_upgrade_cli::runbook::ConfigArgs;

const DB_URL: &str = "jdbc:sqlite:repository/database/WSO2CARBON_DB.db";

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where to build the two homes and the run's state (must be absent or empty).
    #[arg(long, default_value = "carbon-upgrade-demo")]
    pub dir: PathBuf,
}

pub fn demo(args: DemoArgs) -> Result<Status> {
    let dir = &args.dir;
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        bail!("{} is not empty: give --dir a new directory", dir.display());
    }
    let old = dir.join("wso2carbon-4.4.6");
    let new = dir.join("wso2carbon-4.4.7");
    let tenants = old_database(&old)?;
    write(&old, CarbonVersion::V4_4_6, 2, tenants, ContentScale::Small)?;
    write(
        &new,
        CarbonVersion::V4_4_7,
        0,
        Vec::new(),
        ContentScale::Tiny,
    )?;
    eprintln!(
        "demo: old home {} (4.4.6, port offset 2), new home {} (4.4.7)",
        old.display(),
        new.display()
    );
    run(RunArgs {
        config: ConfigArgs {
            old_home: Some(old),
            new_home: Some(new),
            state_dir: Some(dir.join("state")),
            ..ConfigArgs::default()
        },
        start: false,
        start_timeout: 0,
        strict: false,
        scope: super::upgrade::ScopeArgs {
            scope: carbon_upgrade_cli::runbook::scope::Scope::All,
            databases: None,
        },
        json: false,
        shared_deployment_from: None,
    })
}

/// The old product's embedded database; returns its tenant ids for `repository/tenants`.
fn old_database(old: &Path) -> Result<Vec<i64>> {
    let path = old.join("repository/database/WSO2CARBON_DB.db");
    let parent = path.parent().unwrap_or(old);
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let summary = generate_sqlite_file(&path, &Scale::small())
        .with_context(|| format!("generating the demo database {}", path.display()))?;
    eprintln!(
        "demo: {} rows in {} tables, {} tenants",
        summary.rows,
        summary.tables.len(),
        summary.tenant_ids.len()
    );
    Ok(summary.tenant_ids)
}

fn write(
    home: &Path,
    version: CarbonVersion,
    offset: u16,
    tenants: Vec<i64>,
    content: ContentScale,
) -> Result<()> {
    let mut spec = HomeSpec::new(version);
    spec.port_offset = offset;
    spec.tenant_ids = tenants;
    spec.content = content;
    spec.datasources = vec![DatasourceSpec {
        url: DB_URL.into(),
        driver_class_name: "org.sqlite.JDBC".into(),
        ..DatasourceSpec::carbon_h2()
    }];
    write_home(home, &spec).with_context(|| format!("writing {}", home.display()))?;
    Ok(())
}

//! `carbon-upgrade config ...`: read, edit, diff and connect Carbon configuration.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use carbon_config::{
    CarryKind, CarryOver, ConnectPlan, ConnectTarget, Edit, JdbcUrl, Plan, ProductHome, XmlDoc,
};
use clap::Subcommand;

use crate::Status;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Show what a product home's configuration says: version, ports, datasources, user
    /// stores, keystores, tenants. Secrets are never shown.
    Show {
        home: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Print the value at PATH, e.g. `Server/Ports/Offset` or
    /// `datasources-configuration/datasources/datasource[name='WSO2_CARBON_DB']/definition/configuration/url`.
    Get { file: PathBuf, path: String },
    /// Set the text (or `.../@attr`) at PATH to VALUE, changing no other byte; keeps FILE.bak.
    Set {
        file: PathBuf,
        path: String,
        value: String,
        /// Show the diff only.
        #[arg(long)]
        dry_run: bool,
    },
    /// Configuration customisations of OLD_HOME that NEW_HOME lacks. Exit 1 when something
    /// needs carrying over or a decision (like diff(1)).
    Diff {
        old_home: PathBuf,
        new_home: PathBuf,
        /// The pristine old distribution: carry only what the operator changed (three-way).
        #[arg(long, value_name = "DIR")]
        old_dist: Option<PathBuf>,
        /// Apply the proposed edits to NEW_HOME after showing them (conflicts are never applied).
        #[arg(long, conflicts_with = "json")]
        apply: bool,
        #[arg(long)]
        json: bool,
    },
    /// Point NEW_HOME's datasources at the staging database(s).
    Connect {
        new_home: PathBuf,
        /// NAME=JDBC_URL, e.g. WSO2_CARBON_DB=jdbc:postgresql://db:5432/carbon_staging (repeatable).
        #[arg(long = "datasource", value_name = "NAME=URL", required = true)]
        datasources: Vec<String>,
        #[arg(long)]
        username: Option<String>,
        /// Read the staging password from this environment variable (never from the command line).
        #[arg(long, value_name = "VAR")]
        password_env: Option<String>,
        /// The old product home: refuse any URL that is the old, un-upgraded database.
        #[arg(long, value_name = "DIR")]
        old_home: Option<PathBuf>,
        #[arg(long)]
        dry_run: bool,
    },
}

pub fn run(command: ConfigCommand) -> anyhow::Result<Status> {
    match command {
        ConfigCommand::Show { home, json } => show(&home, json),
        ConfigCommand::Get { file, path } => get(&file, &path),
        ConfigCommand::Set {
            file,
            path,
            value,
            dry_run,
        } => set(&file, &path, &value, dry_run),
        ConfigCommand::Diff {
            old_home,
            new_home,
            old_dist,
            apply,
            json,
        } => diff(&old_home, &new_home, old_dist.as_deref(), apply, json),
        ConfigCommand::Connect {
            new_home,
            datasources,
            username,
            password_env,
            old_home,
            dry_run,
        } => {
            let targets = parse_targets(&datasources, username, password_env.as_deref())?;
            connect(&new_home, &targets, old_home.as_deref(), dry_run)
        }
    }
}

fn open_home(home: &Path) -> anyhow::Result<ProductHome> {
    Ok(ProductHome::open(home)?)
}

fn show(home: &Path, json: bool) -> anyhow::Result<Status> {
    let home = open_home(home)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&home)?);
        return Ok(Status::Ok);
    }
    print_home(&home);
    Ok(Status::Ok)
}

fn print_home(home: &ProductHome) {
    println!("home         {}", home.root.display());
    let version = home.version.as_deref().unwrap_or("unknown");
    match &home.version_txt {
        Some(txt) => println!("version      {version} (bin/version.txt: {txt})"),
        None => println!("version      {version}"),
    }
    let port = |p: Option<i64>| p.map_or_else(|| "-".to_owned(), |p| p.to_string());
    println!(
        "ports        offset {}: https {}, http {}",
        home.ports.offset,
        port(home.ports.effective_https()),
        port(home.ports.effective_http())
    );
    println!("datasources  {}", home.datasources.len());
    for ds in &home.datasources {
        let url = ds.url.as_ref().map_or_else(
            || ds.url_problem.clone().unwrap_or_else(|| "-".into()),
            JdbcUrl::redacted,
        );
        println!(
            "  {}  jndi {}  {url}  user {}  password {}",
            ds.name,
            ds.jndi_name.as_deref().unwrap_or("-"),
            ds.username.as_deref().unwrap_or("-"),
            ds.password
        );
    }
    println!(
        "user-mgt     realm datasource {}, primary store {}",
        home.user_mgt.datasource.as_deref().unwrap_or("-"),
        home.user_mgt.primary_store_class.as_deref().unwrap_or("-")
    );
    for db in &home.registry {
        let current = if db.current { " (current)" } else { "" };
        println!(
            "registry     {} -> {}{current}",
            db.name,
            db.datasource.as_deref().unwrap_or("-")
        );
    }
    println!("user stores  {}", home.user_stores.len());
    for store in &home.user_stores {
        println!(
            "  tenant {}  {}  {}  {}  password {}",
            store.tenant_id,
            store.domain.as_deref().unwrap_or("-"),
            store.class.as_deref().unwrap_or("-"),
            store.url.as_ref().map_or_else(
                || store.datasource.clone().unwrap_or_else(|| "-".into()),
                JdbcUrl::redacted
            ),
            store.password
        );
    }
    for ks in &home.keystores {
        let exists = if ks.exists { "present" } else { "MISSING" };
        println!("keystore     {} {} ({exists})", ks.role, ks.path.display());
    }
    let ids: Vec<String> = home.tenant_ids.iter().map(ToString::to_string).collect();
    println!(
        "tenants      {}: {}",
        home.tenants_dir.display(),
        if ids.is_empty() {
            "none".into()
        } else {
            ids.join(", ")
        }
    );
}

/// Prints a value; secrets (by name, or credentials inside a URL) are shown as `********`.
fn get(file: &Path, path: &str) -> anyhow::Result<Status> {
    let doc = XmlDoc::open(file)?;
    let value = doc.get_str(path)?;
    let shown = if carbon_config::redact::is_secret_path(path) && !value.is_empty() {
        carbon_config::secret::REDACTED.to_owned()
    } else {
        carbon_config::redact::redact_url_credentials(&value)
    };
    println!("{shown}");
    Ok(Status::Ok)
}

fn set(file: &Path, path: &str, value: &str, dry_run: bool) -> anyhow::Result<Status> {
    let plan = carbon_config::plan_file(file, &[Edit::set(path, value)])?;
    show_and_apply(&[plan], dry_run)
}

/// Prints each plan's diff, then applies them unless `dry_run`.
fn show_and_apply(plans: &[Plan], dry_run: bool) -> anyhow::Result<Status> {
    let changing: Vec<&Plan> = plans.iter().filter(|p| !p.is_noop()).collect();
    if changing.is_empty() {
        println!("no change: the configuration already has these values");
        return Ok(Status::Ok);
    }
    for plan in &changing {
        print!("{}", plan.unified_diff());
    }
    if dry_run {
        println!("dry run: nothing written");
        return Ok(Status::Ok);
    }
    for plan in changing {
        let backup = carbon_config::apply(plan)?;
        if let Some(backup) = backup {
            println!(
                "wrote {} (backup {})",
                plan.file().display(),
                backup.display()
            );
        }
    }
    Ok(Status::Ok)
}

fn diff(
    old: &Path,
    new: &Path,
    old_dist: Option<&Path>,
    apply: bool,
    json: bool,
) -> anyhow::Result<Status> {
    let report = carbon_config::carry_over(old, new, old_dist)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(if report.actionable().next().is_some() {
            Status::CheckFailed
        } else {
            Status::Ok
        });
    }
    print_carry(&report);
    if apply {
        let plans = report.plans(new)?;
        show_and_apply(&plans, false)?;
        return Ok(
            if report.conflicts().next().is_some() || has_manual(&report) {
                Status::CheckFailed
            } else {
                Status::Ok
            },
        );
    }
    Ok(if report.actionable().next().is_some() {
        Status::CheckFailed
    } else {
        Status::Ok
    })
}

fn has_manual(report: &CarryOver) -> bool {
    report.items.iter().any(|i| i.kind == CarryKind::Manual)
}

fn print_carry(report: &CarryOver) {
    let mode = if report.three_way {
        "three-way"
    } else {
        "two-way"
    };
    println!(
        "{} configuration files compared ({mode})",
        report.files_compared
    );
    let value = |v: &Option<String>| v.clone().unwrap_or_else(|| "(absent)".into());
    for item in &report.items {
        let label = match item.kind {
            CarryKind::Customised => "carry   ",
            CarryKind::OnlyInOld => "add     ",
            CarryKind::Conflict => "CONFLICT",
            CarryKind::Manual => "MANUAL  ",
            CarryKind::OnlyInNew => "new-only",
            CarryKind::Connection => "connect ",
        };
        let where_ = if item.key.is_empty() {
            String::new()
        } else {
            format!(": {}", item.key)
        };
        match item.kind {
            CarryKind::Conflict => println!(
                "{label} {}{where_}: old {} / new {} / pristine {}",
                item.file.display(),
                value(&item.old),
                value(&item.new),
                value(&item.base)
            ),
            CarryKind::Manual if item.key.is_empty() => {
                println!(
                    "{label} {}: file only in the old home; review and copy by hand",
                    item.file.display()
                );
            }
            CarryKind::Manual => println!(
                "{label} {}{where_}: element only in the old home; add by hand",
                item.file.display()
            ),
            CarryKind::Connection => {
                println!(
                    "{label} {}{where_}: set with `config connect`, never carried",
                    item.file.display()
                );
            }
            CarryKind::OnlyInNew => {
                println!(
                    "{label} {}{where_} = {}",
                    item.file.display(),
                    value(&item.new)
                );
            }
            _ => println!(
                "{label} {}{where_}: {} -> {}",
                item.file.display(),
                value(&item.new),
                value(&item.old)
            ),
        }
    }
    let actionable = report.actionable().count();
    println!("{actionable} item(s) to carry over or decide");
}

fn parse_targets(
    specs: &[String],
    username: Option<String>,
    password_env: Option<&str>,
) -> anyhow::Result<Vec<ConnectTarget>> {
    let password =
        match password_env {
            Some(var) => Some(std::env::var(var).with_context(|| {
                format!("--password-env: environment variable {var} is not set")
            })?),
            None => None,
        }
        .map(carbon_config::Secret::from);
    specs
        .iter()
        .map(|spec| {
            let (name, url) = spec.split_once('=').with_context(|| {
                format!(
                    "--datasource `{}`: expected NAME=JDBC_URL",
                    carbon_config::redact::redact_url_credentials(spec)
                )
            })?;
            let url = JdbcUrl::parse(url).with_context(|| format!("--datasource {name}"))?;
            Ok(ConnectTarget {
                datasource: name.to_owned(),
                url,
                username: username.clone(),
                password: password.clone(),
            })
        })
        .collect()
}

fn connect(
    new_home: &Path,
    targets: &[ConnectTarget],
    old_home: Option<&Path>,
    dry_run: bool,
) -> anyhow::Result<Status> {
    let new = open_home(new_home)?;
    let old = old_home.map(open_home).transpose()?;
    let plan: ConnectPlan = carbon_config::connect(&new, targets, old.as_ref())?;
    for notice in &plan.notices {
        println!(
            "note: {}: {}",
            notice.datasource.as_deref().unwrap_or("-"),
            notice.message
        );
    }
    show_and_apply(&plan.plans, dry_run)
}

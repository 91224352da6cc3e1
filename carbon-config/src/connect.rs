//! Pointing the new product's datasources at the staging database.
//!
//! The guide's rule is enforced here: the new product is never connected to the old,
//! un-upgraded database. Secure-vault aliases stay aliases; the report says which vault entry
//! must hold the staging password.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::doc::XmlDoc;
use crate::edit::{Edit, Plan, apply, plan, plan_file};
use crate::error::{ConfigError, Result};
use crate::home::{Datasource, ProductHome, UserStore};
use crate::jdbc::{JdbcUrl, Vendor};
use crate::secret::Secret;

/// Where one datasource of the new home should point. `Debug` redacts (`JdbcUrl`, `Secret`).
#[derive(Debug, Clone)]
pub struct ConnectTarget {
    pub datasource: String,
    pub url: JdbcUrl,
    pub username: Option<String>,
    /// Plain password to write; `None` leaves the password as it is.
    pub password: Option<Secret>,
}

/// Something the operator must know or do; never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub datasource: Option<String>,
    pub message: String,
}

/// The edits `connect` will make, one plan per file, plus notices.
#[derive(Debug, Clone)]
pub struct ConnectPlan {
    pub plans: Vec<Plan>,
    pub notices: Vec<Notice>,
}

impl ConnectPlan {
    /// Applies every plan (each atomically, with a `.bak`); returns the backups written.
    pub fn apply(&self) -> Result<Vec<PathBuf>> {
        let mut backups = Vec::new();
        for plan in &self.plans {
            backups.extend(apply(plan)?);
        }
        Ok(backups)
    }

    pub fn unified_diff(&self) -> String {
        self.plans.iter().map(Plan::unified_diff).collect()
    }
}

/// Plans the datasource edits that point `new_home` at the staging databases in `targets`.
/// With `old_home`, refuses any target that addresses a database the old product uses.
pub fn connect(
    new_home: &ProductHome,
    targets: &[ConnectTarget],
    old_home: Option<&ProductHome>,
) -> Result<ConnectPlan> {
    if new_home.root.join(crate::home::DEPLOYMENT_TOML).is_file() {
        return Err(ConfigError::TomlDriven {
            home: new_home.root.clone(),
        });
    }
    let mut notices = Vec::new();
    let mut edits_by_file: BTreeMap<PathBuf, Vec<Edit>> = BTreeMap::new();
    for target in targets {
        let ds = new_home.datasource(&target.datasource).ok_or_else(|| {
            ConfigError::UnknownDatasource {
                home: new_home.root.clone(),
                name: target.datasource.clone(),
            }
        })?;
        match old_home {
            Some(old) => refuse_old_database(old, new_home, target)?,
            None => notices.push(Notice {
                datasource: Some(ds.name.clone()),
                message: "no old home given: could not check that the URL is not the old product's database".into(),
            }),
        }
        let file = new_home.root.join(&ds.file);
        let doc = XmlDoc::open(&file)?;
        let edits = datasource_edits(ds, target, &mut notices)?
            .into_iter()
            .map(|edit| insert_if_missing(&doc, &ds.configuration_path(), edit))
            .collect::<Vec<_>>();
        edits_by_file
            .entry(new_home.root.join(&ds.file))
            .or_default()
            .extend(edits);
    }
    if let Some(old) = old_home {
        notices.extend(user_stores_on_old_databases(old, new_home));
    }
    let plans = edits_by_file
        .iter()
        .map(|(file, edits)| plan_file(file, edits))
        .collect::<Result<Vec<_>>>()?;
    Ok(ConnectPlan { plans, notices })
}

/// A `<configuration>` without `<username>` (say) gets one, instead of failing on the path.
fn insert_if_missing(doc: &XmlDoc, config: &str, edit: Edit) -> Edit {
    match &edit {
        Edit::Set { path, value } if doc.find(path).is_none() && doc.find(config).is_some() => {
            match path
                .strip_prefix(config)
                .and_then(|rest| rest.strip_prefix('/'))
            {
                Some(name) if !name.contains(['/', '[', '@']) => {
                    Edit::insert_child(config, name, value.clone())
                }
                _ => edit,
            }
        }
        _ => edit,
    }
}

fn datasource_edits(
    ds: &Datasource,
    target: &ConnectTarget,
    notices: &mut Vec<Notice>,
) -> Result<Vec<Edit>> {
    let config = ds.configuration_path();
    let xa = ds.xa_datasource_class.is_some();
    let field = |element: &str, xa_property: &str| {
        if xa {
            format!("{config}/dataSourceProps/property[@name='{xa_property}']")
        } else {
            format!("{config}/{element}")
        }
    };
    let mut edits = vec![Edit::set(field("url", "url"), target.url.to_string())];
    if let Some(user) = &target.username {
        edits.push(Edit::set(field("username", "user"), user.clone()));
    }
    edits.extend(password_edit(
        ds,
        target,
        &field("password", "password"),
        notices,
    )?);
    let vendor = target.url.vendor();
    if !xa
        && ds
            .driver_class_name
            .as_deref()
            .is_none_or(|d| !target.url.matches_driver(d))
        && let Some(driver) = target.url.default_driver()
    {
        edits.push(Edit::set(format!("{config}/driverClassName"), driver));
        notices.push(Notice {
            datasource: Some(ds.name.clone()),
            message: format!(
                "driver set to {driver}; its jar must be in repository/components/lib"
            ),
        });
    }
    if let Some((_, query)) = ds.pool.iter().find(|(k, _)| k == "validationQuery")
        && matches!(vendor, Vendor::Oracle | Vendor::Db2)
        && query.trim().eq_ignore_ascii_case("SELECT 1")
    {
        edits.push(Edit::set(
            format!("{config}/validationQuery"),
            vendor.validation_query(),
        ));
    }
    Ok(edits)
}

fn password_edit(
    ds: &Datasource,
    target: &ConnectTarget,
    path: &str,
    notices: &mut Vec<Notice>,
) -> Result<Option<Edit>> {
    let name = Some(ds.name.clone());
    match (&ds.password, &target.password) {
        (Secret::Alias(alias), _) => {
            notices.push(Notice {
                datasource: name,
                message: format!(
                    "password is the secure-vault alias `{alias}`: it stays an alias; the vault entry must hold the staging password (re-run the cipher tool)"
                ),
            });
            Ok(None)
        }
        (Secret::Encrypted(_), Some(_)) => Err(ConfigError::Refused {
            name: ds.name.clone(),
            reason: "the password is encrypted with the keystore; set it with the product's tools, not in plain text".into(),
        }),
        (_, Some(Secret::Plain(password))) => Ok(Some(Edit::set(path, password.clone()))),
        (_, Some(Secret::Empty)) => Ok(Some(Edit::set(path, ""))),
        (_, Some(Secret::Alias(_) | Secret::Encrypted(_))) => Err(ConfigError::Refused {
            name: ds.name.clone(),
            reason: "the staging password to write must be plain text".into(),
        }),
        (_, None) => {
            notices.push(Notice { datasource: name, message: "password left unchanged (no password given)".into() });
            Ok(None)
        }
    }
}

/// The guide: "do NOT connect a new product version to an older database".
fn refuse_old_database(old: &ProductHome, new: &ProductHome, target: &ConnectTarget) -> Result<()> {
    for old_ds in &old.datasources {
        let Some(old_url) = &old_ds.url else { continue };
        if same_database(old_url, &old.root, &target.url, &new.root) {
            return Err(ConfigError::Refused {
                name: target.datasource.clone(),
                reason: format!(
                    "{} is the old product's database (datasource `{}` of {}); copy it into an empty staging database and connect to that",
                    target.url.redacted(),
                    old_ds.name,
                    old.root.display()
                ),
            });
        }
    }
    Ok(())
}

/// Network URLs compare by vendor/host/port/database; embedded H2 URLs by the file they resolve
/// to (relative paths are relative to each product home, where the server starts).
fn same_database(a: &JdbcUrl, a_home: &Path, b: &JdbcUrl, b_home: &Path) -> bool {
    if a.vendor() == Vendor::H2
        && b.vendor() == Vendor::H2
        && a.host().is_none()
        && b.host().is_none()
    {
        return match (h2_file(a, a_home), h2_file(b, b_home)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        };
    }
    a.same_database(b)
}

fn h2_file(url: &JdbcUrl, home: &Path) -> Option<PathBuf> {
    let db = url.database()?;
    let db = db.strip_prefix("file:").unwrap_or(db);
    if db.starts_with("mem:") {
        return None;
    }
    let path = if Path::new(db).is_absolute() {
        PathBuf::from(db)
    } else {
        home.join(db)
    };
    Some(normalize(&path))
}

/// Lexical normalisation (`.`/`..`), so `./repository/x` and `repository/x` compare equal.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Secondary user stores keep their own JDBC URL: after the upgrade they would still use the
/// old database.
fn user_stores_on_old_databases(old: &ProductHome, new: &ProductHome) -> Vec<Notice> {
    let mut notices = Vec::new();
    for (home, store) in old
        .user_stores
        .iter()
        .map(|s| (old, s))
        .chain(new.user_stores.iter().map(|s| (new, s)))
    {
        let Some(url) = &store.url else { continue };
        for ds in &old.datasources {
            if ds
                .url
                .as_ref()
                .is_some_and(|old_url| same_database(old_url, &old.root, url, &home.root))
            {
                notices.push(Notice {
                    datasource: Some(ds.name.clone()),
                    message: format!(
                        "secondary user store {} ({}) uses the old database of `{}`; its url must point at staging too (`carbon-upgrade run` does so after replicating it)",
                        store.file.display(),
                        store.domain.as_deref().unwrap_or("no domain"),
                        ds.name
                    ),
                });
            }
        }
    }
    notices.dedup();
    notices
}

/// Plans the edits that point the new home's secondary user stores at staging: each store (the
/// new home's own, and the old home's that replication brings) whose `url` is the database of an
/// old datasource named by a target gets the target's URL, and its `userName` and plain
/// `password` too when they are that old datasource's. An encrypted or aliased password is left
/// as it is, with a notice. A plan's bytes are the new home's file, or the old home's when
/// replication has not copied it yet (it copies files unchanged); such a plan can be shown but
/// not applied. A plan's file is always in the new home: the old home is never edited.
pub fn user_stores(
    old: &ProductHome,
    new: &ProductHome,
    targets: &[ConnectTarget],
) -> Result<ConnectPlan> {
    let mut plans = Vec::new();
    let mut notices = Vec::new();
    for (rel, tenant_id) in store_files(old, new) {
        let dest = new.root.join(&rel);
        let source = if dest.is_file() {
            dest.clone()
        } else {
            old.root.join(&rel)
        };
        let bytes = std::fs::read(&source).map_err(|e| ConfigError::io(&source, e))?;
        let doc = XmlDoc::parse(&dest, bytes)?;
        let store = crate::home::read_user_store(&doc, &rel, tenant_id);
        let Some(url) = &store.url else { continue };
        let Some(old_ds) = old.datasources.iter().find(|ds| {
            ds.url
                .as_ref()
                .is_some_and(|old_url| same_database(old_url, &old.root, url, &new.root))
        }) else {
            continue;
        };
        let Some(target) = targets.iter().find(|t| t.datasource == old_ds.name) else {
            notices.push(Notice {
                datasource: Some(old_ds.name.clone()),
                message: format!(
                    "secondary user store {} uses the old database of `{}` and no staging database replaces it: it still points at the old database",
                    store.file.display(),
                    old_ds.name
                ),
            });
            continue;
        };
        let edits = store_edits(&store, old_ds, target, &mut notices);
        let plan = plan(&doc, &edits)?;
        if !plan.is_noop() {
            plans.push(plan);
        }
    }
    Ok(ConnectPlan { plans, notices })
}

/// Relative paths (and tenants) of the new home's store files and of the old home's that
/// replication will add; the new home's file wins (replication keeps it on a conflict).
fn store_files(old: &ProductHome, new: &ProductHome) -> Vec<(PathBuf, i64)> {
    let mut files: BTreeMap<PathBuf, i64> = new
        .user_stores
        .iter()
        .map(|s| (s.file.clone(), s.tenant_id))
        .collect();
    for store in &old.user_stores {
        files.entry(store.file.clone()).or_insert(store.tenant_id);
    }
    files.into_iter().collect()
}

fn store_edits(
    store: &UserStore,
    old_ds: &Datasource,
    target: &ConnectTarget,
    notices: &mut Vec<Notice>,
) -> Vec<Edit> {
    let property = |name: &str| format!("UserStoreManager/Property[@name='{name}']");
    let mut edits = vec![Edit::set(property("url"), target.url.to_string())];
    if let Some(user) = &target.username
        && store.username.is_some()
        && store.username == old_ds.username
    {
        edits.push(Edit::set(property("userName"), user.clone()));
    }
    let file = store.file.display();
    let datasource = Some(old_ds.name.clone());
    match (&store.password, &old_ds.password, &target.password) {
        (Secret::Encrypted(_), _, _) => notices.push(Notice {
            datasource,
            message: format!(
                "secondary user store {file}: its password is encrypted with the keystore and left as it is; the staging database must accept it"
            ),
        }),
        (Secret::Alias(alias), _, _) => notices.push(Notice {
            datasource,
            message: format!(
                "secondary user store {file}: its password is the secure-vault alias `{alias}` and stays an alias; the vault entry must hold the staging password"
            ),
        }),
        (Secret::Plain(mine), Secret::Plain(old_password), Some(password))
            if mine == old_password =>
        {
            if let Some(plain) = password.plain() {
                edits.push(Edit::set(property("password"), plain.to_owned()));
            }
        }
        _ => {}
    }
    edits
}

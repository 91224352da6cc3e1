//! Offline checks of an upgraded home against its staging database (and optionally the old
//! database and the old home). Nothing is written anywhere: databases are opened read-only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use carbon_config::ProductHome;
use carbon_config::home::{SUPER_TENANT_ID, TENANTS_DIR};
use carbon_config::secret::Secret;
use carbon_db::{DbUrl, Session, Vendor, error_chain};

use crate::db;
use crate::error::VerifyError;
use crate::report::Report;

/// Domains every tenant has without a user-store file.
const BUILTIN_DOMAINS: &[&str] = &["PRIMARY", "INTERNAL", "APPLICATION", "WORKFLOW", "SYSTEM"];

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct HomeOptions {
    /// The upgraded product home.
    pub home: PathBuf,
    /// The staging database; default: the realm datasource of the home.
    pub db: Option<DbUrl>,
    /// The old (source) database, read-only.
    pub old_db: Option<DbUrl>,
    /// The old product home, for comparing embedded H2 files and for telling findings the old
    /// system already has (`pre-existing`) from those the upgrade caused (`introduced`).
    pub old_home: Option<PathBuf>,
    /// Keep pre-existing errors as errors (by default they become warnings).
    pub strict: bool,
}

/// Runs every offline check and returns the findings.
pub fn verify_home(opts: &HomeOptions) -> Result<Report, VerifyError> {
    let home = ProductHome::open(&opts.home).map_err(|error| VerifyError::Home {
        home: opts.home.clone(),
        error,
    })?;
    let mut report = Report::default();
    let staging = match &opts.db {
        Some(url) => Some(url.clone()),
        None => realm_db_url(&home, &mut report),
    };
    check_datasources(&home, staging.as_ref(), opts.old_db.as_ref(), &mut report);
    check_user_store_urls(&home, opts.old_db.as_ref(), &mut report);
    check_keystore(&home, &mut report);
    check_h2_files(&home, opts, &mut report)?;

    let staging_session = match &staging {
        Some(url) if url.vendor() != Vendor::H2 => match Session::read_only(url) {
            Ok(session) => Some(session),
            Err(e) => {
                report.error("staging-db", url.to_string(), error_chain(&e));
                None
            }
        },
        Some(url) => {
            report.warning(
                "staging-db",
                url.to_string(),
                "embedded H2 cannot be queried; tenant, user-store and user checks skipped",
            );
            None
        }
        None => None,
    };
    if let Some(mut session) = staging_session {
        check_tenants(&home, &mut session, &mut report);
        check_domains(&home, &mut session, &mut report);
        if let Some(old) = &opts.old_db {
            check_user_counts(&mut session, old, &mut report);
        }
    }
    if opts.old_db.is_none() {
        report.info(
            "old-db",
            "--old-db",
            "not given: user counts and pointers at the old database were not checked",
        );
    }
    if let Some(old_home) = &opts.old_home {
        let old = verify_old_system(old_home, opts.old_db.as_ref())?;
        report.classify(&old, opts.strict);
    }
    Ok(report)
}

/// The same checks on the old home against the old database (default: the old home's realm
/// datasource), opened read-only: what the old system already gets wrong, before any upgrade.
pub fn verify_old_system(old_home: &Path, old_db: Option<&DbUrl>) -> Result<Report, VerifyError> {
    let mut report = verify_home(&HomeOptions {
        home: old_home.to_path_buf(),
        db: old_db.cloned(),
        ..HomeOptions::default()
    })?;
    // Checks against an "old database" of the old home itself make no sense.
    report.findings.retain(|f| f.check != "old-db");
    Ok(report)
}

/// The datasource user-mgt.xml uses, as a URL with its credentials.
fn realm_db_url(home: &ProductHome, report: &mut Report) -> Option<DbUrl> {
    let Some(ds) = home
        .user_mgt
        .datasource
        .as_deref()
        .and_then(|jndi| home.datasource_by_jndi(jndi))
        .or_else(|| home.datasources.first())
    else {
        report.error(
            "staging-db",
            "repository/conf/user-mgt.xml",
            "no realm datasource found and no --db given",
        );
        return None;
    };
    let Some(url) = &ds.url else {
        report.error(
            "staging-db",
            format!("datasource {}", ds.name),
            ds.url_problem
                .clone()
                .unwrap_or_else(|| "has no URL".into()),
        );
        return None;
    };
    match datasource_db_url(home, url, ds.username.clone(), &ds.password) {
        Ok(url) => Some(url),
        Err(reason) => {
            report.error("staging-db", format!("datasource {}", ds.name), reason);
            None
        }
    }
}

/// A carbon-db URL for a JDBC URL of this home, with the given credentials.
pub(crate) fn datasource_db_url(
    home: &ProductHome,
    url: &carbon_config::JdbcUrl,
    user: Option<String>,
    password: &Secret,
) -> Result<DbUrl, String> {
    let parsed = DbUrl::parse_in(&url.as_str(), Some(&home.root)).map_err(|e| e.to_string())?;
    let password = match password {
        Secret::Plain(p) => Some(p.clone()),
        Secret::Empty => None,
        Secret::Alias(alias) => {
            return Err(format!(
                "the password is the secure-vault alias {alias}; give the database with --db"
            ));
        }
        Secret::Encrypted(_) => {
            return Err("the password is encrypted; give the database with --db".into());
        }
    };
    Ok(parsed.with_credentials(user, password))
}

fn same_db(home: &ProductHome, url: &carbon_config::JdbcUrl, other: &DbUrl) -> bool {
    DbUrl::parse_in(&url.as_str(), Some(&home.root)).is_ok_and(|u| u.same_database(other))
}

fn check_datasources(
    home: &ProductHome,
    staging: Option<&DbUrl>,
    old: Option<&DbUrl>,
    report: &mut Report,
) {
    let realm_jndi = home.user_mgt.datasource.clone();
    for ds in &home.datasources {
        let object = format!("datasource {} ({})", ds.name, ds.file.display());
        let Some(url) = &ds.url else {
            if let Some(problem) = &ds.url_problem {
                report.warning("datasource-url", object, problem.clone());
            }
            continue;
        };
        if let Some(old) = old
            && same_db(home, url, old)
        {
            report.error(
                "datasource-old-db",
                object,
                format!(
                    "{} is the old database; it must point at staging",
                    url.redacted()
                ),
            );
            continue;
        }
        let is_realm = realm_jndi.is_some() && ds.jndi_name == realm_jndi;
        if let Some(staging) = staging
            && is_realm
        {
            if same_db(home, url, staging) {
                report.info(
                    "datasource-staging",
                    object,
                    format!("points at the staging database {staging}"),
                );
            } else {
                report.error(
                    "datasource-staging",
                    object,
                    format!("{} is not the staging database {staging}", url.redacted()),
                );
            }
        }
    }
}

fn check_user_store_urls(home: &ProductHome, old: Option<&DbUrl>, report: &mut Report) {
    let Some(old) = old else { return };
    for store in &home.user_stores {
        // An inline URL, or the URL of the datasource its `dataSource` property names.
        let url = store.url.as_ref().or_else(|| {
            store
                .datasource
                .as_deref()
                .and_then(|jndi| home.datasource_by_jndi(jndi))
                .and_then(|ds| ds.url.as_ref())
        });
        if let Some(url) = url
            && same_db(home, url, old)
        {
            report.error(
                "userstore-old-db",
                store_object(store),
                format!(
                    "its JDBC URL {} still points at the old database; the new server would read and write it",
                    url.redacted()
                ),
            );
        }
    }
}

fn store_object(store: &carbon_config::UserStore) -> String {
    format!(
        "user store {} ({})",
        store.domain.as_deref().unwrap_or("?"),
        store.file.display()
    )
}

fn check_keystore(home: &ProductHome, report: &mut Report) {
    let encrypted: Vec<_> = home
        .user_stores
        .iter()
        .filter(|s| matches!(s.password, Secret::Encrypted(_)))
        .collect();
    if encrypted.is_empty() {
        return;
    }
    match home.primary_keystore() {
        Some(ks) if ks.exists => report.info(
            "userstore-keystore",
            format!("keystore {}", ks.location),
            format!(
                "present for {} user store(s) with encrypted passwords",
                encrypted.len()
            ),
        ),
        other => {
            let what = other.map_or_else(
                || "carbon.xml names no Security/KeyStore".to_owned(),
                |ks| format!("the primary keystore {} is missing", ks.path.display()),
            );
            for store in encrypted {
                report.error(
                    "userstore-keystore",
                    store_object(store),
                    format!("its password is encrypted but {what}; copy the old keystore"),
                );
            }
        }
    }
}

fn check_h2_files(
    home: &ProductHome,
    opts: &HomeOptions,
    report: &mut Report,
) -> Result<(), VerifyError> {
    for ds in &home.datasources {
        let Some(url) = &ds.url else { continue };
        if url.vendor() != carbon_config::Vendor::H2 {
            continue;
        }
        let object = format!("datasource {} (H2)", ds.name);
        let Ok(new_url) = DbUrl::parse_in(&url.as_str(), Some(&home.root)) else {
            continue;
        };
        let Some(new_base) = new_url.path() else {
            continue;
        };
        let old_base: Option<PathBuf> = match (&opts.old_home, &opts.old_db) {
            (Some(old_home), _) => DbUrl::parse_in(&url.as_str(), Some(old_home))
                .ok()
                .and_then(|u| u.path().map(Path::to_path_buf)),
            (None, Some(old)) if old.vendor() == Vendor::H2 => old.path().map(Path::to_path_buf),
            _ => None,
        };
        let new_files = carbon_db::h2_data_files(new_base);
        let Some(old_base) = old_base else {
            if new_files.is_empty() {
                report.warning(
                    "h2-files",
                    object,
                    format!("no H2 data file at {}", new_base.display()),
                );
            } else {
                report.info(
                    "h2-files",
                    object,
                    "no --old-home (or H2 --old-db): the files were not compared with the old ones",
                );
            }
            continue;
        };
        let old_files = carbon_db::h2_data_files(&old_base);
        if old_files.is_empty() {
            report.warning(
                "h2-files",
                object,
                format!("no H2 data file in the old home at {}", old_base.display()),
            );
            continue;
        }
        for (suffix, old_path) in &old_files {
            let Some((_, new_path)) = new_files.iter().find(|(s, _)| s == suffix) else {
                report.error(
                    "h2-files",
                    object.clone(),
                    format!("{} was not copied into the new home", old_path.display()),
                );
                continue;
            };
            let (a, b) = (sha256_file(old_path)?, sha256_file(new_path)?);
            if a == b {
                report.info(
                    "h2-files",
                    object.clone(),
                    format!(
                        "{} equals the old file (sha256 {})",
                        file_name(new_path),
                        &a[..16]
                    ),
                );
            } else {
                report.error(
                    "h2-files",
                    object.clone(),
                    format!(
                        "{} differs from the old file (sha256 {} vs {})",
                        file_name(new_path),
                        &b[..16],
                        &a[..16]
                    ),
                );
            }
        }
    }
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn sha256_file(path: &Path) -> Result<String, VerifyError> {
    carbon_fs::sha256_file(path)
        .map(|(_, sum)| sum)
        .map_err(|error| VerifyError::Io {
            path: path.to_path_buf(),
            error,
        })
}

fn check_tenants(home: &ProductHome, session: &mut Session, report: &mut Report) {
    let rows = match db::tenants(session) {
        Ok(rows) => rows,
        Err(e) => {
            report.error(
                "tenant-rows",
                "UM_TENANT",
                format!("cannot read: {}", error_chain(&e)),
            );
            return;
        }
    };
    let folders: BTreeSet<i64> = home.tenant_ids.iter().copied().collect();
    let ids: BTreeSet<i64> = rows.iter().map(|r| r.id).collect();
    for row in &rows {
        if !folders.contains(&row.id) {
            report.error(
                "tenant-folder",
                format!("tenant {} ({})", row.id, row.domain),
                format!(
                    "has a UM_TENANT row but no {TENANTS_DIR}/{}/ folder",
                    row.id
                ),
            );
        }
    }
    for id in folders.difference(&ids) {
        report.error(
            "tenant-folder",
            format!("{TENANTS_DIR}/{id}/"),
            format!("has no UM_TENANT row with UM_ID {id}"),
        );
    }
    let matched = ids.intersection(&folders).count();
    report.info(
        "tenant-folder",
        "UM_TENANT",
        format!(
            "{} tenant rows, {} tenant folders, {matched} matched",
            rows.len(),
            folders.len()
        ),
    );
}

fn check_domains(home: &ProductHome, session: &mut Session, report: &mut Report) {
    let rows = match db::domains(session) {
        Ok(rows) => rows,
        Err(e) => {
            report.error(
                "userstore-domain",
                "UM_DOMAIN",
                format!("cannot read: {}", error_chain(&e)),
            );
            return;
        }
    };
    let mut rows_by_tenant: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    for (tenant, name) in rows {
        rows_by_tenant.entry(tenant).or_default().insert(name);
    }
    let mut files_by_tenant: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    for store in &home.user_stores {
        let Some(domain) = &store.domain else {
            report.error(
                "userstore-domain",
                store_object(store),
                "has no DomainName property",
            );
            continue;
        };
        let upper = domain.to_ascii_uppercase();
        files_by_tenant
            .entry(store.tenant_id)
            .or_default()
            .insert(upper.clone());
        let known = rows_by_tenant
            .get(&store.tenant_id)
            .is_some_and(|d| d.contains(&upper));
        if !known {
            report.warning(
                "userstore-domain",
                store_object(store),
                format!(
                    "no UM_DOMAIN row ({upper}, tenant {}); the store was never deployed on the old server or its rows were not copied",
                    store.tenant_id
                ),
            );
        }
    }
    for (tenant, domains) in &rows_by_tenant {
        for domain in domains {
            if BUILTIN_DOMAINS.contains(&domain.as_str()) {
                continue;
            }
            let has_file = files_by_tenant
                .get(tenant)
                .is_some_and(|f| f.contains(domain));
            if !has_file {
                let dir = if *tenant == SUPER_TENANT_ID {
                    carbon_config::home::SUPER_TENANT_USERSTORES.to_owned()
                } else {
                    format!("{TENANTS_DIR}/{tenant}/userstores")
                };
                report.error(
                    "userstore-file",
                    format!("domain {domain} of tenant {tenant}"),
                    format!(
                        "has a UM_DOMAIN row but no user-store file in {dir}/ ({}.xml)",
                        domain.to_ascii_lowercase().replace('.', "_")
                    ),
                );
            }
        }
    }
}

fn check_user_counts(staging: &mut Session, old: &DbUrl, report: &mut Report) {
    let mut old_session = match Session::read_only(old) {
        Ok(session) => session,
        Err(e) => {
            report.error("user-count", old.to_string(), error_chain(&e));
            return;
        }
    };
    let (old_counts, new_counts) =
        match (db::user_counts(&mut old_session), db::user_counts(staging)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) => {
                report.error("user-count", format!("UM_USER of {old}"), error_chain(&e));
                return;
            }
            (_, Err(e)) => {
                report.error("user-count", "UM_USER of staging", error_chain(&e));
                return;
            }
        };
    let tenants: BTreeSet<i64> = old_counts
        .keys()
        .chain(new_counts.keys())
        .copied()
        .collect();
    let mut equal = 0;
    for tenant in &tenants {
        let (a, b) = (
            old_counts.get(tenant).copied().unwrap_or(0),
            new_counts.get(tenant).copied().unwrap_or(0),
        );
        if a == b {
            equal += 1;
        } else {
            report.error(
                "user-count",
                format!("tenant {tenant}"),
                format!("{a} users in the old database, {b} in staging"),
            );
        }
    }
    report.info(
        "user-count",
        "UM_USER",
        format!(
            "{equal} of {} tenants have equal user counts",
            tenants.len()
        ),
    );
}

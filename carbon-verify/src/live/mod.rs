//! The guide's "Going into production" tests, run against the running new server over its
//! admin SOAP services: server data, super-tenant user stores and users, tenants with their
//! own stores and users, pre-existing data, and clean-up.
//!
//! Every name this run creates carries its run id. Tenants cannot be deleted on
//! carbon-multitenancy 4.6.x (`deleteTenant` never deletes), so they are deactivated and
//! listed in [`Report::leftover_tenants`].

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use carbon_config::{ProductHome, Secret};
use carbon_db::{DbError, DbUrl, Session, Vendor};

use crate::client::{CallError, Client, Credentials, Trust};
use crate::db;
use crate::error::VerifyError;
use crate::offline::datasource_db_url;
use crate::report::{Progress, Report};
use crate::soap::{self, JDBC_USER_STORE_CLASS, Request, TenantInfo, UserStoreDto};
use crate::xml::Element;

mod cleanup;
mod data;
mod stores;
mod tenants;
mod users;

/// What to test and how to reach the server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// `https://host:9443` (or `http://` for a test server).
    pub url: String,
    /// The super-tenant admin.
    pub user: String,
    pub password: Secret,
    /// The upgraded home: staging DB, `dbscripts/<vendor>.sql`.
    pub home: Option<PathBuf>,
    /// Where user-store databases are created; default: the staging database's server.
    pub userstore_db: Option<DbUrl>,
    pub tenants: u32,
    pub userstores: u32,
    pub users: u32,
    pub deploy_timeout: Duration,
    /// How often deployment is polled.
    pub poll_interval: Duration,
    pub trust: Trust,
    /// Per-request timeout.
    pub http_timeout: Duration,
    /// How many pre-existing tenants and users to look for.
    pub sample: usize,
    /// Fixed run id (tests); default: random.
    pub run_id: Option<String>,
    /// Leave users, stores, databases and tenants in place (for inspection).
    pub keep: bool,
}

impl ServerOptions {
    /// The CLI's defaults: 2 tenants, 2 user stores, 2 users, 60 s deployment timeout.
    pub fn new(url: &str, user: &str, password: Secret) -> ServerOptions {
        ServerOptions {
            url: url.to_owned(),
            user: user.to_owned(),
            password,
            home: None,
            userstore_db: None,
            tenants: 2,
            userstores: 2,
            users: 2,
            deploy_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            trust: Trust::WebPki,
            http_timeout: Duration::from_secs(60),
            sample: 5,
            run_id: None,
            keep: false,
        }
    }
}

/// A user store this run added.
#[derive(Debug, Clone)]
struct Store {
    domain: String,
    database: String,
    /// `None`: the super tenant.
    tenant: Option<usize>,
    added: bool,
    deployed: bool,
}

/// A tenant this run added.
#[derive(Debug, Clone)]
struct Tenant {
    domain: String,
    creds: Credentials,
}

/// Runs every live test and returns the findings.
pub fn verify_server(opts: &ServerOptions, progress: &dyn Progress) -> Result<Report, VerifyError> {
    let client = Client::new(&opts.url, &opts.trust, opts.http_timeout)?;
    let home = match &opts.home {
        Some(path) => Some(ProductHome::open(path).map_err(|error| VerifyError::Home {
            home: path.clone(),
            error,
        })?),
        None => None,
    };
    let mut report = Report::default();
    let staging = home
        .as_ref()
        .and_then(|home| staging_url(home, &mut report));
    let needs_db = opts.userstores > 0 || opts.tenants > 0;
    let store_server = opts.userstore_db.clone().or_else(|| staging.clone());
    let setup = if needs_db {
        let server = store_server.ok_or_else(|| VerifyError::Input {
            what: "--userstore-db".into(),
            reason: "no server for user-store databases: give --userstore-db or --home with a PostgreSQL/MySQL staging datasource".into(),
        })?;
        if !matches!(server.vendor(), Vendor::Postgres | Vendor::MySql) {
            return Err(VerifyError::Input {
                what: format!("user-store database server {server}"),
                reason: "must be PostgreSQL or MySQL/MariaDB".into(),
            });
        }
        let home = home.as_ref().ok_or_else(|| VerifyError::Input {
            what: "--home".into(),
            reason: "needed: user-store databases are initialised with the new home's dbscripts/<vendor>.sql".into(),
        })?;
        let path = home
            .root
            .join("dbscripts")
            .join(db::script_name(server.vendor()));
        let script = std::fs::read_to_string(&path).map_err(|error| VerifyError::Io {
            path: path.clone(),
            error,
        })?;
        Some((server, script))
    } else {
        None
    };
    let run_id = opts.run_id.clone().unwrap_or_else(|| random_hex(6));
    report.run_id = Some(run_id.clone());
    let mut run = Run {
        client,
        admin: Credentials {
            user: opts.user.clone(),
            password: opts.password.clone(),
        },
        opts,
        report,
        run_id,
        fatal: false,
        stores: Vec::new(),
        tenants: Vec::new(),
        users: Vec::new(),
        setup,
        progress,
    };
    run.server_data(staging.as_ref());
    if !run.fatal {
        run.preexisting(staging.as_ref());
    }
    if !run.fatal && run.opts.userstores > 0 {
        run.super_tenant_stores();
    }
    if !run.fatal && run.opts.users > 0 {
        run.users_in(None, "PRIMARY");
    }
    if !run.fatal {
        for k in 1..=run.opts.tenants {
            run.tenant(k as usize);
            if run.fatal {
                break;
            }
        }
    }
    run.cleanup();
    Ok(run.report)
}

fn staging_url(home: &ProductHome, report: &mut Report) -> Option<DbUrl> {
    let ds = home
        .user_mgt
        .datasource
        .as_deref()
        .and_then(|jndi| home.datasource_by_jndi(jndi))
        .or_else(|| home.datasources.first())?;
    let url = ds.url.as_ref()?;
    match datasource_db_url(home, url, ds.username.clone(), &ds.password) {
        Ok(url) => Some(url),
        Err(reason) => {
            report.warning("staging-db", format!("datasource {}", ds.name), reason);
            None
        }
    }
}

struct Run<'a> {
    client: Client,
    admin: Credentials,
    opts: &'a ServerOptions,
    report: Report,
    run_id: String,
    /// Set when the server cannot be used any more (down, TLS, admin refused).
    fatal: bool,
    stores: Vec<Store>,
    tenants: Vec<Tenant>,
    /// Users added: (tenant index, qualified name).
    users: Vec<(Option<usize>, String)>,
    setup: Option<(DbUrl, String)>,
    progress: &'a dyn Progress,
}

impl Run<'_> {
    fn creds(&self, tenant: Option<usize>) -> Credentials {
        match tenant {
            Some(i) => self.tenants[i].creds.clone(),
            None => self.admin.clone(),
        }
    }

    fn tenant_label(&self, tenant: Option<usize>) -> String {
        match tenant {
            Some(i) => format!("tenant {}", self.tenants[i].domain),
            None => "super tenant".into(),
        }
    }

    /// One call; a fatal error as the super admin stops the run (recorded once).
    fn call(
        &mut self,
        request: &Request,
        tenant: Option<usize>,
    ) -> Result<Option<Element>, CallError> {
        if self.fatal {
            return Err(CallError::Unreachable {
                url: self.client.base().to_owned(),
                reason: "skipped after an earlier failure".into(),
            });
        }
        let creds = self.creds(tenant);
        let result = self.client.call(request, &creds);
        // The super admin refused on the very first call (as a status or as an "Access
        // Denied" fault) cannot do anything else either.
        if let Err(e) = &result
            && tenant.is_none()
            && (e.is_fatal() || (e.is_access_denied() && request.operation == "getServerData"))
        {
            self.fatal = true;
            self.report
                .error("connect", self.client.base().to_owned(), e.to_string());
        }
        result
    }

    /// Records a failed call (unless it was the fatal one, already recorded).
    fn failed(&mut self, check: &str, object: String, err: &CallError, tenant: Option<usize>) {
        if self.fatal && tenant.is_none() && (err.is_fatal() || err.is_access_denied()) {
            return;
        }
        if matches!(err, CallError::Unreachable { reason, .. } if reason.starts_with("skipped")) {
            return;
        }
        self.report.error(check, object, err.to_string());
    }

    fn is_existing(&mut self, user: &str, tenant: Option<usize>) -> Result<bool, CallError> {
        let resp = self.call(&Request::is_existing_user(user), tenant)?;
        let value = resp.map(|r| soap::returns(&r)).unwrap_or_default();
        Ok(value.first().is_some_and(|v| v == "true"))
    }
}

fn default_user(vendor: Vendor) -> &'static str {
    match vendor {
        Vendor::Postgres => "postgres",
        _ => "root",
    }
}

/// Random lowercase hex from the standard library's per-process random hasher keys.
fn random_hex(len: usize) -> String {
    let mut out = String::new();
    while out.len() < len {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        out.push_str(&format!("{:016x}", hasher.finish()));
    }
    out.truncate(len);
    out
}

/// A password that satisfies Carbon's default `^[\S]{5,30}$` and typical policies.
fn random_password() -> String {
    format!("Vx{}#9a", random_hex(12))
}

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

    fn server_data(&mut self, staging: Option<&DbUrl>) {
        self.progress.step("ServerAdmin.getServerData");
        let data = match self.call(&Request::get_server_data(), None) {
            Ok(Some(data)) => data,
            Ok(None) => {
                self.report.error(
                    "server-data",
                    "ServerAdmin",
                    "getServerData answered nothing",
                );
                return;
            }
            Err(e) => {
                self.failed("server-data", "ServerAdmin".into(), &e, None);
                return;
            }
        };
        let get = |name: &str| data.find(name).map(|e| e.text.trim().to_owned());
        let version = get("carbonVersion").unwrap_or_default();
        self.report.info(
            "server-data",
            self.client.base().to_owned(),
            format!(
                "Carbon {} ({})",
                if version.is_empty() { "?" } else { &version },
                get("serverName").unwrap_or_default()
            ),
        );
        let db_url = get("dbURL").unwrap_or_default();
        let shown = carbon_db::redact_raw(&db_url);
        match staging {
            None => self.report.warning(
                "server-db",
                format!("dbURL {shown}"),
                "no --home with a readable staging datasource: cannot tell whether this is staging",
            ),
            Some(staging) => {
                let root = self.opts.home.as_deref();
                let same = DbUrl::parse_in(&db_url, root).is_ok_and(|u| u.same_database(staging));
                if same {
                    self.report.info(
                        "server-db",
                        format!("dbURL {shown}"),
                        format!("is the staging database {staging}"),
                    );
                } else {
                    self.report.error(
                        "server-db",
                        format!("dbURL {shown}"),
                        format!("is not the staging database {staging}"),
                    );
                }
            }
        }
    }

    /// Tenants and super-tenant users that exist in staging must exist on the server.
    fn preexisting(&mut self, staging: Option<&DbUrl>) {
        let Some(staging) = staging.filter(|s| s.vendor() != Vendor::H2) else {
            self.report.info(
                "preexisting",
                "staging database",
                "no queryable staging database (--home with a PostgreSQL/MySQL datasource): pre-existing tenants and users were not sampled",
            );
            return;
        };
        self.progress.step("pre-existing tenants and users");
        let sampled = Session::read_only(staging).and_then(|mut session| {
            let tenants = db::tenants(&mut session)?;
            let users = db::sample_users(
                &mut session,
                carbon_config::home::SUPER_TENANT_ID,
                self.opts.sample,
            )?;
            Ok((tenants, users))
        });
        let (tenants, users) = match sampled {
            Ok(found) => found,
            Err(e) => {
                self.report.error(
                    "preexisting",
                    staging.to_string(),
                    carbon_db::error_chain(&e),
                );
                return;
            }
        };
        let mut seen = 0;
        for row in tenants.iter().take(self.opts.sample) {
            let object = format!("tenant {} ({})", row.id, row.domain);
            match self.call(&Request::get_tenant(&row.domain), None) {
                Ok(Some(resp)) => {
                    let bean = resp.child("return");
                    let domain = bean.and_then(|b| b.child_text("tenantDomain"));
                    let id = bean.and_then(|b| b.child_text("tenantId"));
                    if domain.as_deref() == Some(row.domain.as_str())
                        && id.as_deref() == Some(row.id.to_string().as_str())
                    {
                        seen += 1;
                    } else {
                        self.report.error(
                            "preexisting-tenant",
                            object,
                            format!(
                                "getTenant answered domain {:?}, id {:?}",
                                domain.unwrap_or_default(),
                                id.unwrap_or_default()
                            ),
                        );
                    }
                }
                Ok(None) => {
                    self.report
                        .error("preexisting-tenant", object, "getTenant answered nothing")
                }
                Err(e) => self.failed("preexisting-tenant", object, &e, None),
            }
        }
        if !tenants.is_empty() {
            self.report.info(
                "preexisting-tenant",
                "UM_TENANT",
                format!(
                    "{seen} of {} sampled tenants found on the server",
                    tenants.len().min(self.opts.sample)
                ),
            );
        }
        let mut found = 0;
        for user in &users {
            let object = format!("user {user} (super tenant)");
            match self.is_existing(user, None) {
                Ok(true) => found += 1,
                Ok(false) => self.report.error(
                    "preexisting-user",
                    object,
                    "exists in staging UM_USER but not on the server",
                ),
                Err(e) => self.failed("preexisting-user", object, &e, None),
            }
        }
        if !users.is_empty() {
            self.report.info(
                "preexisting-user",
                "UM_USER",
                format!(
                    "{found} of {} sampled super-tenant users found on the server",
                    users.len()
                ),
            );
        }
    }

    fn is_existing(&mut self, user: &str, tenant: Option<usize>) -> Result<bool, CallError> {
        let resp = self.call(&Request::is_existing_user(user), tenant)?;
        let value = resp.map(|r| soap::returns(&r)).unwrap_or_default();
        Ok(value.first().is_some_and(|v| v == "true"))
    }

    fn super_tenant_stores(&mut self) {
        for i in 1..=self.opts.userstores {
            let domain = format!("VERIFY-{}-S{i}", self.run_id.to_ascii_uppercase());
            let database = format!("verify_{}_s{i}", self.run_id);
            self.add_store(None, domain, database);
        }
        self.wait_deployed(None);
        let deployed: Vec<String> = self
            .stores
            .iter()
            .filter(|s| s.tenant.is_none() && s.deployed)
            .map(|s| s.domain.clone())
            .collect();
        for domain in deployed {
            self.users_in(None, &domain);
        }
    }

    /// Creates and initialises the store's database, then `addUserStore`.
    fn add_store(&mut self, tenant: Option<usize>, domain: String, database: String) {
        let Some((server, script)) = self.setup.clone() else {
            return;
        };
        let who = self.tenant_label(tenant);
        let object = format!("user store {domain} ({who})");
        self.progress.step(&format!("user store {domain}"));
        let created = carbon_db::create_database(&server, &database).and_then(|url| {
            let mut session = Session::read_write(&url)?;
            session.run_script(&script)?;
            if db::has_um_user(&mut session) {
                Ok(url)
            } else {
                Err(DbError::Sql {
                    url: url.to_string(),
                    context: "running the dbscript".into(),
                    detail: "it created no UM_USER table".into(),
                })
            }
        });
        let mut store = Store {
            domain: domain.clone(),
            database: database.clone(),
            tenant,
            added: false,
            deployed: false,
        };
        let url = match created {
            Ok(url) => url,
            Err(e) => {
                self.report
                    .error("userstore-db", object, carbon_db::error_chain(&e));
                self.stores.push(store);
                return;
            }
        };
        self.report.info(
            "userstore-db",
            object.clone(),
            format!(
                "created database {url} and ran dbscripts/{}",
                db::script_name(server.vendor())
            ),
        );
        let dto = UserStoreDto {
            class_name: JDBC_USER_STORE_CLASS.into(),
            description: format!("carbon-upgrade verification run {}", self.run_id),
            disabled: false,
            domain: domain.clone(),
            properties: vec![
                ("driverName".into(), db::jdbc_driver(server.vendor()).into()),
                ("url".into(), db::jdbc_url(&url)),
                (
                    "userName".into(),
                    url.user().unwrap_or(default_user(server.vendor())).into(),
                ),
                ("password".into(), url.password().unwrap_or_default().into()),
            ],
        };
        match self.call(&Request::add_user_store(&dto), tenant) {
            Ok(_) => {
                store.added = true;
                self.report
                    .info("userstore-add", object, "addUserStore accepted");
            }
            Err(e) => {
                let message = if tenant.is_some() && e.is_access_denied() {
                    format!("the tenant admin may not add user stores: {e}")
                } else {
                    e.to_string()
                };
                if !(self.fatal && tenant.is_none()) {
                    self.report.error("userstore-add", object, message);
                }
            }
        }
        self.stores.push(store);
    }

    /// Polls `getSecondaryRealmConfigurations` until the added stores of this tenant are
    /// deployed or the timeout passes.
    fn wait_deployed(&mut self, tenant: Option<usize>) {
        let pending = |run: &Self| -> Vec<usize> {
            run.stores
                .iter()
                .enumerate()
                .filter(|(_, s)| s.tenant == tenant && s.added && !s.deployed)
                .map(|(i, _)| i)
                .collect()
        };
        if pending(self).is_empty() {
            return;
        }
        self.progress.step("waiting for user-store deployment");
        let started = Instant::now();
        loop {
            match self.call(&Request::get_secondary_realm_configurations(), tenant) {
                Ok(resp) => {
                    let deployed: Vec<String> = resp
                        .iter()
                        .flat_map(|r| r.children_named("return"))
                        .filter(|dto| dto.child_text("disabled").as_deref() != Some("true"))
                        .filter_map(|dto| dto.child_text("domainId"))
                        .map(|d| d.to_ascii_uppercase())
                        .collect();
                    for i in pending(self) {
                        if deployed.contains(&self.stores[i].domain.to_ascii_uppercase()) {
                            self.stores[i].deployed = true;
                            let object = format!(
                                "user store {} ({})",
                                self.stores[i].domain,
                                self.tenant_label(tenant)
                            );
                            self.report.info(
                                "userstore-deploy",
                                object,
                                format!("deployed after {:.1} s", started.elapsed().as_secs_f64()),
                            );
                        }
                    }
                }
                Err(e) => {
                    self.failed(
                        "userstore-deploy",
                        format!(
                            "getSecondaryRealmConfigurations ({})",
                            self.tenant_label(tenant)
                        ),
                        &e,
                        tenant,
                    );
                    return;
                }
            }
            if pending(self).is_empty() {
                return;
            }
            if started.elapsed() >= self.opts.deploy_timeout {
                for i in pending(self) {
                    let object = format!(
                        "user store {} ({})",
                        self.stores[i].domain,
                        self.tenant_label(tenant)
                    );
                    self.report.error(
                        "userstore-deploy",
                        object,
                        format!(
                            "not deployed within {} s (--deploy-timeout)",
                            self.opts.deploy_timeout.as_secs_f64()
                        ),
                    );
                }
                return;
            }
            std::thread::sleep(self.opts.poll_interval);
        }
    }

    /// Adds the run's users to one store of one tenant and confirms them.
    fn users_in(&mut self, tenant: Option<usize>, domain: &str) {
        let who = self.tenant_label(tenant);
        self.progress.step(&format!("users in {domain} ({who})"));
        let password = random_password();
        let mut added = Vec::new();
        for j in 1..=self.opts.users {
            let bare = format!("vfy{}u{j}", self.run_id);
            let name = if domain == "PRIMARY" {
                bare
            } else {
                format!("{domain}/{bare}")
            };
            let object = format!("user {name} ({who})");
            match self.call(&Request::add_user(&name, &password, &[]), tenant) {
                Ok(_) => {
                    self.users.push((tenant, name.clone()));
                    match self.is_existing(&name, tenant) {
                        Ok(true) => added.push(name),
                        Ok(false) => self.report.error(
                            "user-confirm",
                            object,
                            "addUser was accepted but isExistingUser says false",
                        ),
                        Err(e) => self.failed("user-confirm", object, &e, tenant),
                    }
                }
                Err(e) => self.failed("user-add", object, &e, tenant),
            }
        }
        if added.is_empty() {
            return;
        }
        // PRIMARY is listed with a filter without a domain (primary plus every secondary,
        // secondaries prefixed): `PRIMARY/...` filters are not understood by every kernel.
        let primary = domain == "PRIMARY";
        let filter = if primary {
            format!("vfy{}*", self.run_id)
        } else {
            format!("{domain}/vfy{}*", self.run_id)
        };
        match self.call(&Request::list_users(&filter, 100), tenant) {
            Ok(resp) => {
                let listed: Vec<String> = resp.map(|r| soap::returns(&r)).unwrap_or_default();
                let in_domain = |n: &str| -> Option<String> {
                    match n.split_once('/') {
                        None if primary => Some(n.to_owned()),
                        Some((d, rest)) if d.eq_ignore_ascii_case(domain) => Some(rest.to_owned()),
                        _ => None,
                    }
                };
                let bare = |n: &str| n.rsplit('/').next().unwrap_or(n).to_owned();
                let listed: Vec<String> = listed.iter().filter_map(|n| in_domain(n)).collect();
                let missing: Vec<&String> = added
                    .iter()
                    .filter(|n| !listed.contains(&bare(n)))
                    .collect();
                if missing.is_empty() {
                    self.report.info(
                        "user-confirm",
                        format!("domain {domain} ({who})"),
                        format!(
                            "{} users added; isExistingUser and listUsers({filter}) confirm them",
                            added.len()
                        ),
                    );
                } else {
                    self.report.error(
                        "user-confirm",
                        format!("domain {domain} ({who})"),
                        format!(
                            "listUsers({filter}) lacks {}",
                            missing
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
            }
            Err(e) => self.failed(
                "user-confirm",
                format!("domain {domain} ({who})"),
                &e,
                tenant,
            ),
        }
    }

    fn tenant(&mut self, k: usize) {
        let domain = format!("verify-{}-t{k}.example.com", self.run_id);
        self.progress.step(&format!("tenant {domain}"));
        let password = random_password();
        let info = TenantInfo {
            domain: domain.clone(),
            admin: "admin".into(),
            admin_password: Secret::from(password.clone()),
            email: format!("admin@{domain}"),
            first_name: "Verify".into(),
            last_name: "Tenant".into(),
        };
        let object = format!("tenant {domain}");
        match self.call(&Request::add_tenant(&info), None) {
            Ok(resp) => {
                let id = resp.map(|r| soap::returns(&r)).unwrap_or_default();
                self.report.info(
                    "tenant-add",
                    object,
                    format!(
                        "added; addTenant returned {}",
                        id.first().map_or("nothing", String::as_str)
                    ),
                );
            }
            Err(e) => {
                self.failed("tenant-add", object, &e, None);
                return;
            }
        }
        self.tenants.push(Tenant {
            domain: domain.clone(),
            creds: Credentials {
                user: format!("admin@{domain}"),
                password: Secret::from(password),
            },
        });
        let index = self.tenants.len() - 1;
        let store = format!("VERIFY-{}-T{k}", self.run_id.to_ascii_uppercase());
        let database = format!("verify_{}_t{k}", self.run_id);
        self.add_store(Some(index), store.clone(), database);
        self.wait_deployed(Some(index));
        if self.opts.users > 0 {
            self.users_in(Some(index), "PRIMARY");
            if self.stores.iter().any(|s| s.domain == store && s.deployed) {
                self.users_in(Some(index), &store);
            }
        }
    }

    fn cleanup(&mut self) {
        if self.opts.keep {
            let kept = format!(
                "{} users, {} user stores (and their databases), {} tenants kept",
                self.users.len(),
                self.stores.len(),
                self.tenants.len()
            );
            self.report
                .warning("cleanup", format!("run {}", self.run_id), kept);
            self.report.leftover_tenants = self.tenants.iter().map(|t| t.domain.clone()).collect();
            return;
        }
        self.progress.step("clean-up");
        let users = std::mem::take(&mut self.users);
        let mut deleted = 0;
        for (tenant, name) in users.iter().rev() {
            match self.call(&Request::delete_user(name), *tenant) {
                Ok(_) => deleted += 1,
                Err(e) => {
                    let object = format!("user {name} ({})", self.tenant_label(*tenant));
                    self.failed("cleanup-user", object, &e, *tenant);
                }
            }
        }
        if !users.is_empty() {
            self.report.info(
                "cleanup-user",
                format!("run {}", self.run_id),
                format!("{deleted} of {} users deleted", users.len()),
            );
        }
        let stores = std::mem::take(&mut self.stores);
        for store in &stores {
            let object = format!(
                "user store {} ({})",
                store.domain,
                self.tenant_label(store.tenant)
            );
            if store.added {
                match self.call(&Request::delete_user_store(&store.domain), store.tenant) {
                    Ok(_) => self.report.info(
                        "cleanup-userstore",
                        object.clone(),
                        "deleteUserStore accepted",
                    ),
                    Err(e) => self.failed("cleanup-userstore", object.clone(), &e, store.tenant),
                }
            }
            if let Some((server, _)) = &self.setup
                && let Err(e) = carbon_db::drop_database(server, &store.database)
            {
                self.report.warning(
                    "cleanup-userstore",
                    object,
                    format!("database not dropped: {}", carbon_db::error_chain(&e)),
                );
            }
        }
        let tenants = self.tenants.clone();
        for tenant in &tenants {
            let object = format!("tenant {}", tenant.domain);
            match self.call(&Request::deactivate_tenant(&tenant.domain), None) {
                Ok(_) => {
                    let active = self
                        .call(&Request::get_tenant(&tenant.domain), None)
                        .ok()
                        .flatten()
                        .and_then(|r| r.child("return").and_then(|b| b.child_text("active")));
                    if active.as_deref() == Some("false") {
                        self.report.info(
                            "cleanup-tenant",
                            object,
                            "deactivated (deleteTenant cannot delete on carbon-multitenancy 4.6.x); it stays in the database",
                        );
                    } else {
                        self.report.warning(
                            "cleanup-tenant",
                            object,
                            format!(
                                "deactivateTenant accepted but getTenant says active={}",
                                active.unwrap_or_default()
                            ),
                        );
                    }
                }
                Err(e) => self.failed("cleanup-tenant", object, &e, None),
            }
            self.report.leftover_tenants.push(tenant.domain.clone());
        }
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

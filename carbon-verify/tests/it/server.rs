//! `CarbonAdminTestServer`: a Carbon admin-service test server speaking SOAP 1.1 over real
//! HTTP (tiny_http on 127.0.0.1, port 0), over a real database with the UM schema (the
//! staging database) and a real product home on disk.
//!
//! It implements what `carbon-verify` calls, with Carbon's behaviour where it matters:
//! `addUserStore` only writes `<domain with _>.xml` into the caller's `userstores/` folder and
//! the store is deployed later (after a configurable delay, by reading the file back,
//! connecting to its JDBC URL and finding `UM_USER`); users of a store live in *that*
//! store's database; tenants are `UM_TENANT` rows plus `repository/tenants/<id>/` folders;
//! `deleteTenant` always fails (carbon-multitenancy 4.6.x). Every request is checked against
//! the real WSDL (`wsdl::check_request`) and rejected with a SOAP fault when it does not match.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use carbon_db::{DbUrl, Vendor};
use carbon_verify::soap::{self, Service};
use carbon_verify::xml::{self, Element, escape};
use mysql::prelude::Queryable;
use sha2::{Digest, Sha256};

use crate::wsdl;

pub const SUPER_TENANT: i64 = -1234;

#[derive(Debug, Clone)]
pub enum Deploy {
    After(Duration),
    Never,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub deploy: Deploy,
    /// Tenant admins get "Access Denied" from UserStoreConfigAdminService.
    pub deny_tenant_userstores: bool,
    pub carbon_version: String,
    /// The JDBC URL `getServerData` reports.
    pub db_url: String,
    /// Refuse bad credentials with an HTTP 500 "Access Denied" SOAP fault instead of 401.
    pub auth_fault: bool,
}

/// What the server saw.
#[derive(Debug, Clone, Default)]
pub struct Log {
    /// Requests refused because they do not match the WSDL.
    pub rejections: Vec<String>,
    /// `user Service.operation -> status`, in order.
    pub calls: Vec<String>,
}

pub struct CarbonAdminTestServer {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    log: Arc<Mutex<Log>>,
}

impl std::fmt::Debug for CarbonAdminTestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CarbonAdminTestServer({})", self.addr)
    }
}

impl CarbonAdminTestServer {
    /// Starts serving `home` over `staging`; `admin_password` is set for the super admin
    /// `admin` (inserted into `UM_USER` of tenant -1234).
    pub fn start(home: &Path, staging: &DbUrl, admin_password: &str, config: ServerConfig) -> Self {
        let mut db =
            Sql::connect(staging).unwrap_or_else(|e| panic!("test server: staging {staging}: {e}"));
        db.exec(&format!(
            "INSERT INTO UM_USER (UM_USER_NAME, UM_USER_PASSWORD, UM_REQUIRE_CHANGE, UM_CHANGED_TIME, UM_TENANT_ID) \
             VALUES ('admin', '{}', FALSE, CURRENT_TIMESTAMP, {SUPER_TENANT})",
            hash(admin_password)
        ))
        .expect("insert the super admin");
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1:0"));
        let addr = server.server_addr().to_ip().expect("an IP listener");
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Log::default()));
        let mut state = State {
            home: home.to_path_buf(),
            db,
            config,
            pending: Vec::new(),
            deployed: Vec::new(),
            log: Arc::clone(&log),
        };
        let thread = {
            let server = Arc::clone(&server);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match server.recv_timeout(Duration::from_millis(50)) {
                        Ok(Some(request)) => state.serve(request),
                        Ok(None) => {}
                        Err(_) => break,
                    }
                }
            })
        };
        CarbonAdminTestServer {
            addr,
            server,
            stop,
            thread: Some(thread),
            log,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn log(&self) -> Log {
        self.log.lock().expect("log").clone()
    }
}

impl Drop for CarbonAdminTestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub fn hash(password: &str) -> String {
    Sha256::digest(password.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

struct PendingStore {
    tenant: i64,
    domain: String,
    file: PathBuf,
    due: Option<Instant>,
}

struct DeployedStore {
    tenant: i64,
    /// Upper-cased.
    domain: String,
    file: PathBuf,
    class: String,
    description: String,
    db: Sql,
}

struct State {
    home: PathBuf,
    db: Sql,
    config: ServerConfig,
    pending: Vec<PendingStore>,
    deployed: Vec<DeployedStore>,
    log: Arc<Mutex<Log>>,
}

type Answer = (u16, String);

fn fault(string: &str) -> Answer {
    (500, soap::fault_envelope("soapenv:Server", string))
}

fn accepted() -> Answer {
    (202, String::new())
}

fn response(service: Service, op: &str, inner: &str) -> Answer {
    (
        200,
        format!(
            "<?xml version='1.0' encoding='UTF-8'?><soapenv:Envelope xmlns:soapenv=\"{}\"><soapenv:Body>\
             <ns:{op}Response xmlns:ns=\"{}\">{inner}</ns:{op}Response></soapenv:Body></soapenv:Envelope>",
            soap::SOAP_ENV,
            service.namespace()
        ),
    )
}

fn empty_body() -> Answer {
    (
        200,
        format!(
            "<?xml version='1.0' encoding='UTF-8'?><soapenv:Envelope xmlns:soapenv=\"{}\"><soapenv:Body/></soapenv:Envelope>",
            soap::SOAP_ENV
        ),
    )
}

impl State {
    fn serve(&mut self, mut request: tiny_http::Request) {
        let header = |name: &str| {
            request
                .headers()
                .iter()
                .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
                .map(|h| h.value.as_str().to_owned())
        };
        let soap_action = header("SOAPAction");
        let content_type = header("Content-Type");
        let authorization = header("Authorization");
        let path = request.url().to_owned();
        let mut body = String::new();
        let _ = std::io::Read::read_to_string(request.as_reader(), &mut body);
        let (user, (status, text)) = self.answer(
            &path,
            soap_action.as_deref(),
            content_type.as_deref(),
            authorization.as_deref(),
            &body,
        );
        {
            let op = soap_action.unwrap_or_default();
            let mut log = self.log.lock().expect("log");
            log.calls.push(format!("{user} {path} {op} -> {status}"));
        }
        let mut response = tiny_http::Response::from_string(text).with_status_code(status);
        if status != 202 {
            response = response.with_header(
                tiny_http::Header::from_bytes("Content-Type", "text/xml; charset=UTF-8")
                    .expect("header"),
            );
        }
        let _ = request.respond(response);
    }

    fn answer(
        &mut self,
        path: &str,
        soap_action: Option<&str>,
        content_type: Option<&str>,
        authorization: Option<&str>,
        body: &str,
    ) -> (String, Answer) {
        let Some(service) = path.strip_prefix("/services/").and_then(Service::from_name) else {
            return (String::new(), (404, format!("no service at {path}")));
        };
        let operation = match wsdl::check_request(service, soap_action, content_type, body) {
            Ok(op) => op,
            Err(reason) => {
                self.log
                    .lock()
                    .expect("log")
                    .rejections
                    .push(format!("{service}: {reason}"));
                return (
                    String::new(),
                    fault(&format!("request does not match the WSDL: {reason}")),
                );
            }
        };
        let Some((user, tenant)) = self.authenticate(authorization) else {
            let status = if self.config.auth_fault { 500 } else { 401 };
            return (
                "?".into(),
                (
                    status,
                    soap::fault_envelope("soapenv:Client", "Access Denied. Please login first."),
                ),
            );
        };
        self.deploy_due();
        let element = xml::parse(body)
            .ok()
            .and_then(|root| root.find("Body").and_then(|b| b.children.first().cloned()))
            .unwrap_or_default();
        let answer = self.dispatch(service, &operation, &element, tenant);
        (user, answer)
    }

    /// `user` or `user@tenant.domain` with the password hash stored in UM_USER.
    fn authenticate(&mut self, authorization: Option<&str>) -> Option<(String, i64)> {
        let encoded = authorization?.strip_prefix("Basic ")?;
        let decoded = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
        let (user, password) = decoded.split_once(':')?;
        let (name, tenant) = match user.rsplit_once('@') {
            Some((name, domain)) => {
                let rows = self
                    .db
                    .strings(&format!(
                        "SELECT {}, {} FROM UM_TENANT WHERE UM_DOMAIN_NAME = {}",
                        self.db.txt("UM_ID"),
                        self.db.txt("UM_ACTIVE"),
                        lit(domain)
                    ))
                    .ok()?;
                let row = rows.first()?;
                if !matches!(row[1].as_str(), "true" | "1") {
                    return None;
                }
                (name, row[0].parse().ok()?)
            }
            None => (user, SUPER_TENANT),
        };
        let rows = self
            .db
            .strings(&format!(
                "SELECT UM_USER_PASSWORD FROM UM_USER WHERE UM_USER_NAME = {} AND UM_TENANT_ID = {tenant}",
                lit(name)
            ))
            .ok()?;
        (rows.first()?.first()? == &hash(password)).then(|| (user.to_owned(), tenant))
    }

    fn dispatch(&mut self, service: Service, op: &str, el: &Element, tenant: i64) -> Answer {
        let text = |name: &str| el.child_text(name).unwrap_or_default();
        match (service, op) {
            (Service::ServerAdmin, "getServerData") => {
                if tenant != SUPER_TENANT {
                    return fault("Access Denied. You are not authorized to perform this action.");
                }
                let ax = "http://common.admin.server.carbon.wso2.org/xsd";
                response(
                    service,
                    op,
                    &format!(
                        "<ns:return xmlns:ax2100=\"{ax}\"><ax2100:carbonVersion>{}</ax2100:carbonVersion>\
                         <ax2100:dbURL>{}</ax2100:dbURL><ax2100:serverName>WSO2 Carbon (test server)</ax2100:serverName></ns:return>",
                        escape(&self.config.carbon_version),
                        escape(&self.config.db_url)
                    ),
                )
            }
            (Service::UserStoreConfigAdminService, _)
                if tenant != SUPER_TENANT && self.config.deny_tenant_userstores =>
            {
                fault("Access Denied. You are not authorized to perform this action.")
            }
            (Service::UserStoreConfigAdminService, "addUserStore") => {
                self.add_user_store(el, tenant)
            }
            (Service::UserStoreConfigAdminService, "getSecondaryRealmConfigurations") => {
                let dto = soap::USERSTORE_DTO;
                let mut inner = String::new();
                for store in self.deployed.iter().filter(|s| s.tenant == tenant) {
                    inner.push_str(&format!(
                        "<ns:return xmlns:ax2387=\"{dto}\"><ax2387:className>{}</ax2387:className>\
                         <ax2387:description>{}</ax2387:description><ax2387:disabled>false</ax2387:disabled>\
                         <ax2387:domainId>{}</ax2387:domainId></ns:return>",
                        escape(&store.class),
                        escape(&store.description),
                        escape(&store.domain)
                    ));
                }
                response(service, op, &inner)
            }
            (Service::UserStoreConfigAdminService, "deleteUserStore") => {
                let domain = text("domainName").to_ascii_uppercase();
                let before = self.deployed.len();
                let mut file = None;
                self.deployed.retain(|s| {
                    let hit = s.tenant == tenant && s.domain == domain;
                    if hit {
                        file = Some(s.file.clone());
                    }
                    !hit
                });
                self.pending
                    .retain(|p| !(p.tenant == tenant && p.domain == domain));
                let file =
                    file.unwrap_or_else(|| self.store_dir(tenant).join(store_file_name(&domain)));
                if std::fs::remove_file(&file).is_err() && before == self.deployed.len() {
                    return fault(&format!(
                        "Error while deleting user store: no user store {domain}"
                    ));
                }
                accepted()
            }
            (Service::RemoteUserStoreManagerService, "addUser") => {
                let (domain, name) = split_user(&text("userName"));
                let min = if domain == "PRIMARY" { 3 } else { 5 };
                if name.chars().count() < min
                    || name.chars().count() > 30
                    || name.chars().any(char::is_whitespace)
                {
                    return fault(&format!(
                        "Username {name} is not valid. User name must be a non null string with following format, ^[\\S]{{{min},30}}$"
                    ));
                }
                let credential = text("credential");
                let Some(db) = self.user_db(&domain, tenant) else {
                    return fault(&format!("UserStoreException: Invalid Domain Name {domain}"));
                };
                let exists = db
                    .strings(&format!("SELECT UM_USER_NAME FROM UM_USER WHERE UM_USER_NAME = {} AND UM_TENANT_ID = {tenant}", lit(&name)))
                    .map(|r| !r.is_empty())
                    .unwrap_or(false);
                if exists {
                    return fault(
                        "UserAlreadyExisting:Username already exists in the system. Please pick another username.",
                    );
                }
                match db.exec(&format!(
                    "INSERT INTO UM_USER (UM_USER_NAME, UM_USER_PASSWORD, UM_REQUIRE_CHANGE, UM_CHANGED_TIME, UM_TENANT_ID) \
                     VALUES ({}, '{}', FALSE, CURRENT_TIMESTAMP, {tenant})",
                    lit(&name),
                    hash(&credential)
                )) {
                    Ok(()) => accepted(),
                    Err(e) => fault(&format!("Error while adding user: {e}")),
                }
            }
            (Service::RemoteUserStoreManagerService, "isExistingUser") => {
                let (domain, name) = split_user(&text("userName"));
                let found = self.user_db(&domain, tenant).is_some_and(|db| {
                    db.strings(&format!("SELECT UM_USER_NAME FROM UM_USER WHERE UM_USER_NAME = {} AND UM_TENANT_ID = {tenant}", lit(&name)))
                        .is_ok_and(|r| !r.is_empty())
                });
                response(service, op, &format!("<ns:return>{found}</ns:return>"))
            }
            (Service::RemoteUserStoreManagerService, "deleteUser") => {
                let (domain, name) = split_user(&text("userName"));
                let Some(db) = self.user_db(&domain, tenant) else {
                    return fault(&format!("UserStoreException: Invalid Domain Name {domain}"));
                };
                match db.exec(&format!(
                    "DELETE FROM UM_USER WHERE UM_USER_NAME = {} AND UM_TENANT_ID = {tenant}",
                    lit(&name)
                )) {
                    Ok(()) => accepted(),
                    Err(e) => fault(&format!("Error while deleting user: {e}")),
                }
            }
            (Service::RemoteUserStoreManagerService, "listUsers") => {
                let filter = text("filter");
                let max: usize = text("maxItemLimit").parse().unwrap_or(100);
                let (domain, pattern) = match filter.split_once('/') {
                    Some((d, p)) => (Some(d.to_ascii_uppercase()), p.to_owned()),
                    None => (None, filter.clone()),
                };
                let like = lit(&pattern.replace('*', "%"));
                let mut domains = vec!["PRIMARY".to_owned()];
                domains.extend(
                    self.deployed
                        .iter()
                        .filter(|s| s.tenant == tenant)
                        .map(|s| s.domain.clone()),
                );
                let mut names = Vec::new();
                for d in domains {
                    if domain.as_ref().is_some_and(|want| *want != d) {
                        continue;
                    }
                    let Some(db) = self.user_db(&d, tenant) else {
                        continue;
                    };
                    let rows = db
                        .strings(&format!("SELECT UM_USER_NAME FROM UM_USER WHERE UM_USER_NAME LIKE {like} AND UM_TENANT_ID = {tenant} ORDER BY UM_USER_NAME"))
                        .unwrap_or_default();
                    names.extend(rows.into_iter().map(|r| {
                        if d == "PRIMARY" {
                            r[0].clone()
                        } else {
                            format!("{d}/{}", r[0])
                        }
                    }));
                }
                names.truncate(max);
                let inner: String = names
                    .iter()
                    .map(|n| format!("<ns:return>{}</ns:return>", escape(n)))
                    .collect();
                response(service, op, &inner)
            }
            (Service::TenantMgtAdminService, _) if tenant != SUPER_TENANT => {
                fault("Access Denied. You are not authorized to perform this action.")
            }
            (Service::TenantMgtAdminService, "addTenant") => self.add_tenant(el),
            (Service::TenantMgtAdminService, "getTenant") => {
                let domain = text("tenantDomain");
                let rows = self
                    .db
                    .strings(&format!(
                        "SELECT {}, {}, UM_EMAIL FROM UM_TENANT WHERE UM_DOMAIN_NAME = {}",
                        self.db.txt("UM_ID"),
                        self.db.txt("UM_ACTIVE"),
                        lit(&domain)
                    ))
                    .unwrap_or_default();
                let Some(row) = rows.first() else {
                    return fault(&format!("Tenant {domain} does not exist"));
                };
                let bean = soap::TENANT_BEAN;
                let active = matches!(row[1].as_str(), "true" | "1");
                response(
                    service,
                    op,
                    &format!(
                        "<ns:return xmlns:ax2388=\"{bean}\"><ax2388:active>{active}</ax2388:active><ax2388:admin>admin</ax2388:admin>\
                         <ax2388:email>{}</ax2388:email><ax2388:tenantDomain>{}</ax2388:tenantDomain><ax2388:tenantId>{}</ax2388:tenantId></ns:return>",
                        escape(&row[2]),
                        escape(&domain),
                        row[0]
                    ),
                )
            }
            (Service::TenantMgtAdminService, "deactivateTenant") => {
                let domain = text("tenantDomain");
                match self.db.exec(&format!(
                    "UPDATE UM_TENANT SET UM_ACTIVE = FALSE WHERE UM_DOMAIN_NAME = {}",
                    lit(&domain)
                )) {
                    Ok(()) => empty_body(),
                    Err(e) => fault(&format!("Error deactivating tenant {domain}: {e}")),
                }
            }
            (Service::TenantMgtAdminService, "deleteTenant") => {
                // carbon-multitenancy 4.6.0–4.6.17: `(tenantDelete == null) && (tenantDelete.equals("true"))`.
                fault("Error deleting tenant with domain: java.lang.NullPointerException")
            }
            _ => fault(&format!(
                "The test server does not implement {service}.{op}"
            )),
        }
    }

    fn store_dir(&self, tenant: i64) -> PathBuf {
        if tenant == SUPER_TENANT {
            self.home.join("repository/deployment/server/userstores")
        } else {
            self.home
                .join(format!("repository/tenants/{tenant}/userstores"))
        }
    }

    fn add_user_store(&mut self, el: &Element, tenant: i64) -> Answer {
        let Some(dto) = el.child("userStoreDTO") else {
            return fault("userStoreDTO is null");
        };
        let domain = dto.child_text("domainId").unwrap_or_default();
        if domain.is_empty() || domain.contains('_') {
            return fault(&format!(
                "Invalid domain name {domain}: it must not be empty or contain \"_\""
            ));
        }
        let class = dto.child_text("className").unwrap_or_default();
        if class != soap::JDBC_USER_STORE_CLASS {
            return fault(&format!("Unsupported user store manager class {class}"));
        }
        let dir = self.store_dir(tenant);
        let file = dir.join(store_file_name(&domain));
        if file.exists() || domain.eq_ignore_ascii_case("PRIMARY") {
            return fault(&format!(
                "Cannot add user store: domain {domain} already exists"
            ));
        }
        let mut props = String::new();
        let mut names = Vec::new();
        for p in dto.children_named("properties") {
            let name = p.child_text("name").unwrap_or_default();
            let value = p.child_text("value").unwrap_or_default();
            names.push(name.clone());
            props.push_str(&format!(
                "      <Property name=\"{}\">{}</Property>\n",
                escape(&name),
                escape(&value)
            ));
        }
        for mandatory in ["url", "userName", "password", "driverName"] {
            if !names.iter().any(|n| n == mandatory) {
                return fault(&format!("Mandatory property {mandatory} is missing"));
            }
        }
        let description = dto.child_text("description").unwrap_or_default();
        let text = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<UserStoreManager class=\"{}\">\n{props}      \
             <Property name=\"Disabled\">false</Property>\n      <Property name=\"DomainName\">{}</Property>\n      \
             <Property name=\"Description\">{}</Property>\n</UserStoreManager>\n",
            escape(&class),
            escape(&domain),
            escape(&description)
        );
        if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&file, text)) {
            return fault(&format!("Error while writing {}: {e}", file.display()));
        }
        let due = match self.config.deploy {
            Deploy::After(delay) => Some(Instant::now() + delay),
            Deploy::Never => None,
        };
        self.pending.push(PendingStore {
            tenant,
            domain: domain.to_ascii_uppercase(),
            file,
            due,
        });
        accepted()
    }

    /// The hot deployer: reads each due store file back, connects to its database, checks
    /// `UM_USER`, adds the store to the realm and persists its UM_DOMAIN row.
    fn deploy_due(&mut self) {
        let now = Instant::now();
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.due.is_some_and(|d| d <= now));
        self.pending = waiting;
        for p in due {
            let Ok(doc) = carbon_config::XmlDoc::open(&p.file) else {
                continue;
            };
            let store = carbon_config::home::read_user_store(&doc, &p.file, p.tenant);
            let Some(url) = store
                .url
                .as_ref()
                .and_then(|u| DbUrl::parse(&u.as_str()).ok())
            else {
                continue;
            };
            let url = url.with_credentials(
                store.username.clone(),
                store.password.plain().map(str::to_owned),
            );
            let Ok(mut db) = Sql::connect(&url) else {
                continue;
            };
            if db
                .strings("SELECT UM_USER_NAME FROM UM_USER WHERE 1 = 0")
                .is_err()
            {
                continue;
            }
            let exists = self
                .db
                .strings(&format!("SELECT UM_DOMAIN_NAME FROM UM_DOMAIN WHERE UM_DOMAIN_NAME = {} AND UM_TENANT_ID = {}", lit(&p.domain), p.tenant))
                .is_ok_and(|r| !r.is_empty());
            if !exists {
                let _ = self.db.exec(&format!(
                    "INSERT INTO UM_DOMAIN (UM_DOMAIN_NAME, UM_TENANT_ID) VALUES ({}, {})",
                    lit(&p.domain),
                    p.tenant
                ));
            }
            self.deployed.push(DeployedStore {
                tenant: p.tenant,
                domain: p.domain,
                file: p.file,
                class: store.class.unwrap_or_default(),
                description: String::new(),
                db,
            });
        }
    }

    fn user_db(&mut self, domain: &str, tenant: i64) -> Option<&mut Sql> {
        if domain == "PRIMARY" {
            return Some(&mut self.db);
        }
        self.deployed
            .iter_mut()
            .find(|s| s.tenant == tenant && s.domain == domain)
            .map(|s| &mut s.db)
    }

    fn add_tenant(&mut self, el: &Element) -> Answer {
        let Some(bean) = el.child("tenantInfoBean") else {
            return fault("tenantInfoBean is null");
        };
        let get = |n: &str| bean.child_text(n).unwrap_or_default();
        let (domain, email, admin, password) = (
            get("tenantDomain"),
            get("email"),
            get("admin"),
            get("adminPassword"),
        );
        if !email.contains('@') {
            return fault("Invalid email address");
        }
        if domain.is_empty()
            || domain.starts_with('.')
            || !domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        {
            return fault(&format!("Invalid domain {domain}"));
        }
        let exists = self
            .db
            .strings(&format!(
                "SELECT UM_DOMAIN_NAME FROM UM_TENANT WHERE UM_DOMAIN_NAME = {}",
                lit(&domain)
            ))
            .is_ok_and(|r| !r.is_empty());
        if exists {
            return fault(&format!("A tenant with same domain {domain} already exist"));
        }
        let insert = format!(
            "INSERT INTO UM_TENANT (UM_DOMAIN_NAME, UM_EMAIL, UM_ACTIVE, UM_CREATED_DATE) VALUES ({}, {}, TRUE, CURRENT_TIMESTAMP)",
            lit(&domain),
            lit(&email)
        );
        let id = match &mut self.db {
            Sql::Pg(_) => self
                .db
                .strings(&format!("{insert} RETURNING CAST(UM_ID AS TEXT)")),
            Sql::My(_) => self
                .db
                .exec(&insert)
                .and_then(|()| self.db.strings("SELECT CAST(LAST_INSERT_ID() AS CHAR)")),
        };
        let id: i64 = match id.map(|r| {
            r.first()
                .and_then(|r| r.first())
                .and_then(|v| v.parse().ok())
        }) {
            Ok(Some(id)) => id,
            Ok(None) => return fault("Error adding tenant: no id"),
            Err(e) => return fault(&format!("Error adding tenant: {e}")),
        };
        let admin_row = self.db.exec(&format!(
            "INSERT INTO UM_USER (UM_USER_NAME, UM_USER_PASSWORD, UM_REQUIRE_CHANGE, UM_CHANGED_TIME, UM_TENANT_ID) \
             VALUES ({}, '{}', FALSE, CURRENT_TIMESTAMP, {id})",
            lit(&admin),
            hash(&password)
        ));
        if let Err(e) = admin_row {
            return fault(&format!("Error adding the tenant admin: {e}"));
        }
        for d in ["PRIMARY", "INTERNAL", "APPLICATION", "WORKFLOW"] {
            let _ = self.db.exec(&format!(
                "INSERT INTO UM_DOMAIN (UM_DOMAIN_NAME, UM_TENANT_ID) VALUES ('{d}', {id})"
            ));
        }
        let dir = self.home.join(format!("repository/tenants/{id}"));
        if let Err(e) = std::fs::create_dir_all(&dir) {
            return fault(&format!("Error creating {}: {e}", dir.display()));
        }
        response(
            Service::TenantMgtAdminService,
            "addTenant",
            &format!("<ns:return>{id}</ns:return>"),
        )
    }
}

fn store_file_name(domain: &str) -> String {
    format!("{}.xml", domain.replace('.', "_"))
}

/// `DOMAIN/name` → (upper-cased domain, name); a bare name is PRIMARY.
fn split_user(user: &str) -> (String, String) {
    match user.split_once('/') {
        Some((d, n)) => (d.to_ascii_uppercase(), n.to_owned()),
        None => ("PRIMARY".into(), user.to_owned()),
    }
}

/// A SQL string literal (quotes doubled; backslashes doubled for MySQL's default mode).
pub fn lit(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = text.bytes().filter(|&b| b != b'=').collect();
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let take = chunk.len().saturating_sub(1);
        for i in 0..take {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

/// A connection to PostgreSQL or MySQL/MariaDB, all values read as text.
pub enum Sql {
    Pg(Box<postgres::Client>),
    My(Box<mysql::Conn>),
}

impl std::fmt::Debug for Sql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sql")
    }
}

impl Sql {
    pub fn connect(url: &DbUrl) -> Result<Sql, String> {
        match url.vendor() {
            Vendor::Postgres => {
                let mut config = postgres::Config::new();
                config
                    .host(url.host())
                    .port(url.port())
                    .dbname(url.database())
                    .user(url.user().unwrap_or("postgres"));
                if let Some(p) = url.password() {
                    config.password(p);
                }
                config
                    .connect(postgres::NoTls)
                    .map(|c| Sql::Pg(Box::new(c)))
                    .map_err(|e| e.to_string())
            }
            Vendor::MySql => {
                let opts = mysql::OptsBuilder::new()
                    .ip_or_hostname(Some(url.host().to_owned()))
                    .tcp_port(url.port())
                    .prefer_socket(false)
                    .user(Some(url.user().unwrap_or("root").to_owned()))
                    .pass(url.password().map(str::to_owned))
                    .db_name(Some(url.database().to_owned()));
                mysql::Conn::new(opts)
                    .map(|c| Sql::My(Box::new(c)))
                    .map_err(|e| e.to_string())
            }
            other => Err(format!("{other} is not a server database")),
        }
    }

    pub fn txt(&self, column: &str) -> String {
        match self {
            Sql::Pg(_) => format!("CAST({column} AS TEXT)"),
            Sql::My(_) => format!("CAST({column} AS CHAR)"),
        }
    }

    pub fn exec(&mut self, sql: &str) -> Result<(), String> {
        match self {
            Sql::Pg(c) => c.batch_execute(sql).map_err(|e| e.to_string()),
            Sql::My(c) => c.query_drop(sql).map_err(|e| e.to_string()),
        }
    }

    /// Rows of text (select text columns only).
    pub fn strings(&mut self, sql: &str) -> Result<Vec<Vec<String>>, String> {
        match self {
            Sql::Pg(c) => c
                .query(sql, &[])
                .map(|rows| {
                    rows.iter()
                        .map(|r| {
                            (0..r.len())
                                .map(|i| r.get::<_, Option<String>>(i).unwrap_or_default())
                                .collect()
                        })
                        .collect()
                })
                .map_err(|e| e.to_string()),
            Sql::My(c) => c
                .query::<mysql::Row, _>(sql)
                .map(|rows| {
                    rows.into_iter()
                        .map(|r| {
                            (0..r.len())
                                .map(|i| {
                                    r.get_opt::<Option<String>, _>(i)
                                        .and_then(Result::ok)
                                        .flatten()
                                        .unwrap_or_default()
                                })
                                .collect()
                        })
                        .collect()
                })
                .map_err(|e| e.to_string()),
        }
    }
}

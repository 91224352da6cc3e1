//! The typed model of a Carbon 4.4.x PRODUCT_HOME, read from its configuration files.
//!
//! Opening a home reads; it never writes. Secrets are held as [`Secret`] and JDBC URLs as
//! [`JdbcUrl`], both of which redact themselves in `Debug` and JSON.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::doc::{NodeId, XmlDoc};
use crate::error::{ConfigError, Result};
use crate::jdbc::JdbcUrl;
use crate::path::quote;
use crate::secret::Secret;

pub const CARBON_XML: &str = "repository/conf/carbon.xml";
pub(crate) const DATASOURCES_DIR: &str = "repository/conf/datasources";
pub(crate) const USER_MGT_XML: &str = "repository/conf/user-mgt.xml";
pub(crate) const REGISTRY_XML: &str = "repository/conf/registry.xml";
pub(crate) const CATALINA_SERVER_XML: &str = "repository/conf/tomcat/catalina-server.xml";
pub const DEPLOYMENT_TOML: &str = "repository/conf/deployment.toml";
pub const SUPER_TENANT_USERSTORES: &str = "repository/deployment/server/userstores";
pub const TENANTS_DIR: &str = "repository/tenants";
/// Carbon's system property naming the tenants directory (`ServerConstants.CARBON_TENANTS_DIR_PATH`).
pub(crate) const TENANTS_DIR_PROPERTY: &str = "tenants.dir.path";
/// Its environment fallback (`CarbonConstants.CARBON_TENANTS_DIR_PATH_ENV`).
pub(crate) const TENANTS_DIR_ENV: &str = "CARBON_TENANTS_DIR_PATH";
/// The start script, where a home passes system properties such as `-Dtenants.dir.path`.
pub(crate) const START_SCRIPT: &str = "bin/wso2server.sh";
/// The super tenant's id (its artifacts live in `repository/deployment/server`).
pub const SUPER_TENANT_ID: i64 = -1234;

/// What the configuration of one product home says.
#[derive(Debug, Clone, Serialize)]
pub struct ProductHome {
    pub root: PathBuf,
    /// `bin/version.txt`, trimmed (e.g. `WSO2 Carbon Framework v4.4.7`).
    pub version_txt: Option<String>,
    /// carbon.xml `Server/Version`.
    pub version: Option<String>,
    /// carbon.xml `Server/Name`.
    pub product_name: Option<String>,
    pub ports: Ports,
    pub datasources: Vec<Datasource>,
    pub user_mgt: UserMgt,
    pub registry: Vec<RegistryDb>,
    pub user_stores: Vec<UserStore>,
    pub keystores: Vec<Keystore>,
    /// Where the server keeps its tenants: see [`tenants_dir`].
    pub tenants_dir: PathBuf,
    /// Numeric directory names under the tenants directory, sorted.
    pub tenant_ids: Vec<i64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Ports {
    /// carbon.xml `Server/Ports/Offset` (a `-DportOffset` at start-up would override it).
    pub offset: i32,
    /// The servlet HTTP/HTTPS connector ports in catalina-server.xml, before the offset.
    pub http: Option<u16>,
    pub https: Option<u16>,
}

impl Ports {
    /// The port the server listens on for HTTPS: connector port + offset.
    pub fn effective_https(&self) -> Option<i64> {
        self.https.map(|p| i64::from(p) + i64::from(self.offset))
    }

    pub fn effective_http(&self) -> Option<i64> {
        self.http.map(|p| i64::from(p) + i64::from(self.offset))
    }
}

/// One `<datasource>` of a `*-datasources.xml` file.
#[derive(Debug, Clone, Serialize)]
pub struct Datasource {
    /// Relative to the product home, e.g. `repository/conf/datasources/master-datasources.xml`.
    pub file: PathBuf,
    pub name: String,
    pub description: Option<String>,
    pub jndi_name: Option<String>,
    pub definition_type: Option<String>,
    /// `<url>`, or the `url` property of the XA `<dataSourceProps>` form.
    pub url: Option<JdbcUrl>,
    /// Set when a URL is present but not a parsable JDBC URL (e.g. a `${placeholder}`).
    pub url_problem: Option<String>,
    pub username: Option<String>,
    pub password: Secret,
    pub driver_class_name: Option<String>,
    /// XA form: `<dataSourceClassName>`.
    pub xa_datasource_class: Option<String>,
    /// Every other `<configuration>` child (maxActive, validationQuery, ...), in file order.
    pub pool: Vec<(String, String)>,
}

impl Datasource {
    /// The path of this datasource's `<configuration>` element, for edits.
    pub fn configuration_path(&self) -> String {
        format!(
            "datasources-configuration/datasources/datasource[name={}]/definition/configuration",
            quote(&self.name)
        )
    }
}

/// Which datasources the user realm uses (user-mgt.xml).
#[derive(Debug, Clone, Default, Serialize)]
pub struct UserMgt {
    /// `Realm/Configuration/Property[@name='dataSource']`, a JNDI name.
    pub datasource: Option<String>,
    /// The class of the first (primary) `<UserStoreManager>`.
    pub primary_store_class: Option<String>,
    /// A `dataSource` property on the primary store itself, if any.
    pub primary_store_datasource: Option<String>,
    /// Every uncommented `<UserStoreManager>` of the realm, primary first.
    pub realm_stores: Vec<RealmStore>,
}

/// A `<UserStoreManager>` declared inside user-mgt.xml.
#[derive(Debug, Clone, Serialize)]
pub struct RealmStore {
    pub class: Option<String>,
    /// `DomainName`; the primary store usually has none (`PRIMARY`).
    pub domain: Option<String>,
    /// A `dataSource` property (JNDI name).
    pub datasource: Option<String>,
}

/// A registry `<dbConfig>` in registry.xml.
#[derive(Debug, Clone, Serialize)]
pub struct RegistryDb {
    pub name: String,
    /// `<dataSource>`, a JNDI name.
    pub datasource: Option<String>,
    /// Whether `<currentDBConfig>` names it.
    pub current: bool,
}

/// A secondary user store file.
#[derive(Debug, Clone, Serialize)]
pub struct UserStore {
    pub file: PathBuf,
    /// [`SUPER_TENANT_ID`] for `repository/deployment/server/userstores`.
    pub tenant_id: i64,
    pub domain: Option<String>,
    pub class: Option<String>,
    pub url: Option<JdbcUrl>,
    pub driver: Option<String>,
    pub username: Option<String>,
    pub password: Secret,
    /// A `dataSource` property (JNDI name) used instead of an inline URL.
    pub datasource: Option<String>,
    pub disabled: bool,
}

/// A keystore named in carbon.xml `Server/Security`.
#[derive(Debug, Clone, Serialize)]
pub struct Keystore {
    /// The element name: `KeyStore`, `TrustStore`, ...
    pub role: String,
    /// `Location` as written.
    pub location: String,
    /// `Location` with `${carbon.home}` replaced by the home directory.
    pub path: PathBuf,
    pub exists: bool,
    pub store_type: Option<String>,
    pub key_alias: Option<String>,
    pub password: Secret,
    /// `KeyPassword` (the primary keystore's private key), if given.
    pub key_password: Secret,
}

impl ProductHome {
    /// Reads a product home. Refuses a Carbon 4.5+ home driven by `deployment.toml`, because
    /// XML edits there are overwritten at start-up.
    pub fn open(root: &Path) -> Result<Self> {
        let carbon_xml = root.join(CARBON_XML);
        if !carbon_xml.is_file() {
            return Err(ConfigError::NotAProductHome {
                home: root.to_path_buf(),
                reason: format!("no {CARBON_XML}"),
            });
        }
        if root.join(DEPLOYMENT_TOML).is_file() {
            return Err(ConfigError::TomlDriven {
                home: root.to_path_buf(),
            });
        }
        let carbon = XmlDoc::open(&carbon_xml)?;
        let tenants_dir = tenants_dir(root)?;
        Ok(ProductHome {
            version_txt: read_version_txt(root)?,
            version: text_at(&carbon, "Server/Version"),
            product_name: text_at(&carbon, "Server/Name"),
            ports: read_ports(root, &carbon)?,
            datasources: read_datasources(root)?,
            user_mgt: read_user_mgt(root)?,
            registry: read_registry(root)?,
            user_stores: read_user_stores(root, &tenants_dir)?,
            keystores: read_keystores(root, &carbon),
            tenant_ids: read_tenant_ids(&tenants_dir)?,
            tenants_dir,
            root: root.to_path_buf(),
        })
    }

    pub fn datasource(&self, name: &str) -> Option<&Datasource> {
        self.datasources.iter().find(|d| d.name == name)
    }

    pub fn datasource_by_jndi(&self, jndi: &str) -> Option<&Datasource> {
        self.datasources
            .iter()
            .find(|d| d.jndi_name.as_deref() == Some(jndi))
    }

    /// The primary keystore (carbon.xml `Security/KeyStore`), which encrypts user-store passwords.
    pub fn primary_keystore(&self) -> Option<&Keystore> {
        self.keystores.iter().find(|k| k.role == "KeyStore")
    }

    /// The datasources user-mgt.xml and registry.xml use, resolved from their JNDI names.
    pub fn realm_and_registry_datasources(&self) -> Vec<&Datasource> {
        let jndi = self
            .user_mgt
            .datasource
            .iter()
            .chain(
                self.user_mgt
                    .realm_stores
                    .iter()
                    .filter_map(|s| s.datasource.as_ref()),
            )
            .chain(self.registry.iter().filter_map(|r| r.datasource.as_ref()));
        let mut found: Vec<&Datasource> = Vec::new();
        for ds in jndi.filter_map(|j| self.datasource_by_jndi(j)) {
            if !found.iter().any(|f| f.name == ds.name) {
                found.push(ds);
            }
        }
        found
    }
}

/// Where the server started from `root` keeps its tenants, decided as Carbon's
/// `CarbonUtils.getCarbonTenantsDirPath` does: the `-Dtenants.dir.path` its start script passes,
/// else `CARBON_TENANTS_DIR_PATH` from this environment (a server started from here inherits
/// it), else `repository/tenants`. A relative path is relative to the home, where the script
/// starts the server. The one answer every step uses; reads only.
pub fn tenants_dir(root: &Path) -> Result<PathBuf> {
    let configured = match start_script_tenants_dir(root)? {
        Some(dir) => Some(dir),
        None => std::env::var_os(TENANTS_DIR_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
    };
    Ok(root.join(configured.unwrap_or_else(|| PathBuf::from(TENANTS_DIR))))
}

/// The `-Dtenants.dir.path=` of the start script's uncommented lines, with `$CARBON_HOME`
/// resolved; any other shell variable cannot be known here and is refused.
fn start_script_tenants_dir(root: &Path) -> Result<Option<PathBuf>> {
    let script = root.join(START_SCRIPT);
    let text = match std::fs::read(&script) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ConfigError::io(script, e)),
    };
    let flag = format!("-D{TENANTS_DIR_PROPERTY}=");
    let Some(value) = text
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .find_map(|line| line.split_once(&flag).map(|(_, rest)| rest))
    else {
        return Ok(None);
    };
    let value = match value.strip_prefix(['"', '\'']) {
        Some(quoted) => quoted.split(['"', '\'']).next().unwrap_or_default(),
        None => value.split_whitespace().next().unwrap_or_default(),
    };
    let home = root.to_string_lossy();
    let value = value
        .replace("${CARBON_HOME}", &home)
        .replace("$CARBON_HOME", &home);
    if value.is_empty() || value.contains('$') || value.contains('`') {
        return Err(ConfigError::Model {
            file: script,
            what: flag.trim_end_matches('=').to_owned(),
            reason: format!("cannot tell which directory {value:?} names"),
        });
    }
    Ok(Some(PathBuf::from(value)))
}

fn read_version_txt(root: &Path) -> Result<Option<String>> {
    let path = root.join("bin/version.txt");
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError::io(path, e)),
    }
}

fn open_optional(path: &Path) -> Result<Option<XmlDoc>> {
    if path.is_file() {
        XmlDoc::open(path).map(Some)
    } else {
        Ok(None)
    }
}

/// Trimmed text of the first element at `expr`, if present and textual.
fn text_at(doc: &XmlDoc, expr: &str) -> Option<String> {
    doc.find(expr).and_then(|n| doc.text_trimmed(n))
}

fn child_text(doc: &XmlDoc, node: NodeId, local: &str) -> Option<String> {
    doc.children_named(node, local)
        .next()
        .and_then(|c| doc.text_trimmed(c))
}

fn model_error(doc: &XmlDoc, what: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Model {
        file: doc.file().to_path_buf(),
        what: what.to_owned(),
        reason: reason.into(),
    }
}

fn read_ports(root: &Path, carbon: &XmlDoc) -> Result<Ports> {
    let offset = match text_at(carbon, "Server/Ports/Offset") {
        Some(text) => text.parse().map_err(|_| {
            model_error(
                carbon,
                "Server/Ports/Offset",
                format!("`{text}` is not a number"),
            )
        })?,
        None => 0,
    };
    let mut ports = Ports {
        offset,
        ..Ports::default()
    };
    let Some(catalina) = open_optional(&root.join(CATALINA_SERVER_XML))? else {
        return Ok(ports);
    };
    let Ok(connectors) = catalina.select(&crate::XPath::parse("Server/Service/Connector")?) else {
        return Ok(ports);
    };
    for connector in connectors {
        let Some(port) = catalina
            .attr(connector, "port")
            .and_then(|p| p.trim().parse().ok())
        else {
            continue;
        };
        let https = catalina
            .attr(connector, "SSLEnabled")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || catalina
                .attr(connector, "scheme")
                .is_some_and(|v| v.eq_ignore_ascii_case("https"));
        let slot = if https {
            &mut ports.https
        } else {
            &mut ports.http
        };
        slot.get_or_insert(port);
    }
    Ok(ports)
}

/// Every `repository/conf/datasources/*-datasources.xml`, in file-name order.
fn read_datasources(root: &Path) -> Result<Vec<Datasource>> {
    let dir = root.join(DATASOURCES_DIR);
    let mut files = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .map(|e| {
                e.map(|e| e.path())
                    .map_err(|err| ConfigError::io(&dir, err))
            })
            .collect::<Result<Vec<_>>>()?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(ConfigError::io(dir, e)),
    };
    files.retain(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with("-datasources.xml"))
    });
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let doc = XmlDoc::open(&file)?;
        let rel = file.strip_prefix(root).unwrap_or(&file).to_path_buf();
        out.extend(datasources_in(&doc, &rel)?);
    }
    Ok(out)
}

/// The datasources of one `*-datasources.xml` document.
pub fn datasources_in(doc: &XmlDoc, rel: &Path) -> Result<Vec<Datasource>> {
    let Some(list) = doc.find("datasources-configuration/datasources") else {
        return Ok(Vec::new());
    };
    doc.children_named(list, "datasource")
        .map(|node| read_datasource(doc, node, rel))
        .collect()
}

fn read_datasource(doc: &XmlDoc, node: NodeId, rel: &Path) -> Result<Datasource> {
    let name = child_text(doc, node, "name").ok_or_else(|| {
        model_error(
            doc,
            &format!("<datasource> at line {}", doc.line(node)),
            "has no <name>",
        )
    })?;
    let jndi_name = doc
        .children_named(node, "jndiConfig")
        .next()
        .and_then(|j| child_text(doc, j, "name"));
    let definition = doc.children_named(node, "definition").next();
    let mut ds = Datasource {
        file: rel.to_path_buf(),
        description: child_text(doc, node, "description"),
        jndi_name,
        definition_type: definition.and_then(|d| doc.attr(d, "type")),
        url: None,
        url_problem: None,
        username: None,
        password: Secret::Empty,
        driver_class_name: None,
        xa_datasource_class: None,
        pool: Vec::new(),
        name,
    };
    let Some(config) = definition.and_then(|d| doc.children_named(d, "configuration").next())
    else {
        return Ok(ds);
    };
    let mut url_text = None;
    let mut xa_props = None;
    for child in doc.children(config).collect::<Vec<_>>() {
        let local = doc.local_name(child).to_owned();
        match local.as_str() {
            "url" => url_text = doc.text_trimmed(child),
            "username" => ds.username = doc.text_trimmed(child),
            "password" => ds.password = read_secret(doc, child),
            "driverClassName" => ds.driver_class_name = doc.text_trimmed(child),
            "dataSourceClassName" => ds.xa_datasource_class = doc.text_trimmed(child),
            "dataSourceProps" => {
                xa_props = Some(child);
            }
            _ => {
                if let Some(text) = doc.text_trimmed(child) {
                    ds.pool.push((local, text));
                }
            }
        }
    }
    // The XA form: `<dataSourceProps><property name="url">`; direct elements take precedence.
    if let Some(props) = xa_props {
        for prop in doc.children_named(props, "property").collect::<Vec<_>>() {
            match doc.attr(prop, "name").as_deref() {
                Some("url") if url_text.is_none() => url_text = doc.text_trimmed(prop),
                Some("user") if ds.username.as_deref().is_none_or(str::is_empty) => {
                    ds.username = doc.text_trimmed(prop)
                }
                Some("password") if ds.password == Secret::Empty => {
                    ds.password = read_secret(doc, prop)
                }
                _ => {}
            }
        }
    }
    if let Some(text) = url_text.filter(|t| !t.is_empty()) {
        match JdbcUrl::parse(&text) {
            Ok(url) => ds.url = Some(url),
            Err(err) => ds.url_problem = Some(err.to_string()),
        }
    }
    Ok(ds)
}

/// A password element: `svns:secretAlias` → alias, `encrypted="true"` → ciphertext, else text.
fn read_secret(doc: &XmlDoc, node: NodeId) -> Secret {
    if let Some(alias) = doc.attr(node, "secretAlias") {
        return Secret::Alias(alias);
    }
    let text = doc.text(node).unwrap_or_default();
    if doc
        .attr(node, "encrypted")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return Secret::Encrypted(text);
    }
    if text.is_empty() {
        Secret::Empty
    } else {
        Secret::Plain(text)
    }
}

fn read_user_mgt(root: &Path) -> Result<UserMgt> {
    let Some(doc) = open_optional(&root.join(USER_MGT_XML))? else {
        return Ok(UserMgt::default());
    };
    let property = |parent: Option<NodeId>, name: &str| {
        parent.and_then(|p| {
            doc.children_named(p, "Property")
                .find(|&c| doc.attr(c, "name").as_deref() == Some(name))
                .and_then(|c| doc.text_trimmed(c))
        })
    };
    let store = doc.find("UserManager/Realm/UserStoreManager");
    let realm_stores = doc
        .find("UserManager/Realm")
        .map(|realm| {
            doc.children_named(realm, "UserStoreManager")
                .map(|s| RealmStore {
                    class: doc.attr(s, "class"),
                    domain: property(Some(s), "DomainName"),
                    datasource: property(Some(s), "dataSource"),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(UserMgt {
        datasource: property(doc.find("UserManager/Realm/Configuration"), "dataSource"),
        primary_store_class: store.and_then(|s| doc.attr(s, "class")),
        primary_store_datasource: property(store, "dataSource"),
        realm_stores,
    })
}

fn read_registry(root: &Path) -> Result<Vec<RegistryDb>> {
    let Some(doc) = open_optional(&root.join(REGISTRY_XML))? else {
        return Ok(Vec::new());
    };
    let current = text_at(&doc, "wso2registry/currentDBConfig");
    Ok(doc
        .children_named(doc.root(), "dbConfig")
        .filter_map(|node| {
            let name = doc.attr(node, "name")?;
            Some(RegistryDb {
                current: current.as_deref() == Some(name.as_str()),
                datasource: child_text(&doc, node, "dataSource"),
                name,
            })
        })
        .collect())
}

fn read_user_stores(root: &Path, tenants_dir: &Path) -> Result<Vec<UserStore>> {
    let mut stores = read_store_dir(root, &root.join(SUPER_TENANT_USERSTORES), SUPER_TENANT_ID)?;
    for tenant in read_tenant_ids(tenants_dir)? {
        stores.extend(read_store_dir(
            root,
            &tenants_dir.join(tenant.to_string()).join("userstores"),
            tenant,
        )?);
    }
    Ok(stores)
}

fn read_store_dir(root: &Path, dir: &Path, tenant_id: i64) -> Result<Vec<UserStore>> {
    let mut files = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect::<Vec<_>>(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ConfigError::io(dir, e)),
    };
    files.retain(|p| p.extension().is_some_and(|e| e == "xml"));
    files.sort();
    files
        .iter()
        .map(|file| {
            let doc = XmlDoc::open(file)?;
            Ok(read_user_store(
                &doc,
                file.strip_prefix(root).unwrap_or(file),
                tenant_id,
            ))
        })
        .collect()
}

/// A secondary user-store document (`<UserStoreManager class=...>` with `<Property>`s).
pub fn read_user_store(doc: &XmlDoc, rel: &Path, tenant_id: i64) -> UserStore {
    let root = doc.root();
    let find = |name: &str| {
        doc.children_named(root, "Property")
            .find(|&c| doc.attr(c, "name").as_deref() == Some(name))
    };
    let text = |name: &str| find(name).and_then(|n| doc.text_trimmed(n));
    UserStore {
        file: rel.to_path_buf(),
        tenant_id,
        domain: text("DomainName"),
        class: doc.attr(root, "class"),
        url: text("url").and_then(|u| JdbcUrl::parse(&u).ok()),
        driver: text("driverName"),
        username: text("userName"),
        password: find("password").map_or(Secret::Empty, |n| read_secret(doc, n)),
        datasource: text("dataSource"),
        disabled: text("Disabled").is_some_and(|d| d.eq_ignore_ascii_case("true")),
    }
}

fn read_keystores(root: &Path, carbon: &XmlDoc) -> Vec<Keystore> {
    let Some(security) = carbon.find("Server/Security") else {
        return Vec::new();
    };
    let home = root.to_string_lossy();
    carbon
        .children(security)
        .filter(|&n| {
            let name = carbon.local_name(n);
            name.ends_with("KeyStore") || name.ends_with("TrustStore")
        })
        .filter_map(|node| {
            let location = child_text(carbon, node, "Location")?;
            let path = PathBuf::from(location.replace("${carbon.home}", &home));
            Some(Keystore {
                role: carbon.local_name(node).to_owned(),
                exists: path.is_file(),
                path,
                location,
                store_type: child_text(carbon, node, "Type"),
                key_alias: child_text(carbon, node, "KeyAlias"),
                password: carbon
                    .children_named(node, "Password")
                    .next()
                    .map_or(Secret::Empty, |p| read_secret(carbon, p)),
                key_password: carbon
                    .children_named(node, "KeyPassword")
                    .next()
                    .map_or(Secret::Empty, |p| read_secret(carbon, p)),
            })
        })
        .collect()
}

fn read_tenant_ids(tenants_dir: &Path) -> Result<Vec<i64>> {
    let entries = match std::fs::read_dir(tenants_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ConfigError::io(tenants_dir, e)),
    };
    let mut ids: Vec<i64> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

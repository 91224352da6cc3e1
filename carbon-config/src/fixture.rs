//! A writer of Carbon-shaped product homes for tests, demos and benchmarks.
//!
//! The files follow the structure of the real Carbon 4.4.x kernel configuration (default
//! namespaces, an ISO-8859-1 declaration with a Latin-1 byte, commented-out blocks, secure-vault
//! aliases, `</name >`-free but otherwise WSO2-like layout) with the project's own, shorter content.
//! Output is a pure function of the [`HomeSpec`], including its seed.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{ConfigError, Result};
use crate::secret::Secret;

/// Carbon kernel versions the writer knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CarbonVersion {
    V4_4_6,
    V4_4_7,
}

impl CarbonVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            CarbonVersion::V4_4_6 => "4.4.6",
            CarbonVersion::V4_4_7 => "4.4.7",
        }
    }
}

/// How much deployment content to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ContentScale {
    /// A few dozen files, all small: for tests.
    Tiny,
    /// A few hundred files and two 1 MiB `.car` files.
    Small,
    /// Thousands of small webapp files, jars, and a few 20–50 MB `.car` files.
    Bench,
}

/// One datasource of `master-datasources.xml`.
#[derive(Debug, Clone)]
pub struct DatasourceSpec {
    pub name: String,
    pub description: String,
    pub jndi_name: String,
    pub url: String,
    pub username: String,
    pub password: Secret,
    pub driver_class_name: String,
    /// Pool settings written after the driver, in order (`maxActive`, `validationQuery`, ...).
    pub pool: Vec<(String, String)>,
}

impl DatasourceSpec {
    /// The kernel's default embedded H2 `WSO2_CARBON_DB`.
    pub fn carbon_h2() -> Self {
        DatasourceSpec {
            name: "WSO2_CARBON_DB".into(),
            description: "The datasource used for registry and user manager".into(),
            jndi_name: "jdbc/WSO2CarbonDB".into(),
            url: "jdbc:h2:repository/database/WSO2CARBON_DB;DB_CLOSE_ON_EXIT=FALSE;LOCK_TIMEOUT=60000"
                .into(),
            username: "wso2carbon".into(),
            password: Secret::Plain("wso2carbon".into()),
            driver_class_name: "org.h2.Driver".into(),
            pool: default_pool(),
        }
    }

    /// `WSO2_CARBON_DB` on an SQLite file in the home (the tool's tests and demo), without
    /// credentials: SQLite has none.
    pub fn carbon_sqlite() -> Self {
        DatasourceSpec {
            url: "jdbc:sqlite:repository/database/WSO2CARBON_DB.db".into(),
            username: String::new(),
            password: Secret::Empty,
            driver_class_name: "org.sqlite.JDBC".into(),
            ..DatasourceSpec::carbon_h2()
        }
    }
}

fn default_pool() -> Vec<(String, String)> {
    [
        ("maxActive", "50"),
        ("maxWait", "60000"),
        ("testOnBorrow", "true"),
        ("validationQuery", "SELECT 1"),
        ("validationInterval", "30000"),
        ("defaultAutoCommit", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Everything that determines a written product home.
#[derive(Debug, Clone)]
pub struct HomeSpec {
    pub version: CarbonVersion,
    pub port_offset: u16,
    /// The first one is used by `user-mgt.xml` and `registry.xml`.
    pub datasources: Vec<DatasourceSpec>,
    /// `repository/tenants/<id>` directories (the `UM_TENANT.UM_ID` values).
    pub tenant_ids: Vec<i64>,
    pub content: ContentScale,
    pub seed: u64,
    /// Every secondary user store keeps its users in the first datasource's database, with
    /// that datasource's user (the super tenant's store also its password; tenant stores keep
    /// an encrypted one). Otherwise the super tenant's store uses that database as user
    /// `wso2carbon`, and tenant stores a remote `db.example.com` database.
    pub stores_on_first_datasource: bool,
}

impl HomeSpec {
    /// Defaults like a fresh kernel: offset 0, embedded H2 `WSO2_CARBON_DB`, tenants 1, 2 and 5.
    pub fn new(version: CarbonVersion) -> Self {
        HomeSpec {
            version,
            port_offset: 0,
            datasources: vec![DatasourceSpec::carbon_h2()],
            tenant_ids: vec![1, 2, 5],
            content: ContentScale::Tiny,
            seed: 0x00ca_4b07,
            stores_on_first_datasource: false,
        }
    }
}

/// What [`write_home`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HomeSummary {
    pub files: u64,
    pub bytes: u64,
    pub dirs: u64,
}

/// Writes a Carbon-shaped PRODUCT_HOME into `dir` (created if missing; existing files with the
/// same names are overwritten).
pub fn write_home(dir: &Path, spec: &HomeSpec) -> Result<HomeSummary> {
    let mut writer = TreeWriter {
        root: dir.to_path_buf(),
        summary: HomeSummary::default(),
    };
    let mut rng = fastrand::Rng::with_seed(spec.seed);
    writer.dir("")?;
    write_conf(&mut writer, spec)?;
    write_deployment(&mut writer, spec, &mut rng)?;
    for &tenant in &spec.tenant_ids {
        write_tenant(&mut writer, spec, tenant, &mut rng)?;
    }
    for empty in [
        "repository/database",
        "repository/logs",
        "repository/components/lib",
        "tmp",
    ] {
        writer.dir(empty)?;
    }
    Ok(writer.summary)
}

struct TreeWriter {
    root: PathBuf,
    summary: HomeSummary,
}

impl TreeWriter {
    fn dir(&mut self, rel: &str) -> Result<PathBuf> {
        let path = self.root.join(rel);
        if !path.is_dir() {
            fs::create_dir_all(&path).map_err(|e| ConfigError::io(&path, e))?;
            self.summary.dirs += 1;
        }
        Ok(path)
    }

    fn file(&mut self, rel: &str, bytes: &[u8]) -> Result<()> {
        let path = self.root.join(rel);
        if let Some(parent) = Path::new(rel).parent().and_then(Path::to_str) {
            self.dir(parent)?;
        }
        fs::write(&path, bytes).map_err(|e| ConfigError::io(&path, e))?;
        self.summary.files += 1;
        self.summary.bytes += bytes.len() as u64;
        Ok(())
    }

    fn random_file(&mut self, rel: &str, len: usize, rng: &mut fastrand::Rng) -> Result<()> {
        let mut bytes = vec![0u8; len];
        rng.fill(&mut bytes);
        self.file(rel, &bytes)
    }
}

fn write_conf(w: &mut TreeWriter, spec: &HomeSpec) -> Result<()> {
    let version = spec.version.as_str();
    w.file(
        "bin/version.txt",
        format!("WSO2 Carbon Framework v{version}\n").as_bytes(),
    )?;
    w.file("repository/conf/carbon.xml", &carbon_xml(spec))?;
    w.file(
        "repository/conf/datasources/master-datasources.xml",
        master_datasources_xml(&spec.datasources).as_bytes(),
    )?;
    let jndi = spec
        .datasources
        .first()
        .map_or("jdbc/WSO2CarbonDB", |d| d.jndi_name.as_str());
    w.file(
        "repository/conf/user-mgt.xml",
        user_mgt_xml(jndi).as_bytes(),
    )?;
    w.file(
        "repository/conf/registry.xml",
        registry_xml(jndi).as_bytes(),
    )?;
    w.file(
        "repository/conf/tomcat/catalina-server.xml",
        CATALINA_SERVER_XML.as_bytes(),
    )?;
    let mut jks = b"\xfe\xed\xfe\xed".to_vec(); // the JKS magic, then filler
    jks.extend_from_slice(format!("carbon-upgrade dummy keystore {}", spec.seed).as_bytes());
    w.file("repository/resources/security/wso2carbon.jks", &jks)?;
    w.file("repository/resources/security/client-truststore.jks", &jks)
}

/// carbon.xml is ISO-8859-1 like the real one; the comment carries a real Latin-1 byte (©).
fn carbon_xml(spec: &HomeSpec) -> Vec<u8> {
    let text = format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1"?>
<!--
  Carbon server configuration written by carbon-upgrade's fixture writer. COPYRIGHT_SIGN test data.
  ${{carbon.home}} is the carbon.home system property.
-->
<Server xmlns="http://wso2.org/projects/carbon/carbon.xml">

    <Name>WSO2 Carbon</Name>
    <ServerKey>Carbon</ServerKey>
    <Version>{version}</Version>

    <!-- Uncomment to set the host name used in generated URLs:
    <HostName>www.example.org</HostName> -->
    <!--HostName>www.wso2.org</HostName-->
    <!--MgtHostName>mgt.wso2.org</MgtHostName-->

    <ServerURL>local:/${{carbon.context}}/services/</ServerURL>

    <Ports>
        <!-- Every port below and in catalina-server.xml is shifted by this offset. -->
        <Offset>{offset}</Offset>
        <JMX>
            <RMIRegistryPort>9999</RMIRegistryPort>
            <RMIServerPort>11111</RMIServerPort>
        </JMX>
        <EmbeddedLDAP>
            <LDAPServerPort>10389</LDAPServerPort>
            <KDCServerPort>8000</KDCServerPort>
        </EmbeddedLDAP>
    </Ports>

    <Tenant>
        <LoadingPolicy>
            <LazyLoading>
                <IdleTime>30</IdleTime>
            </LazyLoading>
        </LoadingPolicy>
    </Tenant>

    <Axis2Config>
        <RepositoryLocation>${{carbon.home}}/repository/deployment/server/</RepositoryLocation>
        <DeploymentUpdateInterval>15</DeploymentUpdateInterval>
    </Axis2Config>

    <Security>
        <KeyStore>
            <Location>${{carbon.home}}/repository/resources/security/wso2carbon.jks</Location>
            <Type>JKS</Type>
            <Password>wso2carbon</Password>
            <KeyAlias>wso2carbon</KeyAlias>
            <KeyPassword>wso2carbon</KeyPassword>
        </KeyStore>
        <TrustStore>
            <Location>${{carbon.home}}/repository/resources/security/client-truststore.jks</Location>
            <Type>JKS</Type>
            <Password>wso2carbon</Password>
        </TrustStore>
    </Security>

    <WorkDirectory>${{carbon.home}}/tmp/work</WorkDirectory>
</Server>
"#,
        version = spec.version.as_str(),
        offset = spec.port_offset,
    );
    // `©` as the single ISO-8859-1 byte 0xA9, as a Latin-1 editor would save it.
    let mut bytes = Vec::with_capacity(text.len());
    for part in text.split_inclusive("COPYRIGHT_SIGN") {
        match part.strip_suffix("COPYRIGHT_SIGN") {
            Some(head) => {
                bytes.extend_from_slice(head.as_bytes());
                bytes.push(0xA9);
            }
            None => bytes.extend_from_slice(part.as_bytes()),
        }
    }
    bytes
}

fn master_datasources_xml(datasources: &[DatasourceSpec]) -> String {
    let mut out = String::from(
        "<datasources-configuration xmlns:svns=\"http://org.wso2.securevault/configuration\">\n\
         \x20   <providers>\n\
         \x20       <provider>org.wso2.carbon.ndatasource.rdbms.RDBMSDataSourceReader</provider>\n\
         \x20   </providers>\n\n\
         \x20   <datasources>\n",
    );
    for ds in datasources {
        out.push_str(&datasource_xml(ds));
    }
    out.push_str(COMMENTED_SAMPLE_DATASOURCE);
    out.push_str("    </datasources>\n</datasources-configuration>\n");
    out
}

fn datasource_xml(ds: &DatasourceSpec) -> String {
    let mut pool = String::new();
    for (key, value) in &ds.pool {
        let _ = writeln!(
            pool,
            "                    <{key}>{}</{key}>",
            escape_text(value)
        );
    }
    format!(
        "        <datasource>\n\
         \x20           <name>{name}</name>\n\
         \x20           <description>{description}</description>\n\
         \x20           <jndiConfig>\n\
         \x20               <name>{jndi}</name>\n\
         \x20           </jndiConfig>\n\
         \x20           <definition type=\"RDBMS\">\n\
         \x20               <configuration>\n\
         \x20                   <url>{url}</url>\n\
         \x20                   <username>{username}</username>\n\
         \x20                   {password}\n\
         \x20                   <driverClassName>{driver}</driverClassName>\n\
         {pool}\
         \x20               </configuration>\n\
         \x20           </definition>\n\
         \x20       </datasource>\n\n",
        name = escape_text(&ds.name),
        description = escape_text(&ds.description),
        jndi = escape_text(&ds.jndi_name),
        url = escape_text(&ds.url),
        username = escape_text(&ds.username),
        password = password_element("password", &ds.password),
        driver = escape_text(&ds.driver_class_name),
    )
}

fn password_element(tag: &str, secret: &Secret) -> String {
    match secret {
        Secret::Plain(value) => format!("<{tag}>{}</{tag}>", escape_text(value)),
        Secret::Alias(alias) => {
            format!(
                "<{tag} svns:secretAlias=\"{}\"></{tag}>",
                escape_text(alias)
            )
        }
        Secret::Encrypted(value) => {
            format!("<{tag} encrypted=\"true\">{}</{tag}>", escape_text(value))
        }
        Secret::Empty => format!("<{tag}></{tag}>"),
    }
}

/// Like the kernel file: a commented-out sample whose elements an editor must never match.
const COMMENTED_SAMPLE_DATASOURCE: &str = r#"        <!-- Sample of the other settings; see the Tomcat JDBC pool documentation. -->
        <!--datasource>
            <name>SAMPLE_DATA_SOURCE</name>
            <jndiConfig>
                <name></name>
            </jndiConfig>
            <definition type="RDBMS">
                <configuration>
                    <url>jdbc:mysql://localhost:3306/sample</url>
                    <username></username>
                    <password svns:secretAlias="WSO2.DB.Password"></password>
                    <maxActive></maxActive>
                    <dataSourceClassName>com.mysql.jdbc.jdbc2.optional.MysqlXADataSource</dataSourceClassName>
                </configuration>
            </definition>
        </datasource-->
"#;

fn user_mgt_xml(jndi: &str) -> String {
    format!(
        r#"<UserManager>
    <Realm>
        <Configuration>
            <AddAdmin>true</AddAdmin>
            <AdminRole>admin</AdminRole>
            <AdminUser>
                <UserName>admin</UserName>
                <Password>admin</Password>
            </AdminUser>
            <EveryOneRoleName>everyone</EveryOneRoleName>
            <Property name="isCascadeDeleteEnabled">true</Property>
            <Property name="dataSource">{jndi}</Property>
        </Configuration>
        <UserStoreManager class="org.wso2.carbon.user.core.jdbc.JDBCUserStoreManager">
            <Property name="TenantManager">org.wso2.carbon.user.core.tenant.JDBCTenantManager</Property>
            <Property name="ReadOnly">false</Property>
            <Property name="UsernameJavaRegEx">^[\S]{{3,30}}$</Property>
            <Property name="PasswordJavaRegEx">^[\S]{{5,30}}$</Property>
            <Property name="PasswordDigest">SHA-256</Property>
            <Property name="StoreSaltedPassword">true</Property>
            <Property name="MaxUserNameListLength">100</Property>
        </UserStoreManager>
        <!--UserStoreManager class="org.wso2.carbon.user.core.ldap.ReadOnlyLDAPUserStoreManager">
            <Property name="ConnectionURL">ldap://localhost:10389</Property>
        </UserStoreManager-->
        <AuthorizationManager class="org.wso2.carbon.user.core.authorization.JDBCAuthorizationManager">
            <Property name="AdminRoleManagementPermissions">/permission</Property>
        </AuthorizationManager>
    </Realm>
</UserManager>
"#
    )
}

fn registry_xml(jndi: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1"?>
<wso2registry>
    <currentDBConfig>wso2registry</currentDBConfig>
    <readOnly>false</readOnly>
    <enableCache>true</enableCache>
    <registryRoot>/</registryRoot>

    <dbConfig name="wso2registry">
        <dataSource>{jndi}</dataSource>
    </dbConfig>

    <!-- A remote registry mount would look like:
    <dbConfig name="govregistry"><dataSource>jdbc/WSO2RegDB</dataSource></dbConfig> -->

    <versionResourcesOnChange>false</versionResourcesOnChange>
</wso2registry>
"#
    )
}

const CATALINA_SERVER_XML: &str = r#"<Server port="8005" shutdown="SHUTDOWN">
    <Service className="org.wso2.carbon.tomcat.ext.service.ExtendedStandardService" name="Catalina">
        <!-- Both ports are shifted by carbon.xml Ports/Offset. -->
        <Connector protocol="org.apache.coyote.http11.Http11NioProtocol"
                   port="9763"
                   redirectPort="9443"
                   bindOnInit="false"
                   maxHttpHeaderSize="8192"
                   URIEncoding="UTF-8"/>
        <Connector protocol="org.apache.coyote.http11.Http11NioProtocol"
                   port="9443"
                   bindOnInit="false"
                   sslProtocol="TLS"
                   sslEnabledProtocols="TLSv1,TLSv1.1,TLSv1.2"
                   SSLEnabled="true"
                   scheme="https"
                   secure="true"
                   keystoreFile="${carbon.home}/repository/resources/security/wso2carbon.jks"
                   keystorePass="wso2carbon"
                   URIEncoding="UTF-8"/>
        <Engine name="Catalina" defaultHost="localhost">
            <Host name="localhost" unpackWARs="true" deployOnStartup="false" autoDeploy="false"
                  appBase="${carbon.home}/repository/deployment/server/webapps/"/>
        </Engine>
    </Service>
</Server>
"#;

/// Counts per content scale: (webapps, files per webapp, jars, car files, car size range).
struct Scale {
    webapps: usize,
    files_per_webapp: usize,
    jars: usize,
    cars: usize,
    car_bytes: (usize, usize),
}

fn scale(content: ContentScale) -> Scale {
    match content {
        ContentScale::Tiny => Scale {
            webapps: 2,
            files_per_webapp: 4,
            jars: 2,
            cars: 1,
            car_bytes: (16 << 10, 32 << 10),
        },
        ContentScale::Small => Scale {
            webapps: 5,
            files_per_webapp: 60,
            jars: 8,
            cars: 2,
            car_bytes: (1 << 20, (1 << 20) + 1),
        },
        ContentScale::Bench => Scale {
            webapps: 20,
            files_per_webapp: 250,
            jars: 40,
            cars: 3,
            car_bytes: (20 << 20, 50 << 20),
        },
    }
}

fn write_deployment(w: &mut TreeWriter, spec: &HomeSpec, rng: &mut fastrand::Rng) -> Result<()> {
    let base = "repository/deployment/server";
    let s = scale(spec.content);
    w.random_file(&format!("{base}/axis2services/Version.aar"), 4096, rng)?;
    w.file(
        &format!("{base}/axis2services/services.list"),
        b"Version.aar\n",
    )?;
    w.dir(&format!("{base}/axis2modules"))?;
    for app in 0..s.webapps {
        write_webapp(
            w,
            &format!("{base}/webapps/app{app:02}"),
            s.files_per_webapp,
            rng,
        )?;
    }
    for jar in 0..s.jars {
        let len = rng.usize(8 << 10..256 << 10);
        w.random_file(&format!("{base}/servicejars/lib{jar:03}.jar"), len, rng)?;
    }
    for car in 0..s.cars {
        let len = rng.usize(s.car_bytes.0..s.car_bytes.1);
        w.random_file(&format!("{base}/carbonapps/capp{car}_1.0.0.car"), len, rng)?;
    }
    let first = spec
        .datasources
        .first()
        .filter(|_| spec.stores_on_first_datasource);
    let (user, password) = first.map_or(("wso2carbon", Secret::Plain("wso2carbon".into())), |d| {
        (d.username.as_str(), d.password.clone())
    });
    let store = secondary_userstore("wso2.com", &jdbc_for_store(spec), user, &password);
    w.file(&format!("{base}/userstores/wso2_com.xml"), store.as_bytes())
}

/// Secondary stores point at the first datasource's database, like the real `wso2_com.xml`.
fn jdbc_for_store(spec: &HomeSpec) -> String {
    spec.datasources.first().map_or_else(
        || "jdbc:h2:repository/database/WSO2CARBON_DB".into(),
        |d| d.url.clone(),
    )
}

fn write_webapp(
    w: &mut TreeWriter,
    root: &str,
    files: usize,
    rng: &mut fastrand::Rng,
) -> Result<()> {
    w.file(
        &format!("{root}/WEB-INF/web.xml"),
        b"<web-app xmlns=\"http://java.sun.com/xml/ns/javaee\" version=\"2.5\"/>\n",
    )?;
    for n in 0..files {
        let dir = ["css", "js", "images", "pages"][n % 4];
        let len = rng.usize(200..8 << 10);
        w.random_file(&format!("{root}/{dir}/f{n:04}.bin"), len, rng)?;
    }
    Ok(())
}

fn write_tenant(
    w: &mut TreeWriter,
    spec: &HomeSpec,
    tenant: i64,
    rng: &mut fastrand::Rng,
) -> Result<()> {
    let content = spec.content;
    let root = format!("repository/tenants/{tenant}");
    w.random_file(&format!("{root}/axis2services/Echo{tenant}.aar"), 2048, rng)?;
    let files = match content {
        ContentScale::Tiny => 2,
        ContentScale::Small => 20,
        ContentScale::Bench => 100,
    };
    write_webapp(w, &format!("{root}/webapps/t{tenant}app"), files, rng)?;
    let domain = format!("t{tenant}.example.com");
    let file = format!("{root}/userstores/{}.xml", domain.replace('.', "_"));
    let ciphertext = Secret::Encrypted(format!("ZHVtbXktY2lwaGVydGV4dC0{tenant}"));
    let (url, user) = match spec.datasources.first() {
        Some(d) if spec.stores_on_first_datasource => (d.url.clone(), d.username.as_str()),
        _ => (
            format!("jdbc:mysql://db.example.com:3306/tenant{tenant}_users?useSSL=false"),
            "wso2carbon",
        ),
    };
    w.file(
        &file,
        secondary_userstore(&domain, &url, user, &ciphertext).as_bytes(),
    )
}

fn secondary_userstore(domain: &str, url: &str, user: &str, password: &Secret) -> String {
    let driver = if url.starts_with("jdbc:mysql:") {
        "com.mysql.jdbc.Driver"
    } else {
        "org.h2.Driver"
    };
    let password = match password {
        Secret::Encrypted(value) => {
            format!(
                r#"<Property encrypted="true" name="password">{}</Property>"#,
                escape_text(value)
            )
        }
        Secret::Plain(value) => format!(
            r#"<Property name="password">{}</Property>"#,
            escape_text(value)
        ),
        Secret::Alias(_) | Secret::Empty => r#"<Property name="password"></Property>"#.to_owned(),
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<UserStoreManager class="org.wso2.carbon.user.core.jdbc.JDBCUserStoreManager">
    <Property name="driverName">{driver}</Property>
    <Property name="url">{url}</Property>
    <Property name="userName">{user}</Property>
    {password}
    <Property name="Disabled">false</Property>
    <Property name="ReadOnly">false</Property>
    <Property name="PasswordDigest">SHA-256</Property>
    <Property name="UsernameJavaRegEx">^[\S]{{5,30}}$</Property>
    <Property name="DomainName">{domain}</Property>
    <Property name="Description">Secondary store written by carbon-upgrade</Property>
</UserStoreManager>
"#,
        url = escape_text(url),
        user = escape_text(user),
    )
}

fn escape_text(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

//! Database addresses: the JDBC URLs operators have in `master-datasources.xml` and native ones.
//!
//! A [`DbUrl`] never shows its password: `Display` and `Debug` both redact it, and so does
//! every error built from it.

use std::fmt;
use std::path::{Path, PathBuf};

use carbon_config::JdbcUrl;
use carbon_config::secret::{REDACTED, Secret};

use crate::Vendor;
use crate::error::DbError;
use crate::tls::{self, Dialect, TlsMode, TlsOptions, TlsParams};

/// A parsed database address with its credentials kept apart from anything printable.
#[derive(Clone, PartialEq, Eq)]
pub struct DbUrl {
    vendor: Vendor,
    host: String,
    port: u16,
    database: String,
    user: Option<String>,
    password: Option<Secret>,
    /// SQLite file, or H2 base path (without `.h2.db` / `.mv.db`).
    path: Option<PathBuf>,
    /// What the URL asks of the transport (plain TCP unless it says otherwise).
    tls: TlsOptions,
}

impl DbUrl {
    /// Parses a JDBC or native URL. Relative SQLite and H2 paths are resolved against `home`
    /// (the product home, where Carbon's relative `jdbc:h2:repository/...` URLs point) or
    /// the current directory when `home` is `None`.
    pub fn parse_in(input: &str, home: Option<&Path>) -> Result<DbUrl, DbError> {
        parse_url(input, home, false)
    }

    /// Parses the address of a database *server*, on which databases are to be created: the
    /// database name may be left out (`postgres://user@host:5432/`, with or without the
    /// slash), and then names the server's maintenance database, which every server has
    /// (`postgres` on PostgreSQL, `mysql` on MySQL/MariaDB). Other URLs parse as [`DbUrl::parse`].
    pub fn parse_server(input: &str) -> Result<DbUrl, DbError> {
        parse_url(input, None, true)
    }

    /// Parses relative to the current directory.
    pub fn parse(input: &str) -> Result<DbUrl, DbError> {
        DbUrl::parse_in(input, None)
    }

    fn file(vendor: Vendor, path: PathBuf) -> DbUrl {
        DbUrl {
            vendor,
            host: String::new(),
            port: 0,
            database: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            user: None,
            password: None,
            path: Some(path),
            tls: TlsOptions::default(),
        }
    }

    /// Replaces the credentials (e.g. from `<username>`/`<password>` of a datasource).
    pub fn with_credentials(mut self, user: Option<String>, password: Option<String>) -> DbUrl {
        if user.is_some() {
            self.user = user;
        }
        if let Some(password) = password {
            self.password = Some(Secret::from(password));
        }
        self
    }

    /// The same server with another database name.
    pub fn with_database(&self, database: &str) -> DbUrl {
        let mut out = self.clone();
        database.clone_into(&mut out.database);
        out
    }

    pub fn vendor(&self) -> Vendor {
        self.vendor
    }
    pub fn host(&self) -> &str {
        &self.host
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn database(&self) -> &str {
        &self.database
    }
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }
    /// The password, for handing to a driver. Never format it.
    pub fn password(&self) -> Option<&str> {
        self.password.as_ref().and_then(Secret::plain)
    }
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
    /// The TLS the URL asks for.
    pub fn tls(&self) -> &TlsOptions {
        &self.tls
    }

    /// The same address with other TLS options.
    pub fn with_tls(mut self, tls: TlsOptions) -> DbUrl {
        self.tls = tls;
        self
    }

    /// Whether both URLs name the same database (same server address and name, or same file).
    pub fn same_database(&self, other: &DbUrl) -> bool {
        if self.vendor != other.vendor {
            return false;
        }
        match (&self.path, &other.path) {
            (Some(a), Some(b)) => {
                let ca = std::fs::canonicalize(a).unwrap_or_else(|_| a.clone());
                let cb = std::fs::canonicalize(b).unwrap_or_else(|_| b.clone());
                ca == cb
            }
            _ => {
                same_host(&self.host, &other.host)
                    && self.port == other.port
                    && self.database == other.database
            }
        }
    }

    /// Whether both URLs point at the same server (host and port).
    pub fn same_server(&self, other: &DbUrl) -> bool {
        self.vendor == other.vendor
            && self.path.is_none()
            && same_host(&self.host, &other.host)
            && self.port == other.port
    }

    /// A PostgreSQL client configuration with this URL's address and credentials; callers add
    /// their session options and connect with [`DbUrl::connect_postgres`], which adds TLS.
    pub fn postgres_config(&self) -> postgres::Config {
        let mut config = postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .dbname(&self.database)
            .application_name("carbon-upgrade")
            .user(self.user.as_deref().unwrap_or("postgres"));
        if let Some(password) = self.password() {
            config.password(password);
        }
        config
    }

    /// Opens a PostgreSQL session with `config` (from [`DbUrl::postgres_config`]) over the
    /// transport this URL asks for.
    pub fn connect_postgres(&self, config: &postgres::Config) -> Result<postgres::Client, DbError> {
        tls::connect_postgres(self, config).map_err(|e| match e {
            tls::ConnectFailure::Setup(e) => e,
            tls::ConnectFailure::Driver(e) => DbError::connect(self, e),
        })
    }

    /// MySQL/MariaDB options with this URL's address and credentials (TCP, never the socket);
    /// callers may add to them and connect with [`DbUrl::connect_mysql`], which adds TLS.
    pub fn mysql_builder(&self, with_db: bool) -> mysql::OptsBuilder {
        mysql::OptsBuilder::new()
            .ip_or_hostname(Some(self.host.clone()))
            .tcp_port(self.port)
            .prefer_socket(false)
            .user(Some(self.user.clone().unwrap_or_else(|| "root".to_owned())))
            .pass(self.password().map(str::to_owned))
            .db_name(if with_db && !self.database.is_empty() {
                Some(self.database.clone())
            } else {
                None
            })
    }

    /// Opens a MySQL/MariaDB session over the transport this URL asks for; under `prefer`, a
    /// server without TLS gets a plain session.
    pub fn connect_mysql(&self, builder: mysql::OptsBuilder) -> Result<mysql::Conn, mysql::Error> {
        tls::connect_mysql(self, builder)
    }
}

fn same_host(a: &str, b: &str) -> bool {
    let norm = |h: &str| match h {
        "localhost" | "127.0.0.1" | "::1" | "[::1]" => "localhost".to_owned(),
        other => other.to_ascii_lowercase(),
    };
    norm(a) == norm(b)
}

pub(crate) fn resolve(path: &str, home: Option<&Path>) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    match home {
        Some(home) => home.join(p),
        None => std::env::current_dir().map_or_else(|_| p.to_path_buf(), |cwd| cwd.join(p)),
    }
}

impl DbUrl {
    /// The address a parsed JDBC URL names. Relative SQLite and H2 paths are resolved against
    /// `home` (or the current directory); options are read with the URL's driver's meanings.
    pub fn from_jdbc(url: &JdbcUrl, home: Option<&Path>) -> Result<DbUrl, DbError> {
        from_jdbc(url, home, false)
    }
}

impl DbUrl {
    /// The JDBC URL a Carbon server uses for this network database, asking its driver for
    /// the same TLS as ours: pgjdbc's `sslmode`, and the Connector/J 5.1 options Carbon 4.4
    /// products ship with for MySQL/MariaDB. No credentials (Carbon keeps them apart).
    pub fn to_jdbc(&self) -> Result<JdbcUrl, DbError> {
        let sub = match self.vendor {
            Vendor::Postgres => "postgresql",
            Vendor::MySql => "mysql",
            _ => {
                return Err(DbError::Unsupported {
                    url: self.to_string(),
                    reason: "only a network database has a JDBC server URL".into(),
                });
            }
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let text = format!(
            "jdbc:{sub}://{host}:{}/{}{}",
            self.port,
            percent_encode(&self.database),
            self.jdbc_tls_params()
        );
        JdbcUrl::parse(&text).map_err(|e| DbError::BadUrl {
            url: self.to_string(),
            reason: e.to_string(),
        })
    }

    fn jdbc_tls_params(&self) -> String {
        match (self.vendor, self.tls.mode) {
            (_, TlsMode::Disable) => String::new(),
            (Vendor::Postgres, mode) => match &self.tls.root_cert {
                Some(root) => format!(
                    "?sslmode={mode}&sslrootcert={}",
                    percent_encode_value(&root.to_string_lossy())
                ),
                None => format!("?sslmode={mode}"),
            },
            (_, TlsMode::Prefer) => "?useSSL=true".to_owned(),
            (_, TlsMode::Require) => {
                "?useSSL=true&requireSSL=true&verifyServerCertificate=false".to_owned()
            }
            (_, TlsMode::VerifyCa | TlsMode::VerifyFull) => {
                "?useSSL=true&requireSSL=true&verifyServerCertificate=true".to_owned()
            }
        }
    }
}

/// Native spellings of the JDBC subprotocols (`postgres://…`, `sqlite:…`).
const ALIASES: &[(&str, &str)] = &[
    ("postgres", "postgresql"),
    ("pgsql", "postgresql"),
    ("sqlite3", "sqlite"),
];

/// JDBC and native URLs alike go through [`JdbcUrl`]: a native URL is its JDBC spelling
/// without `jdbc:`, so `postgres://u@h/db` reads as `jdbc:postgresql://u@h/db`.
fn parse_url(input: &str, home: Option<&Path>, server_only: bool) -> Result<DbUrl, DbError> {
    let input = input.trim();
    let bad = |reason: &str| DbError::BadUrl {
        url: redact_raw(input),
        reason: reason.to_owned(),
    };
    let rest = strip_prefix_ci(input, "jdbc:").unwrap_or(input);
    let Some((scheme, body)) = rest.split_once(':') else {
        return Err(bad(
            "expected <vendor>:... (e.g. jdbc:postgresql://host/db)",
        ));
    };
    let scheme = scheme.to_ascii_lowercase();
    let scheme = ALIASES
        .iter()
        .find(|(alias, _)| *alias == scheme)
        .map_or(scheme.as_str(), |(_, jdbc)| jdbc);
    let jdbc = JdbcUrl::parse(&format!("jdbc:{scheme}:{body}")).map_err(|e| match e {
        carbon_config::ConfigError::JdbcUrl { reason, .. } => bad(&reason),
        other => bad(&other.to_string()),
    })?;
    from_jdbc(&jdbc, home, server_only).map_err(|e| match e {
        // Name the URL as the operator wrote it.
        DbError::BadUrl { reason, .. } => bad(&reason),
        DbError::UnsupportedVendor { vendor, .. } => DbError::UnsupportedVendor {
            vendor,
            url: redact_raw(input),
        },
        other => other,
    })
}

/// `server_only`: a missing database name means the server's maintenance database.
fn from_jdbc(url: &JdbcUrl, home: Option<&Path>, server_only: bool) -> Result<DbUrl, DbError> {
    let bad = |reason: &str| DbError::BadUrl {
        url: url.redacted(),
        reason: reason.to_owned(),
    };
    match url.vendor() {
        Vendor::Postgres => network(url, Dialect::Postgres, home, server_only, &bad),
        Vendor::MySql if url.subprotocol() == "mariadb" => {
            network(url, Dialect::MariaDb, home, server_only, &bad)
        }
        Vendor::MySql => network(url, Dialect::ConnectorJ, home, server_only, &bad),
        Vendor::Sqlite => {
            let path = url.database().unwrap_or_default();
            let path = path.strip_prefix("//").unwrap_or(path);
            let path = path.split(';').next().unwrap_or_default();
            if path.is_empty() {
                return Err(bad("no SQLite file path"));
            }
            if path == ":memory:" {
                return Err(bad("an in-memory SQLite database cannot be copied"));
            }
            Ok(DbUrl::file(Vendor::Sqlite, resolve(path, home)))
        }
        Vendor::H2 => h2_file(url, home, &bad),
        _ => match url.product_name() {
            Some(name) => Err(DbError::UnsupportedVendor {
                vendor: name.to_owned(),
                url: url.redacted(),
            }),
            None => Err(bad(&format!(
                "unknown database kind {:?}",
                url.subprotocol()
            ))),
        },
    }
}

/// Embedded H2 only: the base path of its files (`file:`, `split:` and `~/` understood).
fn h2_file(
    url: &JdbcUrl,
    home: Option<&Path>,
    bad: &dyn Fn(&str) -> DbError,
) -> Result<DbUrl, DbError> {
    let path = url.database().unwrap_or_default();
    let lower = path.to_ascii_lowercase();
    let server = ["mem:", "tcp:", "ssl:"]
        .iter()
        .any(|p| lower.starts_with(p));
    if url.server().is_some() || server {
        return Err(bad(
            "only embedded H2 file databases can be copied (as files), not mem:/tcp:/ssl:",
        ));
    }
    let path = strip_prefix_ci(path, "file:").unwrap_or(path);
    let path = path.strip_prefix("split:").unwrap_or(path);
    if path.is_empty() {
        return Err(bad("no H2 database path"));
    }
    let path = if let Some(rest) = path.strip_prefix("~/") {
        std::env::var_os("HOME").map_or_else(|| PathBuf::from(path), |h| Path::new(&h).join(rest))
    } else {
        resolve(path, home)
    };
    Ok(DbUrl::file(Vendor::H2, path))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    match s.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(prefix) => s.get(prefix.len()..),
        _ => None,
    }
}

/// A PostgreSQL or MySQL/MariaDB server address from the URL's parts.
fn network(
    url: &JdbcUrl,
    dialect: Dialect,
    home: Option<&Path>,
    server_only: bool,
    bad: &dyn Fn(&str) -> DbError,
) -> Result<DbUrl, DbError> {
    let vendor = url.vendor();
    let default_port = if vendor == Vendor::Postgres {
        5432
    } else {
        3306
    };
    let Some(server) = url.server() else {
        return Err(bad("expected //host[:port]/database after the vendor"));
    };
    if url.is_multi_host() {
        return Err(bad("multi-host URLs are not supported; give one server"));
    }
    let (mut user, mut password) = match server.userinfo {
        Some(u) => match u.split_once(':') {
            Some((u, p)) => (Some(percent_decode(u)), Some(percent_decode(p))),
            None => (Some(percent_decode(u)), None),
        },
        None => (None, None),
    };
    let host = match server.host.strip_prefix('[') {
        Some(inner) => inner
            .strip_suffix(']')
            .ok_or_else(|| bad("unclosed [ in host"))?,
        None => server.host,
    };
    let host = if host.is_empty() { "localhost" } else { host }.to_owned();
    let port = match server.port {
        None | Some("") => default_port,
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| bad(&format!("port {p:?} is not a number from 1 to 65535")))?,
    };
    if port == 0 {
        return Err(bad("port 0"));
    }
    let mut tls = TlsParams::default();
    for param in url.params() {
        let Some(value) = &param.value else { continue };
        match param.key.to_ascii_lowercase().as_str() {
            "user" => user = Some(percent_decode(value)),
            "password" => password = Some(percent_decode(value)),
            _ => tls
                .take(&param.key, &percent_decode(value))
                .map_err(|e| bad(&e))?,
        }
    }
    let tls = tls.resolve(dialect, home).map_err(|e| bad(&e))?;
    let mut database = percent_decode(url.database().unwrap_or_default().trim_end_matches('/'));
    if database.is_empty() && server_only {
        database = if vendor == Vendor::Postgres {
            "postgres"
        } else {
            "mysql"
        }
        .to_owned();
    }
    if database.is_empty() {
        return Err(bad("no database name"));
    }
    if database.contains('/') {
        return Err(bad("database name contains '/'"));
    }
    Ok(DbUrl {
        vendor,
        host,
        port,
        database,
        user,
        password: password.map(Secret::from),
        path: None,
        tls,
    })
}

/// Encodes what the parser treats as a delimiter, so a displayed URL parses back.
fn percent_encode(s: &str) -> String {
    encode_if(s, |c| {
        matches!(
            c,
            ':' | '@' | '/' | '?' | '#' | '%' | '[' | ']' | ';' | '&' | '='
        )
    })
}

/// Encodes what would end or split a query value, leaving a path's slashes readable.
fn percent_encode_value(s: &str) -> String {
    encode_if(s, |c| matches!(c, '%' | '#' | ';' | '&' | '?' | '='))
}

/// Percent-encodes the characters `special` picks, controls and spaces.
fn encode_if(s: &str, special: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if special(c) || c.is_control() || c == ' ' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Redacts a raw, possibly malformed URL or any text holding one: the password in
/// `user:pass@` (and Oracle's `user/pass@`) and any `password=` option are masked.
/// carbon-config owns redaction; this is its URL redactor under carbon-db's name.
pub use carbon_config::redact::redact_url_credentials as redact_raw;

impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.path, self.vendor) {
            (Some(path), Vendor::H2) => write!(f, "jdbc:h2:{}", path.display()),
            (Some(path), _) => write!(f, "sqlite:{}", path.display()),
            (None, vendor) => {
                let scheme = match vendor {
                    Vendor::Postgres => "postgres",
                    _ => "mysql",
                };
                write!(f, "{scheme}://")?;
                if let Some(user) = &self.user {
                    f.write_str(&percent_encode(user))?;
                    if self.password.is_some() {
                        write!(f, ":{REDACTED}")?;
                    }
                    f.write_str("@")?;
                }
                if self.host.contains(':') {
                    write!(f, "[{}]", self.host)?;
                } else {
                    f.write_str(&self.host)?;
                }
                write!(f, ":{}/{}", self.port, percent_encode(&self.database))?;
                if self.tls.mode != TlsMode::Disable {
                    write!(f, "?sslmode={}", self.tls.mode)?;
                }
                if let Some(root) = &self.tls.root_cert {
                    let sep = if self.tls.mode == TlsMode::Disable {
                        '?'
                    } else {
                        '&'
                    };
                    let root = root.to_string_lossy();
                    write!(f, "{sep}sslrootcert={}", percent_encode_value(&root))?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DbUrl({self})")
    }
}

impl std::str::FromStr for DbUrl {
    type Err = DbError;
    fn from_str(s: &str) -> Result<DbUrl, DbError> {
        DbUrl::parse(s)
    }
}

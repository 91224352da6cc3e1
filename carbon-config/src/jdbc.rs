//! JDBC URLs as written in Carbon datasources, parsed per vendor and formatted back exactly.
//!
//! Every component keeps its original text, so `JdbcUrl::parse(s)?.to_string() == s` for every
//! accepted `s`; unknown parameters are kept in order. `Debug` and `Display`-for-people
//! ([`JdbcUrl::redacted`]) hide passwords; [`JdbcUrl::as_str`] is the exact text.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Result};
use crate::redact::{is_secret_name, redact_url_credentials};
use crate::secret::REDACTED;

/// A database engine: what the guide means by "the DB type must stay the same". The one
/// vendor model of the workspace (carbon-db re-exports it). MySQL and MariaDB are one engine
/// (one wire protocol, one driver here); which JDBC driver a URL names (`mysql`, `mariadb`,
/// `jtds:sqlserver`) is the URL's business: [`JdbcUrl::subprotocol`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vendor {
    Postgres,
    /// MySQL and MariaDB.
    MySql,
    /// `jdbc:sqlite:` (xerial's driver); also where the tool's own tests keep databases.
    Sqlite,
    /// Carbon's embedded default.
    H2,
    SqlServer,
    Oracle,
    Db2,
    Derby,
    /// A subprotocol this model does not know (Informix, HSQLDB, …).
    Other,
}

impl Vendor {
    /// The short lowercase name used in reports, journals and messages.
    pub fn name(self) -> &'static str {
        match self {
            Vendor::Postgres => "postgres",
            Vendor::MySql => "mysql",
            Vendor::Sqlite => "sqlite",
            Vendor::H2 => "h2",
            Vendor::SqlServer => "sqlserver",
            Vendor::Oracle => "oracle",
            Vendor::Db2 => "db2",
            Vendor::Derby => "derby",
            Vendor::Other => "other",
        }
    }

    /// The stem of the script a Carbon product ships for this vendor under `dbscripts/`
    /// (`postgresql` → `dbscripts/postgresql.sql`, `apimgt/postgresql.sql`, …).
    pub fn dbscript_stem(self) -> Option<&'static str> {
        Some(match self {
            Vendor::Postgres => "postgresql",
            Vendor::MySql => "mysql",
            Vendor::Sqlite => "sqlite",
            Vendor::H2 => "h2",
            Vendor::SqlServer => "mssql",
            Vendor::Oracle => "oracle",
            Vendor::Db2 => "db2",
            Vendor::Derby | Vendor::Other => return None,
        })
    }

    /// The validation query that works on this vendor.
    pub fn validation_query(self) -> &'static str {
        match self {
            Vendor::Oracle => "SELECT 1 FROM DUAL",
            Vendor::Db2 => "SELECT 1 FROM sysibm.sysdummy1",
            _ => "SELECT 1",
        }
    }

    /// The engine a JDBC subprotocol (`mysql`, `jtds`, …) belongs to.
    fn of_subprotocol(sub: &str) -> Vendor {
        match sub.to_ascii_lowercase().as_str() {
            "h2" => Vendor::H2,
            "mysql" | "mariadb" => Vendor::MySql,
            "postgresql" => Vendor::Postgres,
            "sqlite" => Vendor::Sqlite,
            "sqlserver" | "jtds" => Vendor::SqlServer,
            "oracle" => Vendor::Oracle,
            "db2" => Vendor::Db2,
            "derby" => Vendor::Derby,
            _ => Vendor::Other,
        }
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Per JDBC subprotocol: the driver class WSO2's documentation pairs with it, the word every
/// driver class of that family contains, and the product's name for messages.
const DRIVERS: &[(&str, Option<&str>, &str, &str)] = &[
    ("h2", Some("org.h2.Driver"), "h2", "H2"),
    ("mysql", Some("com.mysql.jdbc.Driver"), "mysql", "MySQL"),
    (
        "mariadb",
        Some("org.mariadb.jdbc.Driver"),
        "mariadb",
        "MariaDB",
    ),
    (
        "postgresql",
        Some("org.postgresql.Driver"),
        "postgresql",
        "PostgreSQL",
    ),
    ("sqlite", Some("org.sqlite.JDBC"), "sqlite", "SQLite"),
    (
        "sqlserver",
        Some("com.microsoft.sqlserver.jdbc.SQLServerDriver"),
        "sqlserver",
        "Microsoft SQL Server",
    ),
    ("microsoft", None, "sqlserver", "Microsoft SQL Server"),
    (
        "jtds",
        Some("net.sourceforge.jtds.jdbc.Driver"),
        "jtds",
        "Microsoft SQL Server (jTDS)",
    ),
    (
        "oracle",
        Some("oracle.jdbc.OracleDriver"),
        "oracle",
        "Oracle",
    ),
    ("db2", Some("com.ibm.db2.jcc.DB2Driver"), "db2", "IBM DB2"),
    (
        "derby",
        Some("org.apache.derby.jdbc.ClientDriver"),
        "derby",
        "Apache Derby",
    ),
    ("informix", None, "informix", "Informix"),
    ("informix-sqli", None, "informix", "Informix"),
    ("hsqldb", None, "hsqldb", "HSQLDB"),
    ("datadirect", None, "openedge", "OpenEdge"),
    ("openedge", None, "openedge", "OpenEdge"),
];

/// How parameters follow the database part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParamStyle {
    /// `?a=1&b=2` (MySQL, MariaDB, PostgreSQL).
    Query,
    /// `;a=1;b=2` (H2, SQL Server, jTDS, Derby), also `:a=1;b=2;` for DB2 where the lead is `:`.
    Semicolon,
}

/// One `key=value` (or bare `key`) parameter, text exactly as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub key: String,
    pub value: Option<String>,
}

/// The first server named in a URL's authority, each part as written (no decoding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Server<'a> {
    /// `user[:password]` before `@`, in native URLs (`postgres://u:p@h/db`).
    pub userinfo: Option<&'a str>,
    /// The host, IPv6 addresses in brackets.
    pub host: &'a str,
    pub port: Option<&'a str>,
}

/// A parsed JDBC URL.
#[derive(Clone, PartialEq, Eq)]
pub struct JdbcUrl {
    vendor: Vendor,
    /// `jdbc:mysql:` etc., as written.
    prefix: String,
    /// `//` for URL-style vendors, `@` or `@//` for Oracle thin, empty otherwise.
    lead: String,
    /// `host[:port][,host2...]` as written, for network forms.
    authority: Option<String>,
    /// The separator between authority and database: `/`, `:` (Oracle SID) or empty.
    db_sep: String,
    database: String,
    style: ParamStyle,
    /// The character that introduces the parameters (`?`, `;`, `:`) if present.
    params_lead: Option<char>,
    params: Vec<Param>,
}

impl JdbcUrl {
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |reason: &str| ConfigError::JdbcUrl {
            redacted: redact_url_credentials(text),
            reason: reason.into(),
        };
        let rest = text
            .strip_prefix("jdbc:")
            .ok_or_else(|| bad("does not start with `jdbc:`"))?;
        let (sub, _) = rest
            .split_once(':')
            .ok_or_else(|| bad("no `jdbc:<vendor>:` prefix"))?;
        let vendor = Vendor::of_subprotocol(sub);
        let mut prefix_len = "jdbc:".len() + sub.len() + 1;
        // `jdbc:oracle:thin:` and `jdbc:jtds:sqlserver:` have a second prefix word.
        if sub.eq_ignore_ascii_case("oracle") || sub.eq_ignore_ascii_case("jtds") {
            let second = text[prefix_len..]
                .split_once(':')
                .ok_or_else(|| bad("incomplete prefix"))?
                .0;
            prefix_len += second.len() + 1;
        }
        let (prefix, body) = text.split_at(prefix_len);
        let mut url = JdbcUrl {
            vendor,
            prefix: prefix.to_owned(),
            lead: String::new(),
            authority: None,
            db_sep: String::new(),
            database: String::new(),
            style: ParamStyle::Semicolon,
            params_lead: None,
            params: Vec::new(),
        };
        match vendor {
            Vendor::Oracle => url.parse_oracle(body),
            Vendor::H2 => url.parse_h2(body),
            Vendor::Sqlite => url.parse_file(body),
            Vendor::Other => url.database = body.to_owned(),
            _ => url.parse_network(body).map_err(bad)?,
        }
        Ok(url)
    }

    fn parse_network(&mut self, body: &str) -> Result<(), &'static str> {
        let after = body
            .strip_prefix("//")
            .ok_or("expected `//host` after the prefix")?;
        self.lead = "//".into();
        self.style = match self.vendor {
            Vendor::MySql | Vendor::Postgres => ParamStyle::Query,
            _ => ParamStyle::Semicolon,
        };
        let lead_chars: &[char] = match self.style {
            ParamStyle::Query => &['?'],
            ParamStyle::Semicolon => &[';'],
        };
        let authority_end = after
            .find(|c| c == '/' || lead_chars.contains(&c))
            .unwrap_or(after.len());
        self.authority = Some(after[..authority_end].to_owned());
        let mut rest = &after[authority_end..];
        if let Some(path) = rest.strip_prefix('/') {
            self.db_sep = "/".into();
            // DB2 puts properties after the database name behind a `:`.
            let db_end = path
                .find(|c| lead_chars.contains(&c) || (self.vendor == Vendor::Db2 && c == ':'))
                .unwrap_or(path.len());
            self.database = path[..db_end].to_owned();
            rest = &path[db_end..];
        }
        self.parse_params(rest);
        Ok(())
    }

    fn parse_h2(&mut self, body: &str) {
        let db_end = body.find(';').unwrap_or(body.len());
        let db = &body[..db_end];
        // Server mode: `tcp://host:port/path` or `ssl://...`.
        let server = ["tcp://", "ssl://"]
            .iter()
            .find(|scheme| db.starts_with(**scheme));
        match server {
            Some(scheme) => {
                let after = &db[scheme.len()..];
                let host_end = after.find('/').unwrap_or(after.len());
                self.lead = (*scheme).to_owned();
                self.authority = Some(after[..host_end].to_owned());
                if host_end < after.len() {
                    self.db_sep = "/".into();
                    self.database = after[host_end + 1..].to_owned();
                }
            }
            None => self.database = db.to_owned(),
        }
        self.parse_params(&body[db_end..]);
    }

    /// `jdbc:sqlite:path[?k=v&…]` (xerial's driver): the path as the database.
    fn parse_file(&mut self, body: &str) {
        self.style = ParamStyle::Query;
        let db_end = body.find('?').unwrap_or(body.len());
        self.database = body[..db_end].to_owned();
        self.parse_params(&body[db_end..]);
    }

    fn parse_oracle(&mut self, body: &str) {
        // Oracle thin: `@host:port:SID`, `@host:port/service`, `@//host:port/service`, or a
        // TNS descriptor `@(DESCRIPTION=...)` which stays opaque.
        let Some(at) = body.strip_prefix('@') else {
            self.database = body.to_owned();
            return;
        };
        if at.starts_with('(') {
            self.lead = "@".into();
            self.database = at.to_owned();
            return;
        }
        let (lead, at) = match at.strip_prefix("//") {
            Some(rest) => ("@//", rest),
            None => ("@", at),
        };
        self.lead = lead.into();
        let host_end = at.find(':').map_or(at.len(), |i| i + 1);
        let port_and_db = &at[host_end.min(at.len())..];
        let port_len = port_and_db
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(port_and_db.len());
        let authority_end = if host_end < at.len() && port_len > 0 {
            host_end + port_len
        } else {
            at.find(['/', ':']).unwrap_or(at.len())
        };
        self.authority = Some(at[..authority_end].to_owned());
        let rest = &at[authority_end..];
        if let Some(sep @ ('/' | ':')) = rest.chars().next() {
            self.db_sep = sep.to_string();
            self.database = rest[1..].to_owned();
        } else {
            self.database = rest.to_owned();
        }
    }

    fn parse_params(&mut self, rest: &str) {
        let Some(lead) = rest.chars().next() else {
            return;
        };
        self.params_lead = Some(lead);
        let separator = if self.style == ParamStyle::Query {
            '&'
        } else {
            ';'
        };
        self.params = rest[1..].split(separator).map(parse_param).collect();
    }

    pub fn vendor(&self) -> Vendor {
        self.vendor
    }

    /// The exact URL text.
    pub fn as_str(&self) -> String {
        self.to_string()
    }

    /// The driver's name in the prefix, lowercase: `mysql`, `mariadb`, `jtds`, `oracle`, …
    pub fn subprotocol(&self) -> String {
        self.prefix
            .get("jdbc:".len()..)
            .and_then(|rest| rest.split(':').next())
            .unwrap_or_default()
            .to_ascii_lowercase()
    }

    fn driver_entry(
        &self,
    ) -> Option<&'static (
        &'static str,
        Option<&'static str>,
        &'static str,
        &'static str,
    )> {
        let sub = self.subprotocol();
        DRIVERS.iter().find(|(name, ..)| *name == sub)
    }

    /// The driver class WSO2's documentation pairs with this URL's subprotocol.
    pub fn default_driver(&self) -> Option<&'static str> {
        self.driver_entry().and_then(|entry| entry.1)
    }

    /// Whether `driver` (a class name) belongs to this URL's subprotocol; unknown
    /// subprotocols accept any driver.
    pub fn matches_driver(&self, driver: &str) -> bool {
        match self.driver_entry() {
            Some((_, _, needle, _)) => driver.to_ascii_lowercase().contains(needle),
            None => true,
        }
    }

    /// The product the subprotocol names, for messages (`Oracle`, `Microsoft SQL Server (jTDS)`).
    pub fn product_name(&self) -> Option<&'static str> {
        self.driver_entry().map(|entry| entry.3)
    }

    /// The first server of the authority, its parts exactly as written.
    pub fn server(&self) -> Option<Server<'_>> {
        let first = self.authority.as_deref()?.split(',').next()?;
        let (userinfo, hostport) = match first.rsplit_once('@') {
            Some((user, rest)) => (Some(user), rest),
            None => (None, first),
        };
        let (host, port) = if hostport.starts_with('[') {
            match hostport.find(']') {
                Some(end) => (&hostport[..=end], hostport[end + 1..].strip_prefix(':')),
                None => (hostport, None),
            }
        } else {
            match hostport.split_once(':') {
                Some((host, port)) => (host, Some(port.split(':').next().unwrap_or(port))),
                None => (hostport, None),
            }
        };
        Some(Server {
            userinfo,
            host,
            port,
        })
    }

    /// Whether the authority lists more than one server (fail-over URLs).
    pub fn is_multi_host(&self) -> bool {
        self.authority.as_deref().is_some_and(|a| a.contains(','))
    }

    /// The first host, if the URL names one.
    pub fn host(&self) -> Option<&str> {
        let host = self.server()?.host;
        let host = host.split('\\').next().unwrap_or(host); // SQL Server `host\instance`
        (!host.is_empty()).then_some(host)
    }

    /// The first host's port, if written.
    pub fn port(&self) -> Option<u16> {
        self.server()?.port?.parse().ok()
    }

    /// The database: name, H2 file path, Oracle SID/service, or the `databaseName` parameter
    /// for SQL Server.
    pub fn database(&self) -> Option<&str> {
        if !self.database.is_empty() {
            return Some(&self.database);
        }
        self.param("databaseName")
            .or_else(|| self.param("database"))
    }

    /// A parameter's value (first occurrence, key compared case-insensitively).
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.key.eq_ignore_ascii_case(key))
            .and_then(|p| p.value.as_deref())
    }

    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// A copy with `key` set (replacing the first occurrence or appending).
    pub fn with_param(&self, key: &str, value: &str) -> Self {
        let mut url = self.clone();
        match url
            .params
            .iter_mut()
            .find(|p| p.key.eq_ignore_ascii_case(key))
        {
            Some(param) => param.value = Some(value.to_owned()),
            None => {
                let only_empty =
                    matches!(url.params.as_slice(), [p] if p.key.is_empty() && p.value.is_none());
                if url.params_lead.is_none() || only_empty {
                    url.params_lead = Some(if url.style == ParamStyle::Query {
                        '?'
                    } else {
                        ';'
                    });
                    url.params.clear();
                }
                url.params.push(Param {
                    key: key.to_owned(),
                    value: Some(value.to_owned()),
                });
            }
        }
        url
    }

    /// A copy pointing at another database name (parameters kept).
    pub fn with_database(&self, database: &str) -> Self {
        let mut url = self.clone();
        if url.database.is_empty() && url.param("databaseName").is_some() {
            return url.with_param("databaseName", database);
        }
        if url.authority.is_some() && url.db_sep.is_empty() {
            url.db_sep = "/".into();
        }
        url.database = database.to_owned();
        url
    }

    /// The text with passwords hidden, for messages and JSON.
    pub fn redacted(&self) -> String {
        let mut shown = self.clone();
        for param in &mut shown.params {
            if is_secret_name(&param.key) && param.value.as_deref().is_some_and(|v| !v.is_empty()) {
                param.value = Some(REDACTED.to_owned());
            }
        }
        redact_url_credentials(&shown.to_string())
    }

    /// Whether two URLs address the same database (vendor, host, port, database; case-insensitive
    /// host), ignoring parameters. H2 file paths compare as written.
    pub fn same_database(&self, other: &JdbcUrl) -> bool {
        let host = |u: &JdbcUrl| u.host().map(str::to_ascii_lowercase);
        let port = |u: &JdbcUrl| u.port().or_else(|| u.default_port());
        self.vendor == other.vendor
            && host(self) == host(other)
            && port(self) == port(other)
            && self.database() == other.database()
    }

    fn default_port(&self) -> Option<u16> {
        self.authority.as_ref()?;
        match self.vendor {
            Vendor::MySql => Some(3306),
            Vendor::Postgres => Some(5432),
            Vendor::SqlServer => Some(1433),
            Vendor::Oracle => Some(1521),
            Vendor::Db2 => Some(50000),
            Vendor::H2 => Some(9092),
            Vendor::Derby => Some(1527),
            Vendor::Sqlite | Vendor::Other => None,
        }
    }
}

fn parse_param(text: &str) -> Param {
    match text.split_once('=') {
        Some((key, value)) => Param {
            key: key.to_owned(),
            value: Some(value.to_owned()),
        },
        None => Param {
            key: text.to_owned(),
            value: None,
        },
    }
}

impl fmt::Display for JdbcUrl {
    /// The exact URL (this may contain a password: show [`JdbcUrl::redacted`] to people).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.prefix)?;
        f.write_str(&self.lead)?;
        if let Some(authority) = &self.authority {
            f.write_str(authority)?;
        }
        f.write_str(&self.db_sep)?;
        f.write_str(&self.database)?;
        if let Some(lead) = self.params_lead {
            write!(f, "{lead}")?;
            let separator = if self.style == ParamStyle::Query {
                "&"
            } else {
                ";"
            };
            for (i, param) in self.params.iter().enumerate() {
                if i > 0 {
                    f.write_str(separator)?;
                }
                f.write_str(&param.key)?;
                if let Some(value) = &param.value {
                    write!(f, "={value}")?;
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for JdbcUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JdbcUrl({})", self.redacted())
    }
}

impl Serialize for JdbcUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

impl std::str::FromStr for JdbcUrl {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self> {
        JdbcUrl::parse(s)
    }
}

//! Fresh, uniquely named databases for tests, dropped afterwards even when the test fails.
//!
//! Servers come from `CARBON_TEST_PG_URL` / `CARBON_TEST_MYSQL_URL`, else the loopback
//! defaults. `cargo xtask test` sets both (starting private servers when needed). A server
//! that does not answer is a failure, never a skip: a suite that quietly left out a vendor
//! would report success it has not earned.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{DbUrl, Vendor};

pub const PG_URL_ENV: &str = "CARBON_TEST_PG_URL";
pub const MYSQL_URL_ENV: &str = "CARBON_TEST_MYSQL_URL";
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const DEFAULT_MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/";
/// Servers that accept TLS sessions only, with a test CA (set by `cargo xtask test`).
pub const PG_TLS_URL_ENV: &str = "CARBON_TEST_PG_TLS_URL";
pub const MYSQL_TLS_URL_ENV: &str = "CARBON_TEST_MYSQL_TLS_URL";
/// Servers that can be followed (set by `cargo xtask test`): PostgreSQL with
/// `wal_level=logical`, MariaDB with a ROW binlog. The shared servers cannot.
pub const PG_STREAM_URL_ENV: &str = "CARBON_TEST_PG_LOGICAL_URL";
pub const MYSQL_STREAM_URL_ENV: &str = "CARBON_TEST_MYSQL_BINLOG_URL";
/// PEM file of the CA that signed the TLS servers' certificates.
pub const TLS_CA_ENV: &str = "CARBON_TEST_TLS_CA";

/// Every test database name starts with this, so leftovers are easy to recognise.
pub(crate) const NAME_PREFIX: &str = "carbon_t_";

#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    #[error("PostgreSQL test server {url}")]
    Postgres {
        url: String,
        #[source]
        source: postgres::Error,
    },
    #[error("MariaDB/MySQL test server {url}")]
    MySql {
        url: String,
        #[source]
        source: mysql::Error,
    },
    #[error("SQLite test database {path}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("temporary directory")]
    TempDir(#[source] std::io::Error),
    #[error("{vendor} has no test server (it is copied as files)")]
    NoServer { vendor: Vendor },
    #[error("no TLS-only {vendor} test server: {env} is not set (`cargo xtask test` starts one)")]
    NoTlsServer { vendor: Vendor, env: &'static str },
    #[error(
        "no {vendor} test server that can be followed: {env} is not set (`cargo xtask test` starts one)"
    )]
    NoStreamServer { vendor: Vendor, env: &'static str },
    #[error("test server {url}")]
    Db {
        url: String,
        #[source]
        source: crate::DbError,
    },
}

/// The server URL (with its maintenance database) used for a vendor's test databases.
pub fn server_url(vendor: Vendor) -> Result<String, TestkitError> {
    let (env, default) = match vendor {
        Vendor::Postgres => (PG_URL_ENV, DEFAULT_PG_URL),
        Vendor::MySql => (MYSQL_URL_ENV, DEFAULT_MYSQL_URL),
        _ => return Err(TestkitError::NoServer { vendor }),
    };
    Ok(std::env::var(env)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned()))
}

/// The URL of a server that refuses plain sessions, with TLS options that trust the test CA.
pub fn tls_server_url(vendor: Vendor) -> Result<String, TestkitError> {
    let env = match vendor {
        Vendor::Postgres => PG_TLS_URL_ENV,
        Vendor::MySql => MYSQL_TLS_URL_ENV,
        _ => return Err(TestkitError::NoServer { vendor }),
    };
    std::env::var(env)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or(TestkitError::NoTlsServer { vendor, env })
}

/// The URL of a server whose changes can be followed (logical decoding / ROW binlog).
pub fn stream_server_url(vendor: Vendor) -> Result<String, TestkitError> {
    let env = match vendor {
        Vendor::Postgres => PG_STREAM_URL_ENV,
        Vendor::MySql => MYSQL_STREAM_URL_ENV,
        _ => return Err(TestkitError::NoServer { vendor }),
    };
    std::env::var(env)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or(TestkitError::NoStreamServer { vendor, env })
}

/// The test CA's PEM file (see [`TLS_CA_ENV`]).
pub fn tls_ca() -> PathBuf {
    std::env::var_os(TLS_CA_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{TLS_CA_ENV} is not set: run the suite with `cargo xtask test`"))
}

/// A throwaway CA and a server certificate it signed for `names` (host names or IPs), PEM.
#[derive(Debug, Clone)]
pub struct TestCertificates {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCertificates {
    pub fn generate(names: &[&str]) -> Result<TestCertificates, rcgen::Error> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "carbon-upgrade test CA");
        let ca = ca_params.self_signed(&ca_key)?;
        let key = KeyPair::generate()?;
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "carbon-upgrade test server");
        let cert = params.signed_by(&key, &ca, &ca_key)?;
        Ok(TestCertificates {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Replaces the database part of a `scheme://authority/db?query` URL.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// A fresh database: created by [`TestDb::new`], dropped on drop.
#[derive(Debug)]
pub struct TestDb {
    vendor: Vendor,
    name: String,
    url: String,
    server: String,
    // Keeps the SQLite file's directory alive; removed on drop.
    dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// Creates a fresh empty database. Panics with the server's answer when it cannot:
    /// this is test support, and a test without its database must fail loudly.
    pub fn new(vendor: Vendor) -> TestDb {
        TestDb::create(vendor).unwrap_or_else(|e| {
            panic!("cannot create a {vendor} test database: {} (run the suite with `cargo xtask test`, which finds or starts the servers)", crate::error_chain(&e))
        })
    }

    /// Like [`TestDb::new`], on the TLS-only server; its URL carries the TLS options.
    pub fn new_tls(vendor: Vendor) -> TestDb {
        TestDb::create_on(vendor, tls_server_url(vendor)).unwrap_or_else(|e| {
            panic!(
                "cannot create a {vendor} TLS test database: {}",
                crate::error_chain(&e)
            )
        })
    }

    /// Like [`TestDb::new`], on the server whose changes can be followed.
    pub fn new_streaming(vendor: Vendor) -> TestDb {
        TestDb::create_on(vendor, stream_server_url(vendor)).unwrap_or_else(|e| {
            panic!(
                "cannot create a {vendor} test database on the streaming server: {}",
                crate::error_chain(&e)
            )
        })
    }

    /// Reserves a name on the streaming server (see [`TestDb::reserve`]).
    pub fn reserve_streaming(vendor: Vendor) -> TestDb {
        stream_server_url(vendor)
            .and_then(|server| TestDb::prepare_on(vendor, Ok(server)))
            .unwrap_or_else(|e| {
                panic!(
                    "cannot reserve a {vendor} test database on the streaming server: {}",
                    crate::error_chain(&e)
                )
            })
    }

    /// Reserves a name on the TLS-only server (see [`TestDb::reserve`]).
    pub fn reserve_tls(vendor: Vendor) -> TestDb {
        tls_server_url(vendor)
            .and_then(|server| TestDb::prepare_on(vendor, Ok(server)))
            .unwrap_or_else(|e| {
                panic!(
                    "cannot reserve a {vendor} TLS test database: {}",
                    crate::error_chain(&e)
                )
            })
    }

    /// Reserves a unique name without creating the database (for code that must create it),
    /// still dropping it on drop if it exists by then.
    pub fn reserve(vendor: Vendor) -> TestDb {
        TestDb::prepare(vendor).unwrap_or_else(|e| {
            panic!(
                "cannot reserve a {vendor} test database: {}",
                crate::error_chain(&e)
            )
        })
    }

    pub fn create(vendor: Vendor) -> Result<TestDb, TestkitError> {
        TestDb::create_on(vendor, server_url(vendor))
    }

    fn create_on(
        vendor: Vendor,
        server: Result<String, TestkitError>,
    ) -> Result<TestDb, TestkitError> {
        let db = TestDb::prepare_on(vendor, server)?;
        match vendor {
            Vendor::Postgres | Vendor::MySql => {
                crate::session::create_database(&db.server_url()?, &db.name).map_err(|source| {
                    TestkitError::Db {
                        url: db.server.clone(),
                        source,
                    }
                })?;
            }
            Vendor::Sqlite => {
                let path = db.sqlite_path();
                rusqlite::Connection::open(&path)
                    .map_err(|source| TestkitError::Sqlite { path, source })?;
            }
            _ => return Err(TestkitError::NoServer { vendor }),
        }
        Ok(db)
    }

    fn prepare(vendor: Vendor) -> Result<TestDb, TestkitError> {
        TestDb::prepare_on(vendor, server_url(vendor))
    }

    fn prepare_on(
        vendor: Vendor,
        server: Result<String, TestkitError>,
    ) -> Result<TestDb, TestkitError> {
        let name = unique_name();
        let (server, url, dir) = match vendor {
            Vendor::Postgres | Vendor::MySql => {
                let server = server?;
                let url = with_database(&server, &name);
                (server, url, None)
            }
            Vendor::Sqlite => {
                let dir = tempfile::Builder::new()
                    .prefix(NAME_PREFIX)
                    .tempdir()
                    .map_err(TestkitError::TempDir)?;
                let url = format!("sqlite:{}", dir.path().join(format!("{name}.db")).display());
                (String::new(), url, Some(dir))
            }
            _ => return Err(TestkitError::NoServer { vendor }),
        };
        Ok(TestDb {
            vendor,
            name,
            url,
            server,
            dir,
        })
    }

    pub fn vendor(&self) -> Vendor {
        self.vendor
    }

    /// The database name (for SQLite, the file stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Native URL: `postgres://…/name`, `mysql://…/name` or `sqlite:/path/name.db`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// For SQLite: the database file; for servers: a path under no directory (unused).
    pub fn sqlite_path(&self) -> PathBuf {
        match &self.dir {
            Some(dir) => dir.path().join(format!("{}.db", self.name)),
            None => PathBuf::from(&self.name),
        }
    }

    /// The directory holding a SQLite database (tests may put sibling files there).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(tempfile::TempDir::path)
    }

    pub fn pg_client(&self) -> postgres::Client {
        pg_connect(&self.url)
            .unwrap_or_else(|e| panic!("connect to {}: {}", self.url, crate::error_chain(&e)))
    }

    pub fn mysql_conn(&self) -> mysql::Conn {
        mysql_connect(&self.url)
            .unwrap_or_else(|e| panic!("connect to {}: {}", self.url, crate::error_chain(&e)))
    }

    pub fn sqlite_conn(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.sqlite_path())
            .unwrap_or_else(|e| panic!("open {}: {e}", self.url))
    }

    fn server_url(&self) -> Result<DbUrl, TestkitError> {
        DbUrl::parse_server(&self.server).map_err(|source| TestkitError::Db {
            url: self.server.clone(),
            source,
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Best effort: a failed drop must not mask the test's own outcome.
        if matches!(self.vendor, Vendor::Postgres | Vendor::MySql)
            && let Ok(server) = self.server_url()
        {
            let _ = crate::session::drop_database(&server, &self.name);
        }
    }
}

/// The real WSO2 files for conformance tests: `CARBON_FIXTURES`, else `shared/carbon-fixtures`
/// beside the repository. Panics when they are absent: a conformance test must never pass
/// without the files it conforms to.
pub fn wso2_fixtures() -> PathBuf {
    let dir = std::env::var_os("CARBON_FIXTURES").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/carbon-fixtures"
            ))
        },
        PathBuf::from,
    );
    assert!(
        dir.join("4.4.7").is_dir() && dir.join("wsdl").is_dir(),
        "WSO2 fixtures not found at {}: set CARBON_FIXTURES to the carbon-fixtures directory",
        dir.display()
    );
    dir
}

/// Options for a `mysql://` URL, with the local-infile permission the copy engine needs.
pub fn mysql_opts(url: &str) -> mysql::Opts {
    let opts = mysql::Opts::from_url(url).unwrap_or_else(|e| panic!("bad MySQL URL {url}: {e}"));
    // One TCP session per connection: the driver's default switches to the unix socket and
    // leaves the first session closing, which session-counting tests would see.
    mysql::OptsBuilder::from_opts(opts)
        .prefer_socket(false)
        .into()
}

/// A test session: plain URLs as they are, URLs with TLS options through [`crate::DbUrl`].
pub fn pg_connect(url: &str) -> Result<postgres::Client, TestkitError> {
    if !url.contains("ssl") {
        return postgres::Client::connect(url, postgres::NoTls).map_err(|source| {
            TestkitError::Postgres {
                url: url.to_owned(),
                source,
            }
        });
    }
    let db_err = |source| TestkitError::Db {
        url: url.to_owned(),
        source,
    };
    let parsed = crate::DbUrl::parse(url).map_err(db_err)?;
    let mut config = parsed.postgres_config();
    config.application_name("carbon-testkit");
    parsed.connect_postgres(&config).map_err(db_err)
}

/// A MariaDB/MySQL test session (see [`pg_connect`]).
pub fn mysql_connect(url: &str) -> Result<mysql::Conn, TestkitError> {
    let err = |source| TestkitError::MySql {
        url: url.to_owned(),
        source,
    };
    if !url.contains("ssl") {
        return mysql::Conn::new(mysql_opts(url)).map_err(err);
    }
    let parsed = crate::DbUrl::parse(url).map_err(|source| TestkitError::Db {
        url: url.to_owned(),
        source,
    })?;
    parsed
        .connect_mysql(parsed.mysql_builder(true))
        .map_err(err)
}

fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{NAME_PREFIX}{}_{n}_{nanos:x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn with_database_replaces_the_path_and_keeps_the_query() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres?sslmode=disable", "x"),
            "postgres://u@h:5432/x?sslmode=disable"
        );
        assert_eq!(
            with_database("mysql://root@127.0.0.1:3306/", "x"),
            "mysql://root@127.0.0.1:3306/x"
        );
        assert_eq!(
            with_database("mysql://root@127.0.0.1:3306", "x"),
            "mysql://root@127.0.0.1:3306/x"
        );
    }
}

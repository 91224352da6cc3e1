//! TLS to the database, as the JDBC URL asks, against servers that refuse plain sessions
//! (`cargo xtask test` starts them with a fresh test CA and a certificate for `localhost`).
//! Every successful case is asked by the server itself whether the session is encrypted.

use std::path::PathBuf;

use carbon_db::backup::native_backup;
use carbon_db::fixture;
use carbon_db::testkit::{self, TestCertificates, TestDb};
use carbon_db::{CopyOptions, DbUrl, TlsMode, Vendor};

use crate::support;

/// A CA the servers' certificates do not chain to.
fn other_ca(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("other-ca.pem");
    let certs = TestCertificates::generate(&["localhost"]).unwrap();
    std::fs::write(&path, certs.ca_pem).unwrap();
    path
}

const PASSWORD: &str = "tls-secret-4711";

/// A MariaDB account with [`PASSWORD`] that may use `db`, dropped on drop.
struct MySqlUser<'a> {
    db: &'a TestDb,
    name: String,
}

impl<'a> MySqlUser<'a> {
    fn create(db: &'a TestDb) -> MySqlUser<'a> {
        use mysql::prelude::Queryable;
        let name = format!("tls_{}", std::process::id());
        let mut conn = db.mysql_conn();
        for host in ["%", "localhost"] {
            conn.query_drop(format!(
                "CREATE OR REPLACE USER '{name}'@'{host}' IDENTIFIED BY '{PASSWORD}'"
            ))
            .unwrap();
            conn.query_drop(format!(
                "GRANT ALL ON `{}`.* TO '{name}'@'{host}'",
                db.name()
            ))
            .unwrap();
        }
        MySqlUser { db, name }
    }
}

impl Drop for MySqlUser<'_> {
    fn drop(&mut self) {
        use mysql::prelude::Queryable;
        let mut conn = self.db.mysql_conn();
        for host in ["%", "localhost"] {
            let _ = conn.query_drop(format!("DROP USER IF EXISTS '{}'@'{host}'", self.name));
        }
    }
}

/// `db`'s URL with another host, scheme and query, plus credentials that must never show
/// (PostgreSQL's test servers trust loopback, so its password is sent and ignored).
fn variant(db: &TestDb, scheme: &str, host: &str, query: &str) -> String {
    let url = DbUrl::parse(db.url()).unwrap();
    let user = match db.vendor() {
        Vendor::MySql => format!("tls_{}", std::process::id()),
        _ => url.user().unwrap_or_default().to_owned(),
    };
    let mut params = vec![format!("user={user}"), format!("password={PASSWORD}")];
    if !query.is_empty() {
        params.insert(0, query.to_owned());
    }
    format!(
        "jdbc:{scheme}://{host}:{}/{}?{}",
        url.port(),
        url.database(),
        params.join("&")
    )
}

/// Whether the server sees this session as encrypted.
fn encrypted(url: &DbUrl) -> Result<bool, String> {
    match url.vendor() {
        Vendor::Postgres => {
            let mut client = url
                .connect_postgres(&url.postgres_config())
                .map_err(|e| e.to_string())?;
            let row = client
                .query_one(
                    "SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)",
                    &[],
                )
                .map_err(|e| e.to_string())?;
            Ok(row.get(0))
        }
        _ => {
            use mysql::prelude::Queryable;
            let mut conn = url
                .connect_mysql(url.mysql_builder(true))
                .map_err(|e| e.to_string())?;
            let cipher: Option<(String, String)> = conn
                .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
                .map_err(|e| e.to_string())?;
            Ok(cipher.is_some_and(|(_, c)| !c.is_empty()))
        }
    }
}

/// One case: the URL's options, and either the mode it must get (and connect encrypted) or
/// a fragment of the one-line error it must give.
struct Case {
    scheme: &'static str,
    host: &'static str,
    query: String,
    expect: Result<TlsMode, &'static str>,
}

fn check(db: &TestDb, cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        let text = variant(db, case.scheme, case.host, &case.query);
        let outcome = DbUrl::parse(&text)
            .map_err(|e| e.to_string())
            .and_then(|url| encrypted(&url).map(|on| (url.tls().mode, on)));
        let shown = match &outcome {
            Ok((mode, on)) => format!("Ok({mode}, encrypted={on})"),
            Err(e) => format!("Err({e})"),
        };
        if shown.contains(PASSWORD) {
            failures.push(format!("{}: the password leaked: {shown}", case.query));
            continue;
        }
        let ok = match (&case.expect, &outcome) {
            (Ok(mode), Ok((got, on))) => mode == got && *on,
            (Err(fragment), Err(e)) => {
                e.to_lowercase().contains(&fragment.to_lowercase()) && !e.contains('\n')
            }
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{} {}: expected {:?}, got {shown}",
                case.host, case.query, case.expect
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn case(
    scheme: &'static str,
    host: &'static str,
    query: &str,
    expect: Result<TlsMode, &'static str>,
) -> Case {
    Case {
        scheme,
        host,
        query: query.to_owned(),
        expect,
    }
}

#[test]
fn postgres_modes_from_jdbc_options() {
    let db = TestDb::new_tls(Vendor::Postgres);
    let dir = tempfile::tempdir().unwrap();
    let ca = testkit::tls_ca();
    let ca = ca.display();
    let other = other_ca(dir.path());
    let other = other.display();
    let pg = "postgresql";
    check(
        &db,
        &[
            case(pg, "127.0.0.1", "sslmode=require", Ok(TlsMode::Require)),
            case(pg, "127.0.0.1", "sslmode=prefer", Ok(TlsMode::Prefer)),
            case(
                pg,
                "127.0.0.1",
                &format!("sslmode=verify-ca&sslrootcert={ca}"),
                Ok(TlsMode::VerifyCa),
            ),
            case(
                pg,
                "localhost",
                &format!("sslmode=verify-full&sslrootcert={ca}"),
                Ok(TlsMode::VerifyFull),
            ),
            // pgjdbc: ssl=true alone means verify-full.
            case(
                pg,
                "localhost",
                &format!("ssl=true&sslrootcert={ca}"),
                Ok(TlsMode::VerifyFull),
            ),
            case(
                pg,
                "127.0.0.1",
                "ssl=true&sslfactory=org.postgresql.ssl.NonValidatingFactory",
                Ok(TlsMode::Require),
            ),
            // The certificate names localhost only.
            case(
                pg,
                "127.0.0.1",
                &format!("sslmode=verify-full&sslrootcert={ca}"),
                Err("not valid for name"),
            ),
            case(
                pg,
                "localhost",
                &format!("sslmode=verify-ca&sslrootcert={other}"),
                Err("invalid peer certificate"),
            ),
            // No CA given: the public roots do not include our test CA.
            case(pg, "localhost", "sslmode=verify-full", Err("UnknownIssuer")),
            case(
                pg,
                "127.0.0.1",
                "sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem",
                Err("reading CA file /nonexistent/ca.pem"),
            ),
            case(
                pg,
                "127.0.0.1",
                "sslmode=sometimes",
                Err("sslmode=\"sometimes\""),
            ),
            // The server takes TLS sessions only: a plain one is refused.
            case(pg, "127.0.0.1", "", Err("no encryption")),
            case(pg, "127.0.0.1", "sslmode=disable", Err("no encryption")),
        ],
    );
}

#[test]
fn mariadb_modes_from_connector_j_options() {
    let db = TestDb::new_tls(Vendor::MySql);
    let _user = MySqlUser::create(&db);
    let dir = tempfile::tempdir().unwrap();
    let ca = testkit::tls_ca();
    let ca = ca.display();
    let other = other_ca(dir.path());
    let other = other.display();
    let (my, maria) = ("mysql", "mariadb");
    check(
        &db,
        &[
            // MySQL Connector/J's legacy options, as Carbon 4.4 configurations carry them.
            case(my, "127.0.0.1", "useSSL=true", Ok(TlsMode::Prefer)),
            case(
                my,
                "127.0.0.1",
                "useSSL=true&requireSSL=true&verifyServerCertificate=false",
                Ok(TlsMode::Require),
            ),
            case(
                my,
                "127.0.0.1",
                &format!("useSSL=true&verifyServerCertificate=true&serverSslCert={ca}"),
                Ok(TlsMode::VerifyCa),
            ),
            case(
                my,
                "localhost",
                &format!("sslMode=VERIFY_IDENTITY&serverSslCert={ca}"),
                Ok(TlsMode::VerifyFull),
            ),
            case(my, "127.0.0.1", "sslMode=REQUIRED", Ok(TlsMode::Require)),
            // MariaDB Connector/J: useSsl validates unless told to trust.
            case(
                maria,
                "localhost",
                &format!("useSsl=true&serverSslCert={ca}"),
                Ok(TlsMode::VerifyFull),
            ),
            case(
                maria,
                "127.0.0.1",
                "useSsl=true&trustServerCertificate=true",
                Ok(TlsMode::Require),
            ),
            case(
                maria,
                "127.0.0.1",
                &format!("useSsl=true&disableSslHostnameVerification=true&serverSslCert={ca}"),
                Ok(TlsMode::VerifyCa),
            ),
            case(
                my,
                "127.0.0.1",
                &format!("sslMode=VERIFY_IDENTITY&serverSslCert={ca}"),
                Err("not valid for name"),
            ),
            case(
                my,
                "localhost",
                &format!("sslMode=VERIFY_CA&serverSslCert={other}"),
                Err("invalid peer certificate"),
            ),
            case(maria, "localhost", "useSsl=true", Err("UnknownIssuer")),
            case(
                my,
                "127.0.0.1",
                "useSSL=true&verifyServerCertificate=true&trustCertificateKeyStoreUrl=file:/opt/truststore.jks",
                Err("Java keystore"),
            ),
            case(
                my,
                "127.0.0.1",
                "sslMode=VERIFY_CA&serverSslCert=/nonexistent/ca.pem",
                Err("/nonexistent/ca.pem does not exist"),
            ),
            case(
                my,
                "127.0.0.1",
                "useSSL=maybe",
                Err("neither true nor false"),
            ),
            // TLS-only server: plain sessions are refused.
            case(my, "127.0.0.1", "", Err("denied")),
            case(my, "127.0.0.1", "useSSL=false", Err("denied")),
        ],
    );
}

#[test]
fn mariadb_prefer_falls_back_to_plain_on_a_server_without_tls() {
    // The main test server has TLS off, as MariaDB ships; `useSSL=true` (prefer) still connects.
    let db = TestDb::new(Vendor::MySql);
    let _user = MySqlUser::create(&db);
    let server_has_tls = {
        use mysql::prelude::Queryable;
        let have: Option<(String, String)> = db
            .mysql_conn()
            .query_first("SHOW GLOBAL VARIABLES LIKE 'have_ssl'")
            .unwrap();
        have.is_some_and(|(_, v)| v == "YES")
    };
    let url = DbUrl::parse(&variant(&db, "mysql", "127.0.0.1", "useSSL=true")).unwrap();
    assert_eq!(url.tls().mode, TlsMode::Prefer);
    assert_eq!(encrypted(&url), Ok(server_has_tls));
}

fn generated_tls(vendor: Vendor) -> TestDb {
    support::with_tiny_fixture(TestDb::new_tls(vendor))
}

/// Copy and verify with every session over TLS (the server would refuse any other), then
/// compare both sides with the vendor's dump tool.
fn copy_over_tls(vendor: Vendor, logical: bool) {
    let source = generated_tls(vendor);
    let target = TestDb::reserve_tls(vendor);
    let opts = CopyOptions {
        logical,
        ..CopyOptions::default()
    };
    let report = support::copy(&source, &target, &opts);
    assert!(report.tables >= fixture::TABLES.len(), "{report:?}");
    assert!(report.rows > 400, "only {} rows copied", report.rows);
    assert_eq!(
        report.method,
        if logical || vendor == Vendor::MySql {
            "logical"
        } else {
            "template"
        }
    );
    assert!(encrypted(&support::url(&target)).unwrap());
}

#[test]
fn postgres_copy_and_verify_over_tls_template() {
    copy_over_tls(Vendor::Postgres, false);
}

#[test]
fn postgres_copy_and_verify_over_tls_logical() {
    copy_over_tls(Vendor::Postgres, true);
}

#[test]
fn mariadb_copy_and_verify_over_tls() {
    copy_over_tls(Vendor::MySql, false);
}

/// The vendor's dump tool gets the URL's TLS too; a plain session would be refused.
fn backup_over_tls(vendor: Vendor) {
    let source = generated_tls(vendor);
    let dir = tempfile::tempdir().unwrap();
    let files = native_backup(&support::url(&source), dir.path(), "tls").unwrap();
    assert_eq!(files.len(), 1);
    let size = std::fs::metadata(&files[0].path).unwrap().len();
    assert!(
        size > 10_000 && size == files[0].bytes,
        "backup of {size} bytes"
    );
}

#[test]
fn postgres_native_backup_over_tls() {
    backup_over_tls(Vendor::Postgres);
}

#[test]
fn mariadb_native_backup_over_tls() {
    backup_over_tls(Vendor::MySql);
}

//! `verify_server` end to end against `CarbonAdminTestServer` (real HTTP, real SOAP, a real
//! staging database and a real home), with its effects checked in the databases and on disk.

use std::io::{Read, Write};
use std::time::Duration;

use carbon_config::Secret;
use carbon_db::Vendor;
use carbon_db::testkit::TestDb;
use carbon_verify::{
    CallError, Report, ServerOptions, Severity, Trust, VerifyError, verify_server,
};

use crate::server::{CarbonAdminTestServer, Deploy, ServerConfig, Sql, lit};
use crate::support::{carbon_db, db_url, jdbc, upgraded_home};
use crate::tls::TlsProxy;

const ADMIN_PASSWORD: &str = "Adm1n-Secret!";

pub struct Live {
    pub staging: TestDb,
    pub home: tempfile::TempDir,
    pub server: CarbonAdminTestServer,
}

pub fn live(vendor: Vendor, tweak: impl FnOnce(&mut ServerConfig)) -> Live {
    let (staging, summary) = carbon_db(vendor);
    let home = tempfile::tempdir().unwrap();
    upgraded_home(home.path(), &staging, &summary.tenant_ids);
    let mut config = ServerConfig {
        deploy: Deploy::After(Duration::from_millis(200)),
        deny_tenant_userstores: false,
        carbon_version: "4.4.7".into(),
        db_url: jdbc(&staging),
        auth_fault: false,
    };
    tweak(&mut config);
    let server =
        CarbonAdminTestServer::start(home.path(), &db_url(&staging), ADMIN_PASSWORD, config);
    Live {
        staging,
        home,
        server,
    }
}

pub fn options(l: &Live) -> ServerOptions {
    let mut opts = ServerOptions::new(
        &l.server.url(),
        "admin",
        Secret::from(ADMIN_PASSWORD.to_owned()),
    );
    opts.home = Some(l.home.path().to_path_buf());
    opts.deploy_timeout = Duration::from_secs(10);
    opts.poll_interval = Duration::from_millis(50);
    opts.http_timeout = Duration::from_secs(20);
    opts
}

fn staging_sql(l: &Live) -> Sql {
    Sql::connect(&db_url(&l.staging)).unwrap()
}

/// Databases on the staging server whose names start with `prefix`.
fn databases_like(l: &Live, prefix: &str) -> Vec<String> {
    let mut sql = staging_sql(l);
    let query = match l.staging.vendor() {
        Vendor::Postgres => format!(
            "SELECT datname FROM pg_database WHERE datname LIKE {}",
            lit(&format!("{prefix}%"))
        ),
        _ => format!(
            "SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE {}",
            lit(&format!("{prefix}%"))
        ),
    };
    let mut names: Vec<String> = sql
        .strings(&query)
        .unwrap()
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    names.sort();
    names
}

fn drop_databases(l: &Live, names: &[String]) {
    let mut sql = staging_sql(l);
    for name in names {
        let stmt = match l.staging.vendor() {
            Vendor::Postgres => format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            _ => format!("DROP DATABASE IF EXISTS `{name}`"),
        };
        sql.exec(&stmt).unwrap();
    }
}

fn assert_no_secret(report: &Report, secrets: &[&str]) {
    let shown = format!(
        "{report}\n{report:?}\n{}",
        serde_json::to_string(report).unwrap()
    );
    for secret in secrets {
        assert!(!shown.contains(secret), "a password was shown:\n{shown}");
    }
    // Generated passwords all end in `#9a`.
    assert!(
        !shown.contains("#9a"),
        "a generated password was shown:\n{shown}"
    );
}

fn errors(report: &Report) -> Vec<String> {
    report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.to_string())
        .collect()
}

/// Every finding of `check` is informational.
fn assert_all_info(report: &Report, check: &str) {
    assert!(
        report.of_check(check).all(|f| f.severity == Severity::Info),
        "{report}"
    );
}

/// The report has exactly one error, and it says `needle`.
fn assert_one_error(report: &Report, needle: &str) {
    let errs = errors(report);
    assert_eq!(errs.len(), 1, "{report}");
    assert!(errs[0].contains(needle), "{report}");
}

/// The full guide run; then everything it created is gone or deactivated.
fn check_full_run(vendor: Vendor) {
    let l = live(vendor, |_| {});
    let opts = options(&l);
    let report = verify_server(&opts, &carbon_verify::NoProgress).unwrap();
    assert!(report.is_ok(), "{vendor}: {report}");
    assert_no_secret(&report, &[ADMIN_PASSWORD]);
    assert_eq!(
        l.server.log().rejections,
        Vec::<String>::new(),
        "every request matched the WSDL"
    );
    let run = report.run_id.clone().unwrap();
    let upper = run.to_ascii_uppercase();

    // What each check proved, by finding.
    let count = |check: &str| report.of_check(check).count();
    assert_eq!(
        count("userstore-deploy"),
        4,
        "2 super-tenant stores + 1 per tenant:\n{report}"
    );
    assert_eq!(count("userstore-add"), 4);
    // PRIMARY + 2 stores (super tenant), and PRIMARY + 1 store per tenant.
    assert_eq!(count("user-confirm"), 7, "{report}");
    assert_eq!(count("tenant-add"), 2);
    assert_all_info(&report, "server-db");
    assert!(
        report
            .of_check("preexisting-tenant")
            .any(|f| all_found(&f.message)),
        "{report}"
    );
    assert!(
        report
            .of_check("preexisting-user")
            .any(|f| all_found(&f.message)),
        "{report}"
    );

    // Effects in the staging database.
    let mut sql = staging_sql(&l);
    let tenants = sql
        .strings(&format!(
            "SELECT {}, UM_DOMAIN_NAME, {} FROM UM_TENANT WHERE UM_DOMAIN_NAME LIKE {} ORDER BY UM_DOMAIN_NAME",
            sql.txt("UM_ID"),
            sql.txt("UM_ACTIVE"),
            lit(&format!("verify-{run}-%"))
        ))
        .unwrap();
    assert_eq!(tenants.len(), 2, "{tenants:?}");
    for row in &tenants {
        assert!(
            matches!(row[2].as_str(), "false" | "0"),
            "tenant {} must be deactivated",
            row[1]
        );
        assert!(
            l.home
                .path()
                .join(format!("repository/tenants/{}", row[0]))
                .is_dir()
        );
        // Only the tenant admin is left in the tenant's PRIMARY store.
        let users = sql
            .strings(&format!(
                "SELECT UM_USER_NAME FROM UM_USER WHERE UM_TENANT_ID = {}",
                row[0]
            ))
            .unwrap();
        assert_eq!(users, vec![vec!["admin".to_owned()]]);
    }
    assert_eq!(
        report.leftover_tenants,
        tenants.iter().map(|r| r[1].clone()).collect::<Vec<_>>()
    );
    let left = sql
        .strings(&format!(
            "SELECT UM_USER_NAME FROM UM_USER WHERE UM_USER_NAME LIKE {}",
            lit(&format!("vfy{run}%"))
        ))
        .unwrap();
    assert!(left.is_empty(), "users left: {left:?}");
    // Deployment persisted each store's domain, as Carbon does.
    let domains = sql
        .strings(&format!("SELECT UM_DOMAIN_NAME FROM UM_DOMAIN WHERE UM_DOMAIN_NAME LIKE {} ORDER BY UM_DOMAIN_NAME", lit(&format!("VERIFY-{upper}-%"))))
        .unwrap();
    let domains: Vec<&str> = domains.iter().map(|r| r[0].as_str()).collect();
    let expected: Vec<String> = ["S1", "S2", "T1", "T2"]
        .iter()
        .map(|s| format!("VERIFY-{upper}-{s}"))
        .collect();
    assert_eq!(domains, expected);

    // On disk: no store file of this run is left.
    let leftovers: Vec<_> = walk(l.home.path())
        .into_iter()
        .filter(|p| p.contains(&format!("VERIFY-{upper}")))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The user-store databases were dropped.
    assert_eq!(
        databases_like(&l, &format!("verify_{run}_")),
        Vec::<String>::new()
    );
    // Tenant admins did their own work.
    let calls = l.server.log().calls;
    for tenant in &report.leftover_tenants {
        let who = format!(
            "admin@{tenant} /services/UserStoreConfigAdminService \"urn:addUserStore\" -> 202"
        );
        assert!(calls.contains(&who), "{who} not in {calls:#?}");
    }

    let text = report
        .to_string()
        .replace(&run, "RUN")
        .replace(&upper, "RUN")
        .replace(&l.server.url(), "http://SERVER");
    let staging = db_url(&l.staging);
    let text = text.replace(staging.database(), "STAGING_DB").replace(
        &format!("{}:{}", staging.host(), staging.port()),
        "HOST:PORT",
    );
    insta::with_settings!({
        snapshot_suffix => vendor.name(),
        filters => vec![(r"deployed after \d+\.\d s", "deployed after [T] s"), (r"addTenant returned \d+", "addTenant returned [ID]")],
    }, {
        insta::assert_snapshot!(text);
    });
}

/// `N of N sampled ...` with N > 0.
fn all_found(message: &str) -> bool {
    let mut words = message.split(' ');
    let (found, of, total) = (words.next(), words.next(), words.next());
    of == Some("of")
        && found == total
        && found.is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n > 0))
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

#[test]
fn full_guide_run_postgres() {
    check_full_run(Vendor::Postgres);
}

#[test]
fn full_guide_run_mariadb() {
    check_full_run(Vendor::MySql);
}

/// With `keep`, what the run created can be inspected: store files with the fresh
/// databases' URLs, users in *those* databases, tenant stores under the tenant's folder.
#[test]
fn kept_run_leaves_inspectable_effects_postgres() {
    let l = live(Vendor::Postgres, |_| {});
    let mut opts = options(&l);
    opts.tenants = 1;
    opts.userstores = 1;
    opts.keep = true;
    let report = verify_server(&opts, &carbon_verify::NoProgress).unwrap();
    assert!(report.is_ok(), "{report}");
    let run = report.run_id.clone().unwrap();
    let upper = run.to_ascii_uppercase();
    let dbs = databases_like(&l, &format!("verify_{run}_"));
    assert_eq!(
        dbs,
        [format!("verify_{run}_s1"), format!("verify_{run}_t1")]
    );

    let super_file = l.home.path().join(format!(
        "repository/deployment/server/userstores/VERIFY-{upper}-S1.xml"
    ));
    let text = std::fs::read_to_string(&super_file).unwrap();
    assert!(
        text.contains(&format!("/verify_{run}_s1</Property>")),
        "{text}"
    );
    let server = db_url(&l.staging);
    let store_db = |name: &str| Sql::connect(&server.with_database(name)).unwrap();
    let users = store_db(&dbs[0])
        .strings(
            "SELECT UM_USER_NAME, CAST(UM_TENANT_ID AS TEXT) FROM UM_USER ORDER BY UM_USER_NAME",
        )
        .unwrap();
    assert_eq!(
        users,
        vec![
            vec![format!("vfy{run}u1"), "-1234".to_owned()],
            vec![format!("vfy{run}u2"), "-1234".to_owned()]
        ]
    );
    let mut sql = staging_sql(&l);
    let primary = sql
        .strings(&format!(
            "SELECT UM_USER_NAME FROM UM_USER WHERE UM_TENANT_ID = -1234 AND UM_USER_NAME LIKE {}",
            lit(&format!("vfy{run}%"))
        ))
        .unwrap();
    assert_eq!(primary.len(), 2, "PRIMARY users of the super tenant");
    let tenant = sql
        .strings(&format!(
            "SELECT CAST(UM_ID AS TEXT) FROM UM_TENANT WHERE UM_DOMAIN_NAME = {}",
            lit(&format!("verify-{run}-t1.example.com"))
        ))
        .unwrap();
    let id = &tenant[0][0];
    let tenant_file = l.home.path().join(format!(
        "repository/tenants/{id}/userstores/VERIFY-{upper}-T1.xml"
    ));
    assert!(tenant_file.is_file(), "{}", tenant_file.display());
    let tenant_users = store_db(&dbs[1])
        .strings(
            "SELECT UM_USER_NAME, CAST(UM_TENANT_ID AS TEXT) FROM UM_USER ORDER BY UM_USER_NAME",
        )
        .unwrap();
    assert_eq!(tenant_users.len(), 2);
    assert!(tenant_users.iter().all(|r| &r[1] == id), "{tenant_users:?}");
    assert!(
        report
            .of_check("cleanup")
            .any(|f| f.severity == Severity::Warning)
    );
    assert_eq!(
        report.leftover_tenants,
        [format!("verify-{run}-t1.example.com")]
    );
    drop_databases(&l, &dbs);
}

/// A run without stores, tenants or users: only getServerData and pre-existing data.
fn minimal(url: &str) -> ServerOptions {
    let mut opts = ServerOptions::new(url, "admin", Secret::from(ADMIN_PASSWORD.to_owned()));
    opts.tenants = 0;
    opts.userstores = 0;
    opts.users = 0;
    opts.http_timeout = Duration::from_secs(5);
    opts
}

#[test]
fn server_down_is_one_clear_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let report = verify_server(
        &minimal(&format!("http://127.0.0.1:{port}")),
        &carbon_verify::NoProgress,
    )
    .unwrap();
    assert_one_error(
        &report,
        &format!("cannot connect to http://127.0.0.1:{port}"),
    );
}

#[test]
fn tls_failure_is_one_clear_error() {
    // A plain-HTTP listener where the client expects TLS.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let thread = std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut buf = [0u8; 512];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let mut opts = minimal(&format!("https://127.0.0.1:{port}"));
    opts.trust = Trust::Insecure;
    let report = verify_server(&opts, &carbon_verify::NoProgress).unwrap();
    thread.join().unwrap();
    assert_one_error(
        &report,
        &format!("TLS with https://127.0.0.1:{port} failed"),
    );
}

/// HTTPS through a TLS front with a fresh test CA: trusted with `--ca-cert`, refused with
/// the default roots, accepted with `--insecure`.
#[test]
fn https_with_ca_cert_or_insecure_postgres() {
    let l = live(Vendor::Postgres, |_| {});
    let proxy = TlsProxy::start(l.server.addr());
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("ca.pem");
    std::fs::write(&pem, &proxy.ca_pem).unwrap();
    for (trust, ok) in [
        (Trust::CaCert(pem.clone()), true),
        (Trust::WebPki, false),
        (Trust::Insecure, true),
    ] {
        let mut opts = minimal(&proxy.url());
        opts.home = Some(l.home.path().to_path_buf());
        opts.trust = trust.clone();
        let report = verify_server(&opts, &carbon_verify::NoProgress).unwrap();
        assert_eq!(report.is_ok(), ok, "{trust:?}: {report}");
        if ok {
            assert_all_info(&report, "server-db");
            assert!(
                report.of_check("preexisting-user").next().is_some(),
                "{report}"
            );
        } else {
            let errs = errors(&report);
            assert_eq!(errs.len(), 1, "{report}");
            assert!(
                errs[0].contains(&format!("TLS with {} failed", proxy.url())),
                "{report}"
            );
            assert!(errs[0].to_ascii_lowercase().contains("issuer"), "{report}");
        }
    }
    assert_eq!(l.server.log().rejections, Vec::<String>::new());
}

#[test]
fn bad_input_is_refused_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("ca.pem");
    let mut opts = minimal("https://127.0.0.1:9443");
    opts.trust = Trust::CaCert(missing.clone());
    let err = verify_server(&opts, &carbon_verify::NoProgress).unwrap_err();
    assert!(
        matches!(err, VerifyError::CaCert { ref path, .. } if *path == missing),
        "{err}"
    );
    std::fs::write(&missing, "not a certificate").unwrap();
    let err = verify_server(&opts, &carbon_verify::NoProgress).unwrap_err();
    assert!(err.to_string().contains("no PEM certificate"), "{err}");

    for (url, text) in [
        ("ftp://host", "expected https://"),
        (
            "https://admin:pw@host:9443",
            "credentials do not belong in the URL",
        ),
    ] {
        let err = verify_server(&minimal(url), &carbon_verify::NoProgress).unwrap_err();
        assert!(err.to_string().contains(text), "{url}: {err}");
        assert!(!err.to_string().contains(":pw@"), "{err}");
    }
    let mut opts = minimal("http://127.0.0.1:1");
    opts.userstores = 1;
    let err = verify_server(&opts, &carbon_verify::NoProgress).unwrap_err();
    assert!(err.to_string().contains("--userstore-db"), "{err}");
}

/// (name, server tweak, options tweak, expected error check and text).
type Case = (
    &'static str,
    fn(&mut ServerConfig),
    fn(&mut ServerOptions, &Live),
    &'static str,
    &'static str,
);

fn failure_cases() -> Vec<Case> {
    vec![
        (
            "wrong password",
            |_| {},
            |o, _| o.password = Secret::from("not-the-password".to_owned()),
            "connect",
            "ServerAdmin.getServerData as admin: not authorised (HTTP 401)",
        ),
        (
            "wrong password, refused with a fault",
            |c| c.auth_fault = true,
            |o, _| o.password = Secret::from("not-the-password".to_owned()),
            "connect",
            "ServerAdmin.getServerData: SOAP fault soapenv:Client: Access Denied. Please login first.",
        ),
        (
            "SOAP fault",
            |_| {},
            |o, l| {
                o.run_id = Some("f00d01".into());
                o.userstores = 0;
                o.tenants = 1;
                // A tenant with the run's domain already exists: addTenant must fault.
                staging_sql(l)
                    .exec("INSERT INTO UM_TENANT (UM_DOMAIN_NAME, UM_EMAIL, UM_ACTIVE, UM_CREATED_DATE) VALUES ('verify-f00d01-t1.example.com', 'a@b.c', TRUE, CURRENT_TIMESTAMP)")
                    .unwrap();
            },
            "tenant-add",
            "TenantMgtAdminService.addTenant: SOAP fault soapenv:Server: A tenant with same domain verify-f00d01-t1.example.com already exist",
        ),
        (
            "a store that never deploys",
            |c| c.deploy = Deploy::Never,
            |o, _| {
                o.userstores = 1;
                o.tenants = 0;
                o.deploy_timeout = Duration::from_millis(300);
            },
            "userstore-deploy",
            "not deployed within 0.3 s (--deploy-timeout)",
        ),
        (
            "a tenant admin without permission",
            |c| c.deny_tenant_userstores = true,
            |o, _| {
                o.userstores = 0;
                o.tenants = 1;
            },
            "userstore-add",
            "the tenant admin may not add user stores: UserStoreConfigAdminService.addUserStore: SOAP fault soapenv:Server: Access Denied",
        ),
    ]
}

#[test]
fn failures_are_clear_findings_postgres() {
    for (name, server_tweak, opts_tweak, check, text) in failure_cases() {
        let l = live(Vendor::Postgres, server_tweak);
        let mut opts = options(&l);
        opts_tweak(&mut opts, &l);
        let report = verify_server(&opts, &carbon_verify::NoProgress).unwrap();
        assert!(!report.is_ok(), "{name}: {report}");
        assert!(
            report
                .of_check(check)
                .any(|f| f.severity == Severity::Error && f.to_string().contains(text)),
            "{name}: no {check} error with {text:?}:\n{report}"
        );
        assert_no_secret(&report, &[ADMIN_PASSWORD, "not-the-password"]);
        assert_eq!(l.server.log().rejections, Vec::<String>::new(), "{name}");
        // Whatever was created is cleaned up even after a failure.
        let run = report.run_id.clone().unwrap();
        assert_eq!(
            databases_like(&l, &format!("verify_{run}_")),
            Vec::<String>::new(),
            "{name}"
        );
    }
}

/// The server runs on another database than the home's staging one (same vendor, other
/// content): its dbURL is refused and the pre-existing tenants and users are missed.
#[test]
fn server_on_another_database_postgres() {
    let (staging, summary) = carbon_db(Vendor::Postgres);
    let other = TestDb::new(Vendor::Postgres);
    let scale = carbon_db::fixture::Scale {
        tenants: 1,
        users: 4,
        ..carbon_db::fixture::Scale::tiny()
    };
    carbon_db::fixture::generate_postgres(&mut other.pg_client(), &scale).unwrap();
    let home = tempfile::tempdir().unwrap();
    upgraded_home(home.path(), &staging, &summary.tenant_ids);
    let config = ServerConfig {
        deploy: Deploy::After(Duration::from_millis(200)),
        deny_tenant_userstores: false,
        carbon_version: "4.4.7".into(),
        db_url: jdbc(&other),
        auth_fault: false,
    };
    let server = CarbonAdminTestServer::start(home.path(), &db_url(&other), ADMIN_PASSWORD, config);
    let mut opts = minimal(&server.url());
    opts.home = Some(home.path().to_path_buf());
    let report = verify_server(&opts, &carbon_verify::NoProgress).unwrap();
    assert!(!report.is_ok());
    let other_name = db_url(&other).database().to_owned();
    let found = |check: &str, text: &str| {
        report
            .of_check(check)
            .any(|f| f.severity == Severity::Error && f.to_string().contains(text))
    };
    assert!(
        found(
            "server-db",
            &format!("{other_name}: is not the staging database")
        ),
        "{report}"
    );
    // The first tenant exists on both (same generator and seed); the other sampled ones
    // only in staging.
    let sampled = summary.tenant_ids.len().min(opts.sample);
    assert!(sampled > 1, "the fixture needs more than one tenant");
    assert_eq!(
        report
            .of_check("preexisting-tenant")
            .filter(|f| f.severity == Severity::Error)
            .count(),
        sampled - 1,
        "{report}"
    );
    assert!(found("preexisting-tenant", "does not exist"), "{report}");
    assert!(
        found(
            "preexisting-user",
            "exists in staging UM_USER but not on the server"
        ),
        "{report}"
    );
}

#[test]
fn call_errors_say_what_failed_without_secrets() {
    let err = CallError::Fault {
        operation: "RemoteUserStoreManagerService.addUser".into(),
        code: "soapenv:Server".into(),
        string: "UserAlreadyExisting".into(),
    };
    assert_eq!(
        err.to_string(),
        "RemoteUserStoreManagerService.addUser: SOAP fault soapenv:Server: UserAlreadyExisting"
    );
    assert!(!err.is_fatal());
    assert_eq!(
        format!("{:?}", Secret::from(ADMIN_PASSWORD.to_owned())),
        "<plain, redacted>"
    );
}

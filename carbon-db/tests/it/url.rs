//! Addressing: the URLs operators have, redacted whenever printed.

use std::path::Path;

use carbon_db::{DbError, DbUrl, Vendor};

fn show(input: &str) -> String {
    match DbUrl::parse_in(input, Some(Path::new("/opt/wso2is-5.2.0"))) {
        Ok(u) => format!(
            "{input}\n  => {} vendor={} host={:?} port={} db={:?} user={:?} password_set={} path={:?}",
            u,
            u.vendor(),
            u.host(),
            u.port(),
            u.database(),
            u.user(),
            u.password().is_some(),
            u.path()
        ),
        Err(e) => format!("{input}\n  => error: {e}"),
    }
}

#[test]
fn parses_jdbc_and_native_urls_and_refuses_other_vendors() {
    let inputs = [
        "jdbc:postgresql://localhost:5432/gregdb",
        "jdbc:postgresql://db.example.org/WSO2CARBON_DB?user=wso2&password=s3cr%40t&ssl=false",
        "postgres://carbon:hunter2@127.0.0.1:5433/staging",
        "postgresql://[::1]/x",
        "jdbc:mysql://localhost:3306/WSO2CARBON_DB?autoReconnect=true&useSSL=false",
        "jdbc:mariadb://mysql.carbon-test.org:3307/userstore",
        "mysql://root:pw@127.0.0.1:3306/regdb",
        "jdbc:h2:repository/database/WSO2CARBON_DB;DB_CLOSE_ON_EXIT=FALSE;LOCK_TIMEOUT=60000",
        "jdbc:h2:./repository/database/WSO2AM_DB;DB_CLOSE_ON_EXIT=FALSE",
        "jdbc:h2:file:/var/lib/carbon/WSO2CARBON_DB",
        "jdbc:sqlite:/tmp/carbon.db",
        "sqlite:relative/carbon.db",
        "jdbc:oracle:thin:@SERVER_NAME:1521/SID",
        "jdbc:sqlserver://10.0.0.1:1433;databaseName=carbon;password=topsecret",
        "jdbc:jtds:sqlserver://10.100.1.68:1433/USERDB",
        "jdbc:db2://host:50000/db",
        "jdbc:informix-sqli://host:1526/db:informixserver=x",
        "jdbc:h2:tcp://localhost/~/test",
        "jdbc:h2:mem:test",
        "jdbc:postgresql://host:99999/db",
        "jdbc:postgresql://host:5432/",
        "postgres://u:leaked@host",
        "mongodb://u:pw@host/db",
        "not a url",
    ];
    let out: Vec<String> = inputs.iter().map(|i| show(i)).collect();
    insta::assert_snapshot!(out.join("\n"));
}

#[test]
fn passwords_never_appear_in_display_debug_or_errors() {
    let u = DbUrl::parse("postgres://carbon:hunter2@db:5432/staging").unwrap();
    assert!(!format!("{u} {u:?}").contains("hunter2"));
    let u = DbUrl::parse("jdbc:mysql://db/x?user=a&password=hunter2")
        .unwrap()
        .with_credentials(Some("b".into()), Some("other-secret".into()));
    assert_eq!(u.user(), Some("b"));
    assert!(!format!("{u} {u:?}").contains("secret"));
    for bad in [
        "postgres://u:hunter2@host:notaport/db",
        "jdbc:oracle:thin:u/hunter2@host:1521/x",
        "jdbc:sqlserver://h;user=sa;password=hunter2",
        "jdbc:mysql://u:hunter2@h/",
    ] {
        let e = DbUrl::parse(bad).unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}

#[test]
fn display_parses_back_even_with_delimiters_in_names() {
    for input in [
        "postgres://us%40er:pw@h:5432/my%2Fdb%3Fx",
        "jdbc:mysql://h/db?user=a%3Ab&password=c",
        "jdbc:é:x",
        "jdbcé",
    ] {
        let Ok(u) = DbUrl::parse(input) else { continue };
        let again = DbUrl::parse(&u.to_string()).unwrap();
        assert_eq!(
            (again.user(), again.database()),
            (u.user(), u.database()),
            "{input}"
        );
    }
}

#[test]
fn unsupported_vendors_are_named() {
    let e = DbUrl::parse("jdbc:oracle:thin:@h:1521/SID").unwrap_err();
    assert!(
        matches!(e, DbError::UnsupportedVendor { ref vendor, .. } if vendor == "Oracle"),
        "{e}"
    );
    assert!(e.to_string().contains("unsupported vendor Oracle"));
}

#[test]
fn h2_paths_resolve_against_the_product_home() {
    let u = DbUrl::parse_in(
        "jdbc:h2:repository/database/WSO2CARBON_DB;DB_CLOSE_ON_EXIT=FALSE",
        Some(Path::new("/opt/wso2")),
    )
    .unwrap();
    assert_eq!(u.vendor(), Vendor::H2);
    assert_eq!(
        u.path().unwrap(),
        Path::new("/opt/wso2/repository/database/WSO2CARBON_DB")
    );
}

#[test]
fn tls_options_are_read_with_each_drivers_meaning() {
    let inputs = [
        "jdbc:postgresql://db/carbon",
        "jdbc:postgresql://db/carbon?sslmode=require",
        "jdbc:postgresql://db/carbon?ssl=true",
        "jdbc:postgresql://db/carbon?ssl=true&sslfactory=org.postgresql.ssl.NonValidatingFactory",
        "jdbc:postgresql://db/carbon?sslmode=verify-ca&sslrootcert=conf/ca.pem&password=hunter2",
        "jdbc:postgresql://db/carbon?sslmode=allow",
        "jdbc:mysql://db/carbon?useSSL=false",
        "jdbc:mysql://db/carbon?useSSL=true",
        "jdbc:mysql://db/carbon?useSSL=true&requireSSL=true",
        "jdbc:mysql://db/carbon?useSSL=true&requireSSL=true&verifyServerCertificate=true&serverSslCert=/etc/ca.pem",
        "jdbc:mysql://db/carbon?sslMode=VERIFY_IDENTITY&serverSslCert=/etc/ca%20v2.pem",
        "jdbc:mariadb://db/carbon?useSsl=true",
        "jdbc:mariadb://db/carbon?useSsl=true&trustServerCertificate=true",
        "jdbc:mariadb://db/carbon?useSsl=true&disableSslHostnameVerification=true",
        "jdbc:mariadb://db/carbon?sslMode=trust",
        "jdbc:mysql://db/carbon?useSSL=true&verifyServerCertificate=true&trustCertificateKeyStoreUrl=file:/opt/ts.jks",
        "jdbc:postgresql://db/carbon?sslmode=always",
        "jdbc:mysql://db/carbon?useSSL=yes-please",
    ];
    let out: Vec<String> = inputs
        .iter()
        .map(|input| {
            match DbUrl::parse_in(input, Some(Path::new("/opt/wso2is-5.2.0"))) {
                Ok(u) => {
                    // What is shown parses back to the same TLS.
                    let again = DbUrl::parse(&u.to_string()).unwrap();
                    assert_eq!(again.tls(), u.tls(), "{u}");
                    format!(
                        "{input}\n  => {} mode={} root_cert={:?}",
                        u,
                        u.tls().mode,
                        u.tls().root_cert
                    )
                }
                Err(e) => format!("{input}\n  => error: {e}"),
            }
        })
        .collect();
    insta::assert_snapshot!(out.join("\n"));
}

/// `verify server --userstore-db` names a server: its database may be left out, with or
/// without the slash, and then is the server's maintenance database.
#[test]
fn server_urls_may_leave_out_the_database() {
    let cases = [
        ("postgres://user@host:5432/", Vendor::Postgres, "postgres"),
        ("postgres://user@host:5432", Vendor::Postgres, "postgres"),
        (
            "jdbc:postgresql://user@host:5432/",
            Vendor::Postgres,
            "postgres",
        ),
        ("jdbc:mariadb://user@host:3306/", Vendor::MySql, "mysql"),
        ("jdbc:mariadb://user@host:3306", Vendor::MySql, "mysql"),
        ("mysql://user@host:3306/", Vendor::MySql, "mysql"),
        (
            "postgres://user@host:5432/stores",
            Vendor::Postgres,
            "stores",
        ),
    ];
    for (input, vendor, database) in cases {
        let url = DbUrl::parse_server(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(
            (url.vendor(), url.host(), url.database(), url.user()),
            (vendor, "host", database, Some("user")),
            "{input}"
        );
        if !input.ends_with("stores") {
            let err = DbUrl::parse(input).unwrap_err().to_string();
            assert!(
                err.contains("no database name"),
                "{input}: a database is still required: {err}"
            );
        }
    }
}

/// The URL of the test server of `vendor` without a database name, in both forms.
fn bare_server_urls(vendor: Vendor) -> Vec<DbUrl> {
    let full = DbUrl::parse_server(&carbon_db::testkit::server_url(vendor).unwrap()).unwrap();
    let scheme = if vendor == Vendor::Postgres {
        "postgres"
    } else {
        "jdbc:mariadb"
    };
    let user = full.user().unwrap_or("root");
    let base = format!("{scheme}://{user}@{}:{}", full.host(), full.port());
    [base.clone(), format!("{base}/")]
        .iter()
        .map(|u| {
            DbUrl::parse_server(u)
                .unwrap()
                .with_credentials(None, full.password().map(str::to_owned))
        })
        .collect()
}

#[test]
fn a_server_url_without_a_database_connects_postgres() {
    for url in bare_server_urls(Vendor::Postgres) {
        let mut client = url.connect_postgres(&url.postgres_config()).unwrap();
        let one: i32 = client.query_one("SELECT 1", &[]).unwrap().get(0);
        assert_eq!(one, 1, "{url}");
    }
}

#[test]
fn a_server_url_without_a_database_connects_mysql() {
    use mysql::prelude::Queryable;
    for url in bare_server_urls(Vendor::MySql) {
        let mut conn = url.connect_mysql(url.mysql_builder(true)).unwrap();
        let one: Option<i32> = conn.query_first("SELECT 1").unwrap();
        assert_eq!(one, Some(1), "{url}");
    }
}

#[test]
fn store_urls_ask_carbon_for_the_same_tls_as_ours() {
    let cases = [
        ("postgres://h:5432/s", "jdbc:postgresql://h:5432/s"),
        (
            "jdbc:postgresql://h/s?sslmode=verify-ca&sslrootcert=/etc/ca.pem",
            "jdbc:postgresql://h:5432/s?sslmode=verify-ca&sslrootcert=/etc/ca.pem",
        ),
        ("mysql://h:3306/s", "jdbc:mysql://h:3306/s"),
        (
            "jdbc:mysql://h/s?useSSL=true&requireSSL=true",
            "jdbc:mysql://h:3306/s?useSSL=true&requireSSL=true&verifyServerCertificate=false",
        ),
        (
            "jdbc:mariadb://h/s?useSsl=true",
            "jdbc:mysql://h:3306/s?useSSL=true&requireSSL=true&verifyServerCertificate=true",
        ),
    ];
    for (input, expected) in cases {
        let url = DbUrl::parse(input).expect("test URLs parse");
        assert_eq!(url.to_jdbc().unwrap().to_string(), expected, "{input}");
    }
}

/// Found by the `db_url` fuzz target: an empty bracketed host is the default host, as an
/// empty plain one is, so what is shown parses back to the same server.
#[test]
fn an_empty_host_is_localhost_in_brackets_too() {
    for input in [
        "mysql://o:ot@[]/WS",
        "mysql://o:ot@/WS",
        "jdbc:postgresql://[]:5433/x",
    ] {
        let url = DbUrl::parse(input).unwrap();
        assert_eq!(url.host(), "localhost", "{input}");
        let again = DbUrl::parse(&url.to_string()).unwrap();
        assert_eq!(
            (again.host(), again.port()),
            (url.host(), url.port()),
            "{input}"
        );
    }
}

#[test]
fn only_embedded_h2_files_are_accepted() {
    for input in [
        "jdbc:h2:tcp://localhost/~/test",
        "jdbc:h2:tcp:localhost/test",
        "jdbc:h2:ssl://h/x",
        "jdbc:h2:mem:test",
        "jdbc:h2:MEM:test",
    ] {
        let e = DbUrl::parse(input).unwrap_err();
        assert!(
            e.to_string().contains("only embedded H2 file databases"),
            "{input}: {e}"
        );
    }
}

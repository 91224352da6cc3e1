//! JDBC URLs: vendor detection, components, exact round trip, redaction.

use carbon_config::{JdbcUrl, Vendor};

/// (url, vendor, host, port, database)
fn check(url: &str, vendor: Vendor, host: Option<&str>, port: Option<u16>, database: Option<&str>) {
    let parsed = JdbcUrl::parse(url).unwrap();
    assert_eq!(parsed.to_string(), url, "round trip");
    assert_eq!(parsed.vendor(), vendor, "{url}");
    assert_eq!(parsed.host(), host, "{url}");
    assert_eq!(parsed.port(), port, "{url}");
    assert_eq!(parsed.database(), database, "{url}");
}

#[test]
fn urls_seen_in_wso2_material() {
    check(
        "jdbc:h2:repository/database/WSO2CARBON_DB;DB_CLOSE_ON_EXIT=FALSE;LOCK_TIMEOUT=60000",
        Vendor::H2,
        None,
        None,
        Some("repository/database/WSO2CARBON_DB"),
    );
    check(
        "jdbc:h2:./repository/database/WSO2CARBON_DB",
        Vendor::H2,
        None,
        None,
        Some("./repository/database/WSO2CARBON_DB"),
    );
    check(
        "jdbc:h2:tcp://localhost:9092/~/carbon;AUTO_SERVER=TRUE",
        Vendor::H2,
        Some("localhost"),
        Some(9092),
        Some("~/carbon"),
    );
    check(
        "jdbc:mysql://localhost:3306/WSO2CARBON_DB",
        Vendor::MySql,
        Some("localhost"),
        Some(3306),
        Some("WSO2CARBON_DB"),
    );
    check(
        "jdbc:mysql://db1:3306,db2:3307/carbon?autoReconnect=true&useSSL=false",
        Vendor::MySql,
        Some("db1"),
        Some(3306),
        Some("carbon"),
    );
    check(
        "jdbc:mariadb://m/x",
        Vendor::MySql,
        Some("m"),
        None,
        Some("x"),
    );
    check(
        "jdbc:postgresql://localhost:5432/gregdb",
        Vendor::Postgres,
        Some("localhost"),
        Some(5432),
        Some("gregdb"),
    );
    check(
        "jdbc:postgresql://[::1]:5433/db?ssl=true",
        Vendor::Postgres,
        Some("[::1]"),
        Some(5433),
        Some("db"),
    );
    check(
        "jdbc:sqlserver://10.0.0.5:1433;databaseName=carbon;SendStringParametersAsUnicode=false",
        Vendor::SqlServer,
        Some("10.0.0.5"),
        Some(1433),
        Some("carbon"),
    );
    check(
        "jdbc:sqlserver://host\\SQLEXPRESS;databaseName=c",
        Vendor::SqlServer,
        Some("host"),
        None,
        Some("c"),
    );
    check(
        "jdbc:jtds:sqlserver://10.100.1.68:1433/USERDB",
        Vendor::SqlServer,
        Some("10.100.1.68"),
        Some(1433),
        Some("USERDB"),
    );
    check(
        "jdbc:oracle:thin:@db.example.com:1521:ORCL",
        Vendor::Oracle,
        Some("db.example.com"),
        Some(1521),
        Some("ORCL"),
    );
    check(
        "jdbc:oracle:thin:@//db:1521/svc.example",
        Vendor::Oracle,
        Some("db"),
        Some(1521),
        Some("svc.example"),
    );
    check(
        "jdbc:oracle:thin:@(DESCRIPTION=(LOAD_BALANCE=on)(ADDRESS=(PROTOCOL=TCP)(HOST=rac1)(PORT=1521))(CONNECT_DATA=(SERVICE_NAME=rac)))",
        Vendor::Oracle,
        None,
        None,
        Some(
            "(DESCRIPTION=(LOAD_BALANCE=on)(ADDRESS=(PROTOCOL=TCP)(HOST=rac1)(PORT=1521))(CONNECT_DATA=(SERVICE_NAME=rac)))",
        ),
    );
    check(
        "jdbc:db2://host:50000/carbon:currentSchema=X;",
        Vendor::Db2,
        Some("host"),
        Some(50000),
        Some("carbon"),
    );
    check(
        "jdbc:informix-sqli://h:1526/db:INFORMIXSERVER=x",
        Vendor::Other,
        None,
        None,
        Some("//h:1526/db:INFORMIXSERVER=x"),
    );
}

#[test]
fn bad_urls_are_refused_without_showing_credentials() {
    for (url, reason) in [
        ("mysql://h/db", "does not start with `jdbc:`"),
        ("jdbc:mysql", "no `jdbc:<vendor>:` prefix"),
        (
            "jdbc:mysql:h/db?password=hunter2",
            "expected `//host` after the prefix",
        ),
    ] {
        let err = JdbcUrl::parse(url).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("bad JDBC URL ({reason})")),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }
}

#[test]
fn setters_keep_unknown_parameters_and_redaction_hides_passwords() {
    let url = JdbcUrl::parse(
        "jdbc:mysql://h:3306/old?useSSL=false&password=hunter2&zeroDateTimeBehavior=convertToNull",
    )
    .unwrap();
    let moved = url.with_database("staging").with_param("useSSL", "true");
    assert_eq!(
        moved.to_string(),
        "jdbc:mysql://h:3306/staging?useSSL=true&password=hunter2&zeroDateTimeBehavior=convertToNull"
    );
    assert_eq!(
        moved.redacted(),
        "jdbc:mysql://h:3306/staging?useSSL=true&password=********&zeroDateTimeBehavior=convertToNull"
    );
    assert!(!format!("{moved:?}").contains("hunter2"));
    assert!(!serde_json::to_string(&moved).unwrap().contains("hunter2"));
    let pg = JdbcUrl::parse("jdbc:postgresql://u:pw@h/db").unwrap();
    assert_eq!(pg.redacted(), "jdbc:postgresql://u:********@h/db");
    assert_eq!(
        JdbcUrl::parse("jdbc:postgresql://h/db")
            .unwrap()
            .with_param("ssl", "true")
            .to_string(),
        "jdbc:postgresql://h/db?ssl=true"
    );
    assert_eq!(
        JdbcUrl::parse("jdbc:sqlserver://h;databaseName=a")
            .unwrap()
            .with_database("b")
            .to_string(),
        "jdbc:sqlserver://h;databaseName=b"
    );
}

#[test]
fn same_database_ignores_parameters_case_and_default_ports() {
    let same = |a: &str, b: &str| {
        JdbcUrl::parse(a)
            .unwrap()
            .same_database(&JdbcUrl::parse(b).unwrap())
    };
    assert!(same(
        "jdbc:mysql://DB:3306/carbon?useSSL=false",
        "jdbc:mysql://db/carbon"
    ));
    assert!(!same(
        "jdbc:mysql://db/carbon",
        "jdbc:mysql://db/carbon_staging"
    ));
    // One engine: MariaDB's driver and Connector/J reach the same database.
    assert!(same("jdbc:mysql://db/carbon", "jdbc:mariadb://db/carbon"));
    assert!(same(
        "jdbc:h2:repository/database/WSO2CARBON_DB;A=1",
        "jdbc:h2:repository/database/WSO2CARBON_DB"
    ));
}

#[test]
fn drivers_and_servers_by_subprotocol() {
    // (url, vendor, subprotocol, default driver, userinfo, host, port text)
    let cases = [
        (
            "jdbc:mysql://h:3306/x",
            Vendor::MySql,
            "mysql",
            Some("com.mysql.jdbc.Driver"),
            None,
            "h",
            Some("3306"),
        ),
        (
            "jdbc:mariadb://h/x",
            Vendor::MySql,
            "mariadb",
            Some("org.mariadb.jdbc.Driver"),
            None,
            "h",
            None,
        ),
        (
            "jdbc:jtds:sqlserver://h:1433/x",
            Vendor::SqlServer,
            "jtds",
            Some("net.sourceforge.jtds.jdbc.Driver"),
            None,
            "h",
            Some("1433"),
        ),
        (
            "jdbc:postgresql://u:p@[::1]:5433/x",
            Vendor::Postgres,
            "postgresql",
            Some("org.postgresql.Driver"),
            Some("u:p"),
            "[::1]",
            Some("5433"),
        ),
        (
            "jdbc:postgresql://h:notaport/x",
            Vendor::Postgres,
            "postgresql",
            Some("org.postgresql.Driver"),
            None,
            "h",
            Some("notaport"),
        ),
        (
            "jdbc:sqlite:/tmp/c.db?journal_mode=WAL",
            Vendor::Sqlite,
            "sqlite",
            Some("org.sqlite.JDBC"),
            None,
            "",
            None,
        ),
    ];
    for (text, vendor, sub, driver, userinfo, host, port) in cases {
        let url = JdbcUrl::parse(text).unwrap();
        assert_eq!(url.to_string(), text, "round trip");
        assert_eq!(url.vendor(), vendor, "{text}");
        assert_eq!(url.subprotocol(), sub, "{text}");
        assert_eq!(url.default_driver(), driver, "{text}");
        if let Some(driver) = driver {
            assert!(url.matches_driver(driver), "{text}");
        }
        let server = url.server();
        assert_eq!(server.and_then(|s| s.userinfo), userinfo, "{text}");
        assert_eq!(server.map_or("", |s| s.host), host, "{text}");
        assert_eq!(server.and_then(|s| s.port), port, "{text}");
    }
    // A MariaDB URL wants MariaDB's driver, not Connector/J (and the reverse).
    let mariadb = JdbcUrl::parse("jdbc:mariadb://h/x").unwrap();
    assert!(!mariadb.matches_driver("com.mysql.jdbc.Driver"));
    let sqlite = JdbcUrl::parse("jdbc:sqlite:/tmp/c.db?journal_mode=WAL").unwrap();
    assert_eq!(sqlite.database(), Some("/tmp/c.db"));
    assert_eq!(sqlite.param("journal_mode"), Some("WAL"));
}

//! Shared fixtures: Carbon-shaped databases (carbon_db::fixture) and product homes
//! (carbon_config::fixture) wired together like a finished upgrade.

use std::path::Path;

use carbon_config::fixture::{CarbonVersion, DatasourceSpec, HomeSpec, write_home};
use carbon_config::secret::Secret;
use carbon_db::fixture::{FixtureSummary, Scale};
use carbon_db::testkit::TestDb;
use carbon_db::{DbUrl, Vendor};

/// A fresh database filled with the tiny Carbon-shaped fixture.
pub fn carbon_db(vendor: Vendor) -> (TestDb, FixtureSummary) {
    let db = TestDb::new(vendor);
    let summary = match vendor {
        Vendor::Postgres => {
            carbon_db::fixture::generate_postgres(&mut db.pg_client(), &Scale::tiny())
        }
        Vendor::MySql => carbon_db::fixture::generate_mysql(&mut db.mysql_conn(), &Scale::tiny()),
        Vendor::Sqlite => {
            carbon_db::fixture::generate_sqlite(&mut db.sqlite_conn(), &Scale::tiny())
        }
        other => unreachable!("no {other} test databases"),
    }
    .unwrap_or_else(|e| panic!("fixture on {vendor}: {e}"));
    (db, summary)
}

pub fn db_url(db: &TestDb) -> DbUrl {
    DbUrl::parse(db.url()).unwrap_or_else(|e| panic!("{}: {e}", db.url()))
}

/// The JDBC URL a Carbon datasource would hold for this test database.
pub fn jdbc(db: &TestDb) -> String {
    let url = db_url(db);
    match db.vendor() {
        Vendor::Sqlite => format!("jdbc:sqlite:{}", db.sqlite_path().display()),
        _ => url.to_jdbc().expect("a server URL").to_string(),
    }
}

/// Runs SQL on a test database of any vendor.
pub fn exec(db: &TestDb, sql: &str) {
    match db.vendor() {
        Vendor::Sqlite => db.sqlite_conn().execute_batch(sql).unwrap(),
        _ => crate::server::Sql::connect(&db_url(db))
            .unwrap()
            .exec(sql)
            .unwrap(),
    }
}

/// The secondary domains the tests expect: `WSO2.COM` for the super tenant and for every
/// even tenant id. The fixture's own choice of secondary UM_DOMAIN rows is replaced, so the
/// tests do not depend on it.
pub fn set_secondary_domains(db: &TestDb, tenant_ids: &[i64]) {
    exec(
        db,
        "DELETE FROM UM_DOMAIN WHERE UM_DOMAIN_NAME NOT IN ('PRIMARY', 'INTERNAL', 'APPLICATION', 'WORKFLOW', 'SYSTEM')",
    );
    let owners = std::iter::once(-1234).chain(tenant_ids.iter().copied().filter(|id| id % 2 == 0));
    for (i, tenant) in owners.enumerate() {
        exec(
            db,
            &format!(
                "INSERT INTO UM_DOMAIN (UM_DOMAIN_ID, UM_DOMAIN_NAME, UM_TENANT_ID) VALUES ({}, 'WSO2.COM', {tenant})",
                900_000 + i
            ),
        );
    }
}

/// Writes a 4.4.7 home whose realm datasource is `db`, with one tenant folder per tenant
/// id, and `dbscripts/<vendor>.sql` generated from the fixture's DDL. User-store files
/// match [`set_secondary_domains`] (call it on the databases): `wso2_com.xml` for the super
/// tenant (plain password) and for each even tenant id (encrypted password).
pub fn upgraded_home(dir: &Path, db: &TestDb, tenant_ids: &[i64]) {
    let url = db_url(db);
    let mut spec = HomeSpec::new(CarbonVersion::V4_4_7);
    spec.tenant_ids = tenant_ids.to_vec();
    spec.datasources = vec![DatasourceSpec {
        url: jdbc(db),
        username: url.user().unwrap_or("").to_owned(),
        password: url
            .password()
            .map_or(Secret::Empty, |p| Secret::Plain(p.to_owned())),
        driver_class_name: carbon_config::JdbcUrl::parse(&jdbc(db))
            .expect("test JDBC URLs parse")
            .default_driver()
            .unwrap_or_default()
            .into(),
        ..DatasourceSpec::carbon_h2()
    }];
    write_home(dir, &spec).expect("write home");
    let ddl = carbon_db::fixture::ddl(db.vendor()).join(";\n") + ";\n";
    let script = match db.vendor() {
        Vendor::Postgres => "postgresql.sql",
        Vendor::MySql => "mysql.sql",
        _ => "sqlite.sql",
    };
    std::fs::create_dir_all(dir.join("dbscripts")).expect("dbscripts");
    std::fs::write(dir.join("dbscripts").join(script), ddl).expect("write dbscript");
    let super_stores = dir.join("repository/deployment/server/userstores");
    let template =
        std::fs::read_to_string(super_stores.join("wso2_com.xml")).expect("fixture wso2_com.xml");
    assert!(
        template.contains(">wso2.com<") && template.contains(&jdbc(db)),
        "{template}"
    );
    for entry in std::fs::read_dir(&super_stores).expect("super-tenant userstores") {
        std::fs::remove_file(entry.expect("entry").path()).expect("remove fixture store");
    }
    std::fs::write(super_stores.join("wso2_com.xml"), &template).expect("super store");
    for &id in tenant_ids {
        let stores = dir.join(format!("repository/tenants/{id}/userstores"));
        std::fs::create_dir_all(&stores).expect("tenant userstores");
        for entry in std::fs::read_dir(&stores).expect("tenant userstores") {
            std::fs::remove_file(entry.expect("entry").path())
                .expect("remove fixture tenant store");
        }
        if id % 2 == 0 {
            let encrypted = template.replace(
                "<Property name=\"password\">",
                "<Property encrypted=\"true\" name=\"password\">",
            );
            assert_ne!(encrypted, template);
            std::fs::write(stores.join("wso2_com.xml"), encrypted).expect("tenant store");
        }
    }
}

/// Replaces every `$TMP...` path, port and run id in a text for snapshots.
pub fn redact(text: &str, replacements: &[(&str, &str)]) -> String {
    let mut out = text.to_owned();
    for (from, to) in replacements {
        if !from.is_empty() {
            out = out.replace(from, to);
        }
    }
    out
}

//! The acceptance scenario on the real WSO2 files: an old home made of the real kernel 4.4.6
//! files (plus generated `deployment/server` and `tenants` trees, port offset 3, its
//! WSO2_CARBON_DB on a real server loaded with the real 4.4.7 script and generated rows)
//! upgraded into the real kernel 4.4.7 files.

use std::path::{Path, PathBuf};

use carbon_config::edit::{Edit, apply, plan_file};
use carbon_config::fixture::{CarbonVersion, ContentScale, HomeSpec, write_home};
use carbon_db::Vendor;
use carbon_db::fixture::{fill_mysql, fill_postgres};
use carbon_db::testkit::TestDb;
use similar::TextDiff;

use crate::support::{
    DropOnExit, carbon_upgrade, code, copy_tree, fingerprints, jdbc_url, stderr, tree_digest,
};

fn fixtures() -> PathBuf {
    carbon_db::testkit::wso2_fixtures()
}

const DATASOURCE: &str = "datasources-configuration/datasources/datasource[name='WSO2_CARBON_DB']/definition/configuration";

fn set(file: &Path, edits: &[Edit]) {
    let plan = plan_file(file, edits).unwrap();
    apply(&plan).unwrap();
    let mut bak = file.as_os_str().to_owned();
    bak.push(".bak");
    std::fs::remove_file(PathBuf::from(bak)).unwrap(); // set-up edits leave no trace
}

/// The real 4.4.6 home pointed at `db`, offset 3, with generated artifacts for `tenants`.
pub(crate) fn old_home(dir: &Path, db: &TestDb, tenants: Vec<i64>) -> PathBuf {
    let old = dir.join("old");
    copy_tree(&fixtures().join("4.4.6"), &old);
    let mut spec = HomeSpec::new(CarbonVersion::V4_4_6);
    spec.tenant_ids = tenants;
    spec.content = ContentScale::Small;
    let scratch = dir.join("generated");
    write_home(&scratch, &spec).unwrap();
    for part in ["repository/deployment/server", "repository/tenants"] {
        copy_tree(&scratch.join(part), &old.join(part));
    }
    let (scheme, user, driver) = match db.vendor() {
        Vendor::Postgres => ("postgresql", "postgres", "org.postgresql.Driver"),
        _ => ("mysql", "root", "com.mysql.jdbc.Driver"),
    };
    set(
        &old.join("repository/conf/datasources/master-datasources.xml"),
        &[
            Edit::set(format!("{DATASOURCE}/url"), jdbc_url(scheme, db.url())),
            Edit::set(format!("{DATASOURCE}/username"), user),
            Edit::set(format!("{DATASOURCE}/password"), ""),
            Edit::set(format!("{DATASOURCE}/driverClassName"), driver),
        ],
    );
    set(
        &old.join("repository/conf/carbon.xml"),
        &[Edit::set("Server/Ports/Offset", "3")],
    );
    old
}

pub(crate) fn source_database(vendor: Vendor) -> (TestDb, Vec<i64>) {
    let db = TestDb::new(vendor);
    let (script, tenants) = match vendor {
        Vendor::Postgres => {
            let script =
                std::fs::read_to_string(fixtures().join("4.4.7/dbscripts/postgresql.sql")).unwrap();
            let mut client = db.pg_client();
            client.batch_execute(&script).unwrap();
            fill_postgres(&mut client, 25).unwrap();
            let ids = client
                .query("SELECT um_id FROM um_tenant ORDER BY 1", &[])
                .unwrap();
            (
                script,
                ids.iter().map(|r| i64::from(r.get::<_, i32>(0))).collect(),
            )
        }
        _ => {
            use mysql::prelude::Queryable;
            let script =
                std::fs::read_to_string(fixtures().join("4.4.7/dbscripts/mysql.sql")).unwrap();
            let mut conn = db.mysql_conn();
            conn.query_drop(&script).unwrap();
            fill_mysql(&mut conn, 25).unwrap();
            let ids: Vec<i64> = conn
                .query("SELECT UM_ID FROM UM_TENANT ORDER BY 1")
                .unwrap();
            (script, ids)
        }
    };
    assert!(script.contains("UM_TENANT"));
    assert!(!tenants.is_empty());
    consistent_domains(&db, &tenants);
    (db, tenants)
}

/// The filler writes random `UM_DOMAIN` names; a real realm has the built-in domains plus one
/// row per secondary store file, which the generated home has for every tenant.
fn consistent_domains(db: &TestDb, tenants: &[i64]) {
    let mut rows = vec![(-1234, "WSO2.COM".to_owned())];
    for &tenant in std::iter::once(&-1234).chain(tenants) {
        for name in ["PRIMARY", "INTERNAL", "APPLICATION"] {
            rows.push((tenant, name.to_owned()));
        }
        if tenant != -1234 {
            rows.push((tenant, format!("T{tenant}.EXAMPLE.COM")));
        }
    }
    let values: Vec<String> = rows.iter().map(|(t, n)| format!("('{n}', {t})")).collect();
    let sql = format!(
        "DELETE FROM UM_DOMAIN; INSERT INTO UM_DOMAIN (UM_DOMAIN_NAME, UM_TENANT_ID) VALUES {}",
        values.join(", ")
    );
    match db.vendor() {
        Vendor::Postgres => db.pg_client().batch_execute(&sql).unwrap(),
        _ => {
            use mysql::prelude::Queryable;
            let mut conn = db.mysql_conn();
            for statement in sql.split("; ") {
                conn.query_drop(statement).unwrap();
            }
        }
    }
}

/// Line numbers (0-based, in `stock`) that differ between `stock` and `edited`.
fn changed_lines(stock: &str, edited: &str) -> Vec<(usize, String)> {
    let diff = TextDiff::from_lines(stock, edited);
    diff.iter_all_changes()
        .filter(|c| c.tag() != similar::ChangeTag::Equal)
        .map(|c| {
            (
                c.old_index().or(c.new_index()).unwrap_or(0),
                c.value().trim().to_owned(),
            )
        })
        .collect()
}

// Prints the plan and the report (seen with --no-capture): the scenario's evidence for people.
#[allow(clippy::print_stdout)]
fn check_acceptance(vendor: Vendor) {
    let dir = tempfile::tempdir().unwrap();
    let (db, tenants) = source_database(vendor);
    let _staging = DropOnExit {
        vendor,
        name: format!("{}_staging", db.name()),
        tls: false,
    };
    let old = old_home(dir.path(), &db, tenants);
    let new = dir.path().join("new");
    copy_tree(&fixtures().join("4.4.7"), &new);
    // Binary keystores are not among the fixtures; every real distribution ships its own.
    for home in [&old, &new] {
        let keystore = home.join("repository/resources/security/wso2carbon.jks");
        std::fs::create_dir_all(keystore.parent().unwrap()).unwrap();
        std::fs::write(&keystore, b"\xfe\xed\xfe\xed keystore stand-in").unwrap();
    }
    let old_before = tree_digest(&old);
    let source_before = fingerprints(vendor, db.url());
    assert!(source_before.len() >= 39, "{} tables", source_before.len());

    let state = dir.path().join("state");
    let args = [
        "run",
        "--old-home",
        old.to_str().unwrap(),
        "--new-home",
        new.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ];
    let mut plan_args = args;
    plan_args[0] = "plan";
    let plan = carbon_upgrade(&plan_args);
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    let plan = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(
        plan.contains("WSO2_CARBON_DB") && plan.contains("Ports/Offset: 0 -> 3"),
        "{plan}"
    );
    println!("{plan}"); // shown with --no-capture: the plan of the acceptance scenario
    assert!(
        plan.contains("WSO2_CARBON_DB: against ") && plan.contains(": identical"),
        "the schema proof of the source is in the plan: {plan}"
    );

    let output = carbon_upgrade(&args);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    println!("{}", stderr(&output));
    println!(
        "{}",
        std::fs::read_to_string(state.join("report.md")).unwrap()
    );

    let staging_url = carbon_db::testkit::with_database(
        &carbon_db::testkit::server_url(vendor).unwrap(),
        &format!("{}_staging", db.name()),
    );
    assert_eq!(
        fingerprints(vendor, &staging_url),
        source_before,
        "staging equals the source"
    );
    assert_eq!(
        fingerprints(vendor, db.url()),
        source_before,
        "the source is unchanged"
    );
    assert_eq!(tree_digest(&old), old_before, "the old home is unchanged");

    let stock = fixtures().join("4.4.7/repository/conf");
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
    let stock_ds = read(&stock.join("datasources/master-datasources.xml"));
    let new_ds = read(&new.join("repository/conf/datasources/master-datasources.xml"));
    let block_start = stock_ds
        .lines()
        .position(|l| l.contains("<name>WSO2_CARBON_DB</name>"))
        .unwrap();
    let block_end = block_start
        + stock_ds
            .lines()
            .skip(block_start)
            .position(|l| l.contains("</datasource>"))
            .unwrap();
    let changed = changed_lines(&stock_ds, &new_ds);
    assert!(!changed.is_empty());
    for (line, text) in &changed {
        assert!(
            (block_start..=block_end).contains(line),
            "datasources line {line} changed outside WSO2_CARBON_DB: {text}"
        );
    }
    assert!(
        new_ds.contains(&format!("{}_staging", db.name())),
        "WSO2_CARBON_DB points at staging"
    );

    let carbon_changes = changed_lines(
        &read(&stock.join("carbon.xml")),
        &read(&new.join("repository/conf/carbon.xml")),
    );
    let texts: Vec<&str> = carbon_changes.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        texts,
        ["<Offset>0</Offset>", "<Offset>3</Offset>"],
        "carbon.xml differs only in the offset"
    );

    for part in ["repository/deployment/server", "repository/tenants"] {
        let old_tree = tree_digest(&old.join(part));
        let new_tree = tree_digest(&new.join(part));
        for (file, hash) in &old_tree {
            assert_eq!(
                new_tree.get(file),
                Some(hash),
                "{part}/{} not replicated",
                file.display()
            );
        }
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("state/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["status"], "completed");
    let report_md = std::fs::read_to_string(dir.path().join("state/report.md")).unwrap();
    assert!(
        report_md.contains("## schema-proof:WSO2_CARBON_DB") && report_md.contains("**identical**"),
        "{report_md}"
    );
}

#[test]
fn acceptance_real_kernel_homes_on_postgres() {
    check_acceptance(Vendor::Postgres);
}

#[test]
fn acceptance_real_kernel_homes_on_mariadb() {
    check_acceptance(Vendor::MySql);
}

//! Conformance over the real WSO2 kernel scripts (4.4.6 and 4.4.7) and the real H2 file:
//! load into the real servers, fill every table with generated rows, copy, and compare
//! with pg_dump / mysqldump (independent of our verifier).

use std::path::PathBuf;

use carbon_db::testkit::TestDb;
use carbon_db::{CopyOptions, DbUrl, NoProgress, Vendor};
use mysql::prelude::Queryable;

use crate::support::{copy, mysqldump, pg_dump};

fn fixtures() -> PathBuf {
    carbon_db::testkit::wso2_fixtures()
}

fn script(rel: &str) -> String {
    let path = fixtures().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const ROWS: u32 = 25;

fn check_postgres(version: &str, logical: bool) {
    let src = TestDb::new(Vendor::Postgres);
    src.pg_client()
        .batch_execute(&script(&format!("{version}/dbscripts/postgresql.sql")))
        .unwrap();
    carbon_db::fixture::fill_postgres(&mut src.pg_client(), ROWS).unwrap();
    let dst = TestDb::reserve(Vendor::Postgres);
    let report = copy(
        &src,
        &dst,
        &CopyOptions {
            logical,
            ..CopyOptions::default()
        },
    );
    assert!(report.tables >= 39, "{} tables", report.tables);
    assert!(report.counters >= 30, "{} sequences", report.counters);
    assert_eq!(pg_dump(&src), pg_dump(&dst));
}

#[test]
fn postgres_kernel_446_script_copies_exactly() {
    check_postgres("4.4.6", true);
}

#[test]
fn postgres_kernel_447_script_copies_exactly() {
    check_postgres("4.4.7", true);
}

#[test]
fn postgres_kernel_447_script_template_fast_path() {
    check_postgres("4.4.7", false);
}

fn check_mariadb(rel: &str) {
    let src = TestDb::new(Vendor::MySql);
    let mut c = src.mysql_conn();
    c.query_drop(script(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"));
    drop(c);
    carbon_db::fixture::fill_mysql(&mut src.mysql_conn(), ROWS).unwrap();
    let dst = TestDb::reserve(Vendor::MySql);
    let report = copy(&src, &dst, &CopyOptions::default());
    assert!(report.tables >= 39, "{} tables", report.tables);
    assert_eq!(mysqldump(&src), mysqldump(&dst));
}

#[test]
fn mariadb_kernel_446_mysql_script_copies_exactly() {
    check_mariadb("4.4.6/dbscripts/mysql.sql");
}

#[test]
fn mariadb_kernel_447_mysql_script_copies_exactly() {
    check_mariadb("4.4.7/dbscripts/mysql.sql");
}

#[test]
fn mariadb_kernel_447_mysql57_script_copies_exactly() {
    check_mariadb("4.4.7/dbscripts/mysql5.7.sql");
}

#[test]
fn mariadb_kernel_446_mysql57_script_copies_exactly() {
    check_mariadb("4.4.6/dbscripts/mysql-5.7+.sql");
}

#[test]
fn h2_real_carbon_file_is_copied_byte_for_byte() {
    let src_file = fixtures().join("h2/WSO2CARBON_DB.h2.db");
    let from = DbUrl::parse(&format!(
        "jdbc:h2:{};DB_CLOSE_ON_EXIT=FALSE;LOCK_TIMEOUT=60000",
        fixtures().join("h2/WSO2CARBON_DB").display()
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let to = DbUrl::parse_in(
        "jdbc:h2:repository/database/WSO2CARBON_DB",
        Some(dir.path()),
    )
    .unwrap();
    let report = carbon_db::copy(&from, &to, &CopyOptions::default(), &NoProgress).unwrap();
    assert_eq!(report.method, "files");
    let verify = report.verify.unwrap();
    assert!(verify.is_ok(), "{}", verify.summary());
    assert_eq!(verify.files.len(), 1);
    let copied = dir.path().join("repository/database/WSO2CARBON_DB.h2.db");
    assert_eq!(
        std::fs::read(&src_file).unwrap(),
        std::fs::read(&copied).unwrap()
    );
    // A second copy onto the same files is refused, naming them.
    let e = carbon_db::copy(&from, &to, &CopyOptions::default(), &NoProgress).unwrap_err();
    assert!(e.to_string().contains("WSO2CARBON_DB.h2.db"), "{e}");
    // Tampering with one byte is caught.
    let mut bytes = std::fs::read(&copied).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&copied, bytes).unwrap();
    let v = carbon_db::verify(&from, &to, 1, &NoProgress).unwrap();
    assert!(!v.is_ok());
}

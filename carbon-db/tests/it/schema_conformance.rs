//! Schema proof conformance over the real WSO2 kernel scripts: a database created from the
//! 4.4.6 `dbscripts` proved against 4.4.7's fresh-install script; then `align`, proved again.

use carbon_db::schema;
use carbon_db::testkit::{TestDb, wso2_fixtures};
use carbon_db::{Session, Vendor};

use crate::schema::lines;
use crate::support::url;

/// Staging made by `old` (relative to the fixtures), proved against `new`: the difference
/// lines must be `expected`; after `align` staging matches.
fn check(vendor: Vendor, old: &str, new: &str, expected: &[&str]) {
    let fixtures = wso2_fixtures();
    let staging = TestDb::new(vendor);
    let mut s = Session::read_write(&url(&staging)).unwrap();
    schema::run_script(&mut s, &fixtures.join(old)).unwrap();
    drop(s);
    let fresh = [fixtures.join(new)];
    let proof = schema::prove(&url(&staging), &fresh)
        .unwrap_or_else(|e| panic!("{}", carbon_db::error_chain(&e)));
    let got = lines(&proof.diff);
    assert_eq!(got, expected, "{:#?}", proof.diff);
    assert!(proof.is_ok());
    assert!(proof.fresh_tables >= 39, "{} tables", proof.fresh_tables);
    schema::align(&url(&staging), &proof.diff).unwrap();
    let again = schema::prove(&url(&staging), &fresh).unwrap();
    assert_eq!(again.diff.summary(), "identical", "{:#?}", again.diff);
}

#[test]
fn postgres_kernel_446_against_447_has_two_renamed_indexes() {
    check(
        Vendor::Postgres,
        "4.4.6/dbscripts/postgresql.sql",
        "4.4.7/dbscripts/postgresql.sql",
        &[
            "cosmetic REG_LOG index REG_LOG_IND_BY_REG_LOGTIME",
            "cosmetic REG_RESOURCE index REG_RESOURCE_IND_BY_TENANT",
        ],
    );
}

#[test]
fn mariadb_kernel_446_against_447_has_renamed_indexes_and_defaults() {
    check(
        Vendor::MySql,
        "4.4.6/dbscripts/mysql.sql",
        "4.4.7/dbscripts/mysql.sql",
        &[
            "compatible REG_RESOURCE column REG_CREATED_TIME default",
            "compatible REG_RESOURCE column REG_LAST_UPDATED_TIME default",
            "cosmetic REG_LOG index REG_LOG_IND_BY_REG_LOGTIME",
            "cosmetic REG_RESOURCE index REG_RESOURCE_IND_BY_TENANT",
        ],
    );
}

#[test]
fn kernel_447_against_itself_is_identical() {
    for (vendor, script) in [
        (Vendor::Postgres, "4.4.7/dbscripts/postgresql.sql"),
        (Vendor::MySql, "4.4.7/dbscripts/mysql.sql"),
    ] {
        check(vendor, script, script, &[]);
    }
}

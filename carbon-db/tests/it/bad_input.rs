//! Bad input: one clear line naming the thing at fault, no password, nothing left behind.

use carbon_db::testkit::{self, TestDb};
use carbon_db::{CopyOptions, DbError, DbUrl, NoProgress, Vendor};
use mysql::prelude::Queryable;

use crate::support::url;

fn copy_err(from: &DbUrl, to: &DbUrl) -> DbError {
    let e = carbon_db::copy(from, to, &CopyOptions::default(), &NoProgress).unwrap_err();
    let text = e.to_string();
    assert!(!text.contains('\n'), "multi-line error: {text}");
    assert!(!text.contains("hunter2"), "password leaked: {text}");
    e
}

#[test]
fn postgres_vendor_mismatch_is_refused_before_connecting() {
    // Nothing listens on port 1: refusing before connecting is the only way this passes.
    let from = DbUrl::parse("postgres://u:hunter2@127.0.0.1:1/a").unwrap();
    let to = DbUrl::parse("mysql://u:hunter2@127.0.0.1:1/b").unwrap();
    let e = copy_err(&from, &to);
    assert!(matches!(e, DbError::VendorMismatch { .. }), "{e}");
    assert!(e.to_string().contains("postgres") && e.to_string().contains("mysql"));
}

#[test]
fn postgres_target_equal_to_source_is_refused() {
    let from = DbUrl::parse("jdbc:postgresql://localhost:1/WSO2CARBON_DB").unwrap();
    let to = DbUrl::parse("postgres://other:hunter2@127.0.0.1:1/WSO2CARBON_DB").unwrap();
    assert!(matches!(copy_err(&from, &to), DbError::SameDatabase { .. }));
}

#[test]
fn postgres_unreachable_host_names_the_redacted_url() {
    let from = DbUrl::parse("postgres://u:hunter2@127.0.0.1:1/a").unwrap();
    let to = DbUrl::parse("postgres://u:hunter2@127.0.0.1:1/b").unwrap();
    let e = copy_err(&from, &to);
    assert!(matches!(e, DbError::Connect { .. }), "{e}");
    // The target server is checked first (same server: the template fast path).
    assert!(
        e.to_string()
            .contains("cannot connect to postgres://u:********@127.0.0.1:1/b"),
        "{e}"
    );
    // A reachable target with an unreachable source names the source.
    let to = DbUrl::parse(&carbon_db::testkit::server_url(Vendor::Postgres).unwrap())
        .unwrap()
        .with_database("carbon_t_never_created");
    let e = copy_err(&from, &to);
    assert!(
        e.to_string()
            .contains("cannot connect to postgres://u:********@127.0.0.1:1/a"),
        "{e}"
    );
}

#[test]
fn postgres_unknown_role_with_password_is_not_echoed() {
    let server = DbUrl::parse(&testkit::server_url(Vendor::Postgres).unwrap()).unwrap();
    let from = server
        .with_database("postgres")
        .with_credentials(Some("no_such_role_x".into()), Some("hunter2".into()));
    let to = from.with_database("carbon_t_never");
    let e = copy_err(&from, &to);
    assert!(e.to_string().contains("no_such_role_x"), "{e}");
}

#[test]
fn postgres_missing_source_database() {
    let dst = TestDb::reserve(Vendor::Postgres);
    let from = url(&dst).with_database("carbon_t_does_not_exist");
    let e = copy_err(&from, &url(&dst));
    assert!(matches!(e, DbError::SourceMissing { .. }), "{e}");
    // Nothing was created that could pass for a copy.
    let n: i64 = TestDb::new(Vendor::Postgres)
        .pg_client()
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&dst.name()],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[test]
fn postgres_non_empty_target_is_refused_naming_its_contents() {
    let src = TestDb::new(Vendor::Postgres);
    src.pg_client()
        .batch_execute("CREATE TABLE a (id int)")
        .unwrap();
    let dst = TestDb::new(Vendor::Postgres);
    dst.pg_client()
        .batch_execute("CREATE TABLE um_user (id int)")
        .unwrap();
    let e = copy_err(&url(&src), &url(&dst));
    assert!(matches!(e, DbError::TargetNotEmpty { .. }), "{e}");
    assert!(e.to_string().contains("table public.um_user"), "{e}");
}

#[test]
fn mariadb_wrong_password_is_not_echoed() {
    let src = TestDb::new(Vendor::MySql);
    let from = url(&src).with_credentials(Some("root".into()), Some("hunter2".into()));
    let to = from.with_database("carbon_t_never");
    let e = copy_err(&from, &to);
    assert!(matches!(e, DbError::Connect { .. }), "{e}");
    assert!(e.to_string().contains("Access denied"), "{e}");
}

#[test]
fn mariadb_missing_source_and_non_empty_target() {
    let dst = TestDb::new(Vendor::MySql);
    let from = url(&dst).with_database("carbon_t_does_not_exist");
    assert!(matches!(
        copy_err(&from, &url(&dst)),
        DbError::SourceMissing { .. }
    ));
    let src = TestDb::new(Vendor::MySql);
    src.mysql_conn()
        .query_drop("CREATE TABLE A (ID INT)")
        .unwrap();
    dst.mysql_conn()
        .query_drop("CREATE VIEW UM_V AS SELECT 1")
        .unwrap();
    let e = copy_err(&url(&src), &url(&dst));
    assert!(e.to_string().contains("view UM_V"), "{e}");
}

#[test]
fn sqlite_missing_source_and_non_empty_target() {
    let dst = TestDb::new(Vendor::Sqlite);
    let missing = DbUrl::parse("sqlite:/nonexistent/dir/carbon.db").unwrap();
    assert!(matches!(
        copy_err(&missing, &url(&dst)),
        DbError::SourceMissing { .. }
    ));
    let src = TestDb::new(Vendor::Sqlite);
    src.sqlite_conn()
        .execute_batch("CREATE TABLE A (ID INT)")
        .unwrap();
    dst.sqlite_conn()
        .execute_batch("CREATE TABLE B (ID INT)")
        .unwrap();
    let e = copy_err(&url(&src), &url(&dst));
    assert!(e.to_string().contains("table B"), "{e}");
    assert!(matches!(
        copy_err(&url(&src), &url(&src)),
        DbError::SameDatabase { .. }
    ));
}

//! The test support itself: each vendor hands out a working, isolated database and drops it.

use carbon_db::Vendor;
use carbon_db::testkit::TestDb;

#[test]
fn postgres_database_is_fresh_and_dropped() {
    let db = TestDb::new(Vendor::Postgres);
    let name = db.name().to_owned();
    let mut client = db.pg_client();
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 0);
    drop(client);
    drop(db);
    let other = TestDb::new(Vendor::Postgres);
    let mut admin = other.pg_client();
    let left: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "{name} was not dropped");
}

#[test]
fn mariadb_database_is_fresh_and_dropped() {
    use mysql::prelude::Queryable;
    let db = TestDb::new(Vendor::MySql);
    let name = db.name().to_owned();
    let mut conn = db.mysql_conn();
    let tables: Vec<String> = conn.query("SHOW TABLES").unwrap();
    assert!(tables.is_empty());
    drop(db);
    let left: Option<String> = conn
        .exec_first(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name = ?",
            (name.clone(),),
        )
        .unwrap();
    assert_eq!(left, None, "{name} was not dropped");
}

#[test]
fn sqlite_database_is_a_file_removed_with_its_directory() {
    let db = TestDb::new(Vendor::Sqlite);
    let path = db.sqlite_path();
    db.sqlite_conn()
        .execute_batch("CREATE TABLE t (x INTEGER)")
        .unwrap();
    assert!(path.exists());
    drop(db);
    assert!(!path.exists());
}

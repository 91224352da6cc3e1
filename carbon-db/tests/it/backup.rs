//! Native backups and the session check, on real servers. Each backup is restored with the
//! vendor's own tool and compared with the source by plain counts.

use std::process::Command;

use carbon_db::backup::{native_backup, other_sessions};
use carbon_db::fixture;
use carbon_db::testkit::TestDb;
use carbon_db::{DbUrl, Vendor};
use carbon_fs::sha256_file as hash_file;

fn generated(vendor: Vendor) -> TestDb {
    crate::support::with_tiny_fixture(TestDb::new(vendor))
}

fn counts(db: &TestDb) -> Vec<i64> {
    fixture::TABLES
        .iter()
        .map(|t| {
            let sql = format!("SELECT count(*) FROM {}", t.name);
            match db.vendor() {
                Vendor::Postgres => db.pg_client().query_one(&sql, &[]).unwrap().get(0),
                Vendor::MySql => {
                    use mysql::prelude::Queryable;
                    db.mysql_conn()
                        .query_first::<i64, _>(&sql)
                        .unwrap()
                        .unwrap()
                }
                _ => db.sqlite_conn().query_row(&sql, [], |r| r.get(0)).unwrap(),
            }
        })
        .collect()
}

fn check(vendor: Vendor, restore: impl FnOnce(&std::path::Path, &TestDb)) {
    let source = generated(vendor);
    let dir = tempfile::tempdir().unwrap();
    let url = DbUrl::parse(source.url()).unwrap();
    let files = native_backup(&url, dir.path(), "WSO2_CARBON_DB").unwrap();
    assert_eq!(files.len(), 1);
    let file = &files[0];
    assert_eq!(
        hash_file(&file.path).unwrap(),
        (file.bytes, file.sha256.clone())
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let restored = TestDb::new(vendor);
    restore(&file.path, &restored);
    assert_eq!(
        counts(&restored),
        counts(&source),
        "{vendor}: restored counts"
    );
}

#[test]
fn pg_dump_backup_restores_with_pg_restore_postgres() {
    check(Vendor::Postgres, |file, target| {
        let status = Command::new("pg_restore")
            .args(["--no-owner", "-d", target.url()])
            .arg(file)
            .status()
            .unwrap();
        assert!(status.success());
    });
}

#[test]
fn mariadb_dump_backup_restores_with_the_client_mariadb() {
    check(Vendor::MySql, |file, target| {
        let url = DbUrl::parse(target.url()).unwrap();
        let status = Command::new("mariadb")
            .args([
                "--protocol=TCP",
                "-h",
                url.host(),
                "-P",
                &url.port().to_string(),
            ])
            .args(["-u", url.user().unwrap_or("root"), url.database()])
            .stdin(std::fs::File::open(file).unwrap())
            .status()
            .unwrap();
        assert!(status.success());
    });
}

#[test]
fn sqlite_backup_is_a_complete_database_sqlite() {
    check(Vendor::Sqlite, |file, target| {
        std::fs::copy(file, target.sqlite_path()).unwrap();
    });
}

#[test]
fn sessions_on_the_source_are_listed_postgres() {
    let db = TestDb::new(Vendor::Postgres);
    let url = DbUrl::parse(db.url()).unwrap();
    assert_eq!(other_sessions(&url).unwrap(), vec![]);
    let _held = db.pg_client();
    let sessions = other_sessions(&url).unwrap();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0].user, "postgres");
}

#[test]
fn sessions_on_the_source_are_listed_mariadb() {
    let db = TestDb::new(Vendor::MySql);
    let url = DbUrl::parse(db.url()).unwrap();
    assert_eq!(other_sessions(&url).unwrap(), vec![]);
    let _held = db.mysql_conn();
    let sessions = other_sessions(&url).unwrap();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0].user, "root");
}

#[test]
fn a_failing_dump_leaves_no_file_behind_postgres() {
    let db = TestDb::reserve(Vendor::Postgres); // never created: pg_dump fails
    let url = DbUrl::parse(db.url()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = native_backup(&url, dir.path(), "missing").unwrap_err();
    assert!(err.to_string().contains("pg_dump"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

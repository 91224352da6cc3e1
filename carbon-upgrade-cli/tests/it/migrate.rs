//! `carbon-upgrade db migrate`: the first failing statement stops the command in one line
//! naming `script:line`; the same command after the fix resumes and finishes.

use carbon_db::Vendor;
use carbon_db::testkit::TestDb;

use crate::support::{carbon_upgrade, code, stderr};

fn check(vendor: Vendor) {
    let db = TestDb::new(vendor);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("step.sql");
    let journal = dir.path().join("migrate.jsonl");
    let broken = "CREATE TABLE T1 (ID INTEGER);\n-- the next one fails\nINSERT INTO T1 VALUES (1);\nINSERT INTO NO_SUCH VALUES (1);\n";
    std::fs::write(&script, broken).unwrap();
    let args = [
        "db",
        "migrate",
        "--db",
        db.url(),
        "--journal",
        journal.to_str().unwrap(),
        "--scripts",
        script.to_str().unwrap(),
    ];
    let first = carbon_upgrade(&args);
    let err = stderr(&first);
    assert_eq!(code(&first), 2, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "{}:4: statement 3 `INSERT INTO NO_SUCH VALUES (1)` failed",
            script.display()
        )),
        "{err}"
    );
    std::fs::write(&script, broken.replace("NO_SUCH", "T1")).unwrap();
    let second = carbon_upgrade(&args);
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    let out = String::from_utf8_lossy(&second.stdout).into_owned();
    let expected = match vendor {
        // One transaction: the failure left nothing, so all three run now.
        Vendor::Postgres => {
            "3 statements, 3 applied now, 0 by an earlier attempt (one transaction)"
        }
        _ => "3 statements, 1 applied now, 2 by an earlier attempt",
    };
    assert!(out.contains(expected), "{out}");
}

#[test]
fn postgres_migrate_stops_then_resumes() {
    check(Vendor::Postgres);
}

#[test]
fn mariadb_migrate_stops_then_resumes() {
    check(Vendor::MySql);
}

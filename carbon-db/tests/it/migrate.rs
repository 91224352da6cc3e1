//! Migration scripts on both servers: a script that fails at statement N stops there naming
//! `script:line`; after the fix, resume finishes; the result equals a clean application of
//! the fixed scripts (compared with pg_dump / mysqldump, not our code); lost rows are flagged.

use std::path::{Path, PathBuf};

use carbon_db::migrate::migrate;
use carbon_db::schema::{self, SchemaError};
use carbon_db::testkit::TestDb;
use carbon_db::{Session, Vendor};

use crate::support::{mysqldump, pg_dump, url};

const BASE: &str = "CREATE TABLE ITEMS (ID INTEGER NOT NULL, NAME VARCHAR(20), PRIMARY KEY (ID));
INSERT INTO ITEMS VALUES (1, 'a'), (2, 'b'), (3, 'c');";

fn first(vendor: Vendor) -> String {
    let block = match vendor {
        Vendor::Postgres => {
            "DO $$ BEGIN IF (SELECT count(*) FROM TAGS) > 0 THEN INSERT INTO TAGS VALUES (9, 'p;q'); END IF; END $$;"
        }
        _ => {
            "CREATE PROCEDURE add_tag() BEGIN IF((SELECT COUNT(*) FROM TAGS) > 0) THEN INSERT INTO TAGS VALUES (9, 'p;q'); END IF; END;\nCALL add_tag();\nDROP PROCEDURE add_tag;"
        }
    };
    format!(
        "-- step one; not a statement\nALTER TABLE ITEMS ADD COLUMN STATE VARCHAR(10) DEFAULT 'ACTIVE';\nCREATE TABLE TAGS (ID INTEGER NOT NULL, LABEL VARCHAR(10), PRIMARY KEY (ID));\nINSERT INTO TAGS VALUES (1, 'x;y');\n{block}\n"
    )
}

const SECOND: &str = "CREATE TABLE AUDIT (ID INTEGER);
INSERT INTO TAGS VALUES (2, 'z');

DELETE FROM ITEMS WHERE ID = 3;
INSERT INTO NO_SUCH_TABLE VALUES (1);
CREATE INDEX TAGS_BY_LABEL ON TAGS (LABEL);
";

const FIXED: &str = "INSERT INTO TAGS VALUES (3, 'w');";

fn database(vendor: Vendor) -> TestDb {
    let db = TestDb::new(vendor);
    let mut s = Session::read_write(&url(&db)).unwrap();
    for st in carbon_db::script::split(vendor, BASE).unwrap() {
        s.execute(&st.text).unwrap();
    }
    db
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn tables(db: &TestDb) -> Vec<String> {
    schema::read_catalog(&url(db))
        .unwrap()
        .tables
        .into_keys()
        .collect()
}

fn dump(db: &TestDb) -> String {
    match db.vendor() {
        Vendor::Postgres => pg_dump(db),
        _ => mysqldump(db),
    }
}

fn check(vendor: Vendor) {
    let dir = tempfile::tempdir().unwrap();
    let staging = database(vendor);
    let s1 = write(dir.path(), "one.sql", &first(vendor));
    let s2 = write(dir.path(), "two.sql", SECOND);
    let journal = dir.path().join("migrate.jsonl");
    let scripts = [s1.clone(), s2.clone()];

    let err = migrate(&url(&staging), &scripts, &journal).unwrap_err();
    let text = carbon_db::error_chain(&err);
    assert!(
        text.starts_with(&format!(
            "{}:5: statement 4 `INSERT INTO NO_SUCH_TABLE VALUES (1)` failed: ",
            s2.display()
        )),
        "{text}"
    );
    assert!(
        text.to_lowercase().contains("no_such_table"),
        "server's error: {text}"
    );
    assert!(matches!(
        err,
        SchemaError::Statement {
            number: 4,
            line: 5,
            ..
        }
    ));
    let after_failure = tables(&staging);
    match vendor {
        // One transaction per script: nothing of two.sql stays.
        Vendor::Postgres => assert!(
            !after_failure.contains(&"AUDIT".to_owned()),
            "{after_failure:?}"
        ),
        // DDL commits by itself: the three statements before the failure stay.
        _ => assert!(
            after_failure.contains(&"AUDIT".to_owned()),
            "{after_failure:?}"
        ),
    }

    // The operator fixes statement 4 and resumes.
    let fixed = SECOND.replace("INSERT INTO NO_SUCH_TABLE VALUES (1);", FIXED);
    std::fs::write(&s2, &fixed).unwrap();
    let report = migrate(&url(&staging), &scripts, &journal).unwrap();
    let two = &report.scripts[1];
    match vendor {
        Vendor::Postgres => assert_eq!(
            (two.already_applied, two.applied_now, two.transactional),
            (0, 5, true)
        ),
        _ => assert_eq!(
            (two.already_applied, two.applied_now, two.transactional),
            (3, 2, false)
        ),
    }
    assert_eq!(report.scripts[0].applied_now, 0, "one.sql is not run again");
    assert_eq!(report.lost(), ["ITEMS 3 -> 2"]);

    // A clean application of the fixed scripts, compared with the server's own dump tool.
    let clean = database(vendor);
    let clean_report = migrate(&url(&clean), &scripts, &dir.path().join("clean.jsonl")).unwrap();
    assert_eq!(clean_report.rows, report.rows);
    assert_eq!(dump(&staging), dump(&clean));

    // Once applied, a statement may not change under the journal.
    std::fs::write(&s2, fixed.replace("(2, 'z')", "(2, 'Z')")).unwrap();
    let err = migrate(&url(&staging), &scripts, &journal).unwrap_err();
    assert!(matches!(err, SchemaError::Journal { .. }), "{err}");
    assert_eq!(err.kind(), carbon_fs::ErrorKind::BadInput);
}

#[test]
fn postgres_failed_script_stops_resumes_and_equals_clean_application() {
    check(Vendor::Postgres);
}

#[test]
fn mariadb_failed_script_stops_resumes_and_equals_clean_application() {
    check(Vendor::MySql);
}

#[test]
fn h2_migration_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = carbon_db::DbUrl::parse("jdbc:h2:/tmp/nowhere/WSO2CARBON_DB").unwrap();
    let script = write(dir.path(), "h2.sql", "SELECT 1;");
    let err = migrate(&url, &[script], &dir.path().join("j.jsonl")).unwrap_err();
    assert_eq!(err.kind(), carbon_fs::ErrorKind::BadInput, "{err}");
    assert!(err.to_string().contains("h2.sql"), "{err}");
}

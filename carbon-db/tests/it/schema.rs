//! Schema proof on both servers: hand-made schemas whose every difference is known, each
//! classified; `align` makes staging match what it can; the scratch database is dropped.

use std::path::PathBuf;

use carbon_db::schema::{self, Class, SchemaDiff};
use carbon_db::testkit::TestDb;
use carbon_db::{DbUrl, Session, Vendor};

use crate::support::url;

/// Writes `sql` to a file in `dir` and returns its path.
fn script_file(dir: &tempfile::TempDir, name: &str, sql: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, sql).unwrap();
    path
}

/// Staging built from `staging_sql`, proved against `fresh_sql`: the differences as
/// `class table object` lines.
pub fn check(vendor: Vendor, staging_sql: &str, fresh_sql: &str) -> (TestDb, SchemaDiff) {
    let dir = tempfile::tempdir().unwrap();
    let staging = TestDb::new(vendor);
    let mut s = Session::read_write(&url(&staging)).unwrap();
    schema::run_script(&mut s, &script_file(&dir, "staging.sql", staging_sql)).unwrap();
    drop(s);
    let proof = schema::prove(&url(&staging), &[script_file(&dir, "fresh.sql", fresh_sql)])
        .unwrap_or_else(|e| panic!("{}", carbon_db::error_chain(&e)));
    (staging, proof.diff)
}

pub fn lines(diff: &SchemaDiff) -> Vec<String> {
    diff.differences
        .iter()
        .map(|d| {
            format!("{} {} {}", d.class, d.table, d.object)
                .trim()
                .to_owned()
        })
        .collect()
}

const FRESH: &str = "
CREATE TABLE PARENT (ID INTEGER NOT NULL, NAME VARCHAR(64), PRIMARY KEY (ID));
CREATE TABLE CHILD (
  ID INTEGER NOT NULL,
  PARENT_ID INTEGER,
  VALUE VARCHAR(512) NOT NULL,
  NOTE VARCHAR(100),
  CODE VARCHAR(10) DEFAULT 'X',
  WIDE VARCHAR(20),
  ADDED INTEGER,
  PRIMARY KEY (ID),
  UNIQUE (VALUE),
  FOREIGN KEY (PARENT_ID) REFERENCES PARENT (ID) ON DELETE CASCADE
);
CREATE INDEX CHILD_BY_NOTE ON CHILD (NOTE);
CREATE INDEX CHILD_BY_CODE ON CHILD (CODE);
CREATE TABLE ONLY_FRESH (ID INTEGER);
";

const STAGING: &str = "
CREATE TABLE PARENT (ID INTEGER NOT NULL, NAME VARCHAR(64), PRIMARY KEY (ID));
CREATE TABLE CHILD (
  ID INTEGER NOT NULL,
  PARENT_ID INTEGER,
  VALUE VARCHAR(45) NOT NULL,
  NOTE VARCHAR(100) NOT NULL,
  CODE VARCHAR(10),
  WIDE VARCHAR(200),
  LEFTOVER INTEGER,
  PRIMARY KEY (ID),
  UNIQUE (VALUE),
  FOREIGN KEY (PARENT_ID) REFERENCES PARENT (ID)
);
CREATE INDEX CHILD_NOTE_OLD ON CHILD (NOTE);
CREATE TABLE ONLY_STAGING (ID INTEGER);
";

fn check_classes(vendor: Vendor) {
    let (staging, diff) = check(vendor, STAGING, FRESH);
    let expected = [
        "missing CHILD column ADDED",
        "missing CHILD index CHILD_BY_CODE",
        "missing ONLY_FRESH table",
        "risky CHILD column NOTE",
        "risky CHILD column VALUE",
        "risky CHILD foreign key (PARENT_ID) -> PARENT(ID)",
        "extra CHILD column LEFTOVER",
        "extra ONLY_STAGING table",
        "compatible CHILD column CODE default",
        "compatible CHILD column WIDE",
        "cosmetic CHILD index CHILD_BY_NOTE",
    ];
    assert_eq!(lines(&diff), expected, "{diff:#?}");
    let value = diff
        .differences
        .iter()
        .find(|d| d.object == "column VALUE")
        .unwrap();
    assert!(
        value.detail.contains("longer than 45 characters"),
        "{}",
        value.detail
    );
    // align: widen VALUE, add CHILD_BY_CODE, rename the index, set CODE's default.
    let ran = schema::align(&url(&staging), &diff).unwrap();
    assert_eq!(ran, 4, "{:#?}", diff.align_statements());
    let dir = tempfile::tempdir().unwrap();
    let again = schema::prove(&url(&staging), &[script_file(&dir, "fresh.sql", FRESH)]).unwrap();
    assert_eq!(
        lines(&again.diff),
        [
            "missing CHILD column ADDED",
            "missing ONLY_FRESH table",
            "risky CHILD column NOTE",
            "risky CHILD foreign key (PARENT_ID) -> PARENT(ID)",
            "extra CHILD column LEFTOVER",
            "extra ONLY_STAGING table",
            "compatible CHILD column WIDE",
        ]
    );
}

#[test]
fn postgres_differences_are_classified_and_aligned() {
    check_classes(Vendor::Postgres);
}

#[test]
fn mariadb_differences_are_classified_and_aligned() {
    check_classes(Vendor::MySql);
}

/// No scratch database of this process is left behind, whether the scripts ran or failed.
fn check_scratch_dropped(vendor: Vendor) {
    let staging = TestDb::new(vendor);
    let dir = tempfile::tempdir().unwrap();
    let bad = script_file(
        &dir,
        "bad.sql",
        "CREATE TABLE A (X INTEGER);\n\nCREATE TABLE B (Y NOSUCHTYPE);\n",
    );
    let err = schema::prove(&url(&staging), std::slice::from_ref(&bad)).unwrap_err();
    let text = carbon_db::error_chain(&err);
    assert!(
        text.starts_with(&format!(
            "{}:3: statement 2 `CREATE TABLE B (Y NOSUCHTYPE)` failed",
            bad.display()
        )),
        "{text}"
    );
    let ok = script_file(&dir, "ok.sql", "CREATE TABLE A (X INTEGER);");
    schema::prove(&url(&staging), &[ok]).unwrap();
    let prefix = format!("{}{}_", schema::SCRATCH_PREFIX, std::process::id());
    let sql = match vendor {
        Vendor::Postgres => "SELECT datname::text FROM pg_database",
        _ => "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA",
    };
    let mut s = Session::read_only(&url(&staging)).unwrap();
    let left: Vec<String> = s
        .query_text(sql)
        .unwrap()
        .into_iter()
        .filter_map(|r| r[0].clone())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn postgres_scratch_database_is_dropped() {
    check_scratch_dropped(Vendor::Postgres);
}

#[test]
fn mariadb_scratch_database_is_dropped() {
    check_scratch_dropped(Vendor::MySql);
}

#[test]
fn h2_scripts_are_refused() {
    let url = DbUrl::parse("jdbc:h2:/tmp/nowhere/WSO2CARBON_DB").unwrap();
    let err = schema::prove(&url, &[PathBuf::from("/nonexistent.sql")]).unwrap_err();
    assert_eq!(err.kind(), carbon_fs::ErrorKind::BadInput, "{err}");
}

#[test]
fn identical_schemas_have_no_difference() {
    for vendor in [Vendor::Postgres, Vendor::MySql] {
        let (_db, diff) = check(vendor, FRESH, FRESH);
        assert_eq!(diff.summary(), "identical", "{vendor}: {diff:#?}");
        assert!(!diff.differences.iter().any(|d| d.class == Class::Missing));
    }
}

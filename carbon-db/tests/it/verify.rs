//! Verification catches a changed value, a missing row, an extra row and a behind counter,
//! and names the table or counter at fault.

use carbon_db::testkit::TestDb;
use carbon_db::{CopyOptions, NoProgress, Vendor};
use mysql::prelude::Queryable;

use crate::support::{copy, logical, url};

struct Case {
    name: &'static str,
    /// Statement run on the target after a verified copy.
    tamper: &'static str,
    /// Expected (object substring, kind) of the first mismatch.
    object: &'static str,
    kind: &'static str,
}

const PG_SETUP: &str = "CREATE SEQUENCE REG_LOG_PK_SEQ; \
    CREATE TABLE REG_LOG (REG_LOG_ID INTEGER DEFAULT NEXTVAL('REG_LOG_PK_SEQ') PRIMARY KEY, REG_PATH TEXT, REG_TENANT_ID INTEGER); \
    INSERT INTO REG_LOG (REG_PATH, REG_TENANT_ID) SELECT '/_system/' || i, -1234 FROM generate_series(1, 50) i; \
    SELECT setval('REG_LOG_PK_SEQ', 90);";

const PG_CASES: &[Case] = &[
    Case {
        name: "changed value",
        tamper: "UPDATE reg_log SET reg_path = '/x' WHERE reg_log_id = 7",
        object: "reg_log",
        kind: "content",
    },
    Case {
        name: "missing row",
        tamper: "DELETE FROM reg_log WHERE reg_log_id = 3",
        object: "reg_log",
        kind: "rows",
    },
    Case {
        name: "extra row",
        tamper: "INSERT INTO reg_log VALUES (-5, '/y', 1)",
        object: "reg_log",
        kind: "rows",
    },
    Case {
        name: "behind counter",
        tamper: "SELECT setval('reg_log_pk_seq', 50)",
        object: "reg_log_pk_seq",
        kind: "counter",
    },
    Case {
        name: "added index",
        tamper: "CREATE INDEX idx_path ON reg_log (reg_path)",
        object: "idx_path",
        kind: "extra",
    },
];

const MY_SETUP: &[&str] = &[
    "CREATE TABLE REG_LOG (REG_LOG_ID INTEGER AUTO_INCREMENT PRIMARY KEY, REG_PATH VARCHAR(100), REG_TENANT_ID INTEGER)",
    "INSERT INTO REG_LOG (REG_PATH, REG_TENANT_ID) SELECT CONCAT('/_system/', seq), -1234 FROM seq_1_to_50",
    "ALTER TABLE REG_LOG AUTO_INCREMENT = 90",
];

/// MariaDB also keeps an AUTO_INCREMENT counter, which can fall behind.
const MY_COUNTER_CASES: &[Case] = &[Case {
    name: "behind counter",
    tamper: "ALTER TABLE REG_LOG AUTO_INCREMENT = 1",
    object: "auto_increment REG_LOG",
    kind: "counter",
}];

const SQLITE_SETUP: &str = "CREATE TABLE REG_LOG (REG_LOG_ID INTEGER PRIMARY KEY AUTOINCREMENT, REG_PATH TEXT, REG_TENANT_ID INTEGER); \
    WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 50) INSERT INTO REG_LOG (REG_PATH, REG_TENANT_ID) SELECT '/_system/' || i, -1234 FROM s; \
    UPDATE sqlite_sequence SET seq = 90;";

/// Row tampering, the same statements on MariaDB and SQLite.
const ROW_CASES: &[Case] = &[
    Case {
        name: "changed value",
        tamper: "UPDATE REG_LOG SET REG_PATH = '/x' WHERE REG_LOG_ID = 7",
        object: "REG_LOG",
        kind: "content",
    },
    Case {
        name: "missing row",
        tamper: "DELETE FROM REG_LOG WHERE REG_LOG_ID = 3",
        object: "REG_LOG",
        kind: "rows",
    },
    Case {
        name: "extra row",
        tamper: "INSERT INTO REG_LOG VALUES (-5, '/y', 1)",
        object: "REG_LOG",
        kind: "rows",
    },
];

fn check<'a>(
    vendor: Vendor,
    setup: &dyn Fn(&TestDb),
    tamper: &dyn Fn(&TestDb, &str),
    cases: impl IntoIterator<Item = &'a Case>,
) {
    for case in cases {
        let src = TestDb::new(vendor);
        setup(&src);
        let dst = TestDb::reserve(vendor);
        copy(&src, &dst, &logical());
        tamper(&dst, case.tamper);
        let report = carbon_db::verify(&url(&src), &url(&dst), 2, &NoProgress).unwrap();
        assert!(
            !report.is_ok(),
            "{vendor} {}: verification passed after tampering",
            case.name
        );
        let first = &report.mismatches[0];
        assert!(
            first.object.contains(case.object) && first.kind == case.kind,
            "{vendor} {}: got {first:?}",
            case.name
        );
        assert!(
            report.summary().contains(case.object),
            "{}",
            report.summary()
        );
    }
}

#[test]
fn postgres_verify_catches_tampering() {
    check(
        Vendor::Postgres,
        &|db| db.pg_client().batch_execute(PG_SETUP).unwrap(),
        &|db, sql| db.pg_client().batch_execute(sql).unwrap(),
        PG_CASES,
    );
}

#[test]
fn mariadb_verify_catches_tampering() {
    check(
        Vendor::MySql,
        &|db| {
            let mut c = db.mysql_conn();
            for s in MY_SETUP {
                c.query_drop(s).unwrap();
            }
        },
        &|db, sql| {
            let mut c = db.mysql_conn();
            c.query_drop("SET SESSION foreign_key_checks = 0").unwrap();
            c.query_drop(sql).unwrap();
        },
        ROW_CASES.iter().chain(MY_COUNTER_CASES),
    );
}

#[test]
fn sqlite_verify_catches_tampering() {
    check(
        Vendor::Sqlite,
        &|db| db.sqlite_conn().execute_batch(SQLITE_SETUP).unwrap(),
        &|db, sql| db.sqlite_conn().execute_batch(sql).unwrap(),
        ROW_CASES,
    );
}

#[test]
fn sqlite_verify_catches_behind_counter() {
    let src = TestDb::new(Vendor::Sqlite);
    src.sqlite_conn().execute_batch(SQLITE_SETUP).unwrap();
    let dst = TestDb::reserve(Vendor::Sqlite);
    copy(&src, &dst, &CopyOptions::default());
    dst.sqlite_conn()
        .execute_batch("UPDATE sqlite_sequence SET seq = 10")
        .unwrap();
    let report = carbon_db::verify(&url(&src), &url(&dst), 1, &NoProgress).unwrap();
    // The AUTOINCREMENT counter (sqlite_sequence) is named.
    assert!(
        report
            .mismatches
            .iter()
            .any(|m| m.kind == "counter" && m.object.contains("REG_LOG")),
        "{:?}",
        report.mismatches
    );
}

/// The report an operator (and `--json`) sees, with names and timings redacted.
#[test]
fn postgres_copy_report_snapshot() {
    let src = TestDb::new(Vendor::Postgres);
    src.pg_client().batch_execute(PG_SETUP).unwrap();
    let dst = TestDb::reserve(Vendor::Postgres);
    let report = copy(&src, &dst, &logical());
    insta::assert_json_snapshot!(report, {
        ".source" => "[source]",
        ".target" => "[target]",
        ".copy_ms" => "[ms]",
        ".phases" => "[phases]",
        ".bytes" => "[bytes]",
        ".verify.elapsed_ms" => "[ms]",
    });
}

/// PostgreSQL verification reads both sides side by side and hashes only from the first
/// difference on: a row moved (same contents, another physical place) still verifies, and
/// a difference after an identical prefix is still found.
#[test]
fn postgres_side_by_side_verification() {
    // (case, statement on the target after the copy, equal?, reported identical byte for byte?)
    let cases: &[(&str, &str, bool, bool)] = &[
        ("untouched", "SELECT 1", true, true),
        (
            "rows moved, same contents",
            "UPDATE reg_log SET reg_path = reg_path WHERE reg_log_id IN (3, 7, 20)",
            true,
            false,
        ),
        (
            "two values swapped",
            "UPDATE reg_log SET reg_path = CASE reg_log_id WHEN 3 THEN '/_system/7' ELSE '/_system/3' END WHERE reg_log_id IN (3, 7)",
            false,
            false,
        ),
        (
            "last row changed",
            "UPDATE reg_log SET reg_tenant_id = 1 WHERE reg_log_id = 50",
            false,
            false,
        ),
        (
            "a row doubled, another gone",
            "DELETE FROM reg_log WHERE reg_log_id = 4; ALTER TABLE reg_log DROP CONSTRAINT reg_log_pkey; INSERT INTO reg_log SELECT * FROM reg_log WHERE reg_log_id = 5",
            false,
            false,
        ),
    ];
    for &(case, tamper, equal, identical) in cases {
        let src = TestDb::new(Vendor::Postgres);
        src.pg_client().batch_execute(PG_SETUP).unwrap();
        let dst = TestDb::reserve(Vendor::Postgres);
        // The template fast path: the same pages on both sides.
        copy(&src, &dst, &CopyOptions::default());
        dst.pg_client().batch_execute(tamper).unwrap();
        let report = carbon_db::verify(&url(&src), &url(&dst), 2, &NoProgress).unwrap();
        let table = report
            .tables
            .iter()
            .find(|t| t.table.contains("reg_log"))
            .unwrap();
        let contents_equal = !report
            .mismatches
            .iter()
            .any(|m| m.object.contains("reg_log") && matches!(m.kind.as_str(), "rows" | "content"));
        assert_eq!(contents_equal, equal, "{case}: {:?}", report.mismatches);
        assert_eq!(table.rows, 50, "{case}");
        assert_eq!(
            table.digest.contains("identical"),
            identical,
            "{case}: {}",
            table.digest
        );
    }
}

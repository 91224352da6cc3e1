//! Conformance over the real WSO2 kernel scripts (4.4.6 and 4.4.7) and the real H2 file:
//! load into the real servers, fill every table with generated rows, copy, and compare
//! with pg_dump / mysqldump (independent of our verifier).

use std::path::PathBuf;

use carbon_db::testkit::TestDb;
use carbon_db::{CopyOptions, DbUrl, NoProgress, Vendor};
use mysql::prelude::Queryable;

use crate::support::{copy, mysqldump, pg_dump};

fn fixtures() -> PathBuf {
    let dir = std::env::var_os("CARBON_FIXTURES").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/carbon-fixtures"
            ))
        },
        PathBuf::from,
    );
    assert!(
        dir.join("4.4.7/dbscripts").is_dir(),
        "WSO2 fixtures not found at {} (set CARBON_FIXTURES)",
        dir.display()
    );
    dir
}

fn script(rel: &str) -> String {
    let path = fixtures().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const ROWS: i32 = 25;

/// Fills every table with generated rows; sequence-default columns take their default so
/// the standalone sequences advance as in production.
fn pg_fill(db: &TestDb) {
    let mut c = db.pg_client();
    let cols = c
        .query(
            "SELECT table_name::text, column_name::text, data_type::text, character_maximum_length, coalesce(column_default, '')::text
             FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
            &[],
        )
        .unwrap();
    let mut tables: std::collections::BTreeMap<String, (Vec<String>, Vec<String>)> =
        Default::default();
    for r in &cols {
        let (t, col, ty, len, def): (String, String, String, Option<i32>, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        if def.contains("nextval") {
            continue;
        }
        let len = len.unwrap_or(200);
        let expr = match ty.as_str() {
            // UM_ACCOUNT_MAPPING's tenant column references UM_TENANT(UM_ID).
            _ if col.contains("tenant_id") && t == "um_account_mapping" => "i".to_owned(),
            _ if col.contains("tenant_id") => "-1234".to_owned(),
            "integer" | "bigint" => "i".to_owned(),
            "smallint" => "(i % 30000)::smallint".to_owned(),
            "character varying" | "character" | "text" => {
                format!("left(i || '-' || md5(i::text) || E' \\\\N\\ttab 中文 😀', {len})")
            }
            "bytea" => "CASE WHEN i = 1 THEN decode(repeat(md5('x'), 70000), 'hex') WHEN i = 2 THEN ''::bytea ELSE decode(md5(i::text), 'hex') END".to_owned(),
            t if t.starts_with("timestamp") || t == "date" => "timestamp '2016-03-27 00:30:00' + i * interval '1 hour'".to_owned(),
            "boolean" => "(i % 2 = 0)".to_owned(),
            "numeric" | "double precision" | "real" => "i * 1.5".to_owned(),
            other => panic!("conformance filler: no generator for {t}.{col} of type {other}"),
        };
        let e = tables.entry(t).or_default();
        e.0.push(format!("\"{col}\""));
        e.1.push(expr);
    }
    let mut sql = String::from("SET session_replication_role = replica;");
    for (t, (cols, exprs)) in &tables {
        sql.push_str(&format!(
            "INSERT INTO \"{t}\" ({}) SELECT {} FROM generate_series(1, {ROWS}) i ON CONFLICT DO NOTHING;",
            cols.join(", "),
            exprs.join(", ")
        ));
    }
    c.batch_execute(&sql).unwrap();
}

fn check_postgres(version: &str, logical: bool) {
    let src = TestDb::new(Vendor::Postgres);
    src.pg_client()
        .batch_execute(&script(&format!("{version}/dbscripts/postgresql.sql")))
        .unwrap();
    pg_fill(&src);
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

fn my_fill(db: &TestDb) {
    let mut c = db.mysql_conn();
    let cols: Vec<(String, String, String, Option<u64>, String)> = c
        .query(format!(
            "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, EXTRA FROM information_schema.COLUMNS
             WHERE TABLE_SCHEMA = '{}' ORDER BY TABLE_NAME, ORDINAL_POSITION",
            db.name()
        ))
        .unwrap();
    let mut tables: std::collections::BTreeMap<String, (Vec<String>, Vec<String>)> =
        Default::default();
    for (t, col, ty, len, extra) in cols {
        if extra.contains("auto_increment") {
            continue;
        }
        let len = len.unwrap_or(200).min(5000);
        let expr = match ty.as_str() {
            _ if col.to_ascii_uppercase().contains("TENANT_ID") => "-1234".to_owned(),
            "int" | "bigint" | "mediumint" => "seq".to_owned(),
            "smallint" => "seq % 30000".to_owned(),
            "tinyint" => "seq % 2".to_owned(),
            "varchar" | "char" | "text" | "mediumtext" | "longtext" => {
                format!("LEFT(CONCAT(seq, '-', MD5(seq), ' \\\\N\\ttab é'), {len})")
            }
            "blob" | "longblob" | "mediumblob" | "varbinary" => {
                "CASE WHEN seq = 1 THEN REPEAT(UNHEX(MD5('x')), 70000) WHEN seq = 2 THEN '' ELSE UNHEX(MD5(seq)) END".to_owned()
            }
            "timestamp" | "datetime" | "date" => "FROM_UNIXTIME(1459038600 + seq * 3600)".to_owned(),
            "decimal" | "double" | "float" => "seq * 1.5".to_owned(),
            other => panic!("conformance filler: no generator for {t}.{col} of type {other}"),
        };
        let e = tables.entry(t).or_default();
        e.0.push(format!("`{col}`"));
        e.1.push(expr);
    }
    c.query_drop("SET SESSION foreign_key_checks = 0").unwrap();
    for (t, (cols, exprs)) in &tables {
        c.query_drop(format!(
            "INSERT IGNORE INTO `{t}` ({}) SELECT {} FROM seq_1_to_{ROWS}",
            cols.join(", "),
            exprs.join(", ")
        ))
        .unwrap_or_else(|e| panic!("filling {t}: {e}"));
    }
}

fn check_mariadb(rel: &str) {
    let src = TestDb::new(Vendor::MySql);
    let mut c = src.mysql_conn();
    c.query_drop(script(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"));
    drop(c);
    my_fill(&src);
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

//! The Carbon-shaped generator: same rows on every vendor, awkward values intact, counters
//! past max(id), blobs from 0 B to over 1 MiB.

use carbon_db::Vendor;
use carbon_db::fixture::{self, FixtureSummary, Scale};
use carbon_db::testkit::TestDb;

/// Facts read back from a generated database with plain SQL, independent of the generator.
#[derive(Debug, PartialEq)]
struct Observed {
    rows: Vec<(String, u64)>,
    literal_backslash_n: u64,
    null_values: u64,
    empty_values: u64,
    emoji_values: u64,
    max_blob: u64,
    empty_blobs: u64,
    super_tenant_users: u64,
}

fn check(vendor: Vendor) {
    let db = TestDb::new(vendor);
    let scale = Scale::tiny();
    let summary = generate(&db, &scale);
    let observed = observe(&db);

    let expected_rows: Vec<(String, u64)> = summary
        .tables
        .iter()
        .map(|t| (t.table.clone(), t.rows))
        .collect();
    assert_eq!(observed.rows, expected_rows, "{vendor}: row counts");
    assert_eq!(summary.rows, expected_rows.iter().map(|r| r.1).sum::<u64>());
    assert!(
        observed.literal_backslash_n > 0,
        "{vendor}: the literal \\N text is missing"
    );
    assert!(
        observed.null_values > 0 && observed.empty_values > 0,
        "{vendor}: NULL and '' must both occur"
    );
    assert!(observed.emoji_values > 0, "{vendor}: 4-byte UTF-8 lost");
    assert_eq!(
        observed.max_blob, scale.max_blob as u64,
        "{vendor}: largest blob"
    );
    assert!(observed.empty_blobs >= 1, "{vendor}: 0-byte blob");
    assert!(
        observed.super_tenant_users > 0,
        "{vendor}: super tenant -1234 users"
    );
    if vendor != Vendor::Sqlite {
        assert_counters_past_max(&db, &summary);
    }
}

fn generate(db: &TestDb, scale: &Scale) -> FixtureSummary {
    match db.vendor() {
        Vendor::Postgres => fixture::generate_postgres(&mut db.pg_client(), scale),
        Vendor::MySql => fixture::generate_mysql(&mut db.mysql_conn(), scale),
        Vendor::Sqlite => fixture::generate_sqlite(&mut db.sqlite_conn(), scale),
        other => unreachable!("no {other} test databases"),
    }
    .unwrap()
}

const ATTR_SQL: [&str; 4] = [
    "SELECT count(*) FROM UM_USER_ATTRIBUTE WHERE UM_ATTR_VALUE = '\\N'",
    "SELECT count(*) FROM UM_USER_ATTRIBUTE WHERE UM_ATTR_VALUE IS NULL",
    "SELECT count(*) FROM UM_USER_ATTRIBUTE WHERE UM_ATTR_VALUE = ''",
    "SELECT count(*) FROM UM_USER_ATTRIBUTE WHERE UM_ATTR_VALUE LIKE '%😀%'",
];

fn observe(db: &TestDb) -> Observed {
    let tables: Vec<&str> = fixture::TABLES.iter().map(|t| t.name).collect();
    let mut queries: Vec<String> = tables
        .iter()
        .map(|t| format!("SELECT count(*) FROM {t}"))
        .collect();
    let mut attr: Vec<String> = ATTR_SQL.iter().map(|s| s.to_string()).collect();
    let blob_len = match db.vendor() {
        Vendor::Postgres => "octet_length",
        Vendor::MySql => "length",
        _ => "length",
    };
    if db.vendor() == Vendor::MySql {
        // MySQL string literals treat backslash as an escape: '\\N' is the two characters \N.
        attr[0] = "SELECT count(*) FROM UM_USER_ATTRIBUTE WHERE UM_ATTR_VALUE = '\\\\N'".into();
    }
    queries.extend(attr);
    queries.push(format!(
        "SELECT max({blob_len}(REG_CONTENT_DATA)) FROM REG_CONTENT"
    ));
    queries.push(format!(
        "SELECT count(*) FROM REG_CONTENT WHERE {blob_len}(REG_CONTENT_DATA) = 0"
    ));
    queries.push("SELECT count(*) FROM UM_USER WHERE UM_TENANT_ID = -1234".into());
    let values = run_counts(db, &queries);
    let (counts, rest) = values.split_at(tables.len());
    Observed {
        rows: tables
            .iter()
            .map(|t| t.to_string())
            .zip(counts.iter().copied())
            .collect(),
        literal_backslash_n: rest[0],
        null_values: rest[1],
        empty_values: rest[2],
        emoji_values: rest[3],
        max_blob: rest[4],
        empty_blobs: rest[5],
        super_tenant_users: rest[6],
    }
}

fn run_counts(db: &TestDb, queries: &[String]) -> Vec<u64> {
    match db.vendor() {
        Vendor::Postgres => {
            let mut client = db.pg_client();
            queries
                .iter()
                .map(|q| {
                    let row = client
                        .query_one(&format!("SELECT ({q})::bigint"), &[])
                        .unwrap();
                    row.get::<_, i64>(0) as u64
                })
                .collect()
        }
        Vendor::MySql => {
            use mysql::prelude::Queryable;
            let mut conn = db.mysql_conn();
            queries
                .iter()
                .map(|q| conn.query_first::<u64, _>(q).unwrap().unwrap())
                .collect()
        }
        _ => {
            let conn = db.sqlite_conn();
            queries
                .iter()
                .map(|q| conn.query_row(q, [], |r| r.get::<_, i64>(0)).unwrap() as u64)
                .collect()
        }
    }
}

fn assert_counters_past_max(db: &TestDb, summary: &FixtureSummary) {
    for table in fixture::TABLES {
        let Some(column) = table.counter_column() else {
            continue;
        };
        let count = summary
            .tables
            .iter()
            .find(|t| t.table == table.name)
            .unwrap();
        let expected_next = count.counter.unwrap();
        let (max, next): (i64, i64) = match db.vendor() {
            Vendor::Postgres => {
                let mut client = db.pg_client();
                let max: Option<i32> = client
                    .query_one(&format!("SELECT max({column}) FROM {}", table.name), &[])
                    .unwrap()
                    .get(0);
                let seq = format!("SELECT last_value FROM {}", table.sequence_name());
                (
                    max.unwrap_or(0).into(),
                    client.query_one(&seq, &[]).unwrap().get(0),
                )
            }
            _ => {
                use mysql::prelude::Queryable;
                let mut conn = db.mysql_conn();
                let max: Option<i64> = conn
                    .query_first(format!("SELECT max({column}) FROM {}", table.name))
                    .unwrap()
                    .unwrap();
                let next: Option<i64> = conn
                    .exec_first(
                        "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                        (db.name(), table.name),
                    )
                    .unwrap();
                (max.unwrap_or(0), next.unwrap())
            }
        };
        assert_eq!(next, expected_next, "{}: counter", table.name);
        assert!(
            next > max,
            "{}: counter {next} not past max(id) {max}",
            table.name
        );
    }
}

#[test]
fn generates_carbon_shape_on_postgres() {
    check(Vendor::Postgres);
}

#[test]
fn generates_carbon_shape_on_mariadb() {
    check(Vendor::MySql);
}

#[test]
fn generates_carbon_shape_on_sqlite() {
    check(Vendor::Sqlite);
}

#[test]
fn same_seed_same_counts_on_every_vendor() {
    let scale = Scale::tiny();
    let counts: Vec<Vec<u64>> = [Vendor::Postgres, Vendor::MySql, Vendor::Sqlite]
        .into_iter()
        .map(|vendor| {
            let db = TestDb::new(vendor);
            generate(&db, &scale)
                .tables
                .iter()
                .map(|t| t.rows)
                .collect()
        })
        .collect();
    assert_eq!(counts[0], counts[1]);
    assert_eq!(counts[1], counts[2]);
}

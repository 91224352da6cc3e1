//! The resume journal is pinned to its source and target: an unfinished copy resumes only
//! into the same target, and a different target is refused. (The kill -9 test of a real
//! child process lives in carbon-upgrade-cli's tests, which run the binary.)

use carbon_db::testkit::TestDb;
use carbon_db::{CopyOptions, DbError, NoProgress, Vendor};

use crate::support::{copy, pg_dump, url};

fn unfinish(journal: &std::path::Path) {
    let text = std::fs::read_to_string(journal).unwrap();
    assert!(text.contains("\"step\":\"done\""), "{text}");
    // Keep the header, the schema step and the first table: as if killed after one table.
    let mut kept: Vec<&str> = Vec::new();
    let mut tables = 0;
    for line in text.lines() {
        if line.contains("\"kind\":\"table\"") {
            tables += 1;
            if tables > 1 {
                continue;
            }
        }
        if line.contains("post-data") || line.contains("\"step\":\"done\"") {
            continue;
        }
        kept.push(line);
    }
    std::fs::write(journal, kept.join("\n") + "\n").unwrap();
}

#[test]
fn postgres_journal_resumes_same_target_and_refuses_another() {
    let src = TestDb::new(Vendor::Postgres);
    src.pg_client()
        .batch_execute(
            "CREATE TABLE A (ID INT PRIMARY KEY, V TEXT); INSERT INTO A SELECT i, md5(i::text) FROM generate_series(1, 500) i;
             CREATE TABLE B (ID INT PRIMARY KEY); INSERT INTO B SELECT i FROM generate_series(1, 300) i;
             CREATE INDEX A_V ON A (V);",
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.jsonl");
    let opts = CopyOptions {
        logical: true,
        journal: Some(journal.clone()),
        ..CopyOptions::default()
    };
    let first = TestDb::reserve(Vendor::Postgres);
    let report = copy(&src, &first, &opts);
    assert!(!report.resumed);
    unfinish(&journal);

    // Another (empty) target with this unfinished journal: refused, nothing copied there.
    let other = TestDb::new(Vendor::Postgres);
    let e = carbon_db::copy(&url(&src), &url(&other), &opts, &NoProgress).unwrap_err();
    assert!(matches!(e, DbError::Journal { .. }), "{e}");
    assert!(e.to_string().contains("unfinished copy"), "{e}");

    // The same target: resumed (it is not empty, yet accepted), then verified equal.
    let report = copy(&src, &first, &opts);
    assert!(report.resumed);
    assert!(!report.snapshot_consistent);
    assert_eq!(pg_dump(&src), pg_dump(&first));
}

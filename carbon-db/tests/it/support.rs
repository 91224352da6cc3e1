//! Helpers shared by the carbon-db tests: run a copy, and compare both sides with tools
//! that are not ours (pg_dump, mysqldump, sqlite3).

use std::process::Command;

use carbon_db::testkit::TestDb;
use carbon_db::{CopyOptions, CopyReport, DbUrl, NoProgress};

/// `db` filled with the tiny Carbon-shaped fixture.
pub fn with_tiny_fixture(db: TestDb) -> TestDb {
    use carbon_db::Vendor;
    use carbon_db::fixture::{self, Scale};
    let scale = Scale::tiny();
    match db.vendor() {
        Vendor::Postgres => fixture::generate_postgres(&mut db.pg_client(), &scale),
        Vendor::MySql => fixture::generate_mysql(&mut db.mysql_conn(), &scale),
        _ => fixture::generate_sqlite(&mut db.sqlite_conn(), &scale),
    }
    .unwrap();
    db
}

pub fn url(db: &TestDb) -> DbUrl {
    DbUrl::parse(db.url()).unwrap()
}

pub fn copy(from: &TestDb, to: &TestDb, opts: &CopyOptions) -> CopyReport {
    let report = carbon_db::copy(&url(from), &url(to), opts, &NoProgress)
        .unwrap_or_else(|e| panic!("copy failed: {e}"));
    let verify = report.verify.as_ref().expect("verification ran");
    assert!(verify.is_ok(), "{}", verify.summary());
    report
}

/// Options for a logical (row by row) copy.
pub fn logical() -> CopyOptions {
    CopyOptions {
        logical: true,
        ..CopyOptions::default()
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `pg_dump` of a test database (schema, data, sequence values), without the lines that
/// always differ (comments, psql `\restrict` keys).
pub fn pg_dump(db: &TestDb) -> String {
    let dump = run(Command::new("pg_dump")
        .args([
            "--no-owner",
            "--no-privileges",
            "--inserts",
            "--rows-per-insert=1",
        ])
        .arg(format!("--dbname={}", db.url())));
    let mut lines: Vec<&str> = dump
        .lines()
        .filter(|l| !l.starts_with("--") && !l.starts_with('\\') && !l.is_empty())
        .collect();
    // Row order in a dump follows physical order, which a copy need not keep.
    lines.sort_unstable();
    lines.join("\n")
}

/// `mysqldump` of a test database with everything that can differ between two copies
/// of the same content removed (dump date, comments, database name).
pub fn mysqldump(db: &TestDb) -> String {
    let opts = carbon_db::testkit::mysql_opts(db.url());
    let dump = run(Command::new("mysqldump")
        .args([
            "--skip-dump-date",
            "--skip-comments",
            "--hex-blob",
            "--tz-utc",
            "--routines",
            "--triggers",
            "--skip-extended-insert",
            "--order-by-primary",
        ])
        .arg(format!("--host={}", opts.get_ip_or_hostname()))
        .arg(format!("--port={}", opts.get_tcp_port()))
        .arg(format!("--user={}", opts.get_user().unwrap_or("root")))
        .arg(db.name()));
    let mut lines: Vec<&str> = dump.lines().filter(|l| !l.is_empty()).collect();
    lines.sort_unstable();
    lines.join("\n")
}

/// `sqlite3 .dump` (the system CLI, not our bundled library).
pub fn sqlite_dump(path: &std::path::Path) -> String {
    run(Command::new("sqlite3").arg(path).arg(".dump"))
}

//! `carbon-upgrade db ...` end to end: the built binary against real servers.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use carbon_db::Vendor;
use carbon_db::drivers::mysql::prelude::Queryable;
use carbon_db::testkit::TestDb;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_carbon-upgrade"));
    c.env_remove("CARBON_FROM_PASSWORD")
        .env_remove("CARBON_TO_PASSWORD");
    c
}

fn db(args: &[&str]) -> Output {
    bin().arg("db").args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn pg_rows(db: &TestDb) -> Vec<String> {
    let mut c = db.pg_client();
    let mut out = Vec::new();
    let tables: Vec<String> = c
        .query(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for t in tables {
        for r in c
            .query(&format!("SELECT t::text FROM \"{t}\" t ORDER BY 1"), &[])
            .unwrap()
        {
            out.push(format!("{t} {}", r.get::<_, String>(0)));
        }
    }
    out
}

/// Tables big enough that a one-job copy takes a while.
fn pg_fill(db: &TestDb, tables: usize, rows: usize) {
    let mut sql = String::from("CREATE SEQUENCE REG_LOG_PK_SEQ;");
    for t in 0..tables {
        sql.push_str(&format!(
            "CREATE TABLE REG_T{t} (ID INTEGER DEFAULT NEXTVAL('REG_LOG_PK_SEQ') PRIMARY KEY, TENANT INTEGER, PAYLOAD TEXT);
             INSERT INTO REG_T{t} (TENANT, PAYLOAD) SELECT -1234, repeat(md5(i::text), 6) FROM generate_series(1, {rows}) i;"
        ));
    }
    db.pg_client().batch_execute(&sql).unwrap();
}

#[test]
fn postgres_copy_json_report_and_exit_zero() {
    let src = TestDb::new(Vendor::Postgres);
    pg_fill(&src, 3, 100);
    let dst = TestDb::reserve(Vendor::Postgres);
    let out = db(&[
        "copy",
        "--from",
        src.url(),
        "--to",
        dst.url(),
        "--json",
        "--logical",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["method"], "logical");
    assert_eq!(report["rows"], 300);
    assert_eq!(report["verify"]["mismatches"].as_array().unwrap().len(), 0);
    assert_eq!(pg_rows(&src), pg_rows(&dst));
    // Verify standalone, then tamper and see it fail with exit 1, naming the table.
    let out = db(&["verify", "--from", src.url(), "--to", dst.url()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    dst.pg_client()
        .batch_execute("DELETE FROM reg_t1 WHERE id = (SELECT min(id) FROM reg_t1)")
        .unwrap();
    let out = db(&["verify", "--from", src.url(), "--to", dst.url()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("reg_t1"), "{}", stderr(&out));
    let out = db(&["inspect", dst.url(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// `db verify` with every table counted as big (split into ctid ranges).
fn split_verify(src: &TestDb, dst: &TestDb) -> Output {
    bin()
        .env("CARBON_DB_SPLIT_BYTES", "1")
        .args(["db", "verify", "--jobs", "3", "--from", src.url()])
        .args(["--to", dst.url()])
        .output()
        .unwrap()
}

#[test]
fn postgres_big_tables_split_into_ctid_ranges_copy_and_verify() {
    let src = TestDb::new(Vendor::Postgres);
    pg_fill(&src, 2, 3000);
    src.pg_client()
        .batch_execute("ALTER TABLE reg_t0 ADD COLUMN twice INTEGER GENERATED ALWAYS AS (id * 2) STORED; DELETE FROM reg_t1 WHERE id % 7 = 0")
        .unwrap();
    let dst = TestDb::reserve(Vendor::Postgres);
    // Every table counts as big: each is copied and digested in 2 × jobs ctid ranges.
    let out = bin()
        .env("CARBON_DB_SPLIT_BYTES", "1")
        .args([
            "db",
            "copy",
            "--logical",
            "--jobs",
            "3",
            "--json",
            "--from",
            src.url(),
            "--to",
            dst.url(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(pg_rows(&src), pg_rows(&dst));
    let out = split_verify(&src, &dst);
    assert!(out.status.success(), "{}", stderr(&out));
    dst.pg_client()
        .batch_execute("UPDATE reg_t0 SET payload = 'x' WHERE id = 2999")
        .unwrap();
    let out = split_verify(&src, &dst);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("reg_t0"), "{}", stderr(&out));
}

#[test]
fn postgres_bad_input_exit_codes_one_line_no_password() {
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &[
                "copy",
                "--from",
                "postgres://u:hunter2@127.0.0.1:1/a",
                "--to",
                "mysql://u@127.0.0.1:1/b",
            ],
            2,
            "must stay on one vendor",
        ),
        (
            &[
                "copy",
                "--from",
                "jdbc:oracle:thin:u/hunter2@h:1521/X",
                "--to",
                "postgres://h/b",
            ],
            2,
            "unsupported vendor Oracle",
        ),
        (
            &[
                "copy",
                "--from",
                "postgres://u:hunter2@127.0.0.1:1/a",
                "--to",
                "postgres://127.0.0.1:1/b",
            ],
            2,
            "cannot connect to postgres://127.0.0.1:1/b",
        ),
        (
            &[
                "copy",
                "--from",
                "postgres://u:hunter2@h/a",
                "--to",
                "jdbc:postgresql://h:5432/a",
            ],
            3,
            "is the source database itself",
        ),
        (
            &[
                "copy",
                "--from",
                "postgres://u:hunter2@h:x/a",
                "--to",
                "postgres://h/b",
            ],
            2,
            "malformed database URL",
        ),
    ];
    for (args, code, text) in cases {
        let out = db(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {err}");
        assert!(err.contains(text), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}

#[test]
fn postgres_non_empty_target_is_unsafe_exit_3() {
    let src = TestDb::new(Vendor::Postgres);
    pg_fill(&src, 1, 10);
    let dst = TestDb::new(Vendor::Postgres);
    dst.pg_client()
        .batch_execute("CREATE TABLE keep_me (id int)")
        .unwrap();
    let out = db(&["copy", "--from", src.url(), "--to", dst.url()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("keep_me"));
}

/// `db copy --logical --jobs JOBS --journal JOURNAL` from `src` to `dst`.
fn journaled_copy(src: &TestDb, dst: &TestDb, journal: &Path, jobs: &str) -> Command {
    let mut cmd = bin();
    cmd.args([
        "db",
        "copy",
        "--logical",
        "--jobs",
        jobs,
        "--from",
        src.url(),
    ])
    .args(["--to", dst.url()])
    .arg("--journal")
    .arg(journal);
    cmd
}

/// Starts a copy, SIGKILLs it once the journal shows some tables done (and not all),
/// then runs it again: the second run resumes and the result equals the source.
fn kill_and_resume(
    src: &TestDb,
    dst: &TestDb,
    journal: &Path,
    rows: impl Fn() -> (Vec<String>, Vec<String>),
) {
    let mut child = journaled_copy(src, dst, journal, "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let killed_at = loop {
        let done = std::fs::File::open(journal)
            .map(|f| {
                std::io::BufReader::new(f)
                    .lines()
                    .map_while(Result::ok)
                    .filter(|l| l.contains("\"kind\":\"table\""))
                    .count()
            })
            .unwrap_or(0);
        if done >= 2 {
            child.kill().unwrap(); // SIGKILL
            break done;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "copy finished before it could be killed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no progress in the journal"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    child.wait().unwrap();
    let text = std::fs::read_to_string(journal).unwrap();
    assert!(
        !text.contains("\"step\":\"done\""),
        "the killed run claims completion:\n{text}"
    );
    assert!(killed_at >= 2);
    let out = journaled_copy(src, dst, journal, "2")
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["resumed"], true);
    assert_eq!(report["snapshot_consistent"], false);
    let (s, d) = rows();
    assert_eq!(s.len(), d.len());
    assert!(s == d, "rows differ after resume");
}

#[test]
fn postgres_kill_9_mid_copy_then_resume() {
    let src = TestDb::new(Vendor::Postgres);
    pg_fill(&src, 24, 20_000);
    let dst = TestDb::reserve(Vendor::Postgres);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("copy.jsonl");
    kill_and_resume(&src, &dst, &journal, || (pg_rows(&src), pg_rows(&dst)));
    // Counters came through too.
    let next: i64 = dst
        .pg_client()
        .query_one("SELECT nextval('reg_log_pk_seq')", &[])
        .unwrap()
        .get(0);
    assert_eq!(next, 24 * 20_000 + 1);
}

fn my_rows(db: &TestDb) -> Vec<String> {
    let mut c = db.mysql_conn();
    let tables: Vec<String> = c.query("SHOW TABLES").unwrap();
    let mut out = Vec::new();
    for t in tables {
        let rows: Vec<(i64, i64, String)> =
            c.query(format!("SELECT * FROM `{t}` ORDER BY 1")).unwrap();
        out.extend(rows.into_iter().map(|r| format!("{t} {r:?}")));
    }
    out
}

#[test]
fn mariadb_kill_9_mid_copy_then_resume() {
    let src = TestDb::new(Vendor::MySql);
    let mut c = src.mysql_conn();
    for t in 0..16 {
        c.query_drop(format!(
            "CREATE TABLE REG_T{t} (ID INTEGER AUTO_INCREMENT PRIMARY KEY, TENANT INTEGER, PAYLOAD TEXT)"
        ))
        .unwrap();
        c.query_drop(format!(
            "INSERT INTO REG_T{t} (TENANT, PAYLOAD) SELECT -1234, REPEAT(MD5(seq), 6) FROM seq_1_to_20000"
        ))
        .unwrap();
    }
    let dst = TestDb::reserve(Vendor::MySql);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("copy.jsonl");
    kill_and_resume(&src, &dst, &journal, || (my_rows(&src), my_rows(&dst)));
}

#[test]
fn sqlite_copy_and_h2_files_copy() {
    let src = TestDb::new(Vendor::Sqlite);
    src.sqlite_conn()
        .execute_batch(
            "CREATE TABLE T (A INTEGER PRIMARY KEY, B TEXT); INSERT INTO T VALUES (1, 'x');",
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let to = format!("sqlite:{}", dir.path().join("copy.db").display());
    let out = db(&["copy", "--from", src.url(), "--to", &to]);
    assert!(out.status.success(), "{}", stderr(&out));
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join("repository/database")).unwrap();
    std::fs::write(
        home.join("repository/database/WSO2CARBON_DB.h2.db"),
        b"-- H2 0.5/B --\n\x00\x01payload",
    )
    .unwrap();
    std::fs::write(
        home.join("repository/database/WSO2CARBON_DB.lock.db"),
        b"lock",
    )
    .unwrap();
    let out = bin()
        .args([
            "db",
            "copy",
            "--from",
            "jdbc:h2:repository/database/WSO2CARBON_DB;DB_CLOSE_ON_EXIT=FALSE",
            "--to",
            "jdbc:h2:staging/WSO2CARBON_DB",
            "--home",
        ])
        .arg(&home)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // A lock file beside the source (server running, or killed) is reported.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("WSO2CARBON_DB.lock.db"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        std::fs::read(home.join("repository/database/WSO2CARBON_DB.h2.db")).unwrap(),
        std::fs::read(home.join("staging/WSO2CARBON_DB.h2.db")).unwrap()
    );
}

/// Exit 0 means complete and verified; a copy made with `--no-verify` is not proven.
#[test]
fn no_verify_copy_exits_1_sqlite() {
    let src = carbon_db::testkit::TestDb::new(carbon_db::Vendor::Sqlite);
    src.sqlite_conn()
        .execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let to = format!("sqlite:{}", dir.path().join("staging.db").display());
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_carbon-upgrade"))
        .args([
            "db",
            "copy",
            "--from",
            src.url(),
            "--to",
            &to,
            "--no-verify",
        ])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("not verified"));
    assert!(
        dir.path().join("staging.db").exists(),
        "the copy itself was made"
    );
}

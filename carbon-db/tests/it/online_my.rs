//! Online mode on MariaDB: copy at a snapshot while the Carbon-like writer runs, follow the
//! binary log into the copy, drain, prove, remove — on the private ROW-binlog server
//! (`CARBON_TEST_MYSQL_BINLOG_URL`); the preflight against the shared server (no binlog).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use carbon_db::fixture::writer::Writer;
use carbon_db::online::{self, OnlineError, OnlineOptions, Phase, State, Stream, Until};
use carbon_db::testkit::TestDb;
use carbon_db::{DbUrl, NoProgress, Vendor};
use mysql::prelude::Queryable;

use crate::support::{url, with_tiny_fixture};

fn options() -> OnlineOptions {
    OnlineOptions {
        poll_ms: 50,
        ..OnlineOptions::default()
    }
}

/// A fixture source with the writer's table, an absent target, and a stream between them.
struct Setup {
    src: TestDb,
    dst: TestDb,
    stream: Stream,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let src = with_tiny_fixture(TestDb::new_streaming(Vendor::MySql));
    Writer::prepare(&url(&src)).unwrap();
    let dst = TestDb::reserve_streaming(Vendor::MySql);
    let dir = tempfile::tempdir().unwrap();
    let stream = Stream::new(url(&src), url(&dst), dir.path().to_path_buf(), dst.name());
    Setup {
        src,
        dst,
        stream,
        _dir: dir,
    }
}

/// The source's catalog: what a stream must not change there.
fn catalog(db: &TestDb) -> Vec<String> {
    let mut c = db.mysql_conn();
    c.query(format!(
        "SELECT CONCAT_WS(' ', TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_COLLATION) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = '{}' ORDER BY 1",
        db.name()
    ))
    .unwrap()
}

fn equal(from: &DbUrl, to: &DbUrl) {
    let v = carbon_db::verify(from, to, 2, &NoProgress).unwrap();
    assert!(v.is_ok(), "independent verify: {}", v.summary());
}

fn follow(stream: &Stream, until: Until) -> carbon_db::online::FollowReport {
    online::follow(
        stream,
        &options(),
        until,
        &AtomicBool::new(false),
        &NoProgress,
    )
    .unwrap_or_else(|e| panic!("follow: {}", carbon_db::error_chain(&e)))
}

#[test]
fn online_mariadb_copy_follow_prove_remove_with_writer_running() {
    copy_follow_prove_remove(2);
}

#[test]
fn online_mariadb_one_reader_without_lock_with_writer_running() {
    copy_follow_prove_remove(1);
}

#[allow(clippy::print_stderr)] // the timings measured, shown with --nocapture
fn copy_follow_prove_remove(jobs: usize) {
    let options = || OnlineOptions { jobs, ..options() };
    let s = setup();
    let before = catalog(&s.src);
    let writer = Writer::spawn(&url(&s.src), 1, 200).unwrap();
    let t = Instant::now();
    let state = online::begin(&s.stream, &options(), &NoProgress)
        .unwrap_or_else(|e| panic!("begin: {}", carbon_db::error_chain(&e)));
    let begin_ms = t.elapsed().as_millis();
    assert_eq!(state.phase, Phase::Following);
    assert!(state.snapshot.is_some() && state.start == state.snapshot);
    // Following while the writer runs, from another thread, stopped by the flag.
    let stop = AtomicBool::new(false);
    let (report, stats) = std::thread::scope(|scope| {
        let h = scope
            .spawn(|| online::follow(&s.stream, &options(), Until::Stopped, &stop, &NoProgress));
        std::thread::sleep(std::time::Duration::from_secs(3));
        let stats = writer.stop().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        (h.join().unwrap(), stats)
    });
    let report = report.unwrap_or_else(|e| panic!("follow: {}", carbon_db::error_chain(&e)));
    assert!(report.transactions > 0, "{report:?}");
    let t = Instant::now();
    let drained = follow(&s.stream, Until::SourceEnd);
    let drain_ms = t.elapsed().as_millis();
    let state = State::load(&s.stream).unwrap();
    assert_eq!(state.phase, Phase::Drained);
    let proof = online::prove(&s.stream, &options(), false, &NoProgress).unwrap();
    assert!(proof.verify.is_ok(), "{}", proof.verify.summary());
    assert!(proof.keys_compared > 0, "{proof:?}");
    let full = online::prove(&s.stream, &options(), true, &NoProgress).unwrap();
    assert!(full.verify.is_ok(), "{}", full.verify.summary());
    equal(&url(&s.src), &url(&s.dst));
    let lag = online::lag(&s.stream).unwrap();
    eprintln!(
        "mariadb online ({jobs} readers): writer {} tx ({stats:?}); begin {begin_ms} ms ({}); follow {} tx / {} rows in {} ms; drain {} tx in {drain_ms} ms; counters {} in {} ms; touched-key proof {} keys in {} ms; full proof {} ms; max lag {} ms; lag {lag:?}",
        stats.transactions,
        state.snapshot_verified.clone().unwrap_or_default(),
        report.transactions,
        report.rows,
        report.elapsed_ms,
        drained.transactions,
        proof.counters_set,
        proof.counters_ms,
        proof.keys_compared,
        proof.proof_ms,
        full.proof_ms,
        state.max_lag_ms
    );
    assert!(stats.transactions > 100, "{stats:?}");
    assert!(
        online::leftovers(&url(&s.dst))
            .unwrap()
            .contains(&s.stream.name)
    );
    let removed = online::remove(&s.stream).unwrap();
    assert_eq!(removed.phase, Phase::Removed);
    assert!(removed.created.iter().all(|c| c.removed_ms.is_some()));
    assert!(
        !online::leftovers(&url(&s.dst))
            .unwrap()
            .contains(&s.stream.name)
    );
    // Idempotent.
    online::remove(&s.stream).unwrap();
    assert_eq!(before, catalog(&s.src), "the source's catalog changed");
}

#[test]
fn online_mariadb_resumes_without_applying_twice() {
    let s = setup();
    online::begin(&s.stream, &options(), &NoProgress).unwrap();
    // Interrupted follows: each applies what it read, the next continues from the target's
    // committed position; a follow that finds nothing new applies nothing.
    Writer::run(&url(&s.src), 2, 150).unwrap();
    let behind = online::lag(&s.stream).unwrap();
    assert!(behind.bytes > 0, "{behind:?}");
    let stop = AtomicBool::new(true);
    let none = online::follow(&s.stream, &options(), Until::Stopped, &stop, &NoProgress).unwrap();
    assert_eq!(none.transactions, 0, "a stopped follow applies nothing");
    let first = follow(&s.stream, Until::SourceEnd);
    // An UPDATE that changes nothing is not in the binary log: at most 150.
    assert!((100..=150).contains(&first.transactions), "{first:?}");
    let again = follow(&s.stream, Until::SourceEnd);
    assert_eq!(again.transactions, 0, "nothing applied twice: {again:?}");
    // A crash after the target commit but before state.json was saved: the state says less
    // than the target; the target's position wins.
    // (Not the writer again: its tenant ids repeat across runs.)
    let mut src = s.src.mysql_conn();
    for i in 0..40 {
        src.query_drop(format!(
            "UPDATE {} SET TOKEN_STATE = 'REVOKED{i}' ORDER BY TOKEN_ID LIMIT 1",
            carbon_db::fixture::writer::TOKEN_TABLE
        ))
        .unwrap();
    }
    let saved = std::fs::read(s.stream.state_file()).unwrap();
    follow(&s.stream, Until::SourceEnd);
    std::fs::write(s.stream.state_file(), saved).unwrap();
    let after_crash = follow(&s.stream, Until::SourceEnd);
    assert_eq!(after_crash.transactions, 0, "{after_crash:?}");
    let proof = online::prove(&s.stream, &options(), false, &NoProgress).unwrap();
    assert!(proof.verify.is_ok(), "{}", proof.verify.summary());
    equal(&url(&s.src), &url(&s.dst));
    // The touched-key proof sees a touched row changed on the target.
    s.dst
        .mysql_conn()
        .query_drop(format!(
            "UPDATE {} SET TOKEN_STATE = 'TAMPERED' ORDER BY TOKEN_ID LIMIT 1",
            carbon_db::fixture::writer::TOKEN_TABLE
        ))
        .unwrap();
    let proof = online::prove(&s.stream, &options(), false, &NoProgress).unwrap();
    assert!(!proof.verify.is_ok(), "a tampered touched row went unseen");
    assert_eq!(
        proof.verify.mismatches[0].object,
        carbon_db::fixture::writer::TOKEN_TABLE
    );
    online::remove(&s.stream).unwrap();
}

/// Tables without a primary key: the proof counts every touched row image on both sides. A
/// touched row changed on the target behind the follower's back is a mismatch naming the
/// table; so it is when the touched-keys file predates images (the table compared in full).
#[test]
fn online_mariadb_proof_sees_a_keyless_row_changed_on_the_target() {
    let s = setup();
    online::begin(&s.stream, &options(), &NoProgress).unwrap();
    let (prop, tenant): (i64, i64) = s
        .src
        .mysql_conn()
        .query_first(
            "SELECT REG_PROPERTY_ID, REG_TENANT_ID FROM REG_RESOURCE_PROPERTY ORDER BY 1, 2 LIMIT 1",
        )
        .unwrap()
        .unwrap();
    let row = format!("REG_PROPERTY_ID = {prop} AND REG_TENANT_ID = {tenant}");
    s.src
        .mysql_conn()
        .query_drop(format!(
            "UPDATE REG_RESOURCE_PROPERTY SET REG_RESOURCE_NAME = 'touched' WHERE {row}"
        ))
        .unwrap();
    follow(&s.stream, Until::SourceEnd);
    let touched = s.stream.dir.join("touched-keys.jsonl");
    let text = std::fs::read_to_string(&touched).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("REG_RESOURCE_PROPERTY") && l.contains("\"image\"")),
        "{text}"
    );
    let proof = online::prove(&s.stream, &options(), false, &NoProgress).unwrap();
    assert!(proof.verify.is_ok(), "{}", proof.verify.summary());
    assert!(
        proof.proof_steps.contains("images"),
        "{}",
        proof.proof_steps
    );

    s.dst
        .mysql_conn()
        .query_drop(format!(
            "UPDATE REG_RESOURCE_PROPERTY SET REG_RESOURCE_NAME = 'edited behind its back' WHERE {row}"
        ))
        .unwrap();
    let proof = online::prove(&s.stream, &options(), false, &NoProgress).unwrap();
    assert!(
        !proof.verify.is_ok(),
        "a key-less row changed on the target went unseen"
    );
    assert!(
        proof
            .verify
            .mismatches
            .iter()
            .all(|m| m.object == "REG_RESOURCE_PROPERTY" && m.kind == "content"),
        "{:?}",
        proof.verify.mismatches
    );
    assert!(
        proof.verify.mismatches[0]
            .detail
            .contains("time(s) on the source, 0 on the target"),
        "{:?}",
        proof.verify.mismatches
    );

    // A line of the older format (no image): that table is compared in full.
    {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&touched)
            .unwrap();
        f.write_all(b"{\"table\":\"REG_RESOURCE_PROPERTY\",\"key\":[]}\n")
            .unwrap();
    }
    let proof = online::prove(&s.stream, &options(), false, &NoProgress).unwrap();
    assert!(!proof.verify.is_ok(), "the full comparison missed the edit");
    assert_eq!(
        proof.verify.mismatches.len(),
        1,
        "{:?}",
        proof.verify.mismatches
    );
    assert_eq!(proof.verify.mismatches[0].object, "REG_RESOURCE_PROPERTY");
    assert!(
        proof.verify.mismatches[0]
            .detail
            .contains("contents differ")
    );
    assert!(
        proof.proof_steps.contains("whole tables"),
        "{}",
        proof.proof_steps
    );
    online::remove(&s.stream).unwrap();
}

#[test]
fn online_mariadb_refuses_ddl_and_divergence() {
    let s = setup();
    online::begin(&s.stream, &options(), &NoProgress).unwrap();
    // Divergence: a row deleted on the target, then updated on the source.
    let mut dst = s.dst.mysql_conn();
    dst.query_drop("SET foreign_key_checks = 0").unwrap();
    let (id, tenant): (i64, i64) = dst
        .query_first("SELECT UM_ID, UM_TENANT_ID FROM UM_USER ORDER BY UM_ID LIMIT 1")
        .unwrap()
        .unwrap();
    dst.query_drop(format!(
        "DELETE FROM UM_USER WHERE UM_ID = {id} AND UM_TENANT_ID = {tenant}"
    ))
    .unwrap();
    let mut src = s.src.mysql_conn();
    src.query_drop(format!(
        "UPDATE UM_USER SET UM_USER_PASSWORD = 'changed' WHERE UM_ID = {id} AND UM_TENANT_ID = {tenant}"
    ))
    .unwrap();
    let err = online::follow(
        &s.stream,
        &options(),
        Until::SourceEnd,
        &AtomicBool::new(false),
        &NoProgress,
    )
    .unwrap_err();
    match &err {
        OnlineError::Divergence { table, key, .. } => {
            assert_eq!(table, "UM_USER");
            assert!(key.contains(&format!("UM_ID={id}")), "{key}");
        }
        other => panic!("expected a divergence, got {other}"),
    }
    // Nothing of that transaction was applied; the position did not move past it.
    let again = online::follow(
        &s.stream,
        &options(),
        Until::SourceEnd,
        &AtomicBool::new(false),
        &NoProgress,
    );
    assert!(matches!(again, Err(OnlineError::Divergence { .. })));
    online::remove(&s.stream).unwrap();

    // DDL on the source while following.
    let s = setup();
    online::begin(&s.stream, &options(), &NoProgress).unwrap();
    Writer::run(&url(&s.src), 4, 10).unwrap();
    s.src
        .mysql_conn()
        .query_drop("ALTER TABLE UM_USER ADD COLUMN EXTRA_COL INT")
        .unwrap();
    let err = online::follow(
        &s.stream,
        &options(),
        Until::SourceEnd,
        &AtomicBool::new(false),
        &NoProgress,
    )
    .unwrap_err();
    assert!(matches!(err, OnlineError::Ddl { .. }), "{err}");
    assert!(err.to_string().contains("ALTER TABLE"), "{err}");
    online::remove(&s.stream).unwrap();
}

/// Types through the binary log: TIMESTAMP under a non-UTC session, DECIMAL, unsigned,
/// NULL / '' / '\N', latin1 and utf8mb4 text, blobs up to 1 MiB + 1, a table without a primary
/// key with duplicate rows, composite keys with tenant −1234.
#[test]
fn online_mariadb_types_and_tables_without_key() {
    let src = TestDb::new_streaming(Vendor::MySql);
    let mut c = src.mysql_conn();
    c.query_drop(
        "CREATE TABLE T (ID INT NOT NULL, TENANT INT NOT NULL, TS TIMESTAMP NULL DEFAULT NULL, DT DATETIME(6), \
         D DECIMAL(30,10), U BIGINT UNSIGNED, TU TINYINT UNSIGNED, L VARCHAR(50) CHARACTER SET latin1, \
         S VARCHAR(100) CHARACTER SET utf8mb4, B LONGBLOB, F DOUBLE, PRIMARY KEY (ID, TENANT)) ENGINE=InnoDB",
    )
    .unwrap();
    c.query_drop("CREATE TABLE NOPK (A INT, B VARCHAR(20), C TEXT) ENGINE=InnoDB")
        .unwrap();
    c.query_drop(
        "INSERT INTO NOPK VALUES (1, 'dup', NULL), (1, 'dup', NULL), (2, 'Ab', ''), (2, 'ab', '')",
    )
    .unwrap();
    // Row images of other types: compared by count at the proof.
    c.query_drop(
        "CREATE TABLE NOPK2 (TS TIMESTAMP NULL DEFAULT NULL, F FLOAT, G DOUBLE, D DECIMAL(10,3), \
         L VARCHAR(10) CHARACTER SET latin1, N INT) ENGINE=InnoDB",
    )
    .unwrap();
    c.query_drop(
        "INSERT INTO NOPK2 VALUES ('2016-02-20 23:30:00', 0.1, 0.3, 1.005, 'caf\u{e9}', 1), \
         (NULL, -2.5, NULL, NULL, NULL, 2)",
    )
    .unwrap();
    let dst = TestDb::reserve_streaming(Vendor::MySql);
    let dir = tempfile::tempdir().unwrap();
    let stream = Stream::new(url(&src), url(&dst), dir.path().to_path_buf(), dst.name());
    // One reader: no global lock, the snapshot's own binary log position.
    let one = OnlineOptions {
        jobs: 1,
        ..options()
    };
    let state = online::begin(&stream, &one, &NoProgress).unwrap();
    assert!(
        state
            .snapshot_verified
            .as_deref()
            .unwrap_or("")
            .contains("no global lock"),
        "{state:?}"
    );
    c.query_drop("SET time_zone = '-03:00'").unwrap();
    c.query_drop(
        "INSERT INTO T VALUES (1, -1234, '2016-02-20 23:30:00', '1999-12-31 23:59:59.999999', 12345678901234567890.0123456789, \
         18446744073709551615, 255, 'caf\u{e9}', '漢字 🔐', REPEAT(X'00FF', 524289), 0.1), \
         (2, -1234, NULL, NULL, NULL, NULL, NULL, '', '\\\\N', X'', NULL), \
         (2, 1, '2038-01-19 00:00:00', '2000-01-01 00:00:00', -0.5, 0, 0, NULL, 'it''s \\\\ here', NULL, -2.5)",
    )
    .unwrap();
    c.query_drop("UPDATE T SET S = 'changed', TS = '2016-10-16 00:30:00' WHERE ID = 1")
        .unwrap();
    c.query_drop("UPDATE T SET TU = TU WHERE ID = 2 AND TENANT = 1")
        .unwrap();
    c.query_drop("DELETE FROM T WHERE ID = 2 AND TENANT = -1234")
        .unwrap();
    c.query_drop("UPDATE NOPK SET C = 'one' WHERE A = 1 LIMIT 1")
        .unwrap();
    c.query_drop("DELETE FROM NOPK WHERE B = 'ab' AND A = 2 AND BINARY B = 'ab'")
        .unwrap();
    c.query_drop("UPDATE NOPK SET B = 'x' WHERE B = 'Ab'")
        .unwrap();
    c.query_drop("UPDATE NOPK2 SET N = N + 10").unwrap();
    let report = follow(&stream, Until::SourceEnd);
    // The UPDATE that changed nothing is not in the binary log.
    assert_eq!(report.transactions, 7, "{report:?}");
    let proof = online::prove(&stream, &options(), false, &NoProgress).unwrap();
    assert!(proof.verify.is_ok(), "{}", proof.verify.summary());
    let proof = online::prove(&stream, &options(), true, &NoProgress).unwrap();
    assert!(proof.verify.is_ok(), "{}", proof.verify.summary());
    equal(&url(&src), &url(&dst));
    let ts: Vec<(i64, Option<String>)> = dst
        .mysql_conn()
        .query("SELECT ID, CAST(UNIX_TIMESTAMP(TS) AS CHAR) FROM T ORDER BY ID")
        .unwrap();
    let want: Vec<(i64, Option<String>)> = c
        .query("SELECT ID, CAST(UNIX_TIMESTAMP(TS) AS CHAR) FROM T ORDER BY ID")
        .unwrap();
    assert_eq!(ts, want);
    online::remove(&stream).unwrap();
}

#[test]
fn online_mariadb_requirements_on_the_shared_server_name_log_bin() {
    let shared = TestDb::new(Vendor::MySql);
    let unmet = online::requirements(&url(&shared)).unwrap();
    let log_bin = unmet
        .iter()
        .find(|u| u.setting == "log_bin")
        .unwrap_or_else(|| panic!("no log_bin line in {unmet:?}"));
    assert!(log_bin.restart);
    let line = log_bin.to_string();
    assert!(
        line.contains("log_bin is OFF") && line.contains("restart"),
        "{line}"
    );
    // Begin refuses with the same lines, before creating anything.
    let dst = TestDb::reserve(Vendor::MySql);
    let dir = tempfile::tempdir().unwrap();
    let stream = Stream::new(
        url(&shared),
        url(&dst),
        dir.path().to_path_buf(),
        dst.name(),
    );
    let err = online::begin(&stream, &options(), &NoProgress).unwrap_err();
    assert!(matches!(err, OnlineError::Requirements { .. }), "{err}");
    assert!(
        !online::leftovers(&url(&dst))
            .unwrap()
            .contains(&stream.name)
    );
    // The streaming server meets them.
    let streaming = TestDb::new_streaming(Vendor::MySql);
    let unmet = online::requirements(&url(&streaming)).unwrap();
    assert!(unmet.is_empty(), "{unmet:?}");
}

/// The child of [`online_mariadb_kill_9_during_follow_then_resume`]: follows until killed.
#[test]
#[ignore = "run as a child process by online_mariadb_kill_9_during_follow_then_resume"]
fn online_mariadb_follow_child() {
    let var = |n: &str| std::env::var(n).unwrap();
    let stream = Stream::new(
        DbUrl::parse(&var("CARBON_ONLINE_CHILD_FROM")).unwrap(),
        DbUrl::parse(&var("CARBON_ONLINE_CHILD_TO")).unwrap(),
        var("CARBON_ONLINE_CHILD_DIR").into(),
        &var("CARBON_ONLINE_CHILD_ID"),
    );
    let small = OnlineOptions {
        batch_changes: 5,
        ..options()
    };
    online::follow(
        &stream,
        &small,
        Until::SourceEnd,
        &AtomicBool::new(false),
        &NoProgress,
    )
    .unwrap();
}

/// kill -9 of a follower in the middle of applying: the next follow resumes from the target's
/// committed position, applies the rest once, and the target proves equal. Also measures the
/// apply throughput of a backlog.
#[test]
#[allow(clippy::print_stderr)] // the throughput measured, shown with --nocapture
fn online_mariadb_kill_9_during_follow_then_resume() {
    let s = setup();
    online::begin(&s.stream, &options(), &NoProgress).unwrap();
    let stats = Writer::run(&url(&s.src), 7, 1500).unwrap();
    let touched = s.stream.dir.join("touched-keys.jsonl");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "online_my::online_mariadb_follow_child",
            "--ignored",
            "--nocapture",
        ])
        .env("CARBON_ONLINE_CHILD_FROM", s.src.url())
        .env("CARBON_ONLINE_CHILD_TO", s.dst.url())
        .env("CARBON_ONLINE_CHILD_DIR", &s.stream.dir)
        .env("CARBON_ONLINE_CHILD_ID", s.dst.name())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once it has applied something, mid-way.
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::metadata(&touched).map_or(0, |m| m.len()) < 20_000 && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child finished before it was killed");
    let applied_before: u64 = {
        let mut c = s.dst.mysql_conn();
        c.query_first(format!(
            "SELECT COUNT(*) FROM {}",
            carbon_db::fixture::writer::TOKEN_TABLE
        ))
        .unwrap()
        .unwrap()
    };
    // As if the kill had cut a line of the touched keys in half.
    {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&touched)
            .unwrap();
        f.write_all(br#"{"table":"IDN_OAUTH2_ACC"#).unwrap();
    }
    let t = Instant::now();
    let rest = follow(&s.stream, Until::SourceEnd);
    let text = std::fs::read_to_string(&touched).unwrap();
    let bad: Vec<&str> = text
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_err())
        .collect();
    // (The kill itself may have cut the line this one was appended to.)
    assert!(
        bad.len() == 1 && bad[0].ends_with(r#"{"table":"IDN_OAUTH2_ACC"#),
        "only the cut line is unreadable: {bad:?}"
    );
    let ms = t.elapsed().as_millis().max(1);
    assert!(
        rest.transactions > 0 && rest.transactions < stats.transactions,
        "{rest:?}"
    );
    let proof = online::prove(&s.stream, &options(), false, &NoProgress).unwrap();
    assert!(proof.verify.is_ok(), "{}", proof.verify.summary());
    equal(&url(&s.src), &url(&s.dst));
    eprintln!(
        "mariadb kill -9: {applied_before} tokens on the target at the kill; the resumed follow applied {} tx / {} rows in {ms} ms ({:.0} tx/s); touched-key proof {} keys in {} ms",
        rest.transactions,
        rest.rows,
        rest.transactions as f64 * 1000.0 / ms as f64,
        proof.keys_compared,
        proof.proof_ms
    );
    online::remove(&s.stream).unwrap();
}

/// A source user without RELOAD: the preflight says so in one line; a copy with several
/// readers is refused before anything is created; one reader needs no lock and works.
#[test]
fn online_mariadb_without_reload_needs_one_reader() {
    let s = setup();
    let user = format!("noreload_{}", s.dst.name());
    let mut root = s.src.mysql_conn();
    let hosts = ["%", "localhost", "127.0.0.1"];
    for host in hosts {
        root.query_drop(format!(
            "CREATE USER '{user}'@'{host}' IDENTIFIED BY 'pw-1'"
        ))
        .unwrap();
        root.query_drop(format!(
            "GRANT SELECT, SHOW VIEW ON `{}`.* TO '{user}'@'{host}'",
            s.src.name()
        ))
        .unwrap();
        root.query_drop(format!(
            "GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '{user}'@'{host}'"
        ))
        .unwrap();
    }
    let from = url(&s.src).with_credentials(Some(user.clone()), Some("pw-1".into()));
    let unmet = online::requirements(&from).unwrap();
    let settings: Vec<&str> = unmet.iter().map(|u| u.setting.as_str()).collect();
    assert_eq!(settings, ["privilege RELOAD"], "{unmet:?}");
    assert!(!unmet[0].to_string().contains("pw-1"));
    let stream = Stream::new(from, url(&s.dst), s.stream.dir.clone(), s.dst.name());
    let two = OnlineOptions {
        jobs: 2,
        ..options()
    };
    let err = online::begin(&stream, &two, &NoProgress).unwrap_err();
    assert!(err.to_string().contains("RELOAD"), "{err}");
    assert!(
        !online::leftovers(&url(&s.dst))
            .unwrap()
            .contains(&stream.name)
    );
    let one = OnlineOptions {
        jobs: 1,
        ..options()
    };
    online::begin(&stream, &one, &NoProgress).unwrap();
    Writer::run(&url(&s.src), 5, 60).unwrap();
    follow(&stream, Until::SourceEnd);
    let proof = online::prove(&stream, &one, false, &NoProgress).unwrap();
    assert!(proof.verify.is_ok(), "{}", proof.verify.summary());
    online::remove(&stream).unwrap();
    for host in hosts {
        root.query_drop(format!("DROP USER '{user}'@'{host}'"))
            .unwrap();
    }
}

/// An online copy reads one snapshot: it cannot continue from a journal.
#[test]
fn online_mariadb_copy_refuses_a_journal() {
    let src = TestDb::new_streaming(Vendor::MySql);
    let dst = TestDb::reserve_streaming(Vendor::MySql);
    let dir = tempfile::tempdir().unwrap();
    let opts = carbon_db::CopyOptions {
        online: true,
        journal: Some(dir.path().join("journal")),
        ..carbon_db::CopyOptions::default()
    };
    let err = carbon_db::copy(&url(&src), &url(&dst), &opts, &NoProgress).unwrap_err();
    assert!(
        err.to_string().contains("cannot be resumed from a journal"),
        "{err}"
    );
    assert!(!dir.path().join("journal").exists());
}

/// begin interrupted during the copy (phase Copying, a partial target): the next begin resets
/// the staging database this run claimed and copies again at a new snapshot.
#[test]
fn online_mariadb_begin_interrupted_during_copy_starts_the_copy_again() {
    let s = setup();
    online::begin(&s.stream, &options(), &NoProgress).unwrap();
    // Back to "copying", with the target partly different, as after a kill during the copy.
    let mut state = State::load(&s.stream).unwrap();
    state.phase = Phase::Copying;
    state.save(&s.stream).unwrap();
    s.dst
        .mysql_conn()
        .query_drop("DELETE FROM REG_LOG ORDER BY REG_LOG_ID LIMIT 3")
        .unwrap();
    Writer::run(&url(&s.src), 9, 30).unwrap();
    let again = online::begin(&s.stream, &options(), &NoProgress).unwrap();
    assert_eq!(again.phase, Phase::Following);
    assert_ne!(again.snapshot, state.snapshot, "a new snapshot");
    assert_eq!(
        again
            .created
            .iter()
            .filter(|c| c.removed_ms.is_none())
            .count(),
        1,
        "{:?}",
        again.created
    );
    Writer::run(&url(&s.src), 10, 30).unwrap();
    follow(&s.stream, Until::SourceEnd);
    let proof = online::prove(&s.stream, &options(), false, &NoProgress).unwrap();
    assert!(proof.verify.is_ok(), "{}", proof.verify.summary());
    equal(&url(&s.src), &url(&s.dst));
    online::remove(&s.stream).unwrap();
}

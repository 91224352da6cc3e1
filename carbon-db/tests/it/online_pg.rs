//! Online mode on PostgreSQL: the private `wal_level=logical` server, a Carbon-like writer
//! running during begin and following, then the cut-over proof and an independent
//! verification; resume, DDL, divergence, tables without a key, and the preflight against
//! the shared server (`wal_level=replica`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use carbon_db::fixture::writer::Writer;
use carbon_db::online::{self, OnlineError, OnlineOptions, Phase, State, Stream, Until};
use carbon_db::testkit::TestDb;
use carbon_db::{DbUrl, NoProgress, Vendor};

use crate::support::{url, with_tiny_fixture};

struct Setup {
    src: TestDb,
    dst: TestDb,
    stream: Stream,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let src = with_tiny_fixture(TestDb::new_streaming(Vendor::Postgres));
    Writer::prepare(&url(&src)).unwrap();
    let dst = TestDb::reserve_streaming(Vendor::Postgres);
    let dir = tempfile::tempdir().unwrap();
    let stream = Stream::new(url(&src), url(&dst), dir.path().join("stream"), src.name());
    Setup {
        src,
        dst,
        stream,
        _dir: dir,
    }
}

fn opts() -> OnlineOptions {
    OnlineOptions {
        poll_ms: 50,
        ..OnlineOptions::default()
    }
}

fn sql(db: &TestDb, sql: &str) {
    db.pg_client().batch_execute(sql).unwrap();
}

fn source_catalog(u: &DbUrl) -> std::collections::BTreeMap<String, String> {
    carbon_db::read_state(u, 1, &NoProgress).unwrap().inventory
}

fn drain_and_prove(s: &Setup, full: bool) -> online::Proof {
    let stop = AtomicBool::new(false);
    online::follow(&s.stream, &opts(), Until::SourceEnd, &stop, &NoProgress).unwrap();
    let proof = online::prove(&s.stream, &opts(), full, &NoProgress).unwrap();
    assert!(proof.verify.is_ok(), "{}", proof.verify.summary());
    let independent = carbon_db::verify(&url(&s.src), &url(&s.dst), 2, &NoProgress).unwrap();
    assert!(independent.is_ok(), "{}", independent.summary());
    proof
}

fn remove_and_check(s: &Setup) {
    let state = online::remove(&s.stream).unwrap();
    assert_eq!(state.phase, Phase::Removed);
    assert!(state.created.iter().all(|c| c.removed_ms.is_some()));
    assert!(state.created.iter().any(|c| c.kind == "replication slot"));
    for server in [url(&s.src), url(&s.dst)] {
        let left = online::leftovers(&server).unwrap();
        assert!(!left.contains(&s.stream.name), "{left:?}");
    }
    // Idempotent.
    online::remove(&s.stream).unwrap();
}

#[test]
#[allow(clippy::print_stderr)]
fn online_postgres_follows_a_live_writer_and_proves_equal() {
    let s = setup();
    let before = source_catalog(&url(&s.src));
    let writer = Writer::spawn(&url(&s.src), 1, 200).unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let t = Instant::now();
    let state = online::begin(&s.stream, &opts(), &NoProgress).unwrap();
    let begin_ms = t.elapsed().as_millis();
    assert_eq!(state.phase, Phase::Following);
    assert!(state.snapshot.is_some());
    assert!(
        state
            .snapshot_verified
            .as_deref()
            .unwrap()
            .contains("equal at snapshot")
    );

    // Follow in the background while the writer runs.
    let stop = AtomicBool::new(false);
    let followed = std::thread::scope(|scope| {
        let h =
            scope.spawn(|| online::follow(&s.stream, &opts(), Until::Stopped, &stop, &NoProgress));
        std::thread::sleep(Duration::from_secs(3));
        let lag = online::lag(&s.stream).unwrap();
        assert!(lag.retained_bytes > 0);
        stop.store(true, Ordering::Relaxed);
        h.join().unwrap()
    })
    .unwrap();
    let stats = writer.stop().unwrap();
    assert!(stats.transactions > 100, "{stats:?}");
    assert!(followed.transactions > 0, "{followed:?}");

    let t = Instant::now();
    let stop = AtomicBool::new(false);
    let drained = online::follow(&s.stream, &opts(), Until::SourceEnd, &stop, &NoProgress).unwrap();
    let drain_ms = t.elapsed().as_millis();
    let t = Instant::now();
    let proof = drain_and_prove(&s, false);
    let prove_ms = t.elapsed().as_millis();
    assert!(proof.keys_compared > 0);
    let state = State::load(&s.stream).unwrap();
    assert_eq!(state.phase, Phase::Proven);
    // The writer updates REG_RESOURCE_PROPERTY, which has no primary key.
    assert!(
        state.dirty.contains("public.reg_resource_property"),
        "{:?}",
        state.dirty
    );
    assert!(
        proof
            .recopied
            .contains(&"public.reg_resource_property".to_owned())
    );
    eprintln!(
        "online pg: begin {begin_ms} ms; followed {} tx in {} ms ({:.0} tx/s); drain {} tx in {drain_ms} ms; prove {prove_ms} ms ({} keys); writer {} tx; max lag {} ms",
        followed.transactions,
        followed.elapsed_ms,
        followed.transactions as f64 * 1000.0 / followed.elapsed_ms.max(1) as f64,
        drained.transactions,
        proof.keys_compared,
        stats.transactions,
        state.max_lag_ms
    );
    // A full proof agrees.
    let full = online::prove(&s.stream, &opts(), true, &NoProgress).unwrap();
    assert!(full.verify.is_ok(), "{}", full.verify.summary());

    remove_and_check(&s);
    assert_eq!(
        before,
        source_catalog(&url(&s.src)),
        "the source's catalog changed"
    );
}

#[test]
#[allow(clippy::print_stderr)]
fn online_postgres_resumes_after_interrupt_and_crash_before_slot_advance() {
    let s = setup();
    online::begin(&s.stream, &opts(), &NoProgress).unwrap();
    Writer::run(&url(&s.src), 2, 300).unwrap();
    // Interrupted by the stop flag after the first batch of a few changes.
    let small = OnlineOptions {
        batch_changes: 5,
        ..opts()
    };
    let stop = AtomicBool::new(false);
    let first = online::follow(
        &s.stream,
        &small,
        Until::SourceEnd,
        &stop,
        &|_e: carbon_db::ProgressEvent<'_>| stop.store(true, Ordering::Relaxed),
    )
    .unwrap();
    assert!(
        first.transactions > 0 && first.transactions < 300,
        "{first:?}"
    );
    // A crash between the target's commit and the slot's advance: the next follow sees
    // those transactions again and must skip them (a second apply would fail on keys).
    // (nextest runs each test in its own process: the switch is this test's alone.)
    online::crash_before_slot_advance(true);
    let crashed = online::follow(
        &s.stream,
        &small,
        Until::SourceEnd,
        &stop_never(),
        &NoProgress,
    );
    online::crash_before_slot_advance(false);
    assert!(crashed.unwrap_err().to_string().contains("simulated crash"));
    Writer::run(&url(&s.src), 3, 1000).unwrap();
    let t = Instant::now();
    let drained = online::follow(
        &s.stream,
        &opts(),
        Until::SourceEnd,
        &stop_never(),
        &NoProgress,
    )
    .unwrap();
    eprintln!(
        "online pg: drained {} tx ({} rows) in {} ms: {:.0} tx/s",
        drained.transactions,
        drained.rows,
        t.elapsed().as_millis(),
        drained.transactions as f64 * 1000.0 / t.elapsed().as_millis().max(1) as f64
    );
    assert!(drained.transactions >= 1000, "{drained:?}");
    drain_and_prove(&s, false);
    remove_and_check(&s);
}

#[test]
fn online_postgres_stops_when_the_slot_retains_too_much() {
    let s = setup();
    online::begin(&s.stream, &opts(), &NoProgress).unwrap();
    Writer::run(&url(&s.src), 6, 20).unwrap();
    let tight = OnlineOptions {
        max_retained_bytes: 1,
        ..opts()
    };
    let err = online::follow(
        &s.stream,
        &tight,
        Until::SourceEnd,
        &stop_never(),
        &NoProgress,
    )
    .unwrap_err();
    assert!(matches!(err, OnlineError::Retention { .. }), "{err}");
    assert!(err.to_string().contains(&s.stream.name), "{err}");
    remove_and_check(&s);
}

fn stop_never() -> AtomicBool {
    AtomicBool::new(false)
}

#[test]
fn online_postgres_refuses_ddl_while_following() {
    let s = setup();
    online::begin(&s.stream, &opts(), &NoProgress).unwrap();
    Writer::run(&url(&s.src), 4, 20).unwrap();
    sql(
        &s.src,
        "ALTER TABLE IDN_OAUTH2_ACCESS_TOKEN ADD COLUMN EXTRA TEXT",
    );
    Writer::run(&url(&s.src), 5, 20).unwrap();
    let err = online::follow(
        &s.stream,
        &opts(),
        Until::SourceEnd,
        &stop_never(),
        &NoProgress,
    )
    .unwrap_err();
    assert!(matches!(err, OnlineError::Ddl { .. }), "{err}");
    assert!(err.to_string().contains("cannot follow DDL"), "{err}");
    remove_and_check(&s);
}

#[test]
fn online_postgres_divergence_names_table_and_key() {
    let s = setup();
    sql(
        &s.src,
        "INSERT INTO IDN_OAUTH2_ACCESS_TOKEN (TOKEN_ID, TENANT_ID) VALUES ('victim''s key', -1234)",
    );
    online::begin(&s.stream, &opts(), &NoProgress).unwrap();
    sql(
        &s.dst,
        "DELETE FROM IDN_OAUTH2_ACCESS_TOKEN WHERE TOKEN_ID = 'victim''s key'",
    );
    sql(
        &s.src,
        "UPDATE IDN_OAUTH2_ACCESS_TOKEN SET TOKEN_STATE = 'REVOKED' WHERE TOKEN_ID = 'victim''s key'",
    );
    let err = online::follow(
        &s.stream,
        &opts(),
        Until::SourceEnd,
        &stop_never(),
        &NoProgress,
    )
    .unwrap_err();
    let OnlineError::Divergence { table, key, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(table, "public.idn_oauth2_access_token");
    assert!(key.contains("'victim''s key'"), "{key}");
    remove_and_check(&s);
}

#[test]
fn online_postgres_types_toast_time_zones_and_tables_without_key() {
    let s = setup();
    sql(
        &s.src,
        "CREATE TABLE big (id integer, tenant integer, payload text, note text, at timestamptz, \
         ts timestamp, tags text[], n numeric(20,5), f double precision, ok boolean, PRIMARY KEY (id, tenant)); \
         ALTER TABLE big ALTER COLUMN payload SET STORAGE EXTERNAL; \
         CREATE TABLE nokey (a integer, b text); INSERT INTO nokey VALUES (1, 'x'), (2, 'y')",
    );
    sql(
        &s.src,
        "INSERT INTO big VALUES (1, -1234, repeat('ü€😀', 20000), 'a', '2026-03-29 01:30:00+00', '2026-03-29 02:30:00', '{a,\"b c\",NULL}', 1.5, 'NaN', true)",
    );
    online::begin(&s.stream, &opts(), &NoProgress).unwrap();
    sql(
        &s.src,
        "SET TimeZone = 'Europe/Berlin'; \
         UPDATE big SET note = 'it''s \\N and \\ back' WHERE id = 1 AND tenant = -1234; \
         INSERT INTO big VALUES (2, -1234, '', NULL, '2026-10-25 02:30:00', '2026-10-25 02:30:00', '{}', -0.00001, '-Infinity', false); \
         INSERT INTO big VALUES (3, 1, NULL, '', now(), localtimestamp, NULL, NULL, 1e-300, NULL); \
         UPDATE big SET id = 4 WHERE id = 3; \
         DELETE FROM big WHERE id = 2; \
         UPDATE nokey SET b = 'z' WHERE a = 1; INSERT INTO nokey VALUES (3, '漢字'); \
         TRUNCATE reg_log",
    );
    let stop = stop_never();
    online::follow(&s.stream, &opts(), Until::SourceEnd, &stop, &NoProgress).unwrap();
    let state = State::load(&s.stream).unwrap();
    assert!(state.dirty.contains("public.nokey"), "{:?}", state.dirty);
    assert!(state.dirty.contains("public.reg_log"), "{:?}", state.dirty);
    assert!(!state.dirty.contains("public.big"));
    let proof = drain_and_prove(&s, false);
    assert!(proof.keys_compared >= 4, "{proof:?}");
    remove_and_check(&s);
}

/// Applying into staging needs a superuser there; a role without it is named in one line.
#[test]
fn online_postgres_staging_requirements_name_a_role_that_is_not_superuser() {
    let db = TestDb::new(Vendor::Postgres);
    assert_eq!(online::staging_requirements(&url(&db)).unwrap(), vec![]);
    let role = format!("{}_plain", db.name());
    db.pg_client()
        .batch_execute(&format!("CREATE ROLE {role} LOGIN"))
        .unwrap();
    let plain = url(&db).with_credentials(Some(role.clone()), None);
    let unmet = online::staging_requirements(&plain);
    db.pg_client()
        .batch_execute(&format!("DROP ROLE {role}"))
        .unwrap();
    let unmet = unmet.unwrap();
    assert_eq!(unmet.len(), 1, "{unmet:?}");
    let line = unmet[0].to_string();
    assert!(
        line.contains(&format!("staging's role {role} is not superuser")),
        "{line}"
    );
    assert!(!line.contains("restart"), "{line}");
}

#[test]
fn online_postgres_requirements_on_the_shared_server_name_wal_level() {
    let db = TestDb::new(Vendor::Postgres);
    let unmet = online::requirements(&url(&db)).unwrap();
    let wal = unmet
        .iter()
        .find(|u| u.setting == "wal_level")
        .expect("the shared server has wal_level=replica");
    assert!(wal.restart);
    let line = wal.to_string();
    assert!(
        line.contains("wal_level is replica, online mode needs logical"),
        "{line}"
    );
    assert!(line.contains("restart"), "{line}");
    // The streaming server meets them.
    let ok = TestDb::new_streaming(Vendor::Postgres);
    assert_eq!(online::requirements(&url(&ok)).unwrap(), vec![]);
}

#[test]
fn online_postgres_begin_cut_off_during_the_copy_copies_again() {
    let s = setup();
    online::begin(&s.stream, &opts(), &NoProgress).unwrap();
    // As if killed during the copy: the slot exists, the phase says Copying, staging is
    // (here fully) written.
    let mut state = State::load(&s.stream).unwrap();
    state.phase = Phase::Copying;
    state.save(&s.stream).unwrap();
    Writer::run(&url(&s.src), 7, 50).unwrap();
    let again = online::begin(&s.stream, &opts(), &NoProgress).unwrap();
    assert_eq!(again.phase, Phase::Following);
    let slots = again
        .created
        .iter()
        .filter(|c| c.kind == "replication slot")
        .count();
    assert_eq!(slots, 1, "{:?}", again.created);
    Writer::run(&url(&s.src), 8, 50).unwrap();
    drain_and_prove(&s, false);
    remove_and_check(&s);
}

#[test]
fn online_postgres_copy_refuses_a_journal() {
    let src = with_tiny_fixture(TestDb::new_streaming(Vendor::Postgres));
    let dst = TestDb::reserve_streaming(Vendor::Postgres);
    let dir = tempfile::tempdir().unwrap();
    let opts = carbon_db::CopyOptions {
        online: true,
        logical: true,
        journal: Some(dir.path().join("journal")),
        ..carbon_db::CopyOptions::default()
    };
    let err = carbon_db::copy(&url(&src), &url(&dst), &opts, &NoProgress).unwrap_err();
    assert!(err.to_string().contains("cannot be resumed"), "{err}");
    // Without the journal it records the snapshot and never takes the template path.
    let ok = carbon_db::CopyOptions {
        online: true,
        ..carbon_db::CopyOptions::default()
    };
    let report = carbon_db::copy(&url(&src), &url(&dst), &ok, &NoProgress).unwrap();
    assert_eq!(report.method, "logical");
    let point = report.snapshot_point.unwrap();
    assert_eq!(point.split(':').count(), 3, "{point}");
}

/// The follower run as a child process by the kill -9 test (ignored on its own).
const CHILD_ENV: &str = "CARBON_ONLINE_PG_CHILD";

#[test]
#[ignore = "run by online_postgres_kill_9_while_following_then_resume as a child process"]
fn online_postgres_child_follower() {
    let spec = std::env::var(CHILD_ENV).unwrap();
    let parts: Vec<&str> = spec.split('\n').collect();
    let stream = Stream::new(
        DbUrl::parse(parts[0]).unwrap(),
        DbUrl::parse(parts[1]).unwrap(),
        parts[2].into(),
        parts[3],
    );
    let stop = AtomicBool::new(false);
    online::follow(&stream, &opts(), Until::Stopped, &stop, &NoProgress).unwrap();
}

#[test]
fn online_postgres_kill_9_while_following_then_resume() {
    let s = setup();
    online::begin(&s.stream, &opts(), &NoProgress).unwrap();
    let writer = Writer::spawn(&url(&s.src), 9, 300).unwrap();
    let spec = [
        s.src.url(),
        s.dst.url(),
        s.stream.dir.to_str().unwrap(),
        s.src.name(),
    ]
    .join("\n");
    let exe = std::env::current_exe().unwrap();
    for round in 0..3u64 {
        let mut child = std::process::Command::new(&exe)
            .args([
                "--exact",
                "online_pg::online_postgres_child_follower",
                "--ignored",
                "--nocapture",
            ])
            .env(CHILD_ENV, &spec)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1200 + 300 * round));
        assert!(
            child.try_wait().unwrap().is_none(),
            "the follower died by itself"
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    writer.stop().unwrap();
    let applied: i64 = s
        .dst
        .pg_client()
        .query_one("SELECT count(*) FROM IDN_OAUTH2_ACCESS_TOKEN", &[])
        .unwrap()
        .get(0);
    assert!(applied > 0, "the killed followers applied nothing");
    drain_and_prove(&s, false);
    remove_and_check(&s);
}

#[test]
fn online_postgres_fallback_runs_the_same_engine_backwards() {
    let s = setup();
    online::begin(&s.stream, &opts(), &NoProgress).unwrap();
    Writer::run(&url(&s.src), 10, 100).unwrap();
    drain_and_prove(&s, false);
    remove_and_check(&s);
    // Cut-over done: staging is now written, the old database follows it.
    let dir = tempfile::tempdir().unwrap();
    let back = Stream::new(
        url(&s.dst),
        url(&s.src),
        dir.path().join("back"),
        s.dst.name(),
    );
    let state = online::begin_equal(&back, &opts()).unwrap();
    assert_eq!(state.phase, Phase::Following);
    Writer::run(&url(&s.dst), 11, 200).unwrap();
    let stop = stop_never();
    let r = online::follow(&back, &opts(), Until::SourceEnd, &stop, &NoProgress).unwrap();
    assert!(r.transactions >= 200, "{r:?}");
    let proof = online::prove(&back, &opts(), false, &NoProgress).unwrap();
    assert!(proof.verify.is_ok(), "{}", proof.verify.summary());
    let independent = carbon_db::verify(&url(&s.dst), &url(&s.src), 2, &NoProgress).unwrap();
    assert!(independent.is_ok(), "{}", independent.summary());
    online::remove(&back).unwrap();
    assert!(
        !online::leftovers(&url(&s.dst))
            .unwrap()
            .contains(&back.name)
    );
}

#[test]
fn online_postgres_slot_creation_behind_an_open_transaction_gives_up() {
    let s = setup();
    let mut holder = s.src.pg_client();
    holder
        .batch_execute(
            "BEGIN; INSERT INTO IDN_OAUTH2_ACCESS_TOKEN (TOKEN_ID, TENANT_ID) VALUES ('open', 1)",
        )
        .unwrap();
    let quick = OnlineOptions {
        lock_timeout_ms: 500,
        ..opts()
    };
    let t = Instant::now();
    let err = online::begin(&s.stream, &quick, &NoProgress).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(err.to_string().contains("blocks it"), "{err}");
    holder.batch_execute("ROLLBACK").unwrap();
    // Nothing was left behind, and the next begin works.
    assert!(
        !online::leftovers(&url(&s.src))
            .unwrap()
            .contains(&s.stream.name)
    );
    online::begin(&s.stream, &opts(), &NoProgress).unwrap();
    remove_and_check(&s);
}

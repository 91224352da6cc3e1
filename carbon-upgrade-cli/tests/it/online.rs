//! `online start | status | cutover | abort` and the fallback window, on the private servers
//! whose changes can be followed, with a Carbon-like writer running against the source, then
//! (fallback) against staging. Every result is checked outside our own verifier
//! (`fingerprints`: an md5 over every row), and the sources' catalogs before and after.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use carbon_db::fixture::writer::Writer;
use carbon_db::testkit::TestDb;
use carbon_db::{DbUrl, Vendor};

use crate::support::{assert_exit_naming, code, fingerprints, jdbc_url, stderr};
use crate::upgrade::Scenario;

/// A scenario on the streaming server with its own staging name, and the config file.
struct Online {
    scenario: Scenario,
    staging: TestDb,
    config: PathBuf,
    vendor: Vendor,
}

impl Online {
    fn new(vendor: Vendor) -> Online {
        let scenario = Scenario::streaming(vendor);
        Writer::prepare(&url(scenario.source.url())).unwrap();
        let staging = TestDb::reserve_streaming(vendor);
        let (scheme, user) = match vendor {
            Vendor::Postgres => ("postgresql", "postgres"),
            _ => ("mysql", "root"),
        };
        let config = scenario.dir.path().join("upgrade.toml");
        let text = format!(
            "old_home = {:?}\nnew_home = {:?}\nstate_dir = {:?}\nbackup_dir = {:?}\n\n[datasources.WSO2_CARBON_DB]\n\
             staging_url = {:?}\nstaging_username = {user:?}\n",
            scenario.old(),
            scenario.new_home(),
            scenario.state(),
            scenario.dir.path().join("backup"),
            jdbc_url(scheme, staging.url()),
        );
        std::fs::write(&config, text).unwrap();
        Online {
            scenario,
            staging,
            config,
            vendor,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_carbon-upgrade"));
        cmd.args(args).arg("--config").arg(&self.config);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// `online start` (or `online fallback start`) in the background.
    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Waits until `<prefix> status` says every stream is followed.
    fn wait_following(&self, prefix: &[&str], child: &mut Child) {
        let started = Instant::now();
        loop {
            if let Some(exit) = child.try_wait().unwrap() {
                let mut err = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
                panic!("the follower exited with {exit} before following: {err}");
            }
            let args: Vec<&str> = prefix.iter().copied().chain(["status", "--json"]).collect();
            let out = self.run(&args);
            let json: serde_json::Value =
                serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
            if json["switch_allowed"] == true {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(180),
                "not following after 180 s: {}",
                String::from_utf8_lossy(&out.stdout)
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn source(&self) -> DbUrl {
        url(self.scenario.source.url())
    }

    fn staging(&self) -> DbUrl {
        url(self.staging.url())
    }
}

fn url(s: &str) -> DbUrl {
    DbUrl::parse(s).unwrap()
}

impl Online {
    /// The objects this test's streams created that are still on the server of `db`
    /// (other tests share the server: only our names count).
    fn leftovers(&self, db: &DbUrl) -> Vec<String> {
        let mut ours = Vec::new();
        for direction in ["online", "fallback"] {
            let dir = self.scenario.state().join(direction);
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if let Ok(bytes) = std::fs::read(entry.path().join("state.json")) {
                    let state: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                    ours.push(state["name"].as_str().unwrap().to_owned());
                }
            }
        }
        assert!(
            !ours.is_empty(),
            "no stream state under {}",
            self.scenario.state().display()
        );
        carbon_db::online::leftovers(db)
            .unwrap()
            .into_iter()
            .filter(|name| ours.iter().any(|o| name.contains(o.as_str())))
            .collect()
    }
}

fn catalog(db: &DbUrl) -> String {
    format!("{:?}", carbon_db::contents(db).unwrap())
}

fn wait_exit(child: &mut Child) -> (i32, String) {
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    (status.code().unwrap_or(-1), err)
}

fn edit_old_file(old: &Path) -> PathBuf {
    let rel = PathBuf::from("repository/deployment/server/online-edited.txt");
    std::fs::write(old.join(&rel), "written while following\n").unwrap();
    rel
}

/// The whole online flow: start while the writer writes (slot creation, copy and following
/// all under load), status, a cut-over refused while the writer's sessions remain, then the
/// cut-over: staging equal to the source by an independent comparison, files re-synced,
/// nothing left on the source, the source's catalog unchanged.
fn check_online_upgrade(vendor: Vendor) {
    let online = Online::new(vendor);
    let catalog_before = catalog(&online.source());
    let writer = Writer::spawn(&online.source(), 1, 200).unwrap();
    let mut follower = online.spawn(&["online", "start"]);
    online.wait_following(&["online"], &mut follower);
    std::thread::sleep(Duration::from_millis(1500));
    let edited = edit_old_file(&online.scenario.old());

    // The writer still runs: its sessions are "old servers" that have not stopped.
    let refused = online.run(&["online", "cutover"]);
    assert_exit_naming(&refused, 3, "not stopped");

    let stats = writer.stop().unwrap();
    assert!(stats.transactions > 100, "the writer wrote: {stats:?}");
    let cutover = online.run(&["online", "cutover", "--json"]);
    assert_eq!(code(&cutover), 0, "{}", stderr(&cutover));
    let report: serde_json::Value = serde_json::from_slice(&cutover.stdout).unwrap();
    assert_eq!(report["equal"], true, "{report}");
    assert!(
        report["datasources"][0]["statement"]
            .as_str()
            .unwrap()
            .contains("equal to"),
        "{report}"
    );
    let (exit, err) = wait_exit(&mut follower);
    assert_eq!(
        exit, 0,
        "the follower stops cleanly when the cut-over takes over: {err}"
    );

    assert_eq!(
        fingerprints(vendor, online.staging.url()),
        fingerprints(vendor, online.scenario.source.url()),
        "staging equals the source (independent comparison)"
    );
    assert_eq!(
        std::fs::read(online.scenario.new_home().join(&edited)).unwrap(),
        b"written while following\n",
        "files changed while following are re-synced at the cut-over"
    );
    assert!(
        online.leftovers(&online.source()).is_empty(),
        "nothing left on the source"
    );
    assert!(
        online.leftovers(&online.staging()).is_empty(),
        "nothing left on staging"
    );
    assert_eq!(
        catalog(&online.source()),
        catalog_before,
        "the source's catalog is unchanged"
    );
    assert_eq!(online.vendor, vendor);
}

#[test]
fn online_upgrade_with_a_writer_postgres() {
    check_online_upgrade(Vendor::Postgres);
}

#[test]
fn online_upgrade_with_a_writer_mariadb() {
    check_online_upgrade(Vendor::MySql);
}

/// kill -9 of the follower while it follows, and of the cut-over mid-way: the same commands
/// continue, and staging ends equal to the source.
fn check_kill_then_continue(vendor: Vendor) {
    let online = Online::new(vendor);
    let writer = Writer::spawn(&online.source(), 2, 300).unwrap();
    let mut follower = online.spawn(&["online", "start"]);
    online.wait_following(&["online"], &mut follower);
    std::thread::sleep(Duration::from_millis(800));
    follower.kill().unwrap();
    let _ = follower.wait();

    let mut again = online.spawn(&["online", "start"]);
    online.wait_following(&["online"], &mut again);
    std::thread::sleep(Duration::from_millis(800));
    writer.stop().unwrap();

    // A cut-over killed at some point of its way, then run again.
    let mut cut = online
        .command(&["online", "cutover"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let _ = cut.kill();
    let _ = cut.wait();
    let cutover = online.run(&["online", "cutover"]);
    assert_eq!(code(&cutover), 0, "{}", stderr(&cutover));
    let _ = again.kill();
    let _ = again.wait();
    assert_eq!(
        fingerprints(vendor, online.staging.url()),
        fingerprints(vendor, online.scenario.source.url()),
        "staging equals the source after kills"
    );
    assert!(online.leftovers(&online.source()).is_empty());
}

#[test]
fn online_kill_9_then_the_same_command_continues_postgres() {
    check_kill_then_continue(Vendor::Postgres);
}

#[test]
fn online_kill_9_then_the_same_command_continues_mariadb() {
    check_kill_then_continue(Vendor::MySql);
}

/// abort removes what was created on the source and leaves staging as it is.
fn check_abort(vendor: Vendor) {
    let online = Online::new(vendor);
    let catalog_before = catalog(&online.source());
    let mut follower = online.spawn(&["online", "start"]);
    online.wait_following(&["online"], &mut follower);
    let abort = online.run(&["online", "abort"]);
    assert_eq!(code(&abort), 0, "{}", stderr(&abort));
    assert!(String::from_utf8_lossy(&abort.stdout).contains("staging is left as it is"));
    let _ = wait_exit(&mut follower);
    assert!(
        online.leftovers(&online.source()).is_empty(),
        "abort leaves no slot"
    );
    assert_eq!(catalog(&online.source()), catalog_before);
}

#[test]
fn online_abort_leaves_nothing_on_the_source_postgres() {
    check_abort(Vendor::Postgres);
}

#[test]
fn online_abort_leaves_nothing_on_the_source_mariadb() {
    check_abort(Vendor::MySql);
}

/// The fallback window: cut-over with `--fallback`, the writer on staging (the new product's
/// traffic) while the fallback follows, then rollback: the old database equal to staging.
fn check_fallback(vendor: Vendor) {
    let online = Online::new(vendor);
    let mut follower = online.spawn(&["online", "start"]);
    online.wait_following(&["online"], &mut follower);
    let cutover = online.run(&["online", "cutover", "--fallback"]);
    assert_eq!(code(&cutover), 0, "{}", stderr(&cutover));
    let _ = wait_exit(&mut follower);

    let writer = Writer::spawn(&online.staging(), 3, 200).unwrap();
    let mut fallback = online.spawn(&["online", "fallback", "start"]);
    online.wait_following(&["online", "fallback"], &mut fallback);
    std::thread::sleep(Duration::from_millis(1000));
    // kill -9 of the fallback follower, then the same command continues.
    fallback.kill().unwrap();
    let _ = fallback.wait();
    let mut fallback = online.spawn(&["online", "fallback", "start"]);
    online.wait_following(&["online", "fallback"], &mut fallback);
    std::thread::sleep(Duration::from_millis(1000));
    writer.stop().unwrap();
    // kill -9 of the rollback somewhere on its way, then the same command continues.
    let mut first = online
        .command(&["online", "fallback", "rollback"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let _ = first.kill();
    let _ = first.wait();
    let rollback = online.run(&["online", "fallback", "rollback"]);
    assert_eq!(code(&rollback), 0, "{}", stderr(&rollback));
    assert!(String::from_utf8_lossy(&rollback.stdout).contains("start the old servers"));
    let _ = wait_exit(&mut fallback);
    assert_eq!(
        fingerprints(vendor, online.scenario.source.url()),
        fingerprints(vendor, online.staging.url()),
        "the old database holds everything staging had"
    );
    assert!(
        online.leftovers(&online.staging()).is_empty(),
        "nothing left on staging"
    );
}

#[test]
fn online_fallback_then_rollback_postgres() {
    check_fallback(Vendor::Postgres);
}

#[test]
fn online_fallback_then_rollback_mariadb() {
    check_fallback(Vendor::MySql);
}

/// Embedded databases cannot be followed: one line, exit 2, nothing written.
#[test]
fn online_refuses_an_embedded_database_sqlite() {
    let scenario = Scenario::new(Vendor::Sqlite);
    let out = Command::new(env!("CARGO_BIN_EXE_carbon-upgrade"))
        .args(["online", "start", "--old-home"])
        .arg(scenario.old())
        .arg("--new-home")
        .arg(scenario.new_home())
        .arg("--state-dir")
        .arg(scenario.state())
        .output()
        .unwrap();
    assert_exit_naming(&out, 2, "cannot be followed");
    assert!(!scenario.state().join("online").exists(), "nothing written");
}

/// A fallback needs the same shape on both sides: a real difference (a column staging has
/// and the old database has not) refuses `cutover --fallback` before any downtime, naming it.
fn check_fallback_refused_on_a_schema_difference(vendor: Vendor) {
    let online = Online::new(vendor);
    let mut follower = online.spawn(&["online", "start"]);
    online.wait_following(&["online"], &mut follower);
    let mut staging = carbon_db::Session::read_write(&online.staging()).unwrap();
    staging
        .execute("ALTER TABLE UM_USER ADD COLUMN UM_NEW_PRODUCT_COLUMN INTEGER")
        .unwrap();
    let refused = online.run(&["online", "cutover", "--fallback"]);
    assert_exit_naming(&refused, 2, "schemas differ");
    assert!(
        stderr(&refused)
            .to_uppercase()
            .contains("UM_NEW_PRODUCT_COLUMN"),
        "{}",
        stderr(&refused)
    );
    let abort = online.run(&["online", "abort"]);
    assert_eq!(code(&abort), 0, "{}", stderr(&abort));
    let _ = wait_exit(&mut follower);
    assert!(online.leftovers(&online.source()).is_empty());
}

#[test]
fn online_fallback_refused_on_a_schema_difference_postgres() {
    check_fallback_refused_on_a_schema_difference(Vendor::Postgres);
}

#[test]
fn online_fallback_refused_on_a_schema_difference_mariadb() {
    check_fallback_refused_on_a_schema_difference(Vendor::MySql);
}

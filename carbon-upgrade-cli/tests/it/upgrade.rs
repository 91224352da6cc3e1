//! `plan`, `preflight`, `run`, `resume`, `status`, `demo`: the whole runbook on real homes and
//! real databases, each result checked outside our own verifier.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use carbon_config::fixture::{CarbonVersion, ContentScale, DatasourceSpec, HomeSpec, write_home};
use carbon_config::secret::Secret;
use carbon_db::Vendor;
use carbon_db::fixture::{self, Scale};
use carbon_db::testkit::{self, TestDb};

use crate::support::{
    DropOnExit, assert_exit_naming, carbon_upgrade, code, fingerprints, jdbc_url, stderr,
    tree_digest,
};

/// An upgrade scenario: an old 4.4.6 home whose WSO2_CARBON_DB is `db`, and a new 4.4.7 home.
pub(crate) struct Scenario {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) source: TestDb,
    /// The default staging database `<source>_staging`, dropped with the scenario.
    staging: Option<DropOnExit>,
}

impl Scenario {
    pub(crate) fn new(vendor: Vendor) -> Scenario {
        Scenario::on(vendor, false)
    }

    /// `tls`: the database lives on the TLS-only server and the datasource URL says so.
    fn on(vendor: Vendor, tls: bool) -> Scenario {
        Scenario::with(vendor, tls, |_| {})
    }

    /// `edit` adjusts the old home's spec. With `stores_on_first_datasource`, the new home
    /// (a fresh product) has no secondary store of its own, so the old ones are replicated.
    fn with(vendor: Vendor, tls: bool, edit: impl FnOnce(&mut HomeSpec)) -> Scenario {
        let source = if tls {
            TestDb::new_tls(vendor)
        } else {
            TestDb::new(vendor)
        };
        Scenario::build(vendor, source, tls, edit)
    }

    /// On the server whose changes can be followed (online mode). The staging database is
    /// the test's to name (upgrade.toml), so none is dropped here.
    pub(crate) fn streaming(vendor: Vendor) -> Scenario {
        let mut scenario = Scenario::build(vendor, TestDb::new_streaming(vendor), false, |_| {});
        scenario.staging = None;
        scenario
    }

    fn build(
        vendor: Vendor,
        source: TestDb,
        tls: bool,
        edit: impl FnOnce(&mut HomeSpec),
    ) -> Scenario {
        let scale = Scale::tiny();
        let summary = match vendor {
            Vendor::Postgres => fixture::generate_postgres(&mut source.pg_client(), &scale),
            Vendor::MySql => fixture::generate_mysql(&mut source.mysql_conn(), &scale),
            _ => fixture::generate_sqlite(&mut source.sqlite_conn(), &scale),
        }
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let jdbc = match vendor {
            Vendor::Postgres => jdbc_url("postgresql", source.url()),
            Vendor::MySql => jdbc_url("mysql", source.url()),
            _ => "jdbc:sqlite:repository/database/WSO2CARBON_DB.db".to_owned(),
        };
        let (user, driver) = match vendor {
            Vendor::Postgres => ("postgres", "org.postgresql.Driver"),
            Vendor::MySql => ("root", "com.mysql.jdbc.Driver"),
            _ => ("", "org.sqlite.JDBC"),
        };
        let datasource = DatasourceSpec {
            url: jdbc,
            username: user.into(),
            password: Secret::Empty,
            driver_class_name: driver.into(),
            ..DatasourceSpec::carbon_h2()
        };
        let mut old = HomeSpec::new(CarbonVersion::V4_4_6);
        old.port_offset = 3;
        old.tenant_ids = summary.tenant_ids.clone();
        old.datasources = vec![datasource.clone()];
        edit(&mut old);
        write_home(&dir.path().join("old"), &old).unwrap();
        if vendor == Vendor::Sqlite {
            // Embedded: the database lives inside the old home, as Carbon's H2 default does.
            let embedded = dir.path().join("old/repository/database/WSO2CARBON_DB.db");
            std::fs::create_dir_all(embedded.parent().unwrap()).unwrap();
            std::fs::copy(source.sqlite_path(), embedded).unwrap();
        }
        let mut new = HomeSpec::new(CarbonVersion::V4_4_7);
        new.tenant_ids = Vec::new();
        new.content = ContentScale::Tiny;
        if vendor == Vendor::Sqlite {
            // An embedded default in both products: the copied file lands where the new one looks.
            new.datasources = vec![datasource];
        }
        write_home(&dir.path().join("new"), &new).unwrap();
        if old.stores_on_first_datasource {
            std::fs::remove_dir_all(
                dir.path()
                    .join("new/repository/deployment/server/userstores"),
            )
            .unwrap();
        }
        let staging = (vendor != Vendor::Sqlite).then(|| DropOnExit {
            vendor,
            name: format!("{}_staging", source.name()),
            tls,
        });
        Scenario {
            dir,
            source,
            staging,
        }
    }

    pub(crate) fn old(&self) -> PathBuf {
        self.dir.path().join("old")
    }

    pub(crate) fn new_home(&self) -> PathBuf {
        self.dir.path().join("new")
    }

    pub(crate) fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn args<'a>(&'a self, command: &'a str, owned: &'a mut Vec<String>) -> Vec<&'a str> {
        *owned = vec![
            command.to_owned(),
            "--old-home".into(),
            self.old().display().to_string(),
            "--new-home".into(),
            self.new_home().display().to_string(),
            "--state-dir".into(),
            self.state().display().to_string(),
        ];
        owned.iter().map(String::as_str).collect()
    }

    fn run(&self, command: &str) -> Output {
        let mut owned = Vec::new();
        carbon_upgrade(&self.args(command, &mut owned))
    }

    fn report(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.state().join("report.json")).unwrap()).unwrap()
    }
}

fn check_upgrade(vendor: Vendor) {
    check_upgrade_on(vendor, false);
}

fn check_upgrade_on(vendor: Vendor, tls: bool) {
    let scenario = Scenario::on(vendor, tls);
    let old_before = tree_digest(&scenario.old());
    let source_before = fingerprints(vendor, scenario.source.url());

    let output = scenario.run("run");
    assert_eq!(code(&output), 0, "{}", stderr(&output));

    let staging = scenario.staging.as_ref().unwrap();
    let staging_url = testkit::with_database(&staging.server(), &staging.name);
    assert_eq!(
        fingerprints(vendor, &staging_url),
        source_before,
        "staging equals the source"
    );
    assert_eq!(
        fingerprints(vendor, scenario.source.url()),
        source_before,
        "source unchanged"
    );
    assert_eq!(
        tree_digest(&scenario.old()),
        old_before,
        "old home unchanged"
    );

    let datasources = std::fs::read_to_string(
        scenario
            .new_home()
            .join("repository/conf/datasources/master-datasources.xml"),
    )
    .unwrap();
    assert!(
        datasources.contains(&format!("{}_staging", scenario.source.name())),
        "new home connected to staging"
    );
    if tls {
        // The new product reaches staging the way the old one reached the source.
        assert!(
            datasources.contains("sslmode=verify-ca&amp;sslrootcert="),
            "TLS options carried to the staging URL: {datasources}"
        );
    }
    // carbon.xml is ISO-8859-1, like the real one.
    let carbon_xml = String::from_utf8_lossy(
        &std::fs::read(scenario.new_home().join("repository/conf/carbon.xml")).unwrap(),
    )
    .into_owned();
    assert!(
        carbon_xml.contains("<Offset>3</Offset>"),
        "port offset carried"
    );
    for part in ["repository/deployment/server", "repository/tenants"] {
        let old_tree = tree_digest(&scenario.old().join(part));
        let new_tree = tree_digest(&scenario.new_home().join(part));
        let missing: Vec<_> = old_tree
            .keys()
            .filter(|k| !new_tree.contains_key(*k))
            .collect();
        assert!(missing.is_empty(), "{part}: {missing:?} not replicated");
    }
    let report = scenario.report();
    assert_eq!(report["status"], "completed");
    let copy = step(&report, "copy:WSO2_CARBON_DB");
    assert_eq!(
        copy["detail"]["copy"]["verify"]["mismatches"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // The backup ran in the background, off the critical path, and is complete: every file
    // it names has the bytes and checksum it recorded.
    let backup = step(&report, "backup-db:WSO2_CARBON_DB");
    assert_eq!(backup["status"], "completed");
    let files = backup["detail"]["files"].as_array().unwrap();
    assert!(!files.is_empty());
    for f in files {
        let (bytes, sha) = carbon_fs::sha256_file(Path::new(f["path"].as_str().unwrap())).unwrap();
        assert_eq!(
            (bytes, sha.as_str()),
            (f["bytes"].as_u64().unwrap(), f["sha256"].as_str().unwrap())
        );
    }
    let (downtime, total) = (
        report["downtime_ms"].as_u64().unwrap(),
        report["total_ms"].as_u64().unwrap(),
    );
    assert!(
        total >= downtime,
        "total {total} ms < downtime {downtime} ms"
    );
}

#[test]
fn run_upgrades_a_postgres_home() {
    check_upgrade(Vendor::Postgres);
}

#[test]
fn run_upgrades_a_mariadb_home() {
    check_upgrade(Vendor::MySql);
}

/// Every session (sessions check, pg_dump / mariadb-dump backup, copy, verify) must use TLS:
/// the server refuses any other.
#[test]
fn run_upgrades_a_postgres_home_over_tls() {
    check_upgrade_on(Vendor::Postgres, true);
}

#[test]
fn run_upgrades_a_mariadb_home_over_tls() {
    check_upgrade_on(Vendor::MySql, true);
}

#[test]
fn plan_changes_nothing_and_shows_every_step_postgres() {
    let scenario = Scenario::new(Vendor::Postgres);
    let old_before = tree_digest(&scenario.old());
    let new_before = tree_digest(&scenario.new_home());
    let mut owned = Vec::new();
    let mut args = scenario.args("plan", &mut owned);
    args.push("--json");
    let output = carbon_upgrade(&args);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(plan["databases"][0]["datasource"], "WSO2_CARBON_DB");
    assert!(
        plan["databases"][0]["staging"]
            .as_str()
            .unwrap()
            .ends_with("_staging")
    );
    assert!(plan["connect_diff"].as_str().unwrap().contains("_staging"));
    assert!(
        plan["carried"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["key"].as_str().unwrap().contains("Offset"))
    );
    assert_eq!(tree_digest(&scenario.old()), old_before);
    assert_eq!(tree_digest(&scenario.new_home()), new_before);
    assert!(!scenario.state().exists(), "plan wrote its state directory");
}

#[test]
fn preflight_refuses_a_running_server_and_a_busy_source_postgres() {
    let scenario = Scenario::new(Vendor::Postgres);
    let _other_client = scenario.source.pg_client();
    let mut fake = Command::new("sh")
        .args(["-c", "read _", "java"])
        .arg(format!("-Dcarbon.home={}", scenario.old().display()))
        .arg("org.wso2.carbon.bootstrap.Bootstrap")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut pid = format!("{}\n", fake.id()).into_bytes();
    pid.resize(100, 0);
    std::fs::write(scenario.old().join("wso2carbon.pid"), pid).unwrap();
    let output = scenario.run("preflight");
    fake.kill().unwrap();
    fake.wait().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(code(&output), 3, "{stdout}");
    assert!(
        stdout.contains("FAIL  no Carbon server on the old home"),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL  WSO2_CARBON_DB: nobody else on the source: 1 session(s)"),
        "{stdout}"
    );
}

/// Creates the PostgreSQL database `name` holding a table `leftover`: a staging database that
/// is not empty. Returns its URL and a session on it.
fn busy_pg_staging(name: &str) -> (String, postgres::Client) {
    let server = testkit::server_url(Vendor::Postgres).unwrap();
    let mut admin = postgres::Client::connect(&server, postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .unwrap();
    let url = testkit::with_database(&server, name);
    let mut staging = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    staging
        .batch_execute("CREATE TABLE leftover (x int)")
        .unwrap();
    (url, staging)
}

#[test]
fn a_failed_run_resumes_after_the_fault_is_fixed_postgres() {
    let scenario = Scenario::new(Vendor::Postgres);
    // The default staging database exists and is not empty: preflight must stop the run.
    let staging_name = format!("{}_staging", scenario.source.name());
    let (_, mut staging) = busy_pg_staging(&staging_name);

    let output = scenario.run("run");
    assert_exit_naming(&output, 3, "is not empty");
    assert_eq!(scenario.report()["status"], "failed");
    assert_eq!(scenario.report()["stopped_at"], "preflight");
    assert!(
        !scenario.state().join("backup/home").exists(),
        "nothing written after a failed preflight"
    );

    staging.batch_execute("DROP TABLE leftover").unwrap();
    drop(staging);
    let again = scenario.run("run");
    assert_eq!(
        code(&again),
        2,
        "a second run refuses the existing journal: {}",
        stderr(&again)
    );
    let output = scenario.run("resume");
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = scenario.report();
    assert_eq!(report["status"], "completed");
    let preflight = step(&report, "preflight");
    assert_eq!(preflight["attempts"], 2);
    let status = scenario.run("status");
    assert!(String::from_utf8_lossy(&status.stdout).contains(": completed"));
}

#[test]
fn resume_refuses_a_journal_of_another_run_sqlite() {
    let a = Scenario::new(Vendor::Sqlite);
    let first = a.run("run");
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let b = Scenario::new(Vendor::Sqlite);
    let mut owned = Vec::new();
    let mut args = b.args("resume", &mut owned);
    let state = a.state().display().to_string();
    let at = args.iter().position(|x| *x == "--state-dir").unwrap();
    args[at + 1] = &state;
    let output = carbon_upgrade(&args);
    assert_exit_naming(&output, 2, "belongs to another run");
}

/// Bad input: one line naming the thing at fault, a documented exit code, nothing written.
#[test]
fn bad_input_is_refused_with_one_line() {
    let scenario = Scenario::new(Vendor::Sqlite);
    let config = scenario.dir.path().join("upgrade.toml");
    std::fs::write(&config, "old_hme = \"/x\"\n").unwrap();
    let (old, new) = (
        scenario.old().display().to_string(),
        scenario.new_home().display().to_string(),
    );
    let config = config.display().to_string();
    let nothing = scenario.dir.path().join("nothing").display().to_string();
    let cases: &[(&[&str], i32, &str)] = &[
        (&["run", "--config", &config], 2, "old_hme"),
        (
            &["run", "--old-home", "/nonexistent", "--new-home", &new],
            3,
            "not a Carbon product home",
        ),
        (&["run", "--old-home", &old, "--new-home", &old], 3, "both"),
        (&["plan", "--new-home", &new], 2, "old_home is not set"),
        (
            &[
                "status",
                "--old-home",
                "a",
                "--new-home",
                "b",
                "--state-dir",
                &nothing,
            ],
            2,
            "no run recorded",
        ),
    ];
    for &(args, expected, needle) in cases {
        let output = carbon_upgrade(args);
        let err = stderr(&output);
        assert_eq!(code(&output), expected, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
    }
    assert!(!scenario.state().exists());
}

#[test]
fn demo_upgrades_an_embedded_sqlite_home() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let output = carbon_upgrade(&["demo", "--dir", demo.to_str().unwrap()]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let old_db = demo.join("wso2carbon-4.4.6/repository/database/WSO2CARBON_DB.db");
    let new_db = demo.join("wso2carbon-4.4.7/repository/database/WSO2CARBON_DB.db");
    let counts = |path: &Path| -> Vec<i64> {
        let conn = rusqlite::Connection::open(path).unwrap();
        fixture::TABLES
            .iter()
            .map(|t| {
                conn.query_row(&format!("SELECT count(*) FROM {}", t.name), [], |r| {
                    r.get(0)
                })
                .unwrap()
            })
            .collect()
    };
    assert_eq!(counts(&new_db), counts(&old_db));
    assert!(counts(&old_db).iter().sum::<i64>() > 10_000);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(demo.join("state/report.json")).unwrap()).unwrap();
    assert_eq!(report["status"], "completed");
    assert!(String::from_utf8_lossy(&output.stdout).contains("report.md"));
}

/// A known password in the old datasource never shows in output, journal or reports, at the
/// highest verbosity. (Backups are byte copies of the home and keep its configuration.)
#[test]
fn secrets_never_printed_postgres() {
    const SECRET: &str = "Sekr1t-xyzzy-42";
    let scenario = Scenario::new(Vendor::Postgres);
    let file = scenario
        .old()
        .join("repository/conf/datasources/master-datasources.xml");
    let text = std::fs::read_to_string(&file).unwrap();
    let with_password = text.replacen(
        "<password></password>",
        &format!("<password>{SECRET}</password>"),
        1,
    );
    assert_ne!(
        text, with_password,
        "the scenario's datasource has an empty <password>"
    );
    std::fs::write(&file, with_password).unwrap();
    let mut owned = Vec::new();
    let mut outputs = Vec::new();
    for command in ["plan", "preflight", "run", "status"] {
        let mut args = scenario.args(command, &mut owned);
        args.insert(0, "-vvv");
        let output = carbon_upgrade(&args);
        outputs.push(String::from_utf8_lossy(&output.stdout).into_owned());
        outputs.push(stderr(&output));
        if command == "run" {
            assert_eq!(code(&output), 0, "{}", stderr(&output));
        }
    }
    for text in &outputs {
        assert!(!text.contains(SECRET), "printed: {text}");
    }
    for entry in walkdir::WalkDir::new(scenario.state())
        .min_depth(1)
        .max_depth(1)
    {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let bytes = std::fs::read(entry.path()).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(SECRET),
                "{} holds the password",
                entry.path().display()
            );
        }
    }
}

/// `upgrade.toml` with a per-datasource staging target and its password from the environment.
#[test]
fn config_file_names_the_staging_database_postgres() {
    let scenario = Scenario::new(Vendor::Postgres);
    let staging = TestDb::reserve(Vendor::Postgres);
    let config = scenario.dir.path().join("upgrade.toml");
    let text = format!(
        "old_home = {:?}\nnew_home = {:?}\nstate_dir = {:?}\n\n[datasources.WSO2_CARBON_DB]\n\
         staging_url = {:?}\nstaging_username = \"postgres\"\nstaging_password_env = \"CARBON_IT_STAGING_PW\"\n",
        scenario.old(),
        scenario.new_home(),
        scenario.state(),
        jdbc_url("postgresql", staging.url()),
    );
    std::fs::write(&config, text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_carbon-upgrade"))
        .args(["run", "--config", config.to_str().unwrap()])
        .env("CARBON_IT_STAGING_PW", "not-checked-by-trust-auth")
        .output()
        .unwrap();
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(
        fingerprints(Vendor::Postgres, staging.url()),
        fingerprints(Vendor::Postgres, scenario.source.url())
    );
    let datasources = std::fs::read_to_string(
        scenario
            .new_home()
            .join("repository/conf/datasources/master-datasources.xml"),
    )
    .unwrap();
    assert!(datasources.contains(staging.name()));
    assert!(
        !datasources.contains("_staging"),
        "the default name is not used"
    );

    let missing_env = Command::new(env!("CARGO_BIN_EXE_carbon-upgrade"))
        .args(["plan", "--config", config.to_str().unwrap()])
        .env_remove("CARBON_IT_STAGING_PW")
        .output()
        .unwrap();
    assert_exit_naming(&missing_env, 2, "CARBON_IT_STAGING_PW");
}

/// `--start` runs `bin/wso2server.sh start` and waits for "WSO2 Carbon started" and the HTTPS
/// port + offset. The server here is a stand-in that does exactly those two things.
#[test]
fn run_start_waits_for_the_new_server_sqlite() {
    let scenario = Scenario::new(Vendor::Sqlite);
    // An offset no other test uses: its port must not make their preflights see a server.
    let carbon_xml = scenario.old().join("repository/conf/carbon.xml");
    let bytes = std::fs::read(&carbon_xml).unwrap();
    let (from, to): (&[u8], &[u8]) = (b"<Offset>3</Offset>", b"<Offset>41</Offset>");
    let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
    let edited = [&bytes[..at], to, &bytes[at + from.len()..]].concat();
    std::fs::write(&carbon_xml, edited).unwrap();
    let script = scenario.new_home().join("bin/wso2server.sh");
    std::fs::write(
        &script,
        r#"#!/bin/sh
cd "$(dirname "$0")/.."
offset=$(sed -n 's:.*<Offset>\([0-9]*\)</Offset>.*:\1:p' repository/conf/carbon.xml | head -n 1)
port=$((9443 + ${offset:-0}))
mkdir -p repository/logs
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
time.sleep(1)
open("repository/logs/wso2carbon.log", "a").write("INFO - WSO2 Carbon started in 1 sec\n")
time.sleep(120)
' "$port" >/dev/null 2>&1 &
echo $! > wso2carbon.pid
"#,
    )
    .unwrap();
    let mut owned = Vec::new();
    let mut args = scenario.args("run", &mut owned);
    args.extend(["--start", "--start-timeout", "30"]);
    let output = carbon_upgrade(&args);
    let pid =
        std::fs::read_to_string(scenario.new_home().join("wso2carbon.pid")).unwrap_or_default();
    let _ = Command::new("kill").arg(pid.trim()).status();
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = scenario.report();
    let start = step(&report, "start");
    assert_eq!(start["status"], "completed");
    assert_eq!(
        start["detail"]["https_port"], 9484,
        "9443 + the carried offset 41"
    );
}

/// Creates the scenario's default staging database holding no table, only objects an
/// emptiness check on tables would miss; returns its URL.
fn foreign_staging(scenario: &Scenario, vendor: Vendor) -> String {
    let staging = scenario.staging.as_ref().unwrap();
    let server = staging.server();
    let url = testkit::with_database(&server, &staging.name);
    match vendor {
        Vendor::Postgres => {
            let mut admin = testkit::pg_connect(&server).unwrap();
            admin
                .batch_execute(&format!("CREATE DATABASE \"{}\"", staging.name))
                .unwrap();
            testkit::pg_connect(&url)
                .unwrap()
                .batch_execute(
                    "CREATE VIEW v AS SELECT 1 AS one; CREATE SEQUENCE s;
                     CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
                )
                .unwrap();
        }
        _ => {
            use mysql::prelude::Queryable;
            let mut admin = testkit::mysql_connect(&server).unwrap();
            admin
                .query_drop(format!("CREATE DATABASE `{}`", staging.name))
                .unwrap();
            let mut c = testkit::mysql_connect(&url).unwrap();
            c.query_drop("CREATE VIEW v AS SELECT 1 AS one").unwrap();
            c.query_drop("CREATE PROCEDURE p() SELECT 1").unwrap();
            c.query_drop("CREATE EVENT e ON SCHEDULE EVERY 1 DAY DISABLE DO SELECT 1")
                .unwrap();
        }
    }
    url
}

fn held(url: &str) -> Vec<String> {
    let contents = carbon_db::contents(&carbon_db::DbUrl::parse(url).unwrap()).unwrap();
    contents.objects.iter().map(ToString::to_string).collect()
}

/// Issue 12 §1: preflight used to pass a staging database holding only a view, a sequence and
/// a function, copy refused it, and `resume` dropped it. Now every step refuses it (exit 3) and
/// nothing of it is removed.
fn check_foreign_staging_is_never_reset(vendor: Vendor, expected: &[&str]) {
    let scenario = Scenario::new(vendor);
    let url = foreign_staging(&scenario, vendor);
    assert_eq!(held(&url), expected);

    let preflight = scenario.run("preflight");
    let stdout = String::from_utf8_lossy(&preflight.stdout).into_owned();
    assert_eq!(code(&preflight), 3, "{stdout}");
    assert!(
        stdout.contains("FAIL  WSO2_CARBON_DB: staging empty or absent") && stdout.contains("view"),
        "{stdout}"
    );
    for command in ["run", "resume", "resume"] {
        let output = scenario.run(command);
        assert_exit_naming(&output, 3, "is not empty");
        assert_eq!(held(&url), expected, "{command} removed something");
    }
    assert_eq!(scenario.report()["status"], "failed");
}

#[test]
fn resume_never_resets_a_staging_it_did_not_prove_empty_postgres() {
    check_foreign_staging_is_never_reset(
        Vendor::Postgres,
        &["function public.f()", "sequence public.s", "view public.v"],
    );
}

#[test]
fn resume_never_resets_a_staging_it_did_not_prove_empty_mariadb() {
    check_foreign_staging_is_never_reset(Vendor::MySql, &["event e", "procedure p", "view v"]);
}

/// Issue 12 §1: SIGKILL once the staging database this run creates exists (during or just
/// after its copy); `resume` may reset it, because the journal proves the run created it, and
/// completes with staging equal to the source.
fn check_kill_during_copy_then_resume(vendor: Vendor) {
    let scenario = Scenario::new(vendor);
    let source_before = fingerprints(vendor, scenario.source.url());
    let staging = scenario.staging.as_ref().unwrap();
    let server = staging.server();
    let staging_url = testkit::with_database(&server, &staging.name);
    let mut owned = Vec::new();
    let args = scenario.args("run", &mut owned);
    let mut child = Command::new(env!("CARGO_BIN_EXE_carbon-upgrade"))
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let exists = || {
        carbon_db::contents(&carbon_db::DbUrl::parse(&staging_url).unwrap())
            .map(|c| c.exists)
            .unwrap_or(false)
    };
    while !exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "staging never appeared"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its copy"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let journal = std::fs::read_to_string(scenario.state().join("journal.jsonl")).unwrap();
    assert!(
        journal.contains(
            r#""event":"staging_claimed","datasource":"WSO2_CARBON_DB","claim":"created""#
        ),
        "{journal}"
    );
    assert!(
        !journal.contains(r#""event":"completed","step":"copy:"#),
        "the kill landed after the copy: {journal}"
    );

    let output = scenario.run("resume");
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    if vendor == Vendor::Postgres {
        // The template copy keeps no copy journal: the claim is what allows the reset.
        assert!(
            stderr(&output).contains("resetting staging and copying again"),
            "{}",
            stderr(&output)
        );
    }
    assert_eq!(scenario.report()["status"], "completed");
    assert_eq!(fingerprints(vendor, &staging_url), source_before);
    assert_eq!(fingerprints(vendor, scenario.source.url()), source_before);
}

#[test]
fn kill_during_copy_into_a_created_staging_resumes_postgres() {
    check_kill_during_copy_then_resume(Vendor::Postgres);
}

#[test]
fn kill_during_copy_into_a_created_staging_resumes_mariadb() {
    check_kill_during_copy_then_resume(Vendor::MySql);
}

/// The replicated user-store files of the new home: (relative path, text).
fn store_files(home: &Path) -> Vec<(String, String)> {
    carbon_config::ProductHome::open(home)
        .unwrap()
        .user_stores
        .iter()
        .map(|s| {
            let text = std::fs::read_to_string(home.join(&s.file)).unwrap();
            (s.file.display().to_string(), text)
        })
        .collect()
}

fn step<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {report}"))
}

/// Keeps the journal up to the start of `step`: as if the run was killed inside it.
fn cut_journal_inside(state: &Path, step: &str) {
    let path = state.join("journal.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut kept = String::new();
    for line in text.lines() {
        kept.push_str(line);
        kept.push('\n');
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        if event["event"] == "started" && event["step"] == step {
            break;
        }
    }
    std::fs::write(&path, kept).unwrap();
}

/// A super-tenant store (plain password = the datasource's) and tenant stores (encrypted
/// password) on the old database: after the run the replicated files point at staging, the old
/// home is byte-identical, and a run killed inside the edit step resumes applying each edit once.
fn check_userstores(vendor: Vendor, password: Secret, staging_password: Option<&str>) {
    let scenario = Scenario::with(vendor, false, |old| {
        old.stores_on_first_datasource = true;
        old.datasources[0].password = password.clone();
    });
    let old_before = tree_digest(&scenario.old());
    let config = scenario.dir.path().join("upgrade.toml");
    let mut text = format!(
        "old_home = {:?}\nnew_home = {:?}\nstate_dir = {:?}\n",
        scenario.old(),
        scenario.new_home(),
        scenario.state(),
    );
    if staging_password.is_some() {
        text.push_str(
            "\n[datasources.WSO2_CARBON_DB]\nstaging_password_env = \"CARBON_IT_STAGING_PW\"\n",
        );
    }
    std::fs::write(&config, text).unwrap();
    let carbon_upgrade = |command: &str| {
        Command::new(env!("CARGO_BIN_EXE_carbon-upgrade"))
            .args([command, "--config", config.to_str().unwrap()])
            .env("CARBON_IT_STAGING_PW", staging_password.unwrap_or(""))
            .output()
            .unwrap()
    };

    let plan = carbon_upgrade("plan");
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    let plan_text = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(
        plan_text.contains("userstores/wso2_com.xml") && plan_text.contains("_staging"),
        "{plan_text}"
    );

    let output = carbon_upgrade("run");
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let staging_db = format!("{}_staging", scenario.source.name());
    let stores = store_files(&scenario.new_home());
    assert!(stores.len() >= 2, "{stores:?}");
    for (file, text) in &stores {
        assert!(
            text.contains(&format!("/{staging_db}</Property>")),
            "{file} points at staging:\n{text}"
        );
        if file.starts_with("repository/tenants") {
            assert!(text.contains("encrypted=\"true\""), "{file}: {text}");
        } else if let Some(pw) = staging_password {
            assert!(
                text.contains(&format!("<Property name=\"password\">{pw}</Property>")),
                "{file}: {text}"
            );
        }
    }
    assert_eq!(
        tree_digest(&scenario.old()),
        old_before,
        "old home unchanged"
    );
    let report = scenario.report();
    assert_eq!(report["status"], "completed", "{report}");
    let edit_step = step(&report, "connect-userstores");
    let edits = edit_step["detail"]["edits"].as_array().unwrap();
    assert_eq!(edits.len(), stores.len(), "{edit_step}");
    let notices = edit_step["detail"]["notices"].to_string();
    assert!(
        notices.contains("the staging database must accept it"),
        "{notices}"
    );
    let everything = format!(
        "{}{}{}{}",
        String::from_utf8_lossy(&output.stdout),
        stderr(&output),
        report,
        std::fs::read_to_string(scenario.state().join("report.md")).unwrap()
    );
    for secret in ["0ld-pw", "st4ging-pw"] {
        assert!(!everything.contains(secret), "{secret} printed");
    }
    let edited = step(&report, "verify-home")["detail"]["trees"].to_string();
    assert!(edited.contains("wso2_com.xml"), "{edited}");

    // Killed inside the edit step after the super tenant's file was edited: resume edits the
    // rest, once, and the manifest check still accepts exactly the recorded edits.
    cut_journal_inside(&scenario.state(), "connect-userstores");
    let (tenant_file, _) = stores
        .iter()
        .find(|(f, _)| f.starts_with("repository/tenants"))
        .unwrap();
    std::fs::copy(
        scenario.old().join(tenant_file),
        scenario.new_home().join(tenant_file),
    )
    .unwrap();
    let resumed = carbon_upgrade("resume");
    assert_eq!(code(&resumed), 0, "{}", stderr(&resumed));
    let report = scenario.report();
    let edit_step = step(&report, "connect-userstores");
    assert_eq!(edit_step["attempts"], 2, "{edit_step}");
    assert_eq!(edit_step["detail"]["applied_now"], 1, "{edit_step}");
    assert_eq!(store_files(&scenario.new_home()), stores, "same result");
    assert_eq!(
        tree_digest(&scenario.old()),
        old_before,
        "old home unchanged"
    );

    // A store edited behind the tool's back is not accepted by verify-home.
    cut_journal_inside(&scenario.state(), "verify-home");
    let file = scenario.new_home().join(tenant_file);
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("ReadOnly\">false", "ReadOnly\">true")).unwrap();
    let tampered = carbon_upgrade("resume");
    assert_exit_naming(
        &tampered,
        1,
        tenant_file.trim_start_matches("repository/tenants/"),
    );
}

#[test]
fn userstores_on_the_old_database_point_at_staging_postgres() {
    check_userstores(
        Vendor::Postgres,
        Secret::Plain("0ld-pw".into()),
        Some("st4ging-pw"),
    );
}

#[test]
fn userstores_on_the_old_database_point_at_staging_mariadb() {
    check_userstores(Vendor::MySql, Secret::Empty, None);
}

/// The old system already has a UM_DOMAIN row without a user-store file: the run completes
/// and reports it as pre-existing; `--strict` fails on it.
#[test]
fn pre_existing_findings_warn_and_strict_fails_postgres() {
    for strict in [false, true] {
        let scenario = Scenario::new(Vendor::Postgres);
        scenario
            .source
            .pg_client()
            .batch_execute(
                "INSERT INTO UM_DOMAIN (UM_DOMAIN_ID, UM_DOMAIN_NAME, UM_TENANT_ID) VALUES (900001, 'GHOST.COM', -1234)",
            )
            .unwrap();
        let mut owned = Vec::new();
        let mut args = scenario.args("run", &mut owned);
        if strict {
            args.push("--strict");
        }
        let output = carbon_upgrade(&args);
        let report = scenario.report();
        let preflight = step(&report, "preflight")["detail"]["checks"].to_string();
        assert!(
            preflight.contains("userstore-file domain GHOST.COM of tenant -1234"),
            "shown up front: {preflight}"
        );
        if strict {
            assert_eq!(code(&output), 1, "{}", stderr(&output));
            assert!(
                stderr(&output).contains("domain GHOST.COM of tenant -1234")
                    && stderr(&output).contains("pre-existing"),
                "{}",
                stderr(&output)
            );
            assert_eq!(report["stopped_at"], "verify-home");
            continue;
        }
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        assert_eq!(report["status"], "completed");
        let verify = &step(&report, "verify-home")["detail"];
        let pre_existing = verify["pre_existing"].to_string();
        assert!(
            pre_existing.contains("warning userstore-file domain GHOST.COM of tenant -1234"),
            "{verify}"
        );
        assert!(
            !verify["introduced"].to_string().contains("GHOST.COM"),
            "{verify}"
        );
        let md = std::fs::read_to_string(scenario.state().join("report.md")).unwrap();
        assert!(
            md.contains("Pre-existing") && md.contains("GHOST.COM"),
            "{md}"
        );
    }
}

/// `plan` and `run` find the old tenants where the old home keeps them: a
/// `-Dtenants.dir.path` in its start script (outside the home), or `CARBON_TENANTS_DIR_PATH`.
#[test]
fn plan_and_run_take_tenants_from_the_configured_directory_sqlite() {
    for via_env in [false, true] {
        check_tenants_dir(via_env);
    }
}

fn check_tenants_dir(via_env: bool) {
    let scenario = Scenario::new(Vendor::Sqlite);
    let default = scenario.old().join("repository/tenants");
    let ids: Vec<String> = std::fs::read_dir(&default)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!ids.is_empty(), "the fixture has tenants");
    let moved = if via_env {
        scenario.old().join("elsewhere")
    } else {
        scenario.dir.path().join("tenants-outside")
    };
    std::fs::rename(&default, &moved).unwrap();
    if !via_env {
        let script = format!(
            "#!/bin/sh\n# -Dtenants.dir.path=/commented/out \\\nexec java -Dcarbon.home=\"$CARBON_HOME\" \\\n    -Dtenants.dir.path=\"{}\" \\\n    org.wso2.carbon.bootstrap.Bootstrap \"$@\"\n",
            moved.display()
        );
        std::fs::write(scenario.old().join("bin/wso2server.sh"), script).unwrap();
    }
    let command = |name: &str| {
        let mut owned = Vec::new();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_carbon-upgrade"));
        cmd.args(scenario.args(name, &mut owned));
        if via_env {
            cmd.env("CARBON_TENANTS_DIR_PATH", "elsewhere");
        } else {
            cmd.env_remove("CARBON_TENANTS_DIR_PATH");
        }
        cmd
    };
    let plan = command("plan").arg("--json").output().unwrap();
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let tenants = plan["replicate"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "tenants")
        .unwrap_or_else(|| panic!("via_env={via_env}: no tenants part in {plan:#}"));
    assert_eq!(tenants["src"], moved.display().to_string(), "{plan:#}");

    let run = command("run").output().unwrap();
    assert_eq!(code(&run), 0, "via_env={via_env}: {}", stderr(&run));
    // The new home resolves the same way: the relative variable names a directory in it.
    let new_tenants = if via_env {
        scenario.new_home().join("elsewhere")
    } else {
        scenario.new_home().join("repository/tenants")
    };
    for id in &ids {
        assert!(
            new_tenants.join(id).is_dir(),
            "via_env={via_env}: tenant {id}"
        );
    }
    if !via_env {
        let backup = scenario.state().join("backup/tenants");
        assert!(
            backup.join(&ids[0]).is_dir(),
            "tenants outside the home are backed up"
        );
    }
}

/// One condition, one exit code: a non-empty staging database is unsafe (3) whether `db copy`
/// or `run` meets it, because the code comes from the error's kind and not from the command.
#[test]
fn a_non_empty_target_exits_3_from_db_copy_and_from_run_postgres() {
    let scenario = Scenario::new(Vendor::Postgres);
    let staging_name = format!("{}_staging", scenario.source.name());
    let _drop = DropOnExit {
        vendor: Vendor::Postgres,
        name: staging_name.clone(),
        tls: false,
    };
    let (staging_url, _) = busy_pg_staging(&staging_name);

    let source = scenario.source.url().to_string();
    let copy = carbon_upgrade(&["db", "copy", "--from", &source, "--to", &staging_url]);
    let run = scenario.run("run");
    for output in [&copy, &run] {
        assert_exit_naming(output, 3, "is not empty");
    }
}

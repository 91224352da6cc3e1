//! `carbon-upgrade db schema-diff` on databases made by the real WSO2 kernel scripts: exit
//! code by the classes found, text and JSON output, bad input.

use carbon_db::testkit::{TestDb, wso2_fixtures};
use carbon_db::{DbUrl, Session, Vendor};

use crate::support::{carbon_upgrade, code, stderr};

/// A staging database made by `script` (relative to the fixtures).
fn staging(vendor: Vendor, script: &str) -> TestDb {
    let db = TestDb::new(vendor);
    let mut s = Session::read_write(&DbUrl::parse(db.url()).unwrap()).unwrap();
    carbon_db::schema::run_script(&mut s, &wso2_fixtures().join(script)).unwrap();
    db
}

/// `schema-diff` of `db` against `scripts` (relative to the fixtures): exit code and stdout.
fn check(db: &TestDb, scripts: &[&str], extra: &[&str]) -> (i32, String) {
    let scripts: Vec<String> = scripts
        .iter()
        .map(|s| wso2_fixtures().join(s).display().to_string())
        .collect();
    let mut args = vec!["db", "schema-diff", "--db", db.url(), "--scripts"];
    args.extend(scripts.iter().map(String::as_str));
    args.extend(extra);
    let out = carbon_upgrade(&args);
    assert!(out.status.code().is_some(), "{}", stderr(&out));
    (
        code(&out),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn difference_lines(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with("  ") && !l.trim_start().starts_with("align:"))
        .map(|l| l.trim().split(':').next().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn kernel_446_database_against_447_scripts_exits_0_with_cosmetic_renames() {
    for (vendor, old, new) in [
        (
            Vendor::Postgres,
            "4.4.6/dbscripts/postgresql.sql",
            "4.4.7/dbscripts",
        ),
        (
            Vendor::MySql,
            "4.4.6/dbscripts/mysql.sql",
            "4.4.7/dbscripts",
        ),
    ] {
        let db = staging(vendor, old);
        let (exit, stdout) = check(&db, &[new], &[]);
        assert_eq!(exit, 0, "{vendor}: {stdout}");
        let mut expected = vec![
            "cosmetic   REG_LOG index REG_LOG_IND_BY_REG_LOGTIME",
            "cosmetic   REG_RESOURCE index REG_RESOURCE_IND_BY_TENANT",
        ];
        if vendor == Vendor::MySql {
            expected.insert(
                0,
                "compatible REG_RESOURCE column REG_LAST_UPDATED_TIME default",
            );
            expected.insert(0, "compatible REG_RESOURCE column REG_CREATED_TIME default");
        }
        assert_eq!(difference_lines(&stdout), expected, "{vendor}: {stdout}");
        // --align runs the statements and proves again: identical.
        let (exit, stdout) = check(&db, &[new], &["--align"]);
        assert_eq!(exit, 0, "{vendor}: {stdout}");
        assert!(
            stdout.trim_end().ends_with(": identical"),
            "{vendor}: {stdout}"
        );
    }
}

#[test]
fn kernel_446_database_against_4411_scripts_exits_1_on_the_missing_index() {
    let db = staging(Vendor::Postgres, "4.4.6/dbscripts/postgresql.sql");
    let (exit, stdout) = check(
        &db,
        &["kernel-4.4.11/dbscripts/postgresql.sql"],
        &["--json"],
    );
    assert_eq!(exit, 1, "{stdout}");
    let proof: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let missing: Vec<String> = proof["diff"]["differences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["class"] == "missing")
        .map(|d| {
            format!(
                "{} {}",
                d["table"].as_str().unwrap(),
                d["object"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(missing, ["UM_USER_ATTRIBUTE index UM_USER_ID_INDEX"]);
}

#[test]
fn schema_diff_bad_input_exits_2_in_one_line() {
    let db = TestDb::new(Vendor::Postgres);
    for (args, wanted) in [
        (
            vec!["--db", db.url(), "--scripts", "/nonexistent/dbscripts.sql"],
            "/nonexistent/dbscripts.sql: cannot read the script",
        ),
        (
            vec![
                "--db",
                "jdbc:h2:/tmp/none/WSO2CARBON_DB",
                "--scripts",
                "/tmp",
            ],
            "h2 scripts are not run",
        ),
    ] {
        let mut all = vec!["db", "schema-diff"];
        all.extend(args);
        let out = carbon_upgrade(&all);
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(wanted), "{err}");
    }
}

/// The real kernel homes (old 4.4.6 on a 4.4.7 database with rows, new 4.4.7 whose
/// `dbscripts/postgresql.sql` is `new_script`), and a writer of their upgrade.toml.
struct Scenario {
    dir: tempfile::TempDir,
    db: TestDb,
    _staging: crate::support::DropOnExit,
    old: std::path::PathBuf,
    new: std::path::PathBuf,
}

impl Scenario {
    fn new(new_script: &str) -> Scenario {
        use crate::conformance::{old_home, source_database};
        use crate::support::{DropOnExit, copy_tree};
        let vendor = Vendor::Postgres;
        let dir = tempfile::tempdir().unwrap();
        let (db, tenants) = source_database(vendor);
        let staging = DropOnExit {
            vendor,
            name: format!("{}_staging", db.name()),
            tls: false,
        };
        let old = old_home(dir.path(), &db, tenants);
        let new = dir.path().join("new");
        copy_tree(&wso2_fixtures().join("4.4.7"), &new);
        std::fs::copy(
            wso2_fixtures().join(new_script),
            new.join("dbscripts/postgresql.sql"),
        )
        .unwrap();
        for home in [&old, &new] {
            let keystore = home.join("repository/resources/security/wso2carbon.jks");
            std::fs::create_dir_all(keystore.parent().unwrap()).unwrap();
            std::fs::write(&keystore, b"\xfe\xed\xfe\xed keystore stand-in").unwrap();
        }
        Scenario {
            dir,
            db,
            _staging: staging,
            old,
            new,
        }
    }

    fn state(&self) -> std::path::PathBuf {
        self.dir.path().join("state")
    }

    /// Writes upgrade.toml with `extra` appended and returns its path.
    fn config(&self, extra: &str) -> String {
        let config = self.dir.path().join("upgrade.toml");
        let text = format!(
            "old_home = {:?}\nnew_home = {:?}\nstate_dir = {:?}\n{extra}",
            self.old.display().to_string(),
            self.new.display().to_string(),
            self.state().display().to_string()
        );
        std::fs::write(&config, text).unwrap();
        config.display().to_string()
    }
}

/// `run` on the real kernel homes whose new home ships kernel 4.4.11's scripts: staging (a
/// copy of a 4.4.7 database) lacks `UM_USER_ID_INDEX`, so the run stops at the schema proof
/// with exit 1; accepted in upgrade.toml, `resume` finishes and the report says so.
#[test]
fn run_stops_on_a_missing_index_until_accepted() {
    let sc = Scenario::new("kernel-4.4.11/dbscripts/postgresql.sql");
    let config = sc.config("");
    let plan = carbon_upgrade(&["plan", "-c", &config]);
    let plan_text = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(
        plan_text.contains("missing    UM_USER_ATTRIBUTE index UM_USER_ID_INDEX"),
        "{plan_text}"
    );
    let first = carbon_upgrade(&["run", "-c", &config]);
    let err = stderr(&first);
    assert_eq!(code(&first), 1, "{err}");
    assert!(
        err.contains("schema-proof:WSO2_CARBON_DB")
            && err.contains("UM_USER_ATTRIBUTE index UM_USER_ID_INDEX")
            && err.contains("accept_missing"),
        "{err}"
    );
    let config = sc.config(
        "[datasources.WSO2_CARBON_DB]\naccept_missing = [\"UM_USER_ATTRIBUTE index UM_USER_ID_INDEX\"]\n",
    );
    let second = carbon_upgrade(&["resume", "-c", &config]);
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    let report = std::fs::read_to_string(sc.state().join("report.md")).unwrap();
    assert!(
        report.contains("accepted missing: UM_USER_ATTRIBUTE index UM_USER_ID_INDEX"),
        "{report}"
    );
}

/// `run` with a migration script that fails at its second statement: the run stops at
/// `migrate:` naming `script:line`; after the fix `resume` continues at that statement, the
/// schema proof against kernel 4.4.11 finds nothing missing (the script adds the index), the
/// report has the row counts, and the source is unchanged.
#[test]
fn run_migrates_staging_stops_at_the_failed_statement_and_resumes() {
    let sc = Scenario::new("kernel-4.4.11/dbscripts/postgresql.sql");
    let source_before = crate::support::fingerprints(Vendor::Postgres, sc.db.url());
    let script = sc.dir.path().join("to-4.4.11.sql");
    let broken = "-- kernel 4.4.10 -> 4.4.11\nCREATE INDEX UM_USER_ID_INDEX ON UM_USER_ATTRIBUTE(UM_USER_ID);\nDELETE FROM REG_LOG WHERE REG_LOG_ID IN (SELECT REG_LOG_ID FROM REG_LOG ORDER BY 1 LIMIT 2);\nINSERT INTO NO_SUCH_TABLE VALUES (1);\n";
    std::fs::write(&script, broken).unwrap();
    let config = sc.config(&format!(
        "[datasources.WSO2_CARBON_DB]\nmigration_scripts = [{:?}]\n",
        script.display().to_string()
    ));
    let plan = carbon_upgrade(&["plan", "-c", &config]);
    let plan_text = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(
        plan_text.contains("to-4.4.11.sql (3 statements)"),
        "{plan_text}"
    );
    let first = carbon_upgrade(&["run", "-c", &config]);
    let err = stderr(&first);
    assert_ne!(code(&first), 0, "{err}");
    assert!(
        err.contains("migrate:WSO2_CARBON_DB")
            && err.contains(&format!(
                "{}:4: statement 3 `INSERT INTO NO_SUCH_TABLE VALUES (1)` failed",
                script.display()
            ))
            && err.contains("no_such_table"),
        "{err}"
    );
    std::fs::write(
        &script,
        broken.replace("INSERT INTO NO_SUCH_TABLE VALUES (1);", "SELECT 1;"),
    )
    .unwrap();
    let second = carbon_upgrade(&["resume", "-c", &config]);
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    let report = std::fs::read_to_string(sc.state().join("report.md")).unwrap();
    assert!(report.contains("## migrate:WSO2_CARBON_DB"), "{report}");
    assert!(
        report.contains("**Tables that lost rows:** REG_LOG"),
        "{report}"
    );
    assert!(report.contains("| UM_USER |"), "{report}");
    assert!(
        report.contains("## schema-proof:WSO2_CARBON_DB"),
        "{report}"
    );
    assert_eq!(
        crate::support::fingerprints(Vendor::Postgres, sc.db.url()),
        source_before,
        "the source is unchanged"
    );
}

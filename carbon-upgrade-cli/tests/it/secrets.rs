//! Secret hygiene: the scenarios run at -vvv with known passwords (a MariaDB user created by
//! the test, a datasource password in the old home, a secure-vault alias resolved from the
//! environment, a staging password from --password-env) and not one of them appears in
//! stdout, stderr, the journal, the reports, copy journals, manifests or logs. URLs with
//! credentials are shown as `user:********@` (carbon-config's one mask).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use carbon_config::secret::REDACTED;
use carbon_db::Vendor;
use carbon_db::fixture::{self, Scale};
use carbon_db::testkit::TestDb;

use crate::bad_input::{Homes, MariaUser, maria_url, set_datasource};
use crate::support::{DropOnExit, code, jdbc_url, stderr};

const DB_PASSWORD: &str = "Db-Pw-Q7zX41";
const STAGING_PASSWORD: &str = "Staging-Pw-M2v88";

fn run(args: &[String], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_carbon-upgrade"));
    cmd.arg("-vvv").args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn strings(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<String> {
    args.iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect()
}

/// Every `user:` in `text` is followed by the redaction, never by a password.
fn credentials_redacted(text: &str, user: &str) -> Result<(), String> {
    let needle = format!("{user}:");
    for (at, _) in text.match_indices(&needle) {
        let after = &text[at + needle.len()..];
        if !after.starts_with(REDACTED) && after.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            let end = (at + 80).min(text.len());
            return Err(text[at..end].to_owned());
        }
    }
    Ok(())
}

#[test]
#[allow(clippy::print_stdout)]
fn no_secret_in_any_output_state_or_log_mariadb() {
    let source = TestDb::new(Vendor::MySql);
    fixture::generate_mysql(&mut source.mysql_conn(), &Scale::tiny()).unwrap();
    let user = MariaUser::create(DB_PASSWORD);
    let staging_name = format!("{}_staging", source.name());
    let _staging = DropOnExit {
        vendor: Vendor::MySql,
        name: staging_name.clone(),
        tls: false,
    };
    let copy_name = format!("{}_cp", source.name());
    let _copy = DropOnExit {
        vendor: Vendor::MySql,
        name: copy_name.clone(),
        tls: false,
    };
    let h = Homes::new();
    let jdbc = jdbc_url("mysql", source.url());
    // The plain-text datasource password, in the old home's XML.
    let plain = h.variant("plain-home");
    set_datasource(
        &plain,
        &jdbc,
        &user.name,
        &format!("<password>{DB_PASSWORD}</password>"),
    );
    std::fs::remove_file(plain.join("repository/database/WSO2CARBON_DB.db")).unwrap();
    // The same datasource behind a secure-vault alias, resolved from the environment.
    let vault = h.variant("vault-home");
    set_datasource(
        &vault,
        &jdbc,
        &user.name,
        "<password svns:secretAlias=\"Datasources.WSO2_CARBON_DB.Configuration.Password\"/>",
    );
    std::fs::remove_file(vault.join("repository/database/WSO2CARBON_DB.db")).unwrap();
    let state = h.path("state");
    let config = h.path("upgrade.toml");
    std::fs::write(
        &config,
        format!(
            "old_home = {vault:?}\nnew_home = {:?}\nstate_dir = {state:?}\n\n[datasources.WSO2_CARBON_DB]\nsource_password_env = \"CARBON_IT_VAULT_PW\"\n",
            h.new_home()
        ),
    )
    .unwrap();
    // The plain-password run stages elsewhere (the vault run fills `<db>_staging`), with the
    // staging password from the environment.
    let plain_staging = format!("{}_plain", source.name());
    let _plain_staging = DropOnExit {
        vendor: Vendor::MySql,
        name: plain_staging.clone(),
        tls: false,
    };
    let plain_config = h.path("plain.toml");
    std::fs::write(
        &plain_config,
        format!(
            "old_home = {plain:?}\nnew_home = {:?}\nstate_dir = {:?}\n\n[datasources.WSO2_CARBON_DB]\nstaging_url = \"jdbc:mysql://{}/{plain_staging}\"\nstaging_username = \"{}\"\nstaging_password_env = \"CARBON_IT_STAGING_PW\"\n",
            h.new_home(),
            h.path("plain-state"),
            mariadb_host_port(),
            user.name
        ),
    )
    .unwrap();
    let plain_env = [("CARBON_IT_STAGING_PW", DB_PASSWORD)];
    let vault_env = [("CARBON_IT_VAULT_PW", DB_PASSWORD)];
    let credentialed = maria_url(&user.name, DB_PASSWORD, source.name());
    let credentialed_copy = maria_url(&user.name, DB_PASSWORD, &copy_name);
    let copy_journal = h.path("copy-journal.jsonl");
    let log = h.path("carbon-upgrade.log");

    let mut outputs: Vec<(String, Output)> = Vec::new();
    let mut step = |name: &str, args: Vec<String>, env: &[(&str, &str)], expect: i32| {
        let output = run(&args, env);
        let ok = code(&output) == expect;
        assert!(
            ok,
            "{name}: exit {}: {}{}",
            code(&output),
            String::from_utf8_lossy(&output.stdout),
            stderr(&output)
        );
        outputs.push((name.to_owned(), output));
    };
    let plain_runbook =
        |command: &str| strings(&[&command, &"--config", &plain_config.display().to_string()]);
    step(
        "plan (plain password)",
        plain_runbook("plan"),
        &plain_env,
        0,
    );
    step(
        "preflight (plain password)",
        plain_runbook("preflight"),
        &plain_env,
        0,
    );
    let with_config =
        |command: &str| strings(&[&command, &"--config", &config.display().to_string()]);
    step("plan (vault)", with_config("plan"), &vault_env, 0);
    step("preflight (vault)", with_config("preflight"), &vault_env, 0);
    step("run (vault)", with_config("run"), &vault_env, 0);
    step("status (vault)", with_config("status"), &vault_env, 0);
    step("run (plain password)", plain_runbook("run"), &plain_env, 0);
    step(
        "status (plain password)",
        plain_runbook("status"),
        &plain_env,
        0,
    );
    step(
        "db inspect",
        strings(&[&"db", &"inspect", &credentialed]),
        &[],
        0,
    );
    step(
        "db copy",
        strings(&[
            &"db",
            &"copy",
            &"--from",
            &credentialed,
            &"--to",
            &credentialed_copy,
            &"--journal",
            &copy_journal,
        ]),
        &[],
        0,
    );
    let db_verify = strings(&[
        &"db",
        &"verify",
        &"--from",
        &credentialed,
        &"--to",
        &credentialed_copy,
    ]);
    step("db verify", db_verify.clone(), &[], 0);
    let json = [db_verify, vec!["--json".to_owned()]].concat();
    step("db verify --json", json, &[], 0);
    step(
        "db inspect (unreachable, credentialed)",
        strings(&[
            &"db",
            &"inspect",
            &format!("mysql://{}:{DB_PASSWORD}@127.0.0.1:1/x", user.name),
        ]),
        &[],
        2,
    );
    step(
        "config show",
        strings(&[&"config", &"show", &plain]),
        &[],
        0,
    );
    step(
        "config show --json",
        strings(&[&"config", &"show", &plain, &"--json"]),
        &[],
        0,
    );
    let connect = |dry: bool| {
        let mut args = strings(&[
            &"config",
            &"connect",
            &h.new_home(),
            &"--datasource",
            &format!(
                "WSO2_CARBON_DB=jdbc:mysql://{}/{staging_name}",
                mariadb_host_port()
            ),
            &"--username",
            &user.name,
            &"--password-env",
            &"CARBON_IT_STAGING_PW",
        ]);
        if dry {
            args.push("--dry-run".into());
        }
        args
    };
    let staging_env = [("CARBON_IT_STAGING_PW", STAGING_PASSWORD)];
    step("config connect --dry-run", connect(true), &staging_env, 0);
    step("config connect", connect(false), &staging_env, 0);
    step(
        "verify home",
        strings(&[
            &"verify",
            &"home",
            &"--home",
            &h.new_home(),
            &"--db",
            &maria_url(&user.name, DB_PASSWORD, &staging_name),
            &"--old-db",
            &credentialed,
        ]),
        &[],
        0,
    );
    // A log file: the CLI logs to stderr; capture a trace-level run to a file as an operator would.
    let traced = Command::new(env!("CARGO_BIN_EXE_carbon-upgrade"))
        .args(["-vvv", "db", "verify", "--from", &credentialed, "--to"])
        .arg(&credentialed_copy)
        .env("CARBON_UPGRADE_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .status()
        .unwrap();
    assert!(traced.success());

    let secrets = [DB_PASSWORD, STAGING_PASSWORD];
    // The checks can fail: a credentialed URL is caught.
    assert!(credentials_redacted(&credentialed, &user.name).is_err());
    assert!(credentials_redacted(&credentialed.replace(DB_PASSWORD, REDACTED), &user.name).is_ok());
    let mut leaks = Vec::new();
    let mut grepped = 0;
    for (name, output) in &outputs {
        for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
            let text = String::from_utf8_lossy(bytes);
            grepped += 1;
            for secret in secrets {
                if text.contains(secret) {
                    leaks.push(format!("{name} {stream} shows {secret}: {text}"));
                }
            }
            if let Err(shown) = credentials_redacted(&text, &user.name) {
                leaks.push(format!("{name} {stream} shows a credentialed URL: {shown}"));
            }
        }
    }
    let mut files: Vec<PathBuf> = vec![copy_journal.clone(), log.clone()];
    for dir in [&state, &h.path("plain-state")] {
        for entry in walkdir::WalkDir::new(dir) {
            let entry = entry.unwrap();
            // The backup of the home holds byte copies of its configuration files.
            if entry.path().starts_with(dir.join("backup/home")) || !entry.file_type().is_file() {
                continue;
            }
            files.push(entry.path().to_path_buf());
        }
    }
    assert!(files.iter().any(|f| f.ends_with("journal.jsonl")));
    assert!(files.iter().any(|f| f.ends_with("report.json")));
    assert!(files.iter().any(|f| f.ends_with("report.md")));
    // A finished copy removes its journal; one left (an interrupted copy) is grepped too.
    files.retain(|f| f.exists());
    assert!(
        files
            .iter()
            .any(|f| f.starts_with(h.path("plain-state").join("manifests")))
    );
    for file in &files {
        grepped += 1;
        let text = String::from_utf8_lossy(&std::fs::read(file).unwrap()).into_owned();
        for secret in secrets {
            if text.contains(secret) {
                leaks.push(format!("{} holds {secret}", file.display()));
            }
        }
        if let Err(shown) = credentials_redacted(&text, &user.name) {
            leaks.push(format!(
                "{} holds a credentialed URL: {shown}",
                file.display()
            ));
        }
    }
    println!(
        "secret grep: {} outputs and {} files, {} occurrence(s)",
        outputs.len() * 2,
        files.len(),
        leaks.len()
    );
    assert!(grepped > 30, "grepped {grepped} texts");
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
    // The connect did write the staging password where Carbon needs it: the test is live.
    let connected = std::fs::read_to_string(
        h.new_home()
            .join("repository/conf/datasources/master-datasources.xml"),
    )
    .unwrap();
    assert!(connected.contains(STAGING_PASSWORD));
}

/// `host:port` of the MariaDB test server (the loopback default or a private one).
fn mariadb_host_port() -> String {
    let server = carbon_db::testkit::server_url(Vendor::MySql).unwrap();
    let url = carbon_db::DbUrl::parse(&carbon_db::testkit::with_database(&server, "x")).unwrap();
    format!("{}:{}", url.host(), url.port())
}

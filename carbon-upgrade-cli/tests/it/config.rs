//! `carbon-upgrade config ...` end to end: the built binary over homes written by the
//! carbon-config fixture writer.

use std::path::Path;
use std::process::{Command, Output};

use carbon_config::fixture::{CarbonVersion, HomeSpec, write_home};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn assert_stdout_has(&self, needle: &str) {
        assert!(self.stdout.contains(needle), "{}", self.stdout);
    }
}

fn config(args: &[&str]) -> Run {
    config_env(args, &[])
}

fn config_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_carbon-upgrade"));
    cmd.arg("config").args(args);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    Run {
        code: status.code().unwrap(),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

fn home(dir: &Path, version: CarbonVersion) -> String {
    write_home(dir, &HomeSpec::new(version)).unwrap();
    dir.to_str().unwrap().to_owned()
}

const URL_PATH: &str = "datasources-configuration/datasources/datasource[name='WSO2_CARBON_DB']/definition/configuration/url";

#[test]
fn show_prints_the_model_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let root = home(dir.path(), CarbonVersion::V4_4_7);
    let run = config(&["show", &root]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = run.stdout.replace(&root, "[HOME]");
    insta::assert_snapshot!(text);

    let run = config(&["show", &root, "--json"]);
    assert_eq!(run.code, 0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["version"], "4.4.7");
    assert_eq!(json["tenant_ids"], serde_json::json!([1, 2, 5]));
    assert_eq!(
        json["datasources"][0]["password"],
        serde_json::json!({"kind": "plain", "alias": null})
    );
}

#[test]
fn get_and_set_with_dry_run_backup_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let root = home(dir.path(), CarbonVersion::V4_4_7);
    let carbon = format!("{root}/repository/conf/carbon.xml");
    let original = std::fs::read(&carbon).unwrap();

    let run = config(&["get", &carbon, "Server/Ports/Offset"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "0\n"));

    let run = config(&["set", &carbon, "Server/Ports/Offset", "5", "--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_stdout_has("-        <Offset>0</Offset>\n+        <Offset>5</Offset>\n");
    assert_eq!(
        std::fs::read(&carbon).unwrap(),
        original,
        "dry run writes nothing"
    );

    let run = config(&["set", &carbon, "Server/Ports/Offset", "5"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read(format!("{carbon}.bak")).unwrap(), original);
    assert_eq!(
        config(&["get", &carbon, "Server/Ports/Offset"]).stdout,
        "5\n"
    );

    let password = "Server/Security/KeyStore/Password";
    assert_eq!(
        config(&["get", &carbon, password]).stdout,
        "********\n",
        "secrets are not printed"
    );

    let edited = std::fs::read(&carbon).unwrap();
    let cases = [
        (
            vec!["get", &carbon, "Server/Nope"],
            "`Server/Nope` matches nothing",
        ),
        (
            vec!["set", &carbon, "Server/Ports[", "1"],
            "bad path expression `Server/Ports[`",
        ),
        (
            vec!["set", &carbon, "Server/Ports", "1"],
            "the element has child elements",
        ),
        (
            vec!["get", "/nonexistent/carbon.xml", "Server"],
            "/nonexistent/carbon.xml: No such file",
        ),
    ];
    for (args, expected) in cases {
        let run = config(&args);
        assert_eq!(run.code, 2, "{args:?}");
        assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
        assert!(
            run.stderr.starts_with("error: ") && run.stderr.contains(expected),
            "{}",
            run.stderr
        );
    }
    assert_eq!(
        std::fs::read(&carbon).unwrap(),
        edited,
        "failed commands leave the file untouched"
    );
}

#[test]
fn connect_points_at_staging_and_refuses_the_old_database() {
    let dir = tempfile::tempdir().unwrap();
    let old = home(&dir.path().join("old"), CarbonVersion::V4_4_6);
    let new = home(&dir.path().join("new"), CarbonVersion::V4_4_7);
    let master = format!("{new}/repository/conf/datasources/master-datasources.xml");
    let before = std::fs::read(&master).unwrap();

    let old_db = format!("WSO2_CARBON_DB=jdbc:h2:{old}/repository/database/WSO2CARBON_DB");
    let run = config(&["connect", &new, "--datasource", &old_db, "--old-home", &old]);
    assert_eq!(run.code, 3, "unsafe to proceed: {}", run.stderr);
    assert!(
        run.stderr.contains("is the old product's database"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read(&master).unwrap(), before);

    let staging = "WSO2_CARBON_DB=jdbc:postgresql://pg.example.com:5432/carbon_staging";
    let args = [
        "connect",
        &new,
        "--datasource",
        staging,
        "--username",
        "carbon",
        "--password-env",
        "STAGING_PW",
        "--old-home",
        &old,
    ];
    let run = config_env(&args, &[("STAGING_PW", "pg-s3cret")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !run.stdout.contains("pg-s3cret") && !run.stderr.contains("pg-s3cret"),
        "{}",
        run.stdout
    );
    run.assert_stdout_has(
        "+                    <url>jdbc:postgresql://pg.example.com:5432/carbon_staging</url>",
    );
    run.assert_stdout_has("+                    <password>********</password>");
    let url = config(&["get", &master, URL_PATH]);
    assert_eq!(
        url.stdout,
        "jdbc:postgresql://pg.example.com:5432/carbon_staging\n"
    );
    assert!(
        std::fs::read_to_string(&master)
            .unwrap()
            .contains("<password>pg-s3cret</password>")
    );

    let run = config(&[
        "connect",
        &new,
        "--datasource",
        "jdbc:postgresql://u:leak-pw@h/db",
    ]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("expected NAME=JDBC_URL") && !run.stderr.contains("leak-pw"),
        "{}",
        run.stderr
    );

    let run = config(&[
        "connect",
        &new,
        "--datasource",
        staging,
        "--password-env",
        "UNSET_VAR_FOR_TEST",
    ]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("environment variable UNSET_VAR_FOR_TEST is not set"),
        "{}",
        run.stderr
    );
}

#[test]
fn diff_lists_customisations_and_apply_converges() {
    let dir = tempfile::tempdir().unwrap();
    let old = home(&dir.path().join("old"), CarbonVersion::V4_4_6);
    let new = home(&dir.path().join("new"), CarbonVersion::V4_4_7);
    assert_eq!(
        config(&["diff", &old, &new]).code,
        0,
        "pristine homes: nothing to carry"
    );

    let old_carbon = format!("{old}/repository/conf/carbon.xml");
    assert_eq!(
        config(&["set", &old_carbon, "Server/Ports/Offset", "2"]).code,
        0
    );
    let run = config(&["diff", &old, &new]);
    assert_eq!(run.code, 1, "differences exit 1: {}", run.stderr);
    run.assert_stdout_has("carry    repository/conf/carbon.xml: Server/Ports/Offset: 0 -> 2");
    insta::assert_snapshot!(run.stdout);

    let run = config(&["diff", &old, &new, "--json"]);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["items"][0]["kind"], "customised");

    let run = config(&["diff", &old, &new, "--apply"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        config(&[
            "get",
            &format!("{new}/repository/conf/carbon.xml"),
            "Server/Ports/Offset"
        ])
        .stdout,
        "2\n"
    );
    assert_eq!(config(&["diff", &old, &new]).code, 0);
}

/// Issue 12: `password='s3cret'` (single quotes) was printed in clear in the dry-run diff.
#[test]
fn set_dry_run_never_prints_a_password_in_either_quote_style() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keystore.xml");
    let cases = [
        // (document, path, value): the old value is `s3cret` in each document.
        (
            "<Server>\n  <Keystore password='s3cret' type=\"JKS\"/>\n</Server>\n",
            "Server/Keystore/@type",
            "PKCS12",
        ),
        (
            "<Server>\n  <Keystore password='s3cret' type=\"JKS\"/>\n</Server>\n",
            "Server/Keystore/@password",
            "n3w-s3cret",
        ),
        (
            "<Server>\n  <Keystore keystorePass=\"s3&amp;cret\" type='JKS'/>\n</Server>\n",
            "Server/Keystore/@type",
            "PKCS12",
        ),
        (
            "<Server>\n  <Password>s3\ncret</Password>\n  <Type>JKS</Type>\n</Server>\n",
            "Server/Type",
            "PKCS12",
        ),
        (
            "<Server>\n  <Property name='ConnectionPassword'><![CDATA[s3cret]]></Property>\n</Server>\n",
            "Server/Property[@name='ConnectionPassword']",
            "n3w-s3cret",
        ),
    ];
    for (document, path, value) in cases {
        std::fs::write(&file, document).unwrap();
        let run = config(&[
            "set",
            file.to_str().unwrap(),
            path,
            value,
            "--dry-run",
            "-vvv",
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stdout.contains("+  <"), "a diff: {}", run.stdout);
        for shown in [&run.stdout, &run.stderr] {
            assert!(
                !shown.contains("s3") && !shown.contains("cret"),
                "{document}: {shown}"
            );
        }
        assert_eq!(std::fs::read_to_string(&file).unwrap(), document);
    }
}

//! `carbon-upgrade fs ...` through the built binary: output, exit codes, files on disk.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Output};

fn carbon_upgrade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_carbon-upgrade"))
        .args(args)
        .output()
        .unwrap()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An old `deployment/server` with a customised service and a new one shipping its own `Version.aar`.
fn trees(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (old, new) = (root.join("old/server"), root.join("new/server"));
    for dir in [
        old.join("axis2services"),
        new.join("axis2services"),
        old.join("webapps/app"),
    ] {
        fs::create_dir_all(dir).unwrap();
    }
    fs::write(old.join("axis2services/Version.aar"), "4.4.6").unwrap();
    fs::write(old.join("axis2services/Custom.aar"), "custom").unwrap();
    fs::write(old.join("webapps/app/index.jsp"), "<%= 1 %>").unwrap();
    symlink(
        "../axis2services/Custom.aar",
        old.join("webapps/app/custom-link"),
    )
    .unwrap();
    fs::write(new.join("axis2services/Version.aar"), "4.4.7").unwrap();
    (old, new)
}

#[test]
fn copy_then_verify_then_tamper() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = trees(tmp.path());
    let out = carbon_upgrade(&["fs", "copy", p(&old), p(&new)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("conflict    axis2services/Version.aar"),
        "{text}"
    );
    assert!(text.contains("copied 2 files"), "{text}");
    assert_eq!(
        fs::read_to_string(new.join("axis2services/Version.aar")).unwrap(),
        "4.4.7"
    );
    let manifest = tmp.path().join("new/server.manifest.jsonl");
    assert!(text.contains(p(&manifest)), "{text}");

    let sums = Command::new("sha256sum")
        .args([
            "-c",
            "--quiet",
            p(&tmp.path().join("new/server.SHA256SUMS")),
        ])
        .current_dir(&new)
        .status()
        .unwrap();
    assert!(sums.success());

    let ok = carbon_upgrade(&["fs", "verify", p(&new), "--manifest", p(&manifest)]);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    assert!(stdout(&ok).starts_with("ok: "), "{}", stdout(&ok));

    fs::write(new.join("axis2services/Custom.aar"), "CUSTOM").unwrap();
    fs::write(new.join("extra.txt"), "x").unwrap();
    let bad = carbon_upgrade(&["fs", "verify", p(&new), "--manifest", p(&manifest)]);
    assert_eq!(bad.status.code(), Some(1));
    let text = stdout(&bad);
    assert!(
        text.contains("* axis2services/Custom.aar  (mtime"),
        "{text}"
    );
    assert!(text.contains("+ extra.txt"), "{text}");
    assert!(text.contains("MISMATCH: "), "{text}");

    let json = carbon_upgrade(&[
        "fs",
        "verify",
        p(&new),
        "--manifest",
        p(&manifest),
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["counts"]["extra"], 1);
}

#[test]
fn fail_on_conflict_and_dry_run_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = trees(tmp.path());
    let dry = carbon_upgrade(&["fs", "copy", p(&old), p(&new), "--dry-run", "--json"]);
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    let report: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["conflicts"][0]["path"], "axis2services/Version.aar");
    assert!(!new.join("axis2services/Custom.aar").exists());

    let refused = carbon_upgrade(&["fs", "copy", p(&old), p(&new), "--fail-on-conflict"]);
    assert_eq!(refused.status.code(), Some(1));
    let err = stderr(&refused);
    assert!(
        err.starts_with("error: ") && err.contains("nothing was written"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!new.join("axis2services/Custom.aar").exists());
    assert!(!tmp.path().join("new/server.manifest.jsonl").exists());

    let old_wins = carbon_upgrade(&[
        "fs",
        "copy",
        p(&old),
        p(&new),
        "--prefer",
        "old",
        "--manifest",
        p(&tmp.path().join("m.jsonl")),
    ]);
    assert_eq!(old_wins.status.code(), Some(0), "{}", stderr(&old_wins));
    assert_eq!(
        fs::read_to_string(new.join("axis2services/Version.aar")).unwrap(),
        "4.4.6"
    );
    assert!(tmp.path().join("m.jsonl").exists() && tmp.path().join("m.SHA256SUMS").exists());
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-home");
    let out = carbon_upgrade(&["fs", "copy", p(&missing), p(&tmp.path().join("dst"))]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(p(&missing)) && err.lines().count() == 1,
        "{err}"
    );

    let (old, _) = trees(tmp.path());
    symlink("/etc/hostname", old.join("escape")).unwrap();
    let out = carbon_upgrade(&["fs", "copy", p(&old), p(&tmp.path().join("dst"))]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("points outside the tree"),
        "{}",
        stderr(&out)
    );
    assert!(!tmp.path().join("dst").exists());
}

#[test]
fn backup_writes_a_verified_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, _) = trees(tmp.path());
    let dest = tmp.path().join("backups/run1");
    let out = carbon_upgrade(&["fs", "backup", p(&old), p(&dest)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("verified: 7 same, 0 missing"), "{text}");
    assert_eq!(
        fs::read_to_string(dest.join("axis2services/Custom.aar")).unwrap(),
        "custom"
    );

    let again = carbon_upgrade(&["fs", "backup", p(&old), p(&dest)]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("already holds a complete backup"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn carbon_replicates_server_and_tenants_from_the_env_override() {
    let tmp = tempfile::tempdir().unwrap();
    let (old_home, new_home) = (
        tmp.path().join("wso2am-2.0.0-beta2"),
        tmp.path().join("wso2am-2.0.0"),
    );
    let server = old_home.join("repository/deployment/server/axis2services");
    fs::create_dir_all(&server).unwrap();
    fs::write(server.join("Custom.aar"), "custom").unwrap();
    fs::create_dir_all(old_home.join("elsewhere/7/userstores")).unwrap();
    fs::write(old_home.join("elsewhere/7/userstores/wso2_com.xml"), "<x/>").unwrap();
    fs::create_dir_all(old_home.join("repository/conf")).unwrap();
    fs::write(old_home.join("repository/conf/carbon.xml"), "<Server/>").unwrap();
    fs::create_dir_all(&new_home).unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_carbon-upgrade"))
        .args(["fs", "carbon", p(&old_home), p(&new_home)])
        .env("CARBON_TENANTS_DIR_PATH", "elsewhere")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("== deployment-server:") && text.contains("== tenants:"),
        "{text}"
    );
    // The variable applies to the new home as well (a server started from here inherits it).
    assert!(
        new_home
            .join("elsewhere/7/userstores/wso2_com.xml")
            .exists()
    );
    assert!(
        new_home
            .join("repository/deployment/server/axis2services/Custom.aar")
            .exists()
    );
    assert!(
        !new_home.join("repository/conf").exists(),
        "configuration is never copied"
    );
}

#[test]
fn io_errors_name_the_cause_once() {
    let tmp = tempfile::tempdir().unwrap();
    let out = carbon_upgrade(&[
        "fs",
        "copy",
        p(&tmp.path().join("nope")),
        p(&tmp.path().join("dst")),
    ]);
    let err = stderr(&out);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

#[test]
fn log_lines_on_a_pipe_carry_no_colour() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = trees(tmp.path());
    let out = carbon_upgrade(&["fs", "copy", p(&old), p(&new)]);
    let err = stderr(&out);
    assert!(err.contains("WARN") && err.contains("conflict"), "{err}");
    assert!(
        !err.contains('\x1b'),
        "an escape sequence on a pipe: {err:?}"
    );
}

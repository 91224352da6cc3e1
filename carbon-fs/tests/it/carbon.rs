//! The Carbon-aware entry point: deployment/server and tenants, never repository/conf.

use std::fs;
use std::path::{Path, PathBuf};

use carbon_fs::{
    CarbonHomeOptions, ConflictPolicy, FsError, NoProgress, ReplicateOptions, replicate_carbon_home,
};

use crate::support::{Item, assert_manifest_holds, build, snapshot};

const OLD_HOME: &[Item<'static>] = &[
    Item::File(
        "repository/conf/carbon.xml",
        b"<Server><Offset>3</Offset></Server>",
        0o644,
    ),
    Item::File(
        "repository/deployment/server/axis2services/Version.aar",
        b"4.4.6",
        0o644,
    ),
    Item::File(
        "repository/deployment/server/webapps/shop.war",
        b"shop",
        0o644,
    ),
    Item::File(
        "repository/deployment/server/synapse-configs/default/api/Pizza.xml",
        b"<api/>",
        0o644,
    ),
    Item::File(
        "repository/tenants/1/userstores/domain_com.xml",
        b"<UserStoreManager/>",
        0o644,
    ),
    Item::File(
        "repository/tenants/2/axis2services/Echo.aar",
        b"echo",
        0o644,
    ),
];

const NEW_HOME: &[Item<'static>] = &[
    Item::File(
        "repository/conf/carbon.xml",
        b"<Server><Offset>0</Offset></Server>",
        0o644,
    ),
    Item::File(
        "repository/deployment/server/axis2services/Version.aar",
        b"4.4.7",
        0o644,
    ),
    Item::Dir("repository/tenants", 0o755),
];

fn homes(old: &[Item<'_>], new: &[Item<'_>]) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let (old_home, new_home) = (tmp.path().join("wso2-4.4.6"), tmp.path().join("wso2-4.4.7"));
    build(&old_home, old);
    build(&new_home, new);
    (tmp, old_home, new_home)
}

fn check(old_home: &Path, new_home: &Path, options: &CarbonHomeOptions) -> carbon_fs::CarbonReport {
    let old_before = snapshot(old_home);
    let conf_before = snapshot(&new_home.join("repository/conf"));
    let report = replicate_carbon_home(old_home, new_home, options, &NoProgress).unwrap();
    assert_eq!(
        snapshot(old_home),
        old_before,
        "the old home is never modified"
    );
    assert_eq!(
        snapshot(&new_home.join("repository/conf")),
        conf_before,
        "configuration is never copied"
    );
    for (part, part_report) in &report.parts {
        assert_manifest_holds(&part.dst, part_report.manifest.as_ref().unwrap());
    }
    report
}

#[test]
fn deployment_server_and_tenants_are_replicated() {
    let (_tmp, old_home, new_home) = homes(OLD_HOME, NEW_HOME);
    let report = check(&old_home, &new_home, &CarbonHomeOptions::default());
    let names: Vec<&str> = report.parts.iter().map(|(p, _)| p.name.as_str()).collect();
    assert_eq!(names, ["deployment-server", "tenants"]);
    let server = new_home.join("repository/deployment/server");
    assert_eq!(fs::read(server.join("webapps/shop.war")).unwrap(), b"shop");
    assert_eq!(
        fs::read(server.join("axis2services/Version.aar")).unwrap(),
        b"4.4.7",
        "kept new"
    );
    assert_eq!(report.conflicts(), 1);
    assert!(
        new_home
            .join("repository/tenants/1/userstores/domain_com.xml")
            .exists()
    );
    assert!(
        new_home
            .join("repository/deployment/server.manifest.jsonl")
            .exists()
    );
}

#[test]
fn tenants_override_and_manifest_dir_are_honoured() {
    let mut old: Vec<Item<'_>> = OLD_HOME
        .iter()
        .copied()
        .filter(|i| !matches!(i, Item::File(p, ..) if p.starts_with("repository/tenants")))
        .collect();
    old.push(Item::File(
        "shared-tenants/5/webapps/t.war",
        b"tenant 5",
        0o644,
    ));
    let (tmp, old_home, new_home) = homes(&old, NEW_HOME);
    let options = CarbonHomeOptions {
        old_tenants_dir: Some(PathBuf::from("shared-tenants")), // relative: to the old home
        manifest_dir: Some(tmp.path().join("state")),
        ..Default::default()
    };
    fs::create_dir(tmp.path().join("state")).unwrap();
    let report = check(&old_home, &new_home, &options);
    assert_eq!(report.parts.len(), 2);
    assert_eq!(
        fs::read(new_home.join("repository/tenants/5/webapps/t.war")).unwrap(),
        b"tenant 5"
    );
    assert!(tmp.path().join("state/tenants.manifest.jsonl").exists());
    assert!(
        tmp.path()
            .join("state/deployment-server.SHA256SUMS")
            .exists()
    );
}

#[test]
fn empty_or_absent_tenants_are_skipped_with_a_reason() {
    let old: Vec<Item<'_>> = OLD_HOME
        .iter()
        .copied()
        .filter(|i| !matches!(i, Item::File(p, ..) if p.starts_with("repository/tenants")))
        .collect();
    let (_tmp, old_home, new_home) = homes(&old, NEW_HOME);
    let report = check(&old_home, &new_home, &CarbonHomeOptions::default());
    assert_eq!(report.parts.len(), 1);
    assert_eq!(report.skipped[0].name, "tenants");
    assert!(
        report.skipped[0].reason.starts_with("absent"),
        "{:?}",
        report.skipped
    );
    fs::create_dir_all(old_home.join("repository/tenants")).unwrap();
    let report = check(&old_home, &new_home, &CarbonHomeOptions::default());
    assert!(
        report.skipped[0].reason.starts_with("empty"),
        "{:?}",
        report.skipped
    );
}

#[test]
fn a_tenants_override_inside_repository_conf_is_refused() {
    let (_tmp, old_home, new_home) = homes(OLD_HOME, NEW_HOME);
    let options = CarbonHomeOptions {
        old_tenants_dir: Some("repository/conf".into()),
        ..Default::default()
    };
    let err = replicate_carbon_home(&old_home, &new_home, &options, &NoProgress).unwrap_err();
    assert!(
        matches!(err, FsError::ConfigurationDirectory { .. }),
        "{err}"
    );
}

#[test]
fn fail_on_conflict_leaves_both_parts_untouched() {
    let mut new: Vec<Item<'_>> = NEW_HOME.to_vec();
    new.push(Item::File(
        "repository/tenants/2/axis2services/Echo.aar",
        b"other echo",
        0o644,
    ));
    let (_tmp, old_home, new_home) = homes(OLD_HOME, &new);
    let before = snapshot(&new_home);
    let options = CarbonHomeOptions {
        replicate: ReplicateOptions {
            conflicts: ConflictPolicy::Fail,
            ..Default::default()
        },
        ..Default::default()
    };
    let err = replicate_carbon_home(&old_home, &new_home, &options, &NoProgress).unwrap_err();
    match err {
        FsError::Conflicts { paths, .. } => assert_eq!(
            paths,
            ["axis2services/Version.aar", "2/axis2services/Echo.aar"]
        ),
        other => panic!("{other}"),
    }
    assert_eq!(snapshot(&new_home), before);
}

//! Over the real WSO2 kernel files: replicate 4.4.6's `repository/deployment/server` into a copy
//! of 4.4.7's, back up the real 4.4.6 home, run the Carbon entry point on copies of both homes.
//! The fixtures themselves are only read.

use std::path::PathBuf;

use carbon_fs::{
    CarbonHomeOptions, NoProgress, ReplicateOptions, backup_home, replicate, replicate_carbon_home,
    verify,
};

use crate::support::{assert_manifest_holds, assert_replicated, snapshot};

fn fixtures() -> PathBuf {
    carbon_db::testkit::wso2_fixtures()
}

/// A private, writable copy of a fixture home (made with our own verified backup).
fn copy_of(home: &std::path::Path, tmp: &std::path::Path, name: &str) -> PathBuf {
    let dest = tmp.join(name);
    backup_home(home, &dest, &NoProgress).unwrap();
    dest
}

#[test]
fn real_446_deployment_server_into_447() {
    let fixtures = fixtures();
    let before = snapshot(&fixtures);
    let tmp = tempfile::tempdir().unwrap();
    let new_home = copy_of(&fixtures.join("4.4.7"), tmp.path(), "4.4.7");
    let src = fixtures.join("4.4.6/repository/deployment/server");
    let dst = new_home.join("repository/deployment/server");
    let report = replicate(&src, &dst, &ReplicateOptions::default()).unwrap();
    // The kernel skeletons are byte-identical: everything is already there, nothing conflicts.
    assert_eq!(report.summary.files_copied, 0);
    assert_eq!(
        report.summary.identical, 2,
        "axis2services/services.list and axis2modules/modules.list"
    );
    assert!(report.conflicts.is_empty());
    assert_replicated(&src, &dst, &report);
    assert_eq!(snapshot(&fixtures), before, "fixtures are only read");
}

#[test]
fn real_446_home_backup_verifies() {
    let fixtures = fixtures();
    let tmp = tempfile::tempdir().unwrap();
    let home = fixtures.join("4.4.6");
    let dest = tmp.path().join("backup");
    let report = backup_home(&home, &dest, &NoProgress).unwrap();
    assert!(report.verify.is_ok());
    assert!(
        report.copy.summary.files_copied > 50,
        "{:?}",
        report.copy.summary
    );
    assert_replicated(&home, &dest, &report.copy);
}

#[test]
fn carbon_entry_point_on_real_homes_never_touches_conf() {
    let fixtures = fixtures();
    let tmp = tempfile::tempdir().unwrap();
    let old_home = copy_of(&fixtures.join("4.4.6"), tmp.path(), "old");
    let new_home = copy_of(&fixtures.join("4.4.7"), tmp.path(), "new");
    // A customised super-tenant artifact and one tenant, as a real 4.4.6 server would have.
    std::fs::write(
        old_home.join("repository/deployment/server/axis2services/Custom.aar"),
        b"aar",
    )
    .unwrap();
    std::fs::create_dir_all(old_home.join("repository/tenants/1/userstores")).unwrap();
    std::fs::write(
        old_home.join("repository/tenants/1/userstores/wso2_com.xml"),
        b"<UserStoreManager/>",
    )
    .unwrap();
    let conf_before = snapshot(&new_home.join("repository/conf"));
    let report = replicate_carbon_home(
        &old_home,
        &new_home,
        &CarbonHomeOptions::default(),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(report.parts.len(), 2);
    for (part, part_report) in &report.parts {
        assert_manifest_holds(&part.dst, part_report.manifest.as_ref().unwrap());
        assert!(
            verify(&part.dst, &part_report.manifest.as_ref().unwrap().jsonl)
                .unwrap()
                .is_ok()
        );
    }
    assert_eq!(snapshot(&new_home.join("repository/conf")), conf_before);
    assert!(
        new_home
            .join("repository/deployment/server/axis2services/Custom.aar")
            .exists()
    );
}

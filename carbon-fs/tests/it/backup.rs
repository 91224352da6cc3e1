//! Verified PRODUCT_HOME backups.

use std::fs;

use carbon_fs::{FsError, NoProgress, backup_home};

use crate::support::{Item, assert_manifest_holds, assert_replicated, build, mixed_tree, snapshot};

#[test]
fn backup_copies_the_whole_home_and_verifies_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, dest) = (
        tmp.path().join("wso2am-2.0.0"),
        tmp.path().join("backup/home"),
    );
    let mut items = mixed_tree();
    // A JDBC driver linked from outside the home is kept as a link, never followed.
    items.push(Item::Link(
        "repository/components/lib/postgresql.jar",
        "/usr/share/java/postgresql.jar",
    ));
    items.push(Item::File(
        "repository/conf/carbon.xml",
        b"<Server/>",
        0o644,
    ));
    build(&home, &items);
    let before = snapshot(&home);
    let report = backup_home(&home, &dest, &NoProgress).unwrap();
    assert_eq!(snapshot(&home), before, "the home is never modified");
    assert_replicated(&home, &dest, &report.copy);
    assert!(report.verify.is_ok());
    assert_eq!(
        report.verify.counts.same,
        report.copy.summary.manifest_entries
    );
    assert_manifest_holds(&dest, report.copy.manifest.as_ref().unwrap());
    assert_eq!(
        fs::read_link(dest.join("repository/components/lib/postgresql.jar")).unwrap(),
        std::path::Path::new("/usr/share/java/postgresql.jar")
    );
}

#[test]
fn backup_refuses_a_destination_that_is_not_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, dest) = (tmp.path().join("home"), tmp.path().join("dest"));
    build(&home, &[Item::File("a", b"a", 0o644)]);
    build(&dest, &[Item::File("older-backup.txt", b"keep me", 0o644)]);
    let err = backup_home(&home, &dest, &NoProgress).unwrap_err();
    assert!(matches!(err, FsError::DestinationNotEmpty { .. }), "{err}");
    assert_eq!(fs::read(dest.join("older-backup.txt")).unwrap(), b"keep me");
}

//! Verified PRODUCT_HOME backups.

use std::fs;
use std::process::Command;

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
fn backup_refuses_foreign_files_and_complete_backups() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, dest) = (tmp.path().join("home"), tmp.path().join("dest"));
    build(&home, &[Item::File("a", b"a", 0o644)]);
    build(&dest, &[Item::File("older-backup.txt", b"keep me", 0o644)]);
    let err = backup_home(&home, &dest, &NoProgress).unwrap_err();
    assert!(matches!(err, FsError::DestinationNotEmpty { .. }), "{err}");
    assert!(err.to_string().contains("older-backup.txt"), "{err}");
    assert_eq!(fs::read(dest.join("older-backup.txt")).unwrap(), b"keep me");
    assert!(!dest.join("a").exists(), "refused before writing");

    let fresh = tmp.path().join("fresh");
    backup_home(&home, &fresh, &NoProgress).unwrap();
    let err = backup_home(&home, &fresh, &NoProgress).unwrap_err();
    assert!(matches!(err, FsError::BackupExists { .. }), "{err}");
}

#[test]
fn an_interrupted_backup_is_finished_by_running_it_again() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, dest) = (tmp.path().join("home"), tmp.path().join("backup"));
    build(&home, &mixed_tree());
    let first = backup_home(&home, &dest, &NoProgress).unwrap();
    // What a kill -9 leaves: no manifest yet, a file missing, a temp file, a half-written file.
    let manifest = first.copy.manifest.unwrap();
    fs::remove_file(&manifest.jsonl).unwrap();
    fs::remove_file(&manifest.sha256sums).unwrap();
    fs::remove_file(dest.join("bin/run.sh")).unwrap();
    fs::write(
        dest.join("axis2services/.services.list.1-1.carbon-tmp"),
        b"half",
    )
    .unwrap();
    fs::write(dest.join("axis2services/Version.aar"), b"stale").unwrap();

    let second = backup_home(&home, &dest, &NoProgress).unwrap();
    assert_replicated(&home, &dest, &second.copy);
    assert!(second.verify.is_ok());
    assert_eq!(
        second.copy.summary.files_copied, 2,
        "the missing and the stale file only"
    );
}

/// Needs root, a loop device and btrfs-progs; fails (never skips) without them.
#[test]
fn reflink_backup_shares_extents_on_btrfs() {
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("btrfs.img");
    fs::File::create(&image)
        .unwrap()
        .set_len(300 << 20)
        .unwrap();
    let made = Command::new("mkfs.btrfs")
        .arg("-q")
        .arg(&image)
        .status()
        .expect("mkfs.btrfs is needed: apt-get install -y btrfs-progs");
    assert!(made.success());
    let mount = LoopMount::new(&image, &tmp.path().join("mnt"));
    let home = mount.path.join("home");
    let big: Vec<u8> = (0..40u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    build(
        &home,
        &[
            Item::File("lib/big.car", &big, 0o644),
            Item::File("a.txt", b"hi", 0o644),
        ],
    );
    let report = backup_home(&home, &mount.path.join("backup"), &NoProgress).unwrap();
    assert!(report.verify.is_ok());
    let du = Command::new("btrfs")
        .args(["filesystem", "du", "-s", "--raw"])
        .arg(mount.path.join("backup"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&du.stdout);
    let exclusive: u64 = text
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        exclusive < 1 << 20,
        "the backup shares its extents with the home: {text}"
    );
}

struct LoopMount {
    path: std::path::PathBuf,
}

impl LoopMount {
    fn new(image: &std::path::Path, path: &std::path::Path) -> LoopMount {
        fs::create_dir_all(path).unwrap();
        let status = Command::new("mount")
            .arg("-o")
            .arg("loop")
            .arg(image)
            .arg(path)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mounting {} needs root and a loop device",
            image.display()
        );
        LoopMount {
            path: path.to_path_buf(),
        }
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

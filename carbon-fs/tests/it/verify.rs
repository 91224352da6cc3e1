//! Tampering after the copy is caught by `verify`, one rclone-style mark per path.

use std::fs::{self, FileTimes};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use carbon_fs::{Mark, ReplicateOptions, VerifyOptions, replicate, verify, verify_with};

use crate::support::{Item, build, fixed_mtime, mixed_tree};

fn changed_byte(dst: &Path) {
    let path = dst.join("axis2services/Version.aar");
    let mut bytes = fs::read(&path).unwrap();
    bytes[0] ^= 1;
    let file = fs::File::options().write(true).open(&path).unwrap();
    std::io::Write::write_all(&mut &file, &bytes).unwrap();
    // Same size, same mtime: only the content tells.
    file.set_times(FileTimes::new().set_modified(fixed_mtime(0)))
        .unwrap();
}

fn deleted(dst: &Path) {
    fs::remove_file(dst.join("bin/run.sh")).unwrap();
}

fn added(dst: &Path) {
    fs::write(dst.join("empty-dir/intruder.jar"), b"?").unwrap();
}

fn mode_changed(dst: &Path) {
    fs::set_permissions(dst.join("empty.txt"), fs::Permissions::from_mode(0o666)).unwrap();
}

fn link_retargeted(dst: &Path) {
    fs::remove_file(dst.join("links/to-file")).unwrap();
    symlink("../bin/run.sh", dst.join("links/to-file")).unwrap();
}

fn touched(dst: &Path) {
    let file = fs::File::open(dst.join("axis2services/services.list")).unwrap();
    file.set_times(FileTimes::new().set_modified(fixed_mtime(99)))
        .unwrap();
}

/// A change made to the destination after the copy.
type Tamper = fn(&Path);

/// (tampering, path, expected mark, detail contains)
const CASES: &[(Tamper, &str, Mark, &str)] = &[
    (
        changed_byte,
        "axis2services/Version.aar",
        Mark::Differs,
        "content differs",
    ),
    (deleted, "bin/run.sh", Mark::Missing, ""),
    (added, "empty-dir/intruder.jar", Mark::Extra, ""),
    (
        mode_changed,
        "empty.txt",
        Mark::Differs,
        "mode 0600 -> 0666",
    ),
    (
        link_retargeted,
        "links/to-file",
        Mark::Differs,
        "link target",
    ),
    (
        touched,
        "axis2services/services.list",
        Mark::Differs,
        "mtime",
    ),
];

/// The mixed tree built under `dir/old` and replicated to `dir/new`: (new, its manifest).
fn replicated_mixed_tree(dir: &Path) -> (PathBuf, PathBuf) {
    let (src, dst) = (dir.join("old"), dir.join("new"));
    build(&src, &mixed_tree());
    let manifest = replicate(&src, &dst, &ReplicateOptions::default())
        .unwrap()
        .manifest
        .unwrap();
    (dst, manifest.jsonl)
}

#[test]
fn tampering_is_caught() {
    for &(tamper, path, mark, detail) in CASES {
        let tmp = tempfile::tempdir().unwrap();
        let (dst, manifest) = replicated_mixed_tree(tmp.path());
        assert!(verify(&dst, &manifest).unwrap().is_ok());
        tamper(&dst);
        let report = verify(&dst, &manifest).unwrap();
        assert!(!report.is_ok(), "{path}");
        let problems: Vec<_> = report.problems().collect();
        assert_eq!(problems.len(), 1, "{path}: {problems:?}");
        assert_eq!((problems[0].mark, problems[0].path.as_str()), (mark, path));
        assert!(
            problems[0].detail.as_deref().unwrap_or("").contains(detail),
            "{problems:?}"
        );
    }
}

#[test]
fn structural_verify_skips_content_but_sees_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let (dst, manifest) = replicated_mixed_tree(tmp.path());
    changed_byte(&dst);
    mode_changed(&dst);
    let options = VerifyOptions {
        data: false,
        ..Default::default()
    };
    let report = verify_with(&dst, &manifest, &options, &carbon_fs::NoProgress).unwrap();
    let problems: Vec<_> = report.problems().map(|p| p.path.as_str()).collect();
    assert_eq!(
        problems,
        ["empty.txt"],
        "without --data only structure is compared"
    );
    assert_eq!(report.counts.differs, 1);
}

#[test]
fn unreadable_manifest_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    build(&tmp.path().join("t"), &[Item::File("a", b"a", 0o644)]);
    let bad = tmp.path().join("bad.manifest.jsonl");
    fs::write(&bad, "{\"path\":\"a\"}\nnot json\n").unwrap();
    let err = verify(&tmp.path().join("t"), &bad).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}: line 1:", bad.display())),
        "{err}"
    );
    let missing = verify(&tmp.path().join("t"), &tmp.path().join("absent.jsonl")).unwrap_err();
    assert!(missing.to_string().contains("absent.jsonl"), "{missing}");
}

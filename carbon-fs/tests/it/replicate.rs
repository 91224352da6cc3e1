//! Replication of healthy trees: what lands, and what is kept.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use carbon_fs::{FsError, Outcome, ReplicateOptions, replicate};

use crate::support::{Item, assert_replicated, build, mixed_tree, running_as_root, snapshot};

fn check(items: &[Item<'_>], options: &ReplicateOptions) -> (tempfile::TempDir, carbon_fs::Report) {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("old"), tmp.path().join("new"));
    build(&src, items);
    let before = snapshot(&src);
    let report = replicate(&src, &dst, options).unwrap();
    assert_replicated(&src, &dst, &report);
    assert_eq!(snapshot(&src), before, "the source must never change");
    (tmp, report)
}

#[test]
fn mixed_tree_lands_with_modes_mtimes_links_and_empty_dirs() {
    let (tmp, report) = check(&mixed_tree(), &ReplicateOptions::default());
    assert_eq!(report.summary.files_copied, 5);
    assert_eq!(report.summary.links_copied, 3);
    assert_eq!(report.summary.conflicts, 0);
    let dst = tmp.path().join("new");
    assert!(
        fs::symlink_metadata(dst.join("links/to-dir"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        fs::read_link(dst.join("links/dangling")).unwrap(),
        Path::new("nowhere/at/all")
    );
    assert_eq!(
        fs::metadata(dst.join("read-only-dir")).unwrap().mode() & 0o777,
        0o555
    );
}

#[test]
fn many_files_across_workers() {
    let names: Vec<String> = (0..300).map(|i| format!("d{}/f{i}.class", i % 7)).collect();
    let contents: Vec<Vec<u8>> = (0..300).map(|i| vec![i as u8; i * 37]).collect();
    let items: Vec<Item<'_>> = names
        .iter()
        .zip(&contents)
        .map(|(n, c)| Item::File(n, c, 0o644))
        .collect();
    for workers in [1, 2, 4] {
        let (_tmp, report) = check(
            &items,
            &ReplicateOptions {
                workers,
                ..Default::default()
            },
        );
        assert_eq!(report.summary.files_copied, 300);
    }
}

#[test]
fn fsync_each_file_and_reflink_method_give_the_same_tree() {
    for options in [
        ReplicateOptions {
            fsync_each_file: true,
            ..Default::default()
        },
        ReplicateOptions {
            copy_method: carbon_fs::CopyMethod::Reflink,
            ..Default::default()
        },
    ] {
        check(&mixed_tree(), &options);
    }
}

#[test]
fn owner_is_kept_when_running_as_root() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("old"), tmp.path().join("new"));
    build(&src, &[Item::File("owned.jar", b"jar", 0o640)]);
    let wanted = if running_as_root() {
        std::os::unix::fs::chown(src.join("owned.jar"), Some(4321), Some(8765)).unwrap();
        (4321, 8765)
    } else {
        // Without root nobody can give files away: they land owned by us.
        let me = fs::metadata(tmp.path()).unwrap();
        (me.uid(), me.gid())
    };
    replicate(&src, &dst, &ReplicateOptions::default()).unwrap();
    let landed = fs::metadata(dst.join("owned.jar")).unwrap();
    assert_eq!((landed.uid(), landed.gid()), wanted);
}

/// (link target, escapes the tree?) — resolved through the tree's own links.
const LINK_CASES: &[(&str, bool)] = &[
    ("/etc/passwd", true),
    ("../../outside", true),
    ("../sub/../../outside", true),
    ("loop/../..", true), // `a/loop` -> `.`: lexically inside, physically outside
    ("../a/deeper/../..", true), // `a/deeper` -> `../sub`: same trick one level down
    ("../sub/file", false),
    ("./../sub/../sub/file", false),
    ("missing/dangling", false),
    ("deeper/x", false),
];

#[test]
fn escaping_links_are_refused_unless_allowed() {
    for &(target, escapes) in LINK_CASES {
        let tmp = tempfile::tempdir().unwrap();
        let (src, dst) = (tmp.path().join("old"), tmp.path().join("new"));
        build(
            &src,
            &[
                Item::File("sub/file", b"x", 0o644),
                Item::Link("a/loop", "."),
                Item::Link("a/link", target),
                Item::Link("a/deeper", "../sub"),
            ],
        );
        let result = replicate(&src, &dst, &ReplicateOptions::default());
        match (escapes, result) {
            (true, Err(FsError::EscapingLink { path, .. })) => {
                assert_eq!(path, src.join("a/link"), "{target}");
                assert!(!dst.exists(), "{target}: nothing may be written");
            }
            (false, Ok(report)) => assert_replicated(&src, &dst, &report),
            (_, other) => panic!("{target}: escapes={escapes}, got {other:?}"),
        }
        if escapes {
            let allowed = ReplicateOptions {
                allow_escaping_links: true,
                ..Default::default()
            };
            let report = replicate(&src, &dst, &allowed).unwrap();
            assert_replicated(&src, &dst, &report);
            assert_eq!(
                fs::read_link(dst.join("a/link")).unwrap(),
                Path::new(target)
            );
        }
    }
}

#[test]
fn names_that_need_escaping_pass_sha256sum() {
    let (tmp, report) = check(
        &[
            Item::File("back\\slash", b"1", 0o644),
            Item::File("new\nline", b"2", 0o644),
            Item::File("carriage\rreturn", b"3", 0o644),
            Item::File("  leading spaces", b"4", 0o644),
        ],
        &ReplicateOptions::default(),
    );
    let sums = fs::read_to_string(report.manifest.unwrap().sha256sums).unwrap();
    let escaped = sums.lines().find(|l| l.ends_with("  new\\nline")).unwrap();
    assert!(
        escaped.starts_with('\\'),
        "GNU marks escaped names with a leading backslash: {sums}"
    );
    drop(tmp);
}

#[test]
fn resume_after_a_failed_run_skips_verified_files_and_clears_leftovers() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("old"), tmp.path().join("new"));
    build(&src, &mixed_tree());
    let first = replicate(&src, &dst, &ReplicateOptions::default()).unwrap();
    // Simulate the state an interruption leaves: some files missing, a temp file, no manifest.
    let manifest = first.manifest.unwrap();
    fs::remove_file(&manifest.jsonl).unwrap();
    fs::remove_file(dst.join("bin/run.sh")).unwrap();
    let leftover = dst.join("axis2services/.Version.aar.999-7.carbon-tmp");
    fs::write(&leftover, b"half").unwrap();
    let inode_before = fs::metadata(dst.join("axis2services/Version.aar"))
        .unwrap()
        .ino();

    let second = replicate(&src, &dst, &ReplicateOptions::default()).unwrap();
    assert_replicated(&src, &dst, &second);
    assert!(!leftover.exists());
    assert_eq!(
        second.temp_leftovers,
        ["axis2services/.Version.aar.999-7.carbon-tmp"]
    );
    assert_eq!(
        second.summary.files_copied, 1,
        "only the missing file is copied again"
    );
    assert_eq!(second.summary.identical, 4 + 3);
    let inode_after = fs::metadata(dst.join("axis2services/Version.aar"))
        .unwrap()
        .ino();
    assert_eq!(
        inode_before, inode_after,
        "verified files are not rewritten"
    );
    let outcome = |p: &str| second.items.iter().find(|i| i.path == p).unwrap().outcome;
    assert_eq!(outcome("bin/run.sh"), Outcome::Copied);
    assert_eq!(outcome("axis2services/Version.aar"), Outcome::Identical);
}

#[test]
fn dry_run_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("old"), tmp.path().join("new"));
    build(&src, &mixed_tree());
    build(
        &dst,
        &[
            Item::File("axis2services/Version.aar", b"new version service", 0o644),
            Item::File("axis2services/services.list", b"Version.aar\n", 0o644),
            Item::File("axis2services/.x.1-1.carbon-tmp", b"leftover", 0o644),
        ],
    );
    let before = snapshot(tmp.path());
    let options = ReplicateOptions {
        dry_run: true,
        ..Default::default()
    };
    let report = replicate(&src, &dst, &options).unwrap();
    assert_eq!(snapshot(tmp.path()), before, "a dry run writes nothing");
    assert!(report.dry_run && report.manifest.is_none());
    assert_eq!(report.summary.files_copied, 3);
    assert_eq!(report.summary.identical, 1);
    assert_eq!(report.conflicts.len(), 1);
    assert_eq!(report.conflicts[0].path, "axis2services/Version.aar");
    assert_eq!(report.temp_leftovers, ["axis2services/.x.1-1.carbon-tmp"]);
}

#[test]
fn a_manifest_kept_inside_the_destination_survives_a_rerun() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("old"), tmp.path().join("new"));
    build(&src, &mixed_tree());
    let options = ReplicateOptions {
        manifest: Some(carbon_fs::ManifestPaths::from_jsonl(
            dst.join("MANIFEST.jsonl"),
        )),
        ..Default::default()
    };
    for _ in 0..2 {
        let report = replicate(&src, &dst, &options).unwrap();
        assert_replicated(&src, &dst, &report);
        assert_eq!(
            report.summary.destination_only, 0,
            "the manifest is not a tree entry"
        );
    }
    assert!(dst.join("MANIFEST.SHA256SUMS").exists());
}

#[test]
fn a_symlinked_source_root_is_followed_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (real, src, dst) = (
        tmp.path().join("wso2am-2.0.0"),
        tmp.path().join("current"),
        tmp.path().join("new"),
    );
    build(&real, &mixed_tree());
    std::os::unix::fs::symlink(&real, &src).unwrap();
    let report = replicate(&src, &dst, &ReplicateOptions::default()).unwrap();
    assert_replicated(&real, &dst, &report);
    assert!(fs::symlink_metadata(&dst).unwrap().is_dir());
}

#[test]
fn hard_links_are_copied_as_separate_files_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("old"), tmp.path().join("new"));
    build(&src, &[Item::File("lib/a.jar", b"shared bytes", 0o644)]);
    fs::hard_link(src.join("lib/a.jar"), src.join("lib/b.jar")).unwrap();
    let report = replicate(&src, &dst, &ReplicateOptions::default()).unwrap();
    assert_replicated(&src, &dst, &report);
    assert_eq!(report.summary.hard_linked_files, 2);
    assert_eq!(fs::metadata(dst.join("lib/b.jar")).unwrap().nlink(), 1);
}

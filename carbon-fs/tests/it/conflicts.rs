//! The destination already holds files (the new product ships some): identical ones are left
//! alone, different ones are conflicts settled by the policy.

use std::fs;
use std::os::unix::fs::MetadataExt;

use carbon_fs::{
    ConflictPolicy, FsError, Origin, Outcome, ReplicateOptions, Resolution, replicate, verify,
};

use crate::support::{Item, assert_manifest_holds, assert_no_manifest, build, snapshot};

const OLD: &[Item<'static>] = &[
    Item::File("axis2services/Version.aar", b"old Version.aar", 0o644),
    Item::File(
        "axis2services/services.list",
        b"Version.aar\nEcho.aar\n",
        0o644,
    ),
    Item::File("axis2services/Custom.aar", b"customer service", 0o644),
    Item::File("webapps/shop.war", b"shop", 0o644),
];

const NEW: &[Item<'static>] = &[
    Item::File(
        "axis2services/Version.aar",
        b"new Version.aar, shipped by 4.4.7",
        0o644,
    ),
    Item::File(
        "axis2services/services.list",
        b"Version.aar\nEcho.aar\n",
        0o644,
    ),
    Item::File("webapps/ROOT.war", b"new product webapp", 0o644),
];

struct Case {
    policy: ConflictPolicy,
    version_aar_after: &'static [u8],
    resolution: Resolution,
}

const CASES: &[Case] = &[
    Case {
        policy: ConflictPolicy::KeepNew,
        version_aar_after: b"new Version.aar, shipped by 4.4.7",
        resolution: Resolution::KeptNew,
    },
    Case {
        policy: ConflictPolicy::PreferOld,
        version_aar_after: b"old Version.aar",
        resolution: Resolution::Overwritten,
    },
];

#[test]
fn conflicts_are_kept_or_overwritten_by_policy() {
    for case in CASES {
        let tmp = tempfile::tempdir().unwrap();
        let (src, dst) = (tmp.path().join("old"), tmp.path().join("new"));
        build(&src, OLD);
        build(&dst, NEW);
        let identical_inode = fs::metadata(dst.join("axis2services/services.list"))
            .unwrap()
            .ino();
        let options = ReplicateOptions {
            conflicts: case.policy,
            ..Default::default()
        };
        let report = replicate(&src, &dst, &options).unwrap();

        assert_eq!(
            fs::read(dst.join("axis2services/Version.aar")).unwrap(),
            case.version_aar_after
        );
        assert_eq!(report.conflicts.len(), 1, "{:?}", case.policy);
        assert_eq!(report.conflicts[0].path, "axis2services/Version.aar");
        assert_eq!(report.conflicts[0].resolution, case.resolution);
        assert_eq!(
            fs::read(dst.join("axis2services/Custom.aar")).unwrap(),
            b"customer service"
        );
        assert_eq!(
            fs::read(dst.join("webapps/ROOT.war")).unwrap(),
            b"new product webapp"
        );
        let inode = fs::metadata(dst.join("axis2services/services.list"))
            .unwrap()
            .ino();
        assert_eq!(inode, identical_inode, "identical files are left alone");

        // The manifest describes the destination as it stands, with where each file came from.
        let manifest = report.manifest.unwrap();
        assert_manifest_holds(&dst, &manifest);
        let recorded = carbon_fs::Manifest::read(&manifest.jsonl).unwrap();
        let origin = |p: &str| {
            recorded
                .entries
                .iter()
                .find(|e| e.path == p)
                .unwrap()
                .origin
        };
        assert_eq!(origin("webapps/ROOT.war"), Origin::Destination);
        assert_eq!(origin("axis2services/Custom.aar"), Origin::Source);
        let expected = if case.policy == ConflictPolicy::KeepNew {
            Origin::Kept
        } else {
            Origin::Source
        };
        assert_eq!(origin("axis2services/Version.aar"), expected);
    }
}

#[test]
fn fail_on_conflict_stops_before_writing_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("old"), tmp.path().join("new"));
    build(&src, OLD);
    build(&dst, NEW);
    let before = snapshot(&dst);
    let options = ReplicateOptions {
        conflicts: ConflictPolicy::Fail,
        ..Default::default()
    };
    let err = replicate(&src, &dst, &options).unwrap_err();
    assert!(
        matches!(&err, FsError::Conflicts { first, paths, .. } if first == "axis2services/Version.aar" && paths.len() == 1),
        "{err}"
    );
    assert!(err.to_string().contains("nothing was written"), "{err}");
    assert_eq!(snapshot(&dst), before);
    assert_no_manifest(&dst);
}

#[test]
fn type_conflicts_keep_the_new_subtree_or_refuse() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("old"), tmp.path().join("new"));
    // Old product: `jaggeryapps/store` is a directory; new product ships a file of that name.
    build(
        &src,
        &[
            Item::File("jaggeryapps/store/site.json", b"{}", 0o644),
            Item::File("x", b"x", 0o644),
        ],
    );
    build(
        &dst,
        &[Item::File("jaggeryapps/store", b"placeholder", 0o644)],
    );
    let before = snapshot(&dst);

    let prefer_old = ReplicateOptions {
        conflicts: ConflictPolicy::PreferOld,
        ..Default::default()
    };
    let err = replicate(&src, &dst, &prefer_old).unwrap_err();
    assert!(matches!(err, FsError::TypeConflict { .. }), "{err}");
    assert!(err.to_string().contains("jaggeryapps/store"), "{err}");
    assert_eq!(snapshot(&dst), before, "refused before writing");

    let report = replicate(&src, &dst, &ReplicateOptions::default()).unwrap();
    assert_eq!(
        fs::read(dst.join("jaggeryapps/store")).unwrap(),
        b"placeholder"
    );
    let outcome = |p: &str| report.items.iter().find(|i| i.path == p).unwrap().outcome;
    assert_eq!(outcome("jaggeryapps/store"), Outcome::Conflict);
    assert_eq!(outcome("jaggeryapps/store/site.json"), Outcome::Skipped);
    assert_eq!(outcome("x"), Outcome::Copied);
    assert!(
        verify(&dst, &report.manifest.unwrap().jsonl)
            .unwrap()
            .is_ok()
    );
}

#[test]
fn nothing_is_written_through_a_symlink_in_the_destination() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst, elsewhere) = (
        tmp.path().join("old"),
        tmp.path().join("new"),
        tmp.path().join("elsewhere"),
    );
    build(&src, &[Item::File("webapps/app/index.jsp", b"jsp", 0o644)]);
    build(
        &elsewhere,
        &[Item::File("keep.txt", b"outside the tree", 0o644)],
    );
    build(&dst, &[Item::Link("webapps", "../elsewhere")]);
    let outside_before = snapshot(&elsewhere);

    let prefer_old = ReplicateOptions {
        conflicts: ConflictPolicy::PreferOld,
        ..Default::default()
    };
    let err = replicate(&src, &dst, &prefer_old).unwrap_err();
    assert!(matches!(err, FsError::TypeConflict { .. }), "{err}");

    let report = replicate(&src, &dst, &ReplicateOptions::default()).unwrap();
    assert_eq!(report.conflicts[0].path, "webapps");
    assert_eq!(report.summary.skipped, 2);
    assert_eq!(
        snapshot(&elsewhere),
        outside_before,
        "nothing written through the link"
    );

    // The destination root itself being a link is refused outright.
    let link_root = tmp.path().join("link-root");
    std::os::unix::fs::symlink(&elsewhere, &link_root).unwrap();
    let err = replicate(&src, &link_root, &ReplicateOptions::default()).unwrap_err();
    assert!(matches!(err, FsError::DestinationIsSymlink { .. }), "{err}");
    assert_eq!(snapshot(&elsewhere), outside_before);
}

//! Snapshots of the data the CLI and the run report print: reports and manifests.

use carbon_fs::{ReplicateOptions, replicate, verify};

use crate::support::{Item, build, mixed_tree};

fn settings(tmp: &std::path::Path) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(&tmp.display().to_string()), "[TMP]");
    settings
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' {
                vec![c]
            } else {
                vec!['\\', c]
            }
        })
        .collect()
}

#[test]
fn dry_run_report() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("old"), tmp.path().join("new"));
    build(&src, &mixed_tree());
    build(
        &dst,
        &[Item::File(
            "axis2services/Version.aar",
            b"shipped by the new product",
            0o644,
        )],
    );
    let options = ReplicateOptions {
        dry_run: true,
        ..Default::default()
    };
    let report = replicate(&src, &dst, &options).unwrap();
    settings(tmp.path()).bind(|| {
        insta::assert_json_snapshot!(report, { ".elapsed_ms" => "[ms]" });
    });
}

#[test]
fn manifest_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("old"), tmp.path().join("new"));
    build(&src, &mixed_tree());
    let report = replicate(&src, &dst, &ReplicateOptions::default()).unwrap();
    let paths = report.manifest.unwrap();
    let sums = std::fs::read_to_string(&paths.sha256sums).unwrap();
    insta::assert_snapshot!("sha256sums", sums);
    let jsonl = std::fs::read_to_string(&paths.jsonl).unwrap();
    // Owners and directory/link mtimes depend on who runs the test and when.
    let mut settings = settings(tmp.path());
    settings.add_filter(r#""uid":\d+,"gid":\d+"#, r#""uid":"[uid]","gid":"[gid]""#);
    settings.add_filter(
        r#""type":"(dir|symlink)","size":(\d+),"mode":(\d+),"mtime":\{[^}]*\}"#,
        r#""type":"$1","size":$2,"mode":$3,"mtime":"[mtime]""#,
    );
    settings.bind(|| insta::assert_snapshot!("manifest_jsonl", jsonl));
    let verified = verify(&dst, &paths.jsonl).unwrap();
    settings.bind(|| insta::assert_json_snapshot!("verify_report", verified));
}

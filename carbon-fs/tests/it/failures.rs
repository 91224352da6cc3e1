//! Every failure: a clear error naming the path, no file under its final name with wrong
//! content, no temp file, no manifest.

use std::fs;
use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use carbon_fs::{FsError, Progress, ReplicateOptions, replicate, replicate_with};

use crate::support::{Item, Mount, assert_no_manifest, assert_no_wrong_content, build};

fn check_refused(src: &Path, dst: &Path, result: Result<carbon_fs::Report, FsError>, names: &str) {
    let err = result.expect_err("must fail");
    let message = err.to_string();
    assert!(
        message.contains(names),
        "error should name {names}: {message}"
    );
    assert!(!message.contains('\n'), "one line: {message}");
    assert_no_wrong_content(src, dst);
    assert_no_manifest(dst);
}

#[test]
fn fifo_socket_and_device_are_refused_before_anything_is_written() {
    for special in ["fifo", "socket", "device"] {
        let tmp = tempfile::tempdir().unwrap();
        let (src, dst) = (tmp.path().join("old"), tmp.path().join("new"));
        build(&src, &[Item::File("a.jar", b"a", 0o644)]);
        let path = src.join(format!("tmp/{special}"));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let _listener = match special {
            "fifo" => {
                let made = Command::new("mkfifo").arg(&path).status().unwrap();
                assert!(made.success());
                None
            }
            // /dev/null's numbers; mknod needs root, like the tmpfs mounts below.
            "device" => {
                let made = Command::new("mknod")
                    .arg(&path)
                    .args(["c", "1", "3"])
                    .status()
                    .unwrap();
                assert!(made.success(), "mknod needs root");
                None
            }
            _ => Some(UnixListener::bind(&path).unwrap()),
        };
        let result = replicate(&src, &dst, &ReplicateOptions::default());
        assert!(
            matches!(result, Err(FsError::SpecialFile { .. })),
            "{result:?}"
        );
        check_refused(&src, &dst, result, &path.display().to_string());
        assert!(
            !dst.exists(),
            "refused at the scan, before the destination is created"
        );
    }
}

/// Appends to the source file the first time its bytes are reported, i.e. mid-copy.
struct Saboteur<'a> {
    victim: &'a Path,
    done: AtomicBool,
}

impl Progress for Saboteur<'_> {
    fn bytes(&self, path: &Path, _bytes: u64) {
        if path == self.victim && !self.done.swap(true, Ordering::SeqCst) {
            let mut file = fs::OpenOptions::new()
                .append(true)
                .open(self.victim)
                .unwrap();
            file.write_all(b"written by a server that is still running")
                .unwrap();
        }
    }
}

#[test]
fn a_file_modified_during_the_copy_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("old"), tmp.path().join("new"));
    let big = vec![7u8; 3 * 1024 * 1024];
    build(
        &src,
        &[
            Item::File("a.jar", b"a", 0o644),
            Item::File("big.car", &big, 0o644),
        ],
    );
    let victim = src.join("big.car");
    let saboteur = Saboteur {
        victim: &victim,
        done: AtomicBool::new(false),
    };
    let result = replicate_with(&src, &dst, &ReplicateOptions::default(), &saboteur);
    assert!(
        matches!(result, Err(FsError::SourceChanged { .. })),
        "{result:?}"
    );
    assert!(
        !dst.join("big.car").exists(),
        "the changed file never gets its final name"
    );
    // The check helper compares with the source as it is now; the victim is absent, so this holds.
    check_refused(&src, &dst, result, "big.car");

    // Once the source is quiet, a re-run completes.
    let report = replicate(&src, &dst, &ReplicateOptions::default()).unwrap();
    crate::support::assert_replicated(&src, &dst, &report);
}

#[test]
fn a_read_only_destination_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("old");
    build(
        &src,
        &[
            Item::File("a.jar", b"a", 0o644),
            Item::File("lib/b.jar", b"b", 0o644),
        ],
    );
    let mount = Mount::tmpfs(&tmp.path().join("mnt"), "size=1m");
    let dst = mount.path.join("new");
    build(
        &dst,
        &[Item::File("shipped.txt", b"from the new product", 0o644)],
    );
    mount.remount("ro");
    let result = replicate(&src, &dst, &ReplicateOptions::default());
    let err = result.as_ref().unwrap_err();
    assert_cause(err, "Read-only file system");
    check_refused(&src, &dst, result, &dst.display().to_string());
    assert_eq!(
        fs::read(dst.join("shipped.txt")).unwrap(),
        b"from the new product"
    );
}

#[test]
fn a_full_destination_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("old");
    let chunk = vec![1u8; 200 * 1024];
    let names: Vec<String> = (0..10).map(|i| format!("f{i}.car")).collect();
    let items: Vec<Item<'_>> = names.iter().map(|n| Item::File(n, &chunk, 0o644)).collect();
    build(&src, &items);
    let mount = Mount::tmpfs(&tmp.path().join("mnt"), "size=1m");
    let dst = mount.path.join("new");
    let result = replicate(&src, &dst, &ReplicateOptions::default());
    let err = result.as_ref().unwrap_err();
    assert_cause(err, "No space left on device");
    check_refused(&src, &dst, result, "writing");
}

#[test]
fn a_tree_is_never_copied_into_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("old");
    build(&src, &[Item::File("a.jar", b"a", 0o644)]);
    for dst in [src.join("inner"), src.clone(), tmp.path().to_path_buf()] {
        let err = replicate(&src, &dst, &ReplicateOptions::default()).unwrap_err();
        assert!(matches!(err, FsError::Overlap { .. }), "{err}");
    }
    assert!(!src.join("inner").exists());
}

/// The cause is the error's `source()`, and the message does not repeat it.
fn assert_cause(err: &carbon_fs::FsError, cause: &str) {
    let source = std::error::Error::source(err).map(ToString::to_string);
    assert!(
        source.as_deref().is_some_and(|s| s.contains(cause)),
        "{err}: source {source:?}"
    );
    assert!(
        !err.to_string().contains(cause),
        "repeated in the message: {err}"
    );
}

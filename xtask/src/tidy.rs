//! Tidy checks, run as tests (rust-analyzer's way): cheap rules that keep the workspace's
//! shape from drifting. Each names the file and line at fault.

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    /// Library code: every crate's `src/` but the binary's glue and xtask's.
    const LIBRARY_SRC: [&str; 5] = [
        "carbon-db/src",
        "carbon-fs/src",
        "carbon-config/src",
        "carbon-verify/src",
        "carbon-upgrade-cli/src/runbook",
    ];
    const MAX_LINES: usize = 800;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives in the workspace")
            .to_path_buf()
    }

    fn rust_files(dir: &str) -> Vec<PathBuf> {
        walkdir::WalkDir::new(root().join(dir))
            .sort_by_file_name()
            .into_iter()
            .map(|e| e.expect("walking the sources"))
            .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
            .map(walkdir::DirEntry::into_path)
            .collect()
    }

    /// The lines before the file's unit-test module (by convention at the end).
    fn non_test_lines(path: &Path) -> Vec<(usize, String)> {
        let text = std::fs::read_to_string(path).expect("reading a source file");
        text.lines()
            .take_while(|l| l.trim() != "#[cfg(test)]")
            .enumerate()
            .map(|(i, l)| (i + 1, l.to_owned()))
            .collect()
    }

    fn offenders(dirs: &[&str], bad: impl Fn(&str) -> bool) -> Vec<String> {
        let mut found = Vec::new();
        for dir in dirs {
            for path in rust_files(dir) {
                for (n, line) in non_test_lines(&path) {
                    let code = line.trim_start();
                    if !code.starts_with("//") && bad(code) {
                        found.push(format!("{}:{n}: {}", path.display(), code));
                    }
                }
            }
        }
        found
    }

    #[test]
    fn no_source_file_passes_800_lines() {
        let dirs = [
            "carbon-db/src",
            "carbon-fs/src",
            "carbon-config/src",
            "carbon-verify/src",
            "carbon-upgrade-cli/src",
            "xtask/src",
        ];
        let mut long = Vec::new();
        for dir in dirs {
            for path in rust_files(dir) {
                let lines = std::fs::read_to_string(&path)
                    .expect("reading a source file")
                    .lines()
                    .count();
                if lines > MAX_LINES {
                    long.push(format!("{} ({lines} lines)", path.display()));
                }
            }
        }
        assert!(long.is_empty(), "split these by concern: {long:#?}");
    }

    #[test]
    fn no_unwrap_in_library_code() {
        let found = offenders(&LIBRARY_SRC, |code| code.contains(".unwrap()"));
        assert!(found.is_empty(), "use `?` or `expect(\"why\")`: {found:#?}");
    }

    #[test]
    fn libraries_print_nothing() {
        let found = offenders(&LIBRARY_SRC, |code| {
            ["println!(", "eprintln!(", "print!(", "eprint!(", "dbg!("]
                .iter()
                .any(|m| code.contains(m))
        });
        assert!(
            found.is_empty(),
            "libraries report through return values, Progress or tracing: {found:#?}"
        );
    }

    /// A tidy rule that cannot fail is no rule: each must catch a planted offender.
    #[test]
    fn the_rules_catch_what_they_forbid() {
        let dir = tempfile_dir();
        let file = dir.join("planted.rs");
        std::fs::write(&file, "fn f() { x.unwrap(); println!(\"hi\"); }\n#[cfg(test)]\nmod t { fn g() { y.unwrap(); } }\n")
            .expect("writing the planted file");
        let lines = non_test_lines(&file);
        assert_eq!(lines.len(), 1, "the test module is not library code");
        assert!(lines[0].1.contains(".unwrap()") && lines[0].1.contains("println!("));
        std::fs::remove_dir_all(&dir).expect("cleaning up");
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("carbon-tidy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating a temp dir");
        dir
    }
}

//! `cargo bench -p carbon-fs --bench fs` (what `cargo xtask bench fs` runs): a generated
//! product-home tree on tmpfs and on disk, median of N runs, carbon-fs against `cp -a`,
//! `cp -a` + `sha256sum` manifest + `sha256sum -c`, and `rsync -a`.
//!
//! Environment: `CARBON_FS_BENCH_RUNS` (default 5), `CARBON_FS_BENCH_SCALE` (percent of the
//! full ~18k files / ~250 MB tree, default 100), `CARBON_FS_BENCH_TMPFS` (default /dev/shm),
//! `CARBON_FS_BENCH_DISK` (default the system temp dir), `CARBON_FS_BENCH_ONLY` (`tmpfs` or `disk`). Caches are warm: the source is read
//! once while it is generated, and nothing drops caches (other work shares this machine).
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use carbon_fs::{ReplicateOptions, replicate, verify};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Deterministic, incompressible-enough content.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(len);
        out
    }

    fn between(&mut self, low: usize, high: usize) -> usize {
        low + (self.next() as usize) % (high - low)
    }
}

struct Tree {
    files: usize,
    bytes: u64,
}

fn write(path: &Path, content: &[u8], tree: &mut Tree) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
    tree.files += 1;
    tree.bytes += content.len() as u64;
}

/// Exploded webapps of small `.class` files, jars, a few large `.car` files, 200 tenants × 40
/// files, a symlink and unicode names.
fn generate(root: &Path, scale: usize) -> Tree {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut tree = Tree { files: 0, bytes: 0 };
    let server = root.join("repository/deployment/server");
    let n = |full: usize| (full * scale / 100).max(1);
    for app in 0..4 {
        for class in 0..n(2200) {
            let len = rng.between(512, 6 * 1024);
            let path = server.join(format!(
                "webapps/app{app}/WEB-INF/classes/org/wso2/p{}/C{class}.class",
                class % 40
            ));
            write(&path, &rng.bytes(len), &mut tree);
        }
    }
    for jar in 0..n(150) {
        let len = rng.between(64 * 1024, 800 * 1024);
        write(
            &server.join(format!("webapps/app{}/WEB-INF/lib/lib{jar}.jar", jar % 4)),
            &rng.bytes(len),
            &mut tree,
        );
    }
    for (i, mb) in [5, 8, 12, 20, 30].iter().enumerate() {
        let len = mb * 1024 * 1024 * scale / 100;
        write(
            &server.join(format!("carbonapps/capp{i}_1.0.0.car")),
            &rng.bytes(len),
            &mut tree,
        );
    }
    for tenant in 1..=n(200) {
        for file in 0..40 {
            let len = rng.between(256, 16 * 1024);
            let path = root.join(format!(
                "repository/tenants/{tenant}/synapse-configs/default/api/api{file}.xml"
            ));
            write(&path, &rng.bytes(len), &mut tree);
        }
    }
    write(
        &server.join("webapps/app0/ünïcödé 名前/índex.html"),
        b"<html/>",
        &mut tree,
    );
    symlink("../carbonapps", server.join("webapps/carbonapps-link")).unwrap();
    tree
}

fn sh(script: &str, cwd: &Path) {
    let status = Command::new("bash")
        .arg("-ceu")
        .arg(script)
        .current_dir(cwd)
        .status()
        .unwrap();
    assert!(status.success(), "{script}");
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Runs `body(dst)` `runs` times into a fresh destination each time; returns the median.
fn measure(base: &Path, runs: usize, mut body: impl FnMut(&Path)) -> Duration {
    let mut samples = Vec::new();
    for _ in 0..runs {
        let dst = base.join("dst");
        if dst.exists() {
            fs::remove_dir_all(&dst).unwrap();
        }
        for f in ["dst.manifest.jsonl", "dst.SHA256SUMS", "sums"] {
            let _ = fs::remove_file(base.join(f));
        }
        let started = Instant::now();
        body(&dst);
        samples.push(started.elapsed());
    }
    median(samples)
}

fn bench(label: &str, base: &Path, runs: usize, scale: usize) {
    fs::create_dir_all(base).unwrap();
    let src = base.join("src");
    if src.exists() {
        fs::remove_dir_all(&src).unwrap();
    }
    let tree = generate(&src, scale);
    eprintln!(
        "{label}: {} files, {:.0} MB in {}",
        tree.files,
        tree.bytes as f64 / 1e6,
        base.display()
    );
    sh("sync", base);

    let options = ReplicateOptions::default();
    let replicate_only = measure(base, runs, |dst| {
        replicate(&src, dst, &options).unwrap();
    });
    let replicate_verify = measure(base, runs, |dst| {
        let report = replicate(&src, dst, &options).unwrap();
        assert!(
            verify(dst, &report.manifest.unwrap().jsonl)
                .unwrap()
                .is_ok()
        );
    });
    let cp = measure(base, runs, |_| sh("cp -a src dst", base));
    let cp_sums = measure(base, runs, |_| {
        sh(
            "cp -a src dst && (cd src && find . -type f -print0 | sort -z | xargs -0 sha256sum > ../sums) && (cd dst && sha256sum -c --quiet ../sums)",
            base,
        )
    });
    let rsync = measure(base, runs, |_| sh("rsync -a src/ dst/", base));
    fs::remove_dir_all(&src).unwrap();
    let _ = fs::remove_dir_all(base.join("dst"));

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "\n### {label} ({} files, {:.0} MB, median of {runs})\n",
        tree.files,
        tree.bytes as f64 / 1e6
    );
    println!("| pipeline | median ms | vs cp -a | vs cp + sha256sum + -c |");
    println!("|---|---:|---:|---:|");
    for (name, d) in [
        ("carbon-fs replicate + manifest", replicate_only),
        ("carbon-fs replicate + manifest + verify", replicate_verify),
        ("cp -a", cp),
        ("cp -a + sha256sum manifest + sha256sum -c", cp_sums),
        ("rsync -a", rsync),
    ] {
        println!(
            "| {name} | {:.0} | {:.2}× | {:.2}× |",
            ms(d),
            ms(d) / ms(cp),
            ms(d) / ms(cp_sums)
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; other harness flags are not meaningful here.
    let runs = env_or("CARBON_FS_BENCH_RUNS", 5usize);
    let scale = env_or("CARBON_FS_BENCH_SCALE", 100usize).clamp(1, 100);
    let tmpfs =
        PathBuf::from(std::env::var("CARBON_FS_BENCH_TMPFS").unwrap_or_else(|_| "/dev/shm".into()));
    let disk =
        std::env::var("CARBON_FS_BENCH_DISK").map_or_else(|_| std::env::temp_dir(), PathBuf::from);
    let pid = std::process::id();
    let only = std::env::var("CARBON_FS_BENCH_ONLY").unwrap_or_default();
    for (label, dir) in [("tmpfs", &tmpfs), ("disk", &disk)] {
        if only.is_empty() || only == label {
            bench(
                label,
                &dir.join(format!("carbon-fs-bench-{pid}")),
                runs,
                scale,
            );
        }
    }
    for dir in [tmpfs, disk] {
        let _ = fs::remove_dir_all(dir.join(format!("carbon-fs-bench-{pid}")));
    }
}

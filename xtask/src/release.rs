//! `cargo xtask release`: the release binary, its man page and shell completions, and a
//! SHA256SUMS file over all of them, under `target/dist`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

const BINARY: &str = "carbon-upgrade";
const SHELLS: &[(&str, &str)] = &[
    ("bash", "carbon-upgrade.bash"),
    ("zsh", "_carbon-upgrade"),
    ("fish", "carbon-upgrade.fish"),
    ("elvish", "carbon-upgrade.elv"),
    ("powershell", "_carbon-upgrade.ps1"),
];

pub fn run() -> Result<()> {
    let root = crate::workspace_root();
    crate::run_step(
        "cargo build --release",
        crate::cargo().args(["build", "--release", "--locked", "-p", "carbon-upgrade-cli"]),
    )?;
    let dist = root.join("target/dist");
    if dist.exists() {
        std::fs::remove_dir_all(&dist).with_context(|| format!("removing {}", dist.display()))?;
    }
    std::fs::create_dir_all(dist.join("completions"))?;
    let binary = root.join("target/release").join(BINARY);
    std::fs::copy(&binary, dist.join(BINARY))
        .with_context(|| format!("copying {}", binary.display()))?;
    write_generated(&binary, "man", &dist.join("carbon-upgrade.1"))?;
    for (shell, file) in SHELLS {
        write_generated(&binary, shell, &dist.join("completions").join(file))?;
    }
    let sums = sha256sums(&dist)?;
    std::fs::write(dist.join("SHA256SUMS"), &sums)?;
    print!("{sums}");
    println!(
        "==> release artifacts in {} (check with: cd target/dist && sha256sum -c SHA256SUMS)",
        dist.display()
    );
    Ok(())
}

fn write_generated(binary: &Path, what: &str, to: &Path) -> Result<()> {
    let output = Command::new(binary).args(["generate", what]).output()?;
    if !output.status.success() || output.stdout.is_empty() {
        bail!(
            "{} generate {what} failed: {}",
            binary.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    std::fs::write(to, output.stdout).with_context(|| format!("writing {}", to.display()))
}

/// GNU `sha256sum` format, paths relative to `dir`, sorted.
fn sha256sums(dir: &Path) -> Result<String> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    files.sort();
    let mut out = String::new();
    for file in files {
        let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        let relative = file.strip_prefix(dir).unwrap_or(&file);
        let _ = writeln!(
            out,
            "{}  {}",
            hex::encode(Sha256::digest(&bytes)),
            relative.display()
        );
    }
    Ok(out)
}

//! `carbon-upgrade fs ...`: replicate, verify and back up product-home directories.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use carbon_fs::{
    CarbonHomeOptions, ConflictPolicy, ManifestPaths, Outcome, Phase, Progress, ReplicateOptions,
    Report, VerifyOptions, VerifyReport,
};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::Status;

#[derive(Debug, Subcommand)]
pub enum FsCommand {
    /// Replicate SRC into DST: temp files renamed into place, hashed while copied, modes and
    /// mtimes kept, symlinks as symlinks, conflicts listed; the manifest is written last.
    Copy(CopyArgs),
    /// Verify DIR against its manifest: = same, - missing, + extra, * differs, ! error.
    Verify(VerifyArgs),
    /// Back up a whole PRODUCT_HOME into DEST (absent or empty) and verify it against its manifest.
    Backup(BackupArgs),
    /// Replicate repository/deployment/server and (when used) the tenants directory from the
    /// old product home into the new one; repository/conf is never copied.
    Carbon(CarbonArgs),
}

/// Which side wins when a file exists on both sides with different content.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Prefer {
    /// Keep the destination's (new product's) file and list the conflict.
    New,
    /// Overwrite it with the source's (old product's) file.
    Old,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Directory to copy from (never modified).
    pub src: PathBuf,
    /// Directory to copy into (created if absent).
    pub dst: PathBuf,
    /// JSON-lines manifest to write; the SHA256SUMS goes beside it [default: DST.manifest.jsonl beside DST].
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    #[command(flatten)]
    pub conflicts: ConflictArgs,
    /// Show what would be copied, what is identical and what conflicts; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Copy symlinks that point outside SRC (as links, never followed).
    #[arg(long)]
    pub allow_escaping_links: bool,
    /// fsync each file before its rename instead of one filesystem sync at the end.
    #[arg(long)]
    pub fsync_each_file: bool,
    /// Copy threads (0: number of cores, at most 4).
    #[arg(long, default_value_t = 0)]
    pub jobs: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// How conflicts are settled, shared by `copy` and `carbon`.
#[derive(Debug, Args)]
pub struct ConflictArgs {
    #[arg(long, value_enum, default_value = "new")]
    pub prefer: Prefer,
    /// Stop before writing anything if any file conflicts (exit 1).
    #[arg(long)]
    pub fail_on_conflict: bool,
}

impl ConflictArgs {
    fn policy(&self) -> ConflictPolicy {
        match (self.fail_on_conflict, self.prefer) {
            (true, _) => ConflictPolicy::Fail,
            (false, Prefer::New) => ConflictPolicy::KeepNew,
            (false, Prefer::Old) => ConflictPolicy::PreferOld,
        }
    }
}

#[derive(Debug, Args)]
pub struct CarbonArgs {
    /// The old PRODUCT_HOME (never modified).
    pub old_home: PathBuf,
    /// The new PRODUCT_HOME.
    pub new_home: PathBuf,
    /// The old server's tenants directory, relative to OLD_HOME when relative [default: the
    /// -Dtenants.dir.path of its bin/wso2server.sh, else CARBON_TENANTS_DIR_PATH, else
    /// repository/tenants].
    #[arg(long, value_name = "DIR")]
    pub tenants_dir: Option<PathBuf>,
    /// The new server's tenants directory, relative to NEW_HOME when relative [default: as for
    /// the old one].
    #[arg(long, value_name = "DIR")]
    pub new_tenants_dir: Option<PathBuf>,
    /// Directory for `<part>.manifest.jsonl` and `<part>.SHA256SUMS` [default: beside each destination].
    #[arg(long, value_name = "DIR")]
    pub manifest_dir: Option<PathBuf>,
    #[command(flatten)]
    pub conflicts: ConflictArgs,
    /// Show what would be copied, what is identical and what conflicts; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Directory to check.
    pub dir: PathBuf,
    /// Its JSON-lines manifest.
    #[arg(long, value_name = "FILE")]
    pub manifest: PathBuf,
    /// Compare names, types, sizes, modes, mtimes and links only; do not re-hash content.
    #[arg(long)]
    pub structure_only: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The PRODUCT_HOME to back up (never modified).
    pub home: PathBuf,
    /// Backup directory (absent, empty, or an interrupted backup to finish); the manifest goes beside it.
    pub dest: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(command: FsCommand) -> anyhow::Result<Status> {
    match command {
        FsCommand::Copy(args) => copy(&args),
        FsCommand::Verify(args) => verify(&args),
        FsCommand::Backup(args) => backup(&args),
        FsCommand::Carbon(args) => carbon(&args),
    }
}

fn copy(args: &CopyArgs) -> anyhow::Result<Status> {
    let conflicts = args.conflicts.policy();
    let options = ReplicateOptions {
        conflicts,
        allow_escaping_links: args.allow_escaping_links,
        dry_run: args.dry_run,
        workers: args.jobs,
        manifest: args.manifest.clone().map(ManifestPaths::from_jsonl),
        fsync_each_file: args.fsync_each_file,
        ..ReplicateOptions::default()
    };
    let bar = Bar::new();
    let report = carbon_fs::replicate_with(&args.src, &args.dst, &options, &bar);
    bar.clear();
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_copy(&report);
    }
    let refused = args.dry_run && conflicts == ConflictPolicy::Fail && !report.conflicts.is_empty();
    Ok(if refused {
        Status::CheckFailed
    } else {
        Status::Ok
    })
}

fn print_copy(report: &Report) {
    if report.dry_run {
        for item in &report.items {
            let verb = match item.outcome {
                Outcome::Copied => "would copy",
                Outcome::Identical => "identical",
                Outcome::Conflict => "conflict",
                Outcome::Skipped => "skipped",
                Outcome::CreatedDir => "would mkdir",
                Outcome::MergedDir => continue,
            };
            println!("{verb:<12}{}", item.path);
        }
    }
    for conflict in &report.conflicts {
        println!(
            "conflict    {}  ({} in source, {} in destination: {:?})",
            conflict.path,
            conflict.source.name(),
            conflict.destination.name(),
            conflict.resolution
        );
    }
    for leftover in &report.temp_leftovers {
        let verb = if report.dry_run {
            "would remove"
        } else {
            "removed"
        };
        println!("{verb:<12}{leftover}  (temp file of an interrupted run)");
    }
    let s = &report.summary;
    let prefix = if report.dry_run {
        "dry run: would copy"
    } else {
        "copied"
    };
    println!(
        "{prefix} {} files ({}), {} links; {} identical; {} directories created; {} conflicts; {} only in destination ({} ms)",
        s.files_copied,
        human_bytes(s.bytes_copied),
        s.links_copied,
        s.identical,
        s.dirs_created,
        s.conflicts,
        s.destination_only,
        report.elapsed_ms
    );
    if let Some(manifest) = &report.manifest {
        print_manifest(manifest);
    }
}

fn print_manifest(manifest: &ManifestPaths) {
    println!(
        "manifest: {} and {}",
        manifest.jsonl.display(),
        manifest.sha256sums.display()
    );
}

/// A tenants directory given on the command line, else where the home keeps its tenants.
fn given_or_home(given: &Option<PathBuf>, home: &Path) -> anyhow::Result<PathBuf> {
    match given {
        Some(dir) => Ok(home.join(dir)),
        None => Ok(carbon_config::home::tenants_dir(home)?),
    }
}

fn carbon(args: &CarbonArgs) -> anyhow::Result<Status> {
    let policy = args.conflicts.policy();
    let options = CarbonHomeOptions {
        replicate: ReplicateOptions {
            conflicts: policy,
            dry_run: args.dry_run,
            ..ReplicateOptions::default()
        },
        old_tenants_dir: Some(given_or_home(&args.tenants_dir, &args.old_home)?),
        new_tenants_dir: Some(given_or_home(&args.new_tenants_dir, &args.new_home)?),
        manifest_dir: args.manifest_dir.clone(),
    };
    let bar = Bar::new();
    let report = carbon_fs::replicate_carbon_home(&args.old_home, &args.new_home, &options, &bar);
    bar.clear();
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for (part, part_report) in &report.parts {
            println!(
                "== {}: {} -> {}",
                part.name,
                part.src.display(),
                part.dst.display()
            );
            print_copy(part_report);
        }
        for skipped in &report.skipped {
            println!(
                "== {}: skipped, {} ({})",
                skipped.name,
                skipped.reason,
                skipped.path.display()
            );
        }
    }
    let refused = args.dry_run && policy == ConflictPolicy::Fail && report.conflicts() > 0;
    Ok(if refused {
        Status::CheckFailed
    } else {
        Status::Ok
    })
}

fn verify(args: &VerifyArgs) -> anyhow::Result<Status> {
    let options = VerifyOptions {
        data: !args.structure_only,
        ..VerifyOptions::default()
    };
    let bar = Bar::new();
    let report = carbon_fs::verify_with(&args.dir, &args.manifest, &options, &bar);
    bar.clear();
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_verify(&report);
    }
    Ok(if report.is_ok() {
        Status::Ok
    } else {
        Status::CheckFailed
    })
}

fn print_verify(report: &VerifyReport) {
    for item in report.problems() {
        match &item.detail {
            Some(detail) => println!("{} {}  ({detail})", item.mark, item.path),
            None => println!("{} {}", item.mark, item.path),
        }
    }
    let verdict = if report.is_ok() { "ok" } else { "MISMATCH" };
    println!("{verdict}: {}", report.summary_line());
}

fn backup(args: &BackupArgs) -> anyhow::Result<Status> {
    let bar = Bar::new();
    let report = carbon_fs::backup_home(&args.home, &args.dest, &bar);
    bar.clear();
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(Status::Ok);
    }
    let s = &report.copy.summary;
    println!(
        "backed up {} files ({}), {} links, {} directories into {} ({} ms)",
        s.files_copied,
        human_bytes(s.bytes_copied),
        s.links_copied,
        s.dirs_created,
        args.dest.display(),
        report.copy.elapsed_ms
    );
    println!("verified: {}", report.verify.summary_line());
    if let Some(manifest) = &report.copy.manifest {
        print_manifest(manifest);
    }
    Ok(Status::Ok)
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A progress bar on stderr; indicatif draws nothing when stderr is not a terminal.
struct Bar {
    bar: ProgressBar,
    by_bytes: AtomicBool,
}

impl Bar {
    fn new() -> Bar {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        Bar {
            bar,
            by_bytes: AtomicBool::new(false),
        }
    }

    fn clear(&self) {
        self.bar.finish_and_clear();
    }

    fn counts_bytes(&self) -> bool {
        self.by_bytes.load(Ordering::Relaxed)
    }
}

impl Progress for Bar {
    fn start(&self, phase: Phase, files: u64, bytes: u64) {
        let by_bytes = bytes > 0;
        self.by_bytes.store(by_bytes, Ordering::Relaxed);
        let template = if by_bytes {
            "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
        } else {
            "{msg:>10} [{bar:30}] {pos}/{len} files"
        };
        self.bar.set_length(if by_bytes { bytes } else { files });
        self.bar.set_position(0);
        if let Ok(style) = ProgressStyle::with_template(template) {
            self.bar.set_style(style.progress_chars("=> "));
        }
        self.bar.set_message(format!("{phase:?}").to_lowercase());
    }

    fn bytes(&self, _path: &Path, bytes: u64) {
        if self.counts_bytes() {
            self.bar.inc(bytes);
        }
    }

    fn file_done(&self, _path: &Path) {
        if !self.counts_bytes() {
            self.bar.inc(1);
        }
    }
}

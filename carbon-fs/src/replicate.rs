//! `replicate`: plan (read-only), then execute (write, sync, manifest last).

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::copy::{self, CopyMethod, CopySettings};
use crate::manifest::{Manifest, ManifestEntry, ManifestPaths, Origin, sync_dir};
use crate::pool::{default_workers, parallel_map};
use crate::scan::{self, EntryKind, Node, Side};
use crate::{FsError, NoProgress, Phase, Progress};

/// What to do with a destination file that differs from the source's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictPolicy {
    /// Keep the new product's file and list the conflict (the safe default).
    #[default]
    KeepNew,
    /// Overwrite it with the old product's file.
    PreferOld,
    /// Stop before writing anything.
    Fail,
}

/// Up to this many files written, each is fsynced on its own rather than one `syncfs`.
const FSYNC_EACH_UP_TO: usize = 32;

/// How `replicate` behaves.
#[derive(Debug, Clone, Default)]
pub struct ReplicateOptions {
    pub conflicts: ConflictPolicy,
    /// Copy symlinks that point outside the tree (still as links, never followed).
    pub allow_escaping_links: bool,
    /// Plan and report only; nothing is written, not even temp-file cleanup.
    pub dry_run: bool,
    /// Copy threads; 0 picks the machine's parallelism capped at 4.
    pub workers: usize,
    /// Where the manifest goes; `None` puts it beside the destination ([`ManifestPaths::beside`]).
    pub manifest: Option<ManifestPaths>,
    /// fsync every file before its rename (slower); by default one `syncfs` before the manifest
    /// (again after a finished run, with few files written: those fsynced each, no `syncfs`).
    pub fsync_each_file: bool,
    pub copy_method: CopyMethod,
}

/// What happened (or, in a dry run, would happen) to one source entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A file or symlink written from the source.
    Copied,
    /// Already present in the destination with the same content; left alone.
    Identical,
    /// A directory created in the destination.
    CreatedDir,
    /// A directory present on both sides; merged into.
    MergedDir,
    /// Differs from the destination's entry; see [`Report::conflicts`].
    Conflict,
    /// Inside a conflicting directory whose destination side was kept.
    Skipped,
}

/// How a conflict was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    KeptNew,
    Overwritten,
    /// `ConflictPolicy::Fail`: nothing was written.
    Refused,
}

/// An entry present on both sides with different content, link target or type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub path: String,
    pub source: EntryKind,
    pub destination: EntryKind,
    pub resolution: Resolution,
}

/// One source entry and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportItem {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: EntryKind,
    pub outcome: Outcome,
}

/// Counts for people and for the run report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub files_copied: u64,
    pub bytes_copied: u64,
    pub links_copied: u64,
    pub identical: u64,
    pub dirs_created: u64,
    pub conflicts: u64,
    pub skipped: u64,
    pub destination_only: u64,
    pub temp_leftovers_removed: u64,
    pub manifest_entries: u64,
    /// Source files with more than one hard link; each is copied as a separate file (like `cp -a`
    /// across trees, or rsync without `-H`).
    pub hard_linked_files: u64,
}

/// The result of a replication or dry run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub src: PathBuf,
    pub dst: PathBuf,
    pub dry_run: bool,
    pub summary: Summary,
    pub items: Vec<ReportItem>,
    pub conflicts: Vec<Conflict>,
    /// Temp files of an interrupted run found in the destination (removed unless dry run).
    pub temp_leftovers: Vec<String>,
    /// Written only after everything else is durable; `None` in a dry run.
    pub manifest: Option<ManifestPaths>,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    CreateDir,
    MergeDir,
    CopyFile,
    CreateLink,
    Identical {
        sha256: Option<String>,
    },
    /// Conflict; `dst_sha256` is known when both sides are regular files.
    Conflict {
        destination: EntryKind,
        src_sha256: Option<String>,
        dst_sha256: Option<String>,
    },
    Skip,
}

#[derive(Debug, Clone)]
struct Planned {
    node: Node,
    action: Action,
}

/// A read-only plan: what `execute` will do. Building it writes nothing.
#[derive(Debug)]
pub(crate) struct Plan {
    src: PathBuf,
    dst: PathBuf,
    options: ReplicateOptions,
    workers: usize,
    entries: Vec<Planned>,
    destination_only: Vec<Node>,
    temp_leftovers: Vec<String>,
    dst_exists: bool,
    root_node: Node,
    started: Instant,
}

/// Replicates `src` into `dst` (plans, then executes the plan) without progress reporting.
pub fn replicate(src: &Path, dst: &Path, options: &ReplicateOptions) -> Result<Report, FsError> {
    replicate_with(src, dst, options, &NoProgress)
}

/// Replicates `src` into `dst`, reporting progress; a dry run only plans.
pub fn replicate_with(
    src: &Path,
    dst: &Path,
    options: &ReplicateOptions,
    progress: &dyn Progress,
) -> Result<Report, FsError> {
    let plan = plan(src, dst, options, progress)?;
    if options.dry_run {
        Ok(plan.dry_run_report())
    } else {
        plan.execute(progress)
    }
}

/// Scans both trees and compares files present on both sides. Reads only.
pub(crate) fn plan(
    src: &Path,
    dst: &Path,
    options: &ReplicateOptions,
    progress: &dyn Progress,
) -> Result<Plan, FsError> {
    let started = Instant::now();
    // The operator names the source; a symlinked home (/opt/wso2 -> /opt/wso2am-2.0.0) is fine.
    let root_meta = fs::metadata(src).map_err(FsError::io("reading", src))?;
    if !root_meta.is_dir() {
        return Err(FsError::NotADirectory {
            path: src.to_path_buf(),
        });
    }
    let dst_exists = check_destination_root(dst)?;
    refuse_overlap(src, dst)?;

    let source = scan::scan_tree(src, Side::Source)?;
    if !options.allow_escaping_links {
        scan::check_links_stay_inside(src, &source.nodes)?;
    }
    let destination = if dst_exists {
        scan::scan_tree(dst, Side::Destination)?
    } else {
        scan::Tree::default()
    };
    let workers = match options.workers {
        0 => default_workers(),
        n => n,
    };
    let mut plan = Plan {
        src: src.to_path_buf(),
        dst: dst.to_path_buf(),
        options: options.clone(),
        workers,
        entries: Vec::with_capacity(source.nodes.len()),
        destination_only: Vec::new(),
        temp_leftovers: destination.temp_leftovers,
        dst_exists,
        root_node: Node::from_metadata(String::new(), src, &root_meta)?,
        started,
    };
    let source_paths: HashSet<&str> = source.nodes.iter().map(|n| n.rel.as_str()).collect();
    // A manifest kept inside the destination is rewritten by this run, not part of the tree.
    let manifest = plan.manifest_paths();
    let is_manifest = |n: &Node| {
        let path = dst.join(&n.rel);
        path == manifest.jsonl || path == manifest.sha256sums
    };
    plan.destination_only = destination
        .nodes
        .iter()
        .filter(|n| !source_paths.contains(n.rel.as_str()) && !is_manifest(n))
        .cloned()
        .collect();
    let existing: HashMap<&str, &Node> = destination
        .nodes
        .iter()
        .map(|n| (n.rel.as_str(), n))
        .collect();
    plan.classify(source.nodes, &existing)?;
    plan.compare_common_files(progress)?;
    Ok(plan)
}

fn check_destination_root(dst: &Path) -> Result<bool, FsError> {
    match fs::symlink_metadata(dst) {
        Ok(meta) if meta.file_type().is_symlink() => Err(FsError::DestinationIsSymlink {
            path: dst.to_path_buf(),
        }),
        Ok(meta) if !meta.is_dir() => Err(FsError::NotADirectory {
            path: dst.to_path_buf(),
        }),
        Ok(_) => Ok(true),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(FsError::io("reading", dst)(err)),
    }
}

/// The tree is never copied into itself, nor a parent into its child: that would write to the source.
fn refuse_overlap(src: &Path, dst: &Path) -> Result<(), FsError> {
    let src_real = fs::canonicalize(src).map_err(FsError::io("resolving", src))?;
    let dst_real = canonical_nearest(dst)?;
    if dst_real.starts_with(&src_real) || src_real.starts_with(&dst_real) {
        return Err(FsError::Overlap {
            src: src.to_path_buf(),
            dst: dst.to_path_buf(),
        });
    }
    Ok(())
}

/// Canonical form of `path`, resolving its nearest existing ancestor when it does not exist yet.
fn canonical_nearest(path: &Path) -> Result<PathBuf, FsError> {
    let absolute = std::path::absolute(path).map_err(FsError::io("resolving", path))?;
    let mut missing = Vec::new();
    let mut current = absolute.as_path();
    loop {
        match fs::canonicalize(current) {
            Ok(mut real) => {
                real.extend(missing.iter().rev());
                return Ok(real);
            }
            Err(_) => match (current.parent(), current.file_name()) {
                (Some(parent), Some(name)) => {
                    missing.push(name.to_os_string());
                    current = parent;
                }
                _ => return Ok(absolute),
            },
        }
    }
}

impl Plan {
    fn classify(
        &mut self,
        nodes: Vec<Node>,
        existing: &HashMap<&str, &Node>,
    ) -> Result<(), FsError> {
        let mut skipped_prefix: Option<String> = None;
        for node in nodes {
            if let Some(prefix) = &skipped_prefix {
                if node.rel.starts_with(prefix.as_str()) {
                    self.entries.push(Planned {
                        node,
                        action: Action::Skip,
                    });
                    continue;
                }
                skipped_prefix = None;
            }
            let action = match existing.get(node.rel.as_str()) {
                None => match node.kind {
                    EntryKind::Dir => Action::CreateDir,
                    EntryKind::File => Action::CopyFile,
                    EntryKind::Symlink => Action::CreateLink,
                },
                Some(found) => self.against_existing(&node, found)?,
            };
            if node.kind == EntryKind::Dir && matches!(action, Action::Conflict { .. }) {
                skipped_prefix = Some(format!("{}/", node.rel));
            }
            self.entries.push(Planned { node, action });
        }
        Ok(())
    }

    fn against_existing(&self, node: &Node, found: &Node) -> Result<Action, FsError> {
        let conflict = Action::Conflict {
            destination: found.kind,
            src_sha256: None,
            dst_sha256: None,
        };
        let involves_dir = node.kind == EntryKind::Dir || found.kind == EntryKind::Dir;
        if node.kind != found.kind && involves_dir {
            if self.options.conflicts == ConflictPolicy::PreferOld {
                return Err(FsError::TypeConflict {
                    path: self.dst.join(&node.rel),
                    found: found.kind.name(),
                    wanted: node.kind.name(),
                });
            }
            return Ok(conflict);
        }
        Ok(match (node.kind, found.kind) {
            (EntryKind::Dir, _) => Action::MergeDir,
            (EntryKind::Symlink, EntryKind::Symlink) if node.target == found.target => {
                Action::Identical { sha256: None }
            }
            // Both regular files: decided by content in `compare_common_files`.
            (EntryKind::File, EntryKind::File) => Action::Identical { sha256: None },
            _ => conflict,
        })
    }

    /// Hashes files present on both sides (in parallel) to tell identical from conflicting.
    fn compare_common_files(&mut self, progress: &dyn Progress) -> Result<(), FsError> {
        let common: Vec<usize> = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.node.kind == EntryKind::File && p.action == Action::Identical { sha256: None }
            })
            .map(|(i, _)| i)
            .collect();
        let bytes = common.iter().map(|&i| self.entries[i].node.size).sum();
        progress.start(Phase::Comparing, common.len() as u64, bytes);
        let sums = parallel_map(&common, self.workers, |&i| {
            let node = &self.entries[i].node;
            let dst_path = self.dst.join(&node.rel);
            let (dst_sum, dst_len) = copy::hash_file(&dst_path, progress)?;
            // Different sizes differ: spare reading the source, the copy will hash it.
            let src_sum = if dst_len == node.size {
                Some(copy::hash_file(&self.src.join(&node.rel), progress)?.0)
            } else {
                None
            };
            progress.file_done(&dst_path);
            Ok::<_, FsError>((src_sum, dst_sum))
        })?;
        progress.finish(Phase::Comparing);
        for (&i, (src_sum, dst_sum)) in common.iter().zip(sums) {
            self.entries[i].action = if src_sum.as_deref() == Some(dst_sum.as_str()) {
                Action::Identical { sha256: src_sum }
            } else {
                Action::Conflict {
                    destination: EntryKind::File,
                    src_sha256: src_sum,
                    dst_sha256: Some(dst_sum),
                }
            };
        }
        Ok(())
    }

    /// Conflicts found, with the resolution the options give them.
    pub fn conflicts(&self) -> Vec<Conflict> {
        let resolution = match self.options.conflicts {
            ConflictPolicy::KeepNew => Resolution::KeptNew,
            ConflictPolicy::PreferOld => Resolution::Overwritten,
            ConflictPolicy::Fail => Resolution::Refused,
        };
        self.entries
            .iter()
            .filter_map(|p| match &p.action {
                Action::Conflict { destination, .. } => Some(Conflict {
                    path: p.node.rel.clone(),
                    source: p.node.kind,
                    destination: *destination,
                    resolution,
                }),
                _ => None,
            })
            .collect()
    }

    fn overwrites(&self) -> bool {
        self.options.conflicts == ConflictPolicy::PreferOld
    }

    fn outcome(&self, planned: &Planned) -> Outcome {
        match planned.action {
            Action::CreateDir => Outcome::CreatedDir,
            Action::MergeDir => Outcome::MergedDir,
            Action::CopyFile | Action::CreateLink => Outcome::Copied,
            Action::Identical { .. } => Outcome::Identical,
            Action::Conflict { .. } => Outcome::Conflict,
            Action::Skip => Outcome::Skipped,
        }
    }

    fn report(
        &self,
        dry_run: bool,
        manifest: Option<ManifestPaths>,
        manifest_entries: u64,
    ) -> Report {
        let mut summary = Summary {
            destination_only: self.destination_only.len() as u64,
            manifest_entries,
            ..Summary::default()
        };
        let mut items = Vec::with_capacity(self.entries.len());
        for planned in &self.entries {
            let outcome = self.outcome(planned);
            let written =
                outcome == Outcome::Copied || (outcome == Outcome::Conflict && self.overwrites());
            match (outcome, planned.node.kind) {
                (Outcome::Identical, _) => summary.identical += 1,
                (Outcome::CreatedDir, _) => summary.dirs_created += 1,
                (Outcome::Conflict, _) => summary.conflicts += 1,
                (Outcome::Skipped, _) => summary.skipped += 1,
                _ => {}
            }
            if planned.node.kind == EntryKind::File && planned.node.nlink > 1 {
                summary.hard_linked_files += 1;
            }
            if written {
                match planned.node.kind {
                    EntryKind::File => {
                        summary.files_copied += 1;
                        summary.bytes_copied += planned.node.size;
                    }
                    EntryKind::Symlink => summary.links_copied += 1,
                    EntryKind::Dir => {}
                }
            }
            items.push(ReportItem {
                path: planned.node.rel.clone(),
                kind: planned.node.kind,
                outcome,
            });
        }
        if !dry_run {
            summary.temp_leftovers_removed = self.temp_leftovers.len() as u64;
        }
        Report {
            src: self.src.clone(),
            dst: self.dst.clone(),
            dry_run,
            summary,
            items,
            conflicts: self.conflicts(),
            temp_leftovers: self.temp_leftovers.clone(),
            manifest,
            elapsed_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Paths present only in the destination (left untouched, recorded with origin `destination`).
    pub fn destination_only(&self) -> impl Iterator<Item = &str> {
        self.destination_only.iter().map(|n| n.rel.as_str())
    }

    /// The report of what `execute` would do.
    pub fn dry_run_report(&self) -> Report {
        self.report(true, None, 0)
    }

    fn manifest_paths(&self) -> ManifestPaths {
        self.options
            .manifest
            .clone()
            .unwrap_or_else(|| ManifestPaths::beside(&self.dst))
    }

    /// Writes the destination: temp leftovers removed, directories, files (in parallel), links,
    /// directory metadata, one sync, then the manifest as the record that the copy is complete.
    pub fn execute(self, progress: &dyn Progress) -> Result<Report, FsError> {
        let conflicts = self.conflicts();
        if self.options.conflicts == ConflictPolicy::Fail && !conflicts.is_empty() {
            return Err(FsError::Conflicts {
                dst: self.dst.clone(),
                first: conflicts[0].path.clone(),
                paths: conflicts.into_iter().map(|c| c.path).collect(),
            });
        }
        let manifest_paths = self.manifest_paths();
        // A manifest from an earlier run must not outlive a failure of this one. It also says
        // that run finished, its sync included.
        let earlier_synced = manifest_paths.remove_stale()? && self.temp_leftovers.is_empty();
        self.remove_temp_leftovers()?;
        if !self.dst_exists {
            fs::create_dir_all(&self.dst).map_err(FsError::io("creating", &self.dst))?;
        }
        self.create_dirs()?;
        // Again after a finished run, few written files are fsynced each: no `syncfs` needed.
        let written = self.entries.iter().filter(|p| self.is_written_file(p));
        let fsync_each =
            self.options.fsync_each_file || (earlier_synced && written.count() <= FSYNC_EACH_UP_TO);
        let sums = self.copy_files(fsync_each, progress)?;
        self.copy_links()?;
        self.finish_dirs()?;
        progress.start(Phase::Syncing, 0, 0);
        self.sync(earlier_synced && fsync_each)?;
        progress.finish(Phase::Syncing);
        let manifest = self.build_manifest(sums, progress)?;
        manifest.write(&manifest_paths)?;
        let entries = manifest.entries.len() as u64;
        let report = self.report(false, Some(manifest_paths), entries);
        log_outcome(&report);
        Ok(report)
    }

    fn remove_temp_leftovers(&self) -> Result<(), FsError> {
        for rel in &self.temp_leftovers {
            let path = self.dst.join(rel);
            let meta = fs::symlink_metadata(&path).map_err(FsError::io("reading", &path))?;
            let removed = if meta.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            removed.map_err(FsError::io("removing temp leftover", &path))?;
        }
        Ok(())
    }

    fn create_dirs(&self) -> Result<(), FsError> {
        for planned in self
            .entries
            .iter()
            .filter(|p| p.action == Action::CreateDir)
        {
            let path = self.dst.join(&planned.node.rel);
            fs::create_dir(&path).map_err(FsError::io("creating directory", &path))?;
        }
        Ok(())
    }

    fn is_written_file(&self, planned: &Planned) -> bool {
        planned.node.kind == EntryKind::File
            && match planned.action {
                Action::CopyFile => true,
                Action::Conflict { .. } => self.overwrites(),
                _ => false,
            }
    }

    fn copy_settings(&self, fsync_each: bool) -> CopySettings {
        CopySettings {
            method: self.options.copy_method,
            fsync_each,
            preserve_owner: copy::running_as_root(),
        }
    }

    /// Copies every file to write, returning the SHA-256 of each by entry index.
    fn copy_files(
        &self,
        fsync_each: bool,
        progress: &dyn Progress,
    ) -> Result<HashMap<usize, String>, FsError> {
        let jobs: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.is_written_file(&self.entries[i]))
            .collect();
        let bytes = jobs.iter().map(|&i| self.entries[i].node.size).sum();
        progress.start(Phase::Copying, jobs.len() as u64, bytes);
        let settings = self.copy_settings(fsync_each);
        let sums = parallel_map(&jobs, self.workers, |&i| {
            let planned = &self.entries[i];
            let src = self.src.join(&planned.node.rel);
            let sum = copy::copy_file(
                &src,
                &self.dst.join(&planned.node.rel),
                &planned.node,
                settings,
                progress,
            )?;
            if let Action::Conflict {
                src_sha256: Some(planned_sum),
                ..
            } = &planned.action
                && *planned_sum != sum
            {
                return Err(FsError::SourceChanged {
                    path: src,
                    detail: "content differs from when it was compared".into(),
                });
            }
            Ok((i, sum))
        })?;
        progress.finish(Phase::Copying);
        Ok(sums.into_iter().collect())
    }

    fn copy_links(&self) -> Result<(), FsError> {
        let preserve_owner = copy::running_as_root();
        for planned in &self.entries {
            let write = match planned.action {
                Action::CreateLink => true,
                Action::Conflict { .. } => {
                    self.overwrites() && planned.node.kind == EntryKind::Symlink
                }
                _ => false,
            };
            if write {
                copy::copy_symlink(
                    &self.dst.join(&planned.node.rel),
                    &planned.node,
                    preserve_owner,
                )?;
            }
        }
        Ok(())
    }

    /// Post-order, so writing a child never disturbs its parent's restored mtime.
    fn finish_dirs(&self) -> Result<(), FsError> {
        let preserve_owner = copy::running_as_root();
        for planned in self.entries.iter().rev() {
            if matches!(planned.action, Action::CreateDir | Action::MergeDir) {
                copy::finish_dir(
                    &self.dst.join(&planned.node.rel),
                    &planned.node,
                    preserve_owner,
                )?;
            }
        }
        if !self.dst_exists {
            copy::finish_dir(&self.dst, &self.root_node, preserve_owner)?;
        }
        Ok(())
    }

    /// One `syncfs` for all file data, then each directory we wrote into, then the root's parent.
    /// `synced_each` (the earlier run synced, each file written now was fsynced): no `syncfs`
    /// and only directories that gained an entry, not the whole filesystem (a database server's
    /// dirty pages among them) nor every directory of the tree.
    fn sync(&self, synced_each: bool) -> Result<(), FsError> {
        if !synced_each {
            let root = File::open(&self.dst).map_err(FsError::io("opening", &self.dst))?;
            rustix::fs::syncfs(&root)
                .map_err(|err| FsError::io("syncing filesystem of", &self.dst)(err.into()))?;
        }
        // Parents of what may have been created or replaced (a kept conflict too: harmless).
        let gained: HashSet<&str> = self
            .entries
            .iter()
            .filter(|p| {
                !matches!(
                    p.action,
                    Action::MergeDir | Action::Identical { .. } | Action::Skip
                )
            })
            .map(|p| p.node.rel.rsplit_once('/').map_or("", |(dir, _)| dir))
            .collect();
        for planned in &self.entries {
            let synced = match planned.action {
                Action::CreateDir => true,
                Action::MergeDir => !synced_each || gained.contains(planned.node.rel.as_str()),
                _ => false,
            };
            if synced {
                sync_dir(&self.dst.join(&planned.node.rel))?;
            }
        }
        sync_dir(&self.dst)?;
        sync_dir(crate::manifest::parent_dir(&self.dst))
    }

    /// The destination as it now stands: `lstat` of every entry, hashes from the copy or the
    /// comparison, and fresh hashes for files we did not read yet (destination-only, kept).
    fn build_manifest(
        &self,
        sums: HashMap<usize, String>,
        progress: &dyn Progress,
    ) -> Result<Manifest, FsError> {
        let mut entries = Vec::with_capacity(self.entries.len() + self.destination_only.len());
        for (i, planned) in self.entries.iter().enumerate() {
            let (sha256, origin) = match &planned.action {
                Action::Skip => continue,
                Action::Identical { sha256 } => (sha256.clone(), Origin::Source),
                Action::Conflict { .. } if self.overwrites() => {
                    (sums.get(&i).cloned(), Origin::Source)
                }
                Action::Conflict { dst_sha256, .. } => (dst_sha256.clone(), Origin::Kept),
                _ => (sums.get(&i).cloned(), Origin::Source),
            };
            entries.push(self.landed(&planned.node.rel, sha256, origin)?);
        }
        for node in &self.destination_only {
            entries.push(self.landed(&node.rel, None, Origin::Destination)?);
        }
        let unhashed: Vec<usize> = (0..entries.len())
            .filter(|&i| entries[i].kind == EntryKind::File && entries[i].sha256.is_none())
            .collect();
        let bytes = unhashed.iter().map(|&i| entries[i].size).sum();
        progress.start(Phase::Hashing, unhashed.len() as u64, bytes);
        let hashed = parallel_map(&unhashed, self.workers, |&i| {
            let path = self.dst.join(&entries[i].path);
            let (sum, _) = copy::hash_file(&path, progress)?;
            progress.file_done(&path);
            Ok::<_, FsError>(sum)
        })?;
        progress.finish(Phase::Hashing);
        for (i, sum) in unhashed.into_iter().zip(hashed) {
            entries[i].sha256 = Some(sum);
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Manifest { entries })
    }

    fn landed(
        &self,
        rel: &str,
        sha256: Option<String>,
        origin: Origin,
    ) -> Result<ManifestEntry, FsError> {
        let path = self.dst.join(rel);
        let meta = fs::symlink_metadata(&path).map_err(FsError::io("reading", &path))?;
        let node = Node::from_metadata(rel.to_owned(), &path, &meta)?;
        let sha256 = if node.kind == EntryKind::File {
            sha256
        } else {
            None
        };
        Ok(ManifestEntry::new(node, sha256, origin))
    }
}

fn log_outcome(report: &Report) {
    for conflict in &report.conflicts {
        tracing::warn!(path = %conflict.path, resolution = ?conflict.resolution, "conflict");
    }
    if report.summary.hard_linked_files > 0 {
        tracing::warn!(
            files = report.summary.hard_linked_files,
            "hard-linked source files were copied as separate files"
        );
    }
    tracing::info!(
        src = %report.src.display(),
        dst = %report.dst.display(),
        files = report.summary.files_copied,
        bytes = report.summary.bytes_copied,
        identical = report.summary.identical,
        conflicts = report.summary.conflicts,
        elapsed_ms = report.elapsed_ms,
        "replicated"
    );
}

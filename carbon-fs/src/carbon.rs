//! The Carbon-aware entry point: what the upgrade guide says to copy between two product homes.
//!
//! `repository/deployment/server` (super-tenant artifacts) always, the tenants directory when it
//! holds anything; `repository/conf` never (configuration is re-applied to the new product, not
//! copied). Where each home keeps its tenants (`tenants.dir.path`, `CARBON_TENANTS_DIR_PATH`) is
//! not decided here: callers pass the answer of `carbon_config::home::tenants_dir`.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::replicate::{Plan, plan};
use crate::{FsError, ManifestPaths, Progress, ReplicateOptions, Report};

/// Super-tenant artifacts, relative to a product home.
pub const DEPLOYMENT_SERVER: &str = "repository/deployment/server";
/// Default tenants directory, relative to a product home.
pub(crate) const TENANTS: &str = "repository/tenants";
/// Never copied.
pub(crate) const CONF: &str = "repository/conf";

/// Options for [`replicate_carbon_home`].
#[derive(Debug, Clone, Default)]
pub struct CarbonHomeOptions {
    /// Applied to each part; its `manifest` field is ignored (see `manifest_dir`).
    pub replicate: ReplicateOptions,
    /// The old home's tenants directory as `carbon_config::home::tenants_dir` answers it
    /// (relative paths: to the old home); `None`: `repository/tenants`.
    pub old_tenants_dir: Option<PathBuf>,
    /// The new home's, likewise.
    pub new_tenants_dir: Option<PathBuf>,
    /// Where to write `<part>.manifest.jsonl` and `<part>.SHA256SUMS`; `None` puts each beside its destination.
    pub manifest_dir: Option<PathBuf>,
}

/// One directory to replicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// `deployment-server` or `tenants`.
    pub name: String,
    pub src: PathBuf,
    pub dst: PathBuf,
}

/// A part left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedPart {
    pub name: String,
    pub path: PathBuf,
    pub reason: String,
}

/// One report per replicated part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarbonReport {
    pub parts: Vec<(Part, Report)>,
    pub skipped: Vec<SkippedPart>,
}

impl CarbonReport {
    pub fn conflicts(&self) -> usize {
        self.parts.iter().map(|(_, r)| r.conflicts.len()).sum()
    }
}

/// The given tenants directory (relative to `home` when relative) or `repository/tenants`.
fn tenants_dir(home: &Path, given: Option<&Path>) -> PathBuf {
    home.join(given.unwrap_or(Path::new(TENANTS)))
}

/// The directories the guide says to copy, and those left out with a reason. Reads only.
pub(crate) fn carbon_parts(
    old_home: &Path,
    new_home: &Path,
    options: &CarbonHomeOptions,
) -> Result<(Vec<Part>, Vec<SkippedPart>), FsError> {
    let mut parts = vec![Part {
        name: "deployment-server".into(),
        src: old_home.join(DEPLOYMENT_SERVER),
        dst: new_home.join(DEPLOYMENT_SERVER),
    }];
    let mut skipped = Vec::new();
    let src = tenants_dir(old_home, options.old_tenants_dir.as_deref());
    let dst = tenants_dir(new_home, options.new_tenants_dir.as_deref());
    match tenants_state(&src, &dst)? {
        None => parts.push(Part {
            name: "tenants".into(),
            src,
            dst,
        }),
        Some(reason) => skipped.push(SkippedPart {
            name: "tenants".into(),
            path: src,
            reason: reason.into(),
        }),
    }
    for part in &parts {
        refuse_configuration(old_home, &part.src)?;
        refuse_configuration(new_home, &part.dst)?;
    }
    Ok((parts, skipped))
}

/// `Some(reason)` when the tenants directory has nothing to copy.
fn tenants_state(src: &Path, dst: &Path) -> Result<Option<&'static str>, FsError> {
    let mut entries = match fs::read_dir(src) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Some("absent: no tenant was ever loaded"));
        }
        Err(err) => return Err(FsError::io("reading", src)(err)),
    };
    if entries.next().is_none() {
        return Ok(Some("empty: no tenant was ever loaded"));
    }
    let same = match (fs::canonicalize(src), fs::canonicalize(dst)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    Ok(same.then_some("shared: both servers use the same tenants directory"))
}

fn refuse_configuration(home: &Path, path: &Path) -> Result<(), FsError> {
    let conf = home.join(CONF);
    let real = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (conf, path_real) = (real(&conf), real(path));
    if path_real.starts_with(&conf) || conf.starts_with(&path_real) {
        return Err(FsError::ConfigurationDirectory {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Replicates `deployment/server` and, when used, the tenants directory from `old_home` into
/// `new_home`. Every part is planned before anything is written, so `ConflictPolicy::Fail`
/// stops the whole step untouched; a dry run returns the plans' reports.
pub fn replicate_carbon_home(
    old_home: &Path,
    new_home: &Path,
    options: &CarbonHomeOptions,
    progress: &dyn Progress,
) -> Result<CarbonReport, FsError> {
    let (parts, skipped) = carbon_parts(old_home, new_home, options)?;
    let mut plans: Vec<(Part, Plan)> = Vec::new();
    for part in parts {
        let mut part_options = options.replicate.clone();
        part_options.manifest = Some(match &options.manifest_dir {
            Some(dir) => {
                ManifestPaths::from_jsonl(dir.join(format!("{}.manifest.jsonl", part.name)))
            }
            None => ManifestPaths::beside(&part.dst),
        });
        let plan = plan(&part.src, &part.dst, &part_options, progress)?;
        plans.push((part, plan));
    }
    let conflicting = plans.iter().find(|(_, p)| !p.conflicts().is_empty());
    if options.replicate.conflicts == crate::ConflictPolicy::Fail
        && let Some((part, _)) = conflicting
    {
        let paths: Vec<String> = plans
            .iter()
            .flat_map(|(_, p)| p.conflicts())
            .map(|c| c.path)
            .collect();
        return Err(FsError::Conflicts {
            dst: part.dst.clone(),
            first: paths[0].clone(),
            paths,
        });
    }
    let mut reports = Vec::new();
    for (part, plan) in plans {
        let report = if options.replicate.dry_run {
            plan.dry_run_report()
        } else {
            plan.execute(progress)?
        };
        reports.push((part, report));
    }
    Ok(CarbonReport {
        parts: reports,
        skipped,
    })
}

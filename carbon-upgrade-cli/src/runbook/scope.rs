//! A cluster's run in two parts: the databases once (`--scope databases`), then every node
//! (`--scope node --databases FILE`). `--scope all` is the whole run on one machine.
//!
//! The database scope runs the sources' preflight, their backups and the copy + verify of every
//! datasource on a database server, then writes `databases.json` into its state directory: the
//! staging URL of each datasource, no secret. A node reads that file instead of deciding staging
//! itself, and does everything else: its own preflight (its servers stopped), its home backup,
//! its embedded databases (H2/SQLite files live in each node's home), connect, carry-over,
//! replicate, connect-userstores, verify-home, its own report. Each scope keeps its own journal
//! and report in the state directory, so one host can run both and `resume` either.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use carbon_config::jdbc::JdbcUrl;
use carbon_db::{DbUrl, Vendor};
use serde::{Deserialize, Serialize};

use super::datasources::Pair;
use super::step::Step;

/// Which part of the run this invocation performs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Everything, on one machine (the default).
    #[default]
    All,
    /// Once per cluster: sources' preflight, database backups, copy + verify to staging.
    Databases,
    /// On each node: its preflight, home backup, connect, carry-over, replicate, verify.
    Node,
}

/// The file the database scope writes into its state directory.
pub const DATABASES_FILE: &str = "databases.json";
/// `format` of [`DatabasesFile`]; `version` changes when its meaning does.
pub const DATABASES_FORMAT: &str = "carbon-upgrade/databases";
pub const DATABASES_VERSION: u32 = 1;

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::All => "all",
            Scope::Databases => "databases",
            Scope::Node => "node",
        }
    }

    /// The journal of this scope in the state directory (`all` keeps the historical name).
    pub fn journal_file(self) -> &'static str {
        match self {
            Scope::All => super::journal::FILE_NAME,
            Scope::Databases => "journal-databases.jsonl",
            Scope::Node => "journal-node.jsonl",
        }
    }

    /// The report's file stem (`report.json` / `report.md` for `all`).
    pub fn report_stem(self) -> &'static str {
        match self {
            Scope::All => "report",
            Scope::Databases => "report-databases",
            Scope::Node => "report-node",
        }
    }

    /// Whether this scope performs `step`. A step on a database on a server (backup, copy,
    /// migrate, schema proof: every step that names a datasource) belongs to the database
    /// scope; on an embedded one (a file in the home) to its node; every other step to the
    /// node, and each scope has its own preflight.
    pub fn includes(self, step: &Step, pairs: &[Pair]) -> bool {
        let embedded = |name: &str| pairs.iter().any(|p| p.name == name && p.embedded);
        match self {
            Scope::All => true,
            Scope::Databases => {
                *step == Step::Preflight || step.datasource().is_some_and(|ds| !embedded(ds))
            }
            Scope::Node => step.datasource().is_none_or(embedded),
        }
    }
}

/// What the database scope hands to every node: where each datasource's staging is. No
/// password, and no URL holding one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabasesFile {
    pub format: String,
    pub version: u32,
    /// The database scope's run.
    pub run_id: String,
    pub databases: Vec<StagedDatabase>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StagedDatabase {
    pub datasource: String,
    pub also_used_by: Vec<String>,
    pub vendor: Vendor,
    /// The source, redacted (a node checks that its datasource names the same database).
    pub source: String,
    /// The JDBC URL a node's datasource is pointed at.
    pub staging_jdbc: String,
    pub staging_username: Option<String>,
}

/// The database scope's result file, written by [`DatabasesFile::write`].
pub fn databases_path(state_dir: &Path) -> PathBuf {
    state_dir.join(DATABASES_FILE)
}

impl DatabasesFile {
    /// The staged databases of `pairs` (embedded ones stay with their nodes).
    pub fn of(run_id: &str, pairs: &[Pair]) -> Result<DatabasesFile> {
        let mut databases = Vec::new();
        for pair in pairs.iter().filter(|p| !p.embedded) {
            let jdbc = pair.staging_jdbc.as_str();
            if jdbc != pair.staging_jdbc.redacted() {
                bail!(
                    "the staging URL of {} holds a credential ({}): give it with staging_password_env, not in the URL",
                    pair.name,
                    pair.staging_jdbc.redacted()
                );
            }
            databases.push(StagedDatabase {
                datasource: pair.name.clone(),
                also_used_by: pair.also_used_by.clone(),
                vendor: pair.vendor,
                source: pair.source.to_string(),
                staging_jdbc: jdbc,
                staging_username: pair.staging_username.clone(),
            });
        }
        Ok(DatabasesFile {
            format: DATABASES_FORMAT.into(),
            version: DATABASES_VERSION,
            run_id: run_id.into(),
            databases,
        })
    }

    /// Atomically into `state_dir/databases.json`.
    pub fn write(&self, state_dir: &Path) -> Result<PathBuf> {
        let path = databases_path(state_dir);
        let mut json = serde_json::to_vec_pretty(self).context("encoding databases.json")?;
        json.push(b'\n');
        carbon_fs::write_atomic(&path, &json, None)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    pub fn read(path: &Path) -> Result<DatabasesFile> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let file: DatabasesFile = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{}: not a databases file of carbon-upgrade run --scope databases",
                path.display()
            )
        })?;
        if file.format != DATABASES_FORMAT || file.version != DATABASES_VERSION {
            bail!(
                "{}: format {} version {}; this carbon-upgrade reads {DATABASES_FORMAT} version {DATABASES_VERSION}",
                path.display(),
                file.format,
                file.version
            );
        }
        Ok(file)
    }

    /// Points every database pair of a node at the staging the database scope made. A pair
    /// the file does not name, or names with another source, is refused: that node's home
    /// uses a database the database scope did not copy.
    pub fn apply(&self, pairs: &mut [Pair], path: &Path) -> Result<()> {
        for pair in pairs.iter_mut().filter(|p| !p.embedded) {
            let names: Vec<&String> = std::iter::once(&pair.name)
                .chain(&pair.also_used_by)
                .collect();
            let Some(staged) = self.databases.iter().find(|d| {
                std::iter::once(&d.datasource)
                    .chain(&d.also_used_by)
                    .any(|n| names.contains(&n))
            }) else {
                bail!(
                    "{}: no datasource {}: the database scope did not copy {} (run it with a home that defines it)",
                    path.display(),
                    pair.name,
                    pair.source
                );
            };
            if staged.source != pair.source.to_string() {
                bail!(
                    "{}: {} was copied from {}, but this node's {} uses {}",
                    path.display(),
                    staged.datasource,
                    staged.source,
                    pair.name,
                    pair.source
                );
            }
            let jdbc = JdbcUrl::parse(&staged.staging_jdbc)
                .with_context(|| format!("{}: {}", path.display(), staged.datasource))?;
            let username = pair
                .staging_username
                .clone()
                .or_else(|| staged.staging_username.clone());
            let password = pair
                .staging_password
                .as_ref()
                .and_then(|s| s.plain().map(str::to_owned));
            pair.staging = DbUrl::from_jdbc(&jdbc, None)
                .with_context(|| format!("{}: {}", path.display(), staged.datasource))?
                .with_credentials(username.clone(), password);
            pair.staging_jdbc = jdbc;
            pair.staging_username = username;
        }
        Ok(())
    }
}

/// The node scope's replicate step when this node's `deployment/server` is the same directory
/// (device and inode) as another node's, which replicated it already: `from` holds that
/// node's `manifests/deployment-server.manifest.jsonl` and its `userstore-edits.json`. The
/// shared directory is not written again; it is verified against that manifest (a difference
/// is accepted only for a user-store file that node's connect-userstores recorded editing,
/// with exactly the recorded result), and the report says so. The tenants are replicated.
pub(crate) fn replicate_shared(
    settings: &super::Settings,
    homes: &super::Homes,
    from: &Path,
    manifest_dir: &Path,
    progress: &dyn carbon_fs::Progress,
) -> Result<super::results::ReplicateResult> {
    use std::os::unix::fs::MetadataExt;

    use super::results::{ReplicateResult, ReplicatedPart};
    use super::userstores;

    std::fs::create_dir_all(manifest_dir)
        .with_context(|| format!("creating {}", manifest_dir.display()))?;
    let dst = settings.new_home.join(carbon_fs::DEPLOYMENT_SERVER);
    let real = dst
        .canonicalize()
        .with_context(|| format!("resolving {}", dst.display()))?;
    let meta = std::fs::metadata(&real).with_context(|| format!("reading {}", real.display()))?;
    let manifest = from.join("manifests/deployment-server.manifest.jsonl");
    if !manifest.is_file() {
        bail!(
            "{} is missing: the node that replicates the shared {} has not finished its replicate step",
            manifest.display(),
            real.display()
        );
    }
    let edits = userstores::Record::read(from)?.unwrap_or_default();
    let report = carbon_fs::verify(&real, &manifest)
        .with_context(|| format!("verifying {}", real.display()))?;
    let (edited, problems): (Vec<_>, Vec<_>) = report
        .problems()
        .partition(|item| userstores::is_recorded_edit(&real, item, &edits));
    if !problems.is_empty() {
        let paths: Vec<String> = problems
            .iter()
            .map(|i| format!("{} {}", i.mark, i.path))
            .collect();
        bail!(crate::UpgradeError::VerifyHomeFailed {
            findings: format!(
                "the shared {} does not match {}: {} ({})",
                real.display(),
                manifest.display(),
                report.summary_line(),
                paths.join(", ")
            )
        });
    }
    let mut skipped = vec![carbon_fs::SkippedPart {
        name: "deployment-server".into(),
        path: dst.clone(),
        reason: format!(
            "shared with another node (device {}, inode {}): replicated there once; verified here against {}: {}, {} user-store file(s) edited by that node's connect-userstores",
            meta.dev(),
            meta.ino(),
            manifest.display(),
            report.summary_line(),
            edited.len()
        ),
    }];
    let mut parts = Vec::new();
    let src = homes.old.tenants_dir.clone();
    let tenants = homes.new.tenants_dir.clone();
    let has_entries = std::fs::read_dir(&src).is_ok_and(|mut e| e.next().is_some());
    let same = src
        .canonicalize()
        .ok()
        .zip(tenants.canonicalize().ok())
        .is_some_and(|(a, b)| a == b);
    if has_entries && !same {
        let options = carbon_fs::ReplicateOptions {
            manifest: Some(carbon_fs::ManifestPaths::from_jsonl(
                manifest_dir.join("tenants.manifest.jsonl"),
            )),
            ..carbon_fs::ReplicateOptions::default()
        };
        let r = carbon_fs::replicate_with(&src, &tenants, &options, progress)
            .context("replicating tenants")?;
        parts.push(ReplicatedPart {
            name: "tenants".into(),
            src,
            dst: tenants,
            summary: r.summary,
            conflicts: r.conflicts,
            manifest: r.manifest,
        });
    } else {
        skipped.push(carbon_fs::SkippedPart {
            name: "tenants".into(),
            path: src,
            reason: if same {
                "shared: both servers use the same tenants directory".into()
            } else {
                "absent or empty: no tenant was ever loaded".into()
            },
        });
    }
    Ok(ReplicateResult { parts, skipped })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_scope_has_its_own_journal_and_report() {
        let scopes = [Scope::All, Scope::Databases, Scope::Node];
        for (i, a) in scopes.iter().enumerate() {
            for b in &scopes[i + 1..] {
                assert_ne!(a.journal_file(), b.journal_file());
                assert_ne!(a.report_stem(), b.report_stem());
            }
        }
        assert_eq!(Scope::All.journal_file(), "journal.jsonl");
        assert_eq!(Scope::All.report_stem(), "report");
    }

    #[test]
    fn the_scopes_split_the_steps_without_overlap() {
        let steps = [
            Step::Preflight,
            Step::BackupHome,
            Step::Connect,
            Step::CarryOver,
            Step::Replicate,
            Step::ConnectUserstores,
            Step::Start,
            Step::VerifyHome,
            Step::VerifyServer,
        ];
        for step in &steps {
            assert!(Scope::All.includes(step, &[]));
            let databases = Scope::Databases.includes(step, &[]);
            let node = Scope::Node.includes(step, &[]);
            // Preflight is in both (each checks its own part); every other step in one.
            assert!(node, "{step}");
            assert_eq!(databases, *step == Step::Preflight, "{step}");
        }
        // Without pairs a datasource counts as on a server: the database scope's.
        for step in [
            Step::BackupDb("WSO2_CARBON_DB".into()),
            Step::Copy("WSO2_CARBON_DB".into()),
            Step::Migrate("WSO2_CARBON_DB".into()),
            Step::SchemaProof("WSO2_CARBON_DB".into()),
        ] {
            assert!(Scope::Databases.includes(&step, &[]), "{step}");
            assert!(!Scope::Node.includes(&step, &[]), "{step}");
        }
    }

    #[test]
    fn a_databases_file_of_another_version_is_refused_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DATABASES_FILE);
        std::fs::write(
            &path,
            r#"{"format":"carbon-upgrade/databases","version":2,"run_id":"r","databases":[]}"#,
        )
        .unwrap();
        let message = format!("{:#}", DatabasesFile::read(&path).unwrap_err());
        assert!(message.contains("version 2"), "{message}");
        assert!(message.contains("version 1"), "{message}");
    }
}

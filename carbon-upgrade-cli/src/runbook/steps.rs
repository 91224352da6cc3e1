//! The run: each step performed by a library, journalled before and after, skipped on resume
//! once it has completed. A failing step stops the run and says so in journal and report.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use carbon_config::carry::{CarryOver, carry_over};
use carbon_config::connect::connect;
use carbon_config::home::ProductHome;
use carbon_fs::{CarbonHomeOptions, ManifestPaths};
use serde_json::{Value, json};

use super::datasources::Pair;
use super::journal::{Event, Journal, now_ms};
use super::plan::{applies, connect_targets};
use super::preflight;
use super::{Homes, Settings};

/// How the CLI shows a run's progress; the runbook itself prints nothing.
pub trait StepUi {
    fn started(&self, index: usize, total: usize, step: &str);
    fn finished(&self, step: &str, outcome: &str, elapsed: Duration);
    fn db_progress(&self) -> &dyn carbon_db::Progress;
    fn fs_progress(&self) -> &dyn carbon_fs::Progress;
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Start the new server after replication and wait for it (`bin/wso2server.sh start`).
    pub start: bool,
    pub start_timeout: Duration,
}

/// The steps of a run, in order.
pub fn names(pairs: &[Pair], live: bool) -> Vec<String> {
    let mut steps = vec!["preflight".to_owned(), "backup-home".to_owned()];
    steps.extend(pairs.iter().map(|p| format!("backup-db:{}", p.name)));
    steps.extend(pairs.iter().map(|p| format!("copy:{}", p.name)));
    steps.extend(["connect", "carry-over", "replicate"].map(str::to_owned));
    steps.push("verify-home".to_owned());
    if live {
        steps.push("verify-server".to_owned());
    }
    steps
}

pub struct Runner<'a> {
    pub settings: &'a Settings,
    pub homes: &'a Homes,
    pub pairs: &'a [Pair],
    pub options: RunOptions,
    pub ui: &'a dyn StepUi,
}

impl Runner<'_> {
    /// Runs every step not yet completed in `journal`. Returns the first failure.
    pub fn run(&self, journal: &mut Journal) -> Result<()> {
        let mut steps = names(self.pairs, self.settings.verify.is_some());
        if self.options.start {
            let at = steps
                .iter()
                .position(|s| s == "verify-home")
                .unwrap_or(steps.len());
            steps.insert(at, "start".to_owned());
        }
        let total = steps.len();
        for (index, step) in steps.iter().enumerate() {
            self.ui.started(index + 1, total, step);
            if journal.completed(step).is_some() {
                self.ui.finished(step, "already done", Duration::ZERO);
                continue;
            }
            let interrupted = was_started(journal, step);
            journal.append(Event::Started {
                step: step.clone(),
                at_ms: now_ms(),
            })?;
            let started = Instant::now();
            match self.step(step, interrupted) {
                Ok(detail) => {
                    journal.append(Event::Completed {
                        step: step.clone(),
                        at_ms: now_ms(),
                        detail,
                    })?;
                    self.ui.finished(step, "done", started.elapsed());
                }
                Err(err) => {
                    let error = format!("{err:#}");
                    journal.append(Event::Failed {
                        step: step.clone(),
                        at_ms: now_ms(),
                        error,
                    })?;
                    self.ui.finished(step, "FAILED", started.elapsed());
                    return Err(err.context(format!("step {step}")));
                }
            }
        }
        Ok(())
    }

    fn step(&self, step: &str, interrupted: bool) -> Result<Value> {
        let pair = |prefix: &str| {
            let name = step.strip_prefix(prefix).unwrap_or_default();
            self.pairs
                .iter()
                .find(|p| p.name == name)
                .with_context(|| format!("no datasource {name}"))
        };
        match step {
            "preflight" => self.preflight(),
            "backup-home" => self.backup_home(interrupted),
            "connect" => self.connect(),
            "carry-over" => self.carry_over(),
            "replicate" => self.replicate(),
            "start" => self.start(),
            "verify-home" => self.verify_home(),
            "verify-server" => self.verify_server(),
            s if s.starts_with("backup-db:") => self.backup_db(pair("backup-db:")?),
            s if s.starts_with("copy:") => self.copy(pair("copy:")?, interrupted),
            other => bail!("unknown step {other}"),
        }
    }

    fn preflight(&self) -> Result<Value> {
        let mut checks = vec![preflight::homes_exist(
            &self.settings.old_home,
            &self.settings.new_home,
        )];
        checks.extend(preflight::run(
            self.homes,
            self.pairs,
            &self.settings.backup_dir,
        ));
        let failed: Vec<String> = checks
            .iter()
            .filter(|c| c.status == preflight::Status::Fail)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect();
        if !failed.is_empty() {
            bail!("preflight failed: {}", failed.join("; "));
        }
        Ok(json!({ "checks": checks }))
    }

    fn backup_home(&self, interrupted: bool) -> Result<Value> {
        let dest = self.settings.backup_dir.join("home");
        if interrupted {
            // Our own partial backup from the attempt that was cut off: start it again.
            remove_partial_backup(&dest)?;
        }
        let mut report = self.backup_tree(&self.settings.old_home, &dest)?;
        // Tenants kept outside the old home (tenants.dir.path) are part of what is backed up.
        let real = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        let tenants = &self.homes.old.tenants_dir;
        if tenants.is_dir() && !real(tenants).starts_with(real(&self.settings.old_home)) {
            let dest = self.settings.backup_dir.join("tenants");
            if interrupted {
                remove_partial_backup(&dest)?;
            }
            report["tenants"] = self.backup_tree(tenants, &dest)?;
        }
        Ok(report)
    }

    fn backup_tree(&self, src: &Path, dest: &Path) -> Result<Value> {
        let report = carbon_fs::backup_home(src, dest, self.ui.fs_progress())
            .with_context(|| format!("backing up {}", src.display()))?;
        let manifest = ManifestPaths::beside(dest);
        Ok(json!({
            "path": dest,
            "files": report.copy.summary.files_copied,
            "bytes": report.copy.summary.bytes_copied,
            "manifest": manifest.sha256sums,
            "verified": report.verify.summary_line(),
        }))
    }

    fn backup_db(&self, pair: &Pair) -> Result<Value> {
        let dir = self.settings.backup_dir.join("databases");
        let files = carbon_db::backup::native_backup(&pair.source, &dir, &pair.slug())
            .with_context(|| format!("backing up {}", pair.source))?;
        Ok(json!({ "datasource": pair.name, "files": files }))
    }

    fn copy(&self, pair: &Pair, interrupted: bool) -> Result<Value> {
        let journal = self
            .settings
            .state_dir
            .join(format!("copy-{}.journal", pair.slug()));
        let options = carbon_db::CopyOptions {
            journal: Some(journal.clone()),
            ..carbon_db::CopyOptions::default()
        };
        if let Some(parent) = pair.staging.path().and_then(Path::parent) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let copy = || carbon_db::copy(&pair.source, &pair.staging, &options, self.ui.db_progress());
        let report = match copy() {
            Ok(report) => Ok(report),
            // Staging was empty when this run's preflight passed, so whatever an interrupted
            // attempt left there is ours: start it again from nothing.
            Err(first) if interrupted => {
                tracing::warn!(
                    "resuming the copy of {} failed ({}); copying it again",
                    pair.name,
                    carbon_db::error_chain(&first)
                );
                carbon_db::staging::reset(&pair.staging)
                    .with_context(|| format!("resetting {}", pair.staging))?;
                if journal.exists() {
                    std::fs::remove_file(&journal)
                        .with_context(|| format!("removing {}", journal.display()))?;
                }
                copy()
            }
            Err(err) => Err(err),
        }
        .with_context(|| format!("copying {} to {}", pair.source, pair.staging))?;
        if !report.is_ok() {
            let summary = report
                .verify
                .as_ref()
                .map(carbon_db::VerifyReport::summary)
                .unwrap_or_default();
            bail!(
                "staging {} differs from the source: {summary}",
                pair.staging
            );
        }
        Ok(json!({ "datasource": pair.name, "copy": report }))
    }

    /// Reads the new home again: an earlier step of this run may have changed it.
    fn fresh_homes(&self) -> Result<Homes> {
        Homes::open(self.settings)
    }

    fn connect(&self) -> Result<Value> {
        let homes = self.fresh_homes()?;
        let (targets, mut notices) = connect_targets(&homes, self.pairs);
        let plan = connect(&homes.new, &targets, Some(&homes.old))
            .context("planning the connection to staging")?;
        let diff = plan.unified_diff();
        let backups = plan.apply().context("editing the new home's datasources")?;
        notices.extend(plan.notices.iter().map(|n| n.message.clone()));
        Ok(json!({ "diff": diff, "backups": backups, "notices": notices }))
    }

    fn carry_over(&self) -> Result<Value> {
        let all = carry_over(&self.settings.old_home, &self.settings.new_home, None)
            .context("comparing the configurations")?;
        let review: Vec<_> = all
            .actionable()
            .filter(|i| !applies(i.kind) || i.edit.is_none())
            .cloned()
            .collect();
        let applied = CarryOver {
            files_compared: all.files_compared,
            three_way: all.three_way,
            items: all
                .items
                .iter()
                .filter(|i| applies(i.kind) && i.edit.is_some())
                .cloned()
                .collect(),
        };
        let mut diffs = String::new();
        for plan in applied.plans(&self.settings.new_home)? {
            diffs.push_str(&plan.unified_diff());
            carbon_config::apply(&plan)
                .with_context(|| format!("editing {}", plan.file().display()))?;
        }
        Ok(json!({ "applied": applied.items, "diff": diffs, "to_review": review }))
    }

    fn manifest_dir(&self) -> PathBuf {
        self.settings.state_dir.join("manifests")
    }

    fn replicate(&self) -> Result<Value> {
        let options = CarbonHomeOptions {
            manifest_dir: Some(self.manifest_dir()),
            ..self.fresh_homes()?.tenants_dirs()
        };
        std::fs::create_dir_all(self.manifest_dir())?;
        let report = carbon_fs::replicate_carbon_home(
            &self.settings.old_home,
            &self.settings.new_home,
            &options,
            self.ui.fs_progress(),
        )
        .context("replicating deployment/server and tenants")?;
        let parts: Vec<Value> = report
            .parts
            .iter()
            .map(|(part, r)| {
                json!({
                    "name": part.name, "src": part.src, "dst": part.dst, "summary": r.summary,
                    "conflicts": r.conflicts, "manifest": r.manifest,
                })
            })
            .collect();
        Ok(json!({ "parts": parts, "skipped": report.skipped }))
    }

    fn start(&self) -> Result<Value> {
        let script = self.settings.new_home.join("bin/wso2server.sh");
        let status = std::process::Command::new("sh")
            .arg(&script)
            .arg("start")
            .current_dir(&self.settings.new_home)
            .status()
            .with_context(|| format!("running {}", script.display()))?;
        if !status.success() {
            bail!("{} start failed ({status})", script.display());
        }
        let homes = self.fresh_homes()?;
        let port = homes.new.ports.effective_https().unwrap_or(9443);
        let port = u16::try_from(port).context("HTTPS port out of range")?;
        let log = self
            .settings
            .new_home
            .join("repository/logs/wso2carbon.log");
        let deadline = Instant::now() + self.options.start_timeout;
        loop {
            let started_line =
                std::fs::read_to_string(&log).is_ok_and(|l| l.contains("WSO2 Carbon started"));
            if started_line && !carbon_config::running::listening_ports(&[port]).is_empty() {
                return Ok(json!({ "https_port": port, "log": log }));
            }
            if Instant::now() > deadline {
                bail!(
                    "the new server did not start within {}s (port {port}, {})",
                    self.options.start_timeout.as_secs(),
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn verify_home(&self) -> Result<Value> {
        let new = ProductHome::open(&self.settings.new_home)?;
        let mut findings: Vec<String> = Vec::new();
        let mut trees = Vec::new();
        for entry in std::fs::read_dir(self.manifest_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = entry.path();
            if !path.to_string_lossy().ends_with(".manifest.jsonl") {
                continue;
            }
            let part = path
                .file_name()
                .map(|n| n.to_string_lossy().replace(".manifest.jsonl", ""))
                .unwrap_or_default();
            let dir = match part.as_str() {
                "tenants" => new.tenants_dir.clone(),
                _ => self.settings.new_home.join(carbon_fs::DEPLOYMENT_SERVER),
            };
            let report = carbon_fs::verify(&dir, &path)
                .with_context(|| format!("verifying {}", dir.display()))?;
            if !report.is_ok() {
                findings.push(format!("{}: {}", dir.display(), report.summary_line()));
            }
            trees.push(json!({ "dir": dir, "manifest": path, "result": report.summary_line() }));
        }
        for pair in self.pairs {
            for name in std::iter::once(&pair.name).chain(&pair.also_used_by) {
                let Some(ds) = new.datasource(name) else {
                    continue;
                };
                let url = ds.url.as_ref().map(|u| u.as_str()).unwrap_or_default();
                if url != pair.staging_jdbc.as_str() {
                    findings.push(format!(
                        "{name} in the new home does not point at staging {}",
                        pair.staging_jdbc.redacted()
                    ));
                }
            }
        }
        let offline = carbon_verify::verify_home(&self.offline_options(&new))
            .context("offline checks of the new home")?;
        findings.extend(
            offline
                .findings
                .iter()
                .filter(|f| f.severity == carbon_verify::Severity::Error)
                .map(|f| format!("{} {}: {}", f.check, f.object, f.message)),
        );
        if !findings.is_empty() {
            bail!("offline verification failed: {}", findings.join("; "));
        }
        Ok(
            json!({ "trees": trees, "datasources_point_at_staging": true, "findings": offline.findings }),
        )
    }

    /// The realm's database is checked against the pair that copied it.
    fn offline_options(&self, new: &ProductHome) -> carbon_verify::HomeOptions {
        let realm = new
            .user_mgt
            .datasource
            .as_deref()
            .and_then(|jndi| new.datasource_by_jndi(jndi))
            .map(|d| d.name.clone());
        let pair = self
            .pairs
            .iter()
            .find(|p| {
                realm
                    .as_ref()
                    .is_some_and(|r| *r == p.name || p.also_used_by.contains(r))
            })
            .or_else(|| self.pairs.first());
        carbon_verify::HomeOptions {
            home: self.settings.new_home.clone(),
            db: pair.map(|p| p.staging.clone()),
            old_db: pair.map(|p| p.source.clone()),
            old_home: Some(self.settings.old_home.clone()),
        }
    }

    fn verify_server(&self) -> Result<Value> {
        let Some(verify) = &self.settings.verify else {
            bail!("no [verify] section")
        };
        let password = super::datasources::env_secret(&verify.password_env)?;
        let mut options = carbon_verify::ServerOptions::new(
            &verify.server_url,
            &verify.username,
            carbon_verify::Password::new(password),
        );
        options.home = Some(self.settings.new_home.clone());
        let report = carbon_verify::verify_server(&options, &carbon_verify::NoProgress)
            .context("live tests against the new server")?;
        if !report.is_ok() {
            bail!("live tests failed: {}", report.summary());
        }
        Ok(json!({ "findings": report.findings }))
    }
}

fn was_started(journal: &Journal, step: &str) -> bool {
    journal
        .events
        .iter()
        .any(|e| matches!(e, Event::Started { step: s, .. } if s == step))
}

fn remove_partial_backup(dest: &Path) -> Result<()> {
    if dest.exists() {
        std::fs::remove_dir_all(dest)
            .with_context(|| format!("removing the partial backup {}", dest.display()))?;
    }
    let manifest = ManifestPaths::beside(dest);
    for file in [&manifest.jsonl, &manifest.sha256sums] {
        if file.exists() {
            std::fs::remove_file(file).with_context(|| format!("removing {}", file.display()))?;
        }
    }
    Ok(())
}

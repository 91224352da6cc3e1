//! The run: each step performed by a library, journalled before and after, skipped on resume
//! once it has completed. A failing step stops the run and says so in journal and report.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use carbon_config::carry::{CarryOver, carry_over};
use carbon_config::connect::{connect, user_stores};
use carbon_config::home::ProductHome;
use carbon_fs::{CarbonHomeOptions, ManifestPaths};

use super::datasources::{Pair, realm_pair};
use super::journal::{Event, Journal, now_ms};
use super::plan::{applies, connect_targets, store_targets};
use super::preflight;
use super::results::{
    BackupDbResult, BackupResult, CarryOverResult, ConnectResult, ConnectUserstoresResult,
    CopyResult, PreflightResult, ReplicateResult, ReplicatedPart, StartResult, StepResult,
    TreeResult, VerifyHomeResult, VerifyServerResult,
};
use super::step::Step;
use super::userstores;
use super::{Homes, Settings};
use crate::{StepFailed, UpgradeError};

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
    /// Fail verify-home on findings the old system already had, too.
    pub strict: bool,
    /// Which part of the run (see [`super::scope`]); the default is all of it.
    pub scope: super::scope::Scope,
    /// Node scope: this node's `deployment/server` is another node's too, which replicated it;
    /// its state files are here (see [`super::scope::replicate_shared`]).
    pub shared_deployment_from: Option<PathBuf>,
    /// Online mode (`online start`): the old servers keep running; each database is copied
    /// at a snapshot where following will start; migrations, start and live tests wait for
    /// the cut-over.
    pub online: Option<carbon_db::online::OnlineOptions>,
}

/// The steps of a run, in order.
pub(crate) fn names(settings: &Settings, pairs: &[Pair]) -> Vec<Step> {
    let live = settings.verify.is_some();
    let mut steps = vec![Step::Preflight, Step::BackupHome];
    steps.extend(pairs.iter().map(|p| Step::BackupDb(p.name.clone())));
    steps.extend(pairs.iter().map(|p| Step::Copy(p.name.clone())));
    steps.extend(
        pairs
            .iter()
            .filter(|p| super::migration::applies(settings, p))
            .map(|p| Step::Migrate(p.name.clone())),
    );
    steps.extend(
        pairs
            .iter()
            .filter(|p| super::schema_proof::applies(settings, p))
            .map(|p| Step::SchemaProof(p.name.clone())),
    );
    steps.extend([
        Step::Connect,
        Step::CarryOver,
        Step::Replicate,
        Step::ConnectUserstores,
        Step::VerifyHome,
    ]);
    if live {
        steps.push(Step::VerifyServer);
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

impl std::fmt::Debug for Runner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("settings", self.settings)
            .field("pairs", &self.pairs)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Runner<'_> {
    /// Runs every step not yet completed in `journal`. Returns the first failure.
    ///
    /// The databases' backups (`backup-db:*`) are off the critical path: the old databases
    /// are frozen and only read, by the backup and by the copy alike, so the backups run in
    /// one background thread while the following steps go on. Each is journalled started
    /// when it is handed over and completed (or failed) as soon as the foreground sees it
    /// finish; the run returns only after every backup has finished, so a run is never
    /// `completed` without them, and an interrupted one redoes a backup not journalled done.
    pub fn run(&self, journal: &mut Journal) -> Result<()> {
        let mut steps = names(self.settings, self.pairs);
        if self.options.start {
            let at = steps
                .iter()
                .position(|s| *s == Step::VerifyHome)
                .unwrap_or(steps.len());
            steps.insert(at, Step::Start);
        }
        steps.retain(|s| self.options.scope.includes(s, self.pairs));
        if self.options.online.is_some() {
            steps.retain(|s| {
                !matches!(
                    s,
                    Step::Migrate(_) | Step::SchemaProof(_) | Step::Start | Step::VerifyServer
                )
            });
        }
        let total = steps.len();
        let (done_tx, done_rx) =
            std::sync::mpsc::channel::<(Step, Instant, Result<BackupDbResult>)>();
        let (work_tx, work_rx) = std::sync::mpsc::channel::<(Step, &Pair)>();
        let mut pending: usize = 0;
        let outcome = std::thread::scope(|scope| {
            let backups_dir = self.settings.backup_dir.join("databases");
            scope.spawn(move || {
                for (step, pair) in work_rx {
                    let started = Instant::now();
                    let result = backup_db(&backups_dir, pair);
                    if done_tx.send((step, started, result)).is_err() {
                        return;
                    }
                }
            });
            let mut work_tx = Some(work_tx);
            let mut foreground = || -> Result<()> {
                for (index, step) in steps.iter().enumerate() {
                    self.record_backups(journal, &done_rx, &mut pending, false)?;
                    let name = step.to_string();
                    self.ui.started(index + 1, total, &name);
                    if journal.completed(step).is_some() {
                        self.ui.finished(&name, "already done", Duration::ZERO);
                        continue;
                    }
                    let interrupted = was_started(journal, step);
                    journal.append(Event::Started {
                        step: step.clone(),
                        at_ms: now_ms(),
                    })?;
                    if let (Step::BackupDb(ds), Some(tx)) = (step, &work_tx) {
                        let pair = self
                            .pairs
                            .iter()
                            .find(|p| &p.name == ds)
                            .with_context(|| format!("no datasource {ds}"))?;
                        tx.send((step.clone(), pair))
                            .map_err(|_| anyhow::anyhow!("the backup thread stopped"))?;
                        pending += 1;
                        self.ui
                            .finished(&name, "running in the background", Duration::ZERO);
                        continue;
                    }
                    let started = Instant::now();
                    match self.step(step, interrupted, journal) {
                        Ok(result) => {
                            journal.append(Event::Completed {
                                step: step.clone(),
                                at_ms: now_ms(),
                                detail: result.to_detail()?,
                            })?;
                            self.ui.finished(&name, "done", started.elapsed());
                        }
                        Err(err) => {
                            let error = format!("{err:#}");
                            journal.append(Event::Failed {
                                step: step.clone(),
                                at_ms: now_ms(),
                                error,
                            })?;
                            self.ui.finished(&name, "FAILED", started.elapsed());
                            return Err(err.context(StepFailed { step: step.clone() }));
                        }
                    }
                }
                Ok(())
            };
            let result = foreground();
            // No more backups; wait for those handed over, whatever the foreground's outcome.
            work_tx.take();
            let backups = self.record_backups(journal, &done_rx, &mut pending, true);
            result.and(backups)
        });
        outcome?;
        if self.options.scope == super::scope::Scope::Databases {
            super::scope::DatabasesFile::of(&journal.run_id, self.pairs)?
                .write(&self.settings.state_dir)?;
        }
        Ok(())
    }

    /// Journals the background backups that have finished (with `wait`, all of them);
    /// returns the first failure.
    fn record_backups(
        &self,
        journal: &mut Journal,
        done: &std::sync::mpsc::Receiver<(Step, Instant, Result<BackupDbResult>)>,
        pending: &mut usize,
        wait: bool,
    ) -> Result<()> {
        let mut first_error = None;
        while *pending > 0 {
            let next = if wait {
                done.recv().ok()
            } else {
                done.try_recv().ok()
            };
            let Some((step, started, result)) = next else {
                break;
            };
            *pending -= 1;
            let name = step.to_string();
            match result.and_then(|r| StepResult::BackupDb(r).to_detail()) {
                Ok(detail) => {
                    journal.append(Event::Completed {
                        step: step.clone(),
                        at_ms: now_ms(),
                        detail,
                    })?;
                    self.ui
                        .finished(&name, "done (background)", started.elapsed());
                }
                Err(err) => {
                    journal.append(Event::Failed {
                        step: step.clone(),
                        at_ms: now_ms(),
                        error: format!("{err:#}"),
                    })?;
                    self.ui.finished(&name, "FAILED", started.elapsed());
                    first_error.get_or_insert(err.context(StepFailed { step }));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn step(&self, step: &Step, interrupted: bool, journal: &mut Journal) -> Result<StepResult> {
        let pair = |name: &str| {
            self.pairs
                .iter()
                .find(|p| p.name == name)
                .with_context(|| format!("no datasource {name}"))
        };
        match step {
            Step::Preflight if self.options.online.is_some() => {
                self.preflight_online().map(StepResult::Preflight)
            }
            Step::Copy(name) if self.options.online.is_some() => self
                .copy_online(pair(name)?)
                .map(|c| StepResult::Copy(Box::new(c))),
            Step::Preflight => self.preflight().map(StepResult::Preflight),
            Step::BackupHome => self.backup_home(interrupted).map(StepResult::BackupHome),
            Step::BackupDb(name) => {
                backup_db(&self.settings.backup_dir.join("databases"), pair(name)?)
                    .map(StepResult::BackupDb)
            }
            Step::Copy(name) => self
                .copy(pair(name)?, journal)
                .map(|c| StepResult::Copy(Box::new(c))),
            Step::Migrate(name) => {
                super::migration::run(self.settings, pair(name)?).map(StepResult::Migrate)
            }
            Step::SchemaProof(name) => {
                super::schema_proof::run(self.settings, pair(name)?).map(StepResult::SchemaProof)
            }
            Step::Connect => self.connect().map(StepResult::Connect),
            Step::CarryOver => self.carry_over().map(StepResult::CarryOver),
            Step::Replicate => self.replicate().map(StepResult::Replicate),
            Step::ConnectUserstores => self
                .connect_userstores(interrupted)
                .map(StepResult::ConnectUserstores),
            Step::Start => self.start().map(StepResult::Start),
            Step::VerifyHome => self.verify_home().map(StepResult::VerifyHome),
            Step::VerifyServer => self.verify_server().map(StepResult::VerifyServer),
        }
    }

    fn preflight(&self) -> Result<PreflightResult> {
        let mut checks = vec![preflight::homes_exist(
            &self.settings.old_home,
            &self.settings.new_home,
        )];
        checks.extend(preflight::run_scope(
            self.options.scope,
            self.homes,
            self.pairs,
            &self.settings.backup_dir,
        ));
        passed(checks)
    }

    fn backup_home(&self, interrupted: bool) -> Result<BackupResult> {
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
            report.tenants = Some(Box::new(self.backup_tree(tenants, &dest)?));
        }
        Ok(report)
    }

    fn backup_tree(&self, src: &Path, dest: &Path) -> Result<BackupResult> {
        let report = carbon_fs::backup_home(src, dest, self.ui.fs_progress())
            .with_context(|| format!("backing up {}", src.display()))?;
        let manifest = ManifestPaths::beside(dest);
        Ok(BackupResult {
            path: dest.to_path_buf(),
            files: report.copy.summary.files_copied,
            bytes: report.copy.summary.bytes_copied,
            manifest: manifest.sha256sums,
            verified: report.verify.summary_line(),
            tenants: None,
        })
    }

    fn copy(&self, pair: &Pair, journal: &mut Journal) -> Result<CopyResult> {
        let copy_journal = self
            .settings
            .state_dir
            .join(format!("copy-{}.journal", pair.slug()));
        let options = carbon_db::CopyOptions {
            journal: Some(copy_journal.clone()),
            ..carbon_db::CopyOptions::default()
        };
        if let Some(parent) = pair.staging.path().and_then(Path::parent) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let claimed_before = journal.staging_claim(&pair.name);
        let claim = match claimed_before {
            Some(claim) => claim,
            None => claim_staging(pair, journal)?,
        };
        let copy = || carbon_db::copy(&pair.source, &pair.staging, &options, self.ui.db_progress());
        let report = match copy() {
            Ok(report) => Ok(report),
            // An earlier attempt of this run may have written there (a kill can even leave the
            // server finishing our CREATE DATABASE) and its copy cannot be resumed: the claim
            // recorded before that attempt allows a reset, which itself refuses anything the
            // source does not hold. A target that was not ours was never claimed: never reset.
            Err(first) if claimed_before.is_some() => {
                tracing::warn!(
                    "the copy of {} cannot be resumed ({}); resetting staging and copying again",
                    pair.name,
                    carbon_db::error_chain(&first)
                );
                carbon_db::staging::reset(&pair.source, &pair.staging, claim)
                    .with_context(|| format!("resetting {}", pair.staging))?;
                if copy_journal.exists() {
                    std::fs::remove_file(&copy_journal)
                        .with_context(|| format!("removing {}", copy_journal.display()))?;
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
            bail!(UpgradeError::CopyDiffers {
                staging: pair.staging.to_string(),
                summary,
            });
        }
        Ok(CopyResult {
            datasource: pair.name.clone(),
            copy: report,
        })
    }

    /// Reads the new home again: an earlier step of this run may have changed it.
    fn fresh_homes(&self) -> Result<Homes> {
        Homes::open(self.settings)
    }

    fn connect(&self) -> Result<ConnectResult> {
        let homes = self.fresh_homes()?;
        let (targets, mut notices) = connect_targets(&homes, self.pairs);
        let plan = connect(&homes.new, &targets, Some(&homes.old))
            .context("planning the connection to staging")?;
        let diff = plan.unified_diff();
        let backups = plan.apply().context("editing the new home's datasources")?;
        notices.extend(plan.notices.iter().map(|n| n.message.clone()));
        Ok(ConnectResult {
            diff,
            backups,
            notices,
        })
    }

    fn carry_over(&self) -> Result<CarryOverResult> {
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
        Ok(CarryOverResult {
            applied: applied.items,
            diff: diffs,
            to_review: review,
            files: Some(super::secrets::carry_files(self.settings)?),
        })
    }

    fn manifest_dir(&self) -> PathBuf {
        self.settings.state_dir.join("manifests")
    }

    pub(crate) fn replicate(&self) -> Result<ReplicateResult> {
        if let Some(from) = &self.options.shared_deployment_from {
            return super::scope::replicate_shared(
                self.settings,
                &self.fresh_homes()?,
                from,
                &self.manifest_dir(),
                self.ui.fs_progress(),
            );
        }
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
        let parts = report
            .parts
            .into_iter()
            .map(|(part, r)| ReplicatedPart {
                name: part.name,
                src: part.src,
                dst: part.dst,
                summary: r.summary,
                conflicts: r.conflicts,
                manifest: r.manifest,
            })
            .collect();
        Ok(ReplicateResult {
            parts,
            skipped: report.skipped,
        })
    }

    /// See [`userstores`]: recorded first, then applied; a resumed attempt keeps its record.
    fn connect_userstores(&self, interrupted: bool) -> Result<ConnectUserstoresResult> {
        let homes = self.fresh_homes()?;
        let plan = user_stores(&homes.old, &homes.new, &store_targets(self.pairs))
            .context("planning the user-store edits")?;
        let state = &self.settings.state_dir;
        let record = match userstores::Record::read(state)? {
            Some(record) if interrupted => record,
            _ => {
                let record = userstores::Record::of(&plan);
                record.write(state)?;
                record
            }
        };
        let applied = userstores::apply(&record, &plan)?;
        Ok(ConnectUserstoresResult {
            edits: record.edits,
            applied_now: applied,
            diff: record.diff,
            notices: record.notices,
        })
    }

    fn start(&self) -> Result<StartResult> {
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
                return Ok(StartResult {
                    https_port: port,
                    log,
                });
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

    fn verify_home(&self) -> Result<VerifyHomeResult> {
        let new = ProductHome::open(&self.settings.new_home)?;
        let mut findings: Vec<String> = Vec::new();
        let edits = userstores::Record::read(&self.settings.state_dir)?.unwrap_or_default();
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
            let (edited, problems): (Vec<_>, Vec<_>) = report
                .problems()
                .partition(|item| userstores::is_recorded_edit(&dir, item, &edits));
            if !problems.is_empty() {
                let paths: Vec<String> = problems
                    .iter()
                    .map(|i| format!("{} {}", i.mark, i.path))
                    .collect();
                findings.push(format!(
                    "{}: {} ({})",
                    dir.display(),
                    report.summary_line(),
                    paths.join(", ")
                ));
            }
            trees.push(TreeResult {
                dir,
                manifest: path,
                result: report.summary_line(),
                edited_by_connect_userstores: edited.iter().map(|i| i.path.clone()).collect(),
            });
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
        findings.extend(self.user_stores_on_old_databases(&new));
        let offline = carbon_verify::verify_home(&self.offline_options(&new))
            .context("offline checks of the new home")?;
        findings.extend(
            offline
                .findings
                .iter()
                .filter(|f| f.severity == carbon_verify::Severity::Error)
                .map(|f| match f.origin {
                    Some(carbon_verify::Origin::PreExisting) => format!(
                        "{} {}: {} (pre-existing: the old system has it too; --strict)",
                        f.check, f.object, f.message
                    ),
                    _ => format!("{} {}: {}", f.check, f.object, f.message),
                }),
        );
        let (secrets, secret_errors) = super::secrets::verify_home(
            &self.settings.old_home,
            &self.settings.new_home,
            self.options.strict,
        );
        findings.extend(secret_errors);
        if !findings.is_empty() {
            bail!(UpgradeError::VerifyHomeFailed {
                findings: findings.join("; ")
            });
        }
        let listed = |origin| {
            offline
                .of_origin(origin)
                .map(|f| format!("{} {} {}: {}", f.severity, f.check, f.object, f.message))
                .collect::<Vec<_>>()
        };
        Ok(VerifyHomeResult {
            trees,
            datasources_point_at_staging: true,
            strict: self.options.strict,
            pre_existing: listed(carbon_verify::Origin::PreExisting),
            introduced: listed(carbon_verify::Origin::Introduced),
            findings: offline.findings.clone(),
            secrets: Some(secrets),
        })
    }

    /// The offline checks compare user stores with the realm's old database; this covers the
    /// old databases of every other pair.
    fn user_stores_on_old_databases(&self, new: &ProductHome) -> Vec<String> {
        let realm = realm_pair(new, self.pairs).map(|p| p.name.as_str());
        let mut found = Vec::new();
        for store in &new.user_stores {
            let Some(url) = &store.url else { continue };
            let Ok(url) = carbon_db::DbUrl::parse_in(&url.as_str(), Some(&new.root)) else {
                continue;
            };
            for pair in self.pairs.iter().filter(|p| Some(p.name.as_str()) != realm) {
                if url.same_database(&pair.source) {
                    found.push(format!(
                        "userstore-old-db user store {}: its JDBC URL still points at the old database {}",
                        store.file.display(),
                        pair.source
                    ));
                }
            }
        }
        found
    }

    /// The realm's database is checked against the pair that copied it; the old home is given
    /// so that findings the old system already has are told apart.
    fn offline_options(&self, new: &ProductHome) -> carbon_verify::HomeOptions {
        let pair = realm_pair(new, self.pairs);
        carbon_verify::HomeOptions {
            home: self.settings.new_home.clone(),
            db: pair.map(|p| p.staging.clone()),
            // Online, the old database keeps changing until the cut-over proves staging
            // equal to it: counts compared now would differ by what is still to follow.
            old_db: pair
                .filter(|_| self.options.online.is_none())
                .map(|p| p.source.clone()),
            old_home: Some(self.settings.old_home.clone()),
            strict: self.options.strict,
        }
    }

    fn verify_server(&self) -> Result<VerifyServerResult> {
        let Some(verify) = &self.settings.verify else {
            bail!("no [verify] section")
        };
        let password = super::datasources::env_secret(&verify.password_env)?;
        let mut options = carbon_verify::ServerOptions::new(
            &verify.server_url,
            &verify.username,
            carbon_config::Secret::from(password),
        );
        options.home = Some(self.settings.new_home.clone());
        let report = carbon_verify::verify_server(&options, &carbon_verify::NoProgress)
            .context("live tests against the new server")?;
        if !report.is_ok() {
            bail!(UpgradeError::LiveTestsFailed {
                summary: report.summary()
            });
        }
        Ok(VerifyServerResult {
            findings: report.findings,
        })
    }
}

/// Reads what staging holds and records how this run owns it, before anything is written.
/// The preflight's result, or PreflightFailed naming every failed check.
pub(crate) fn passed(checks: Vec<preflight::Check>) -> Result<PreflightResult> {
    if let Some(failed) = failures(&checks) {
        bail!(UpgradeError::PreflightFailed { failed });
    }
    Ok(PreflightResult { checks })
}

/// Every failed check as `name: detail`, joined by `; `; `None` when all passed.
pub(crate) fn failures(checks: &[preflight::Check]) -> Option<String> {
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| c.status == preflight::Status::Fail)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    (!failed.is_empty()).then(|| failed.join("; "))
}

fn claim_staging(pair: &Pair, journal: &mut Journal) -> Result<carbon_db::staging::Claim> {
    let claim = carbon_db::staging::claim(&pair.staging)
        .with_context(|| format!("claiming the staging database of {}", pair.name))?;
    journal.append(Event::StagingClaimed {
        datasource: pair.name.clone(),
        claim,
        at_ms: now_ms(),
    })?;
    Ok(claim)
}

/// `backup-db:<ds>`: the vendor's native, checksummed backup of one old database into `dir`.
fn backup_db(dir: &Path, pair: &Pair) -> Result<BackupDbResult> {
    let files = carbon_db::backup::native_backup(&pair.source, dir, &pair.slug())
        .with_context(|| format!("backing up {}", pair.source))?;
    Ok(BackupDbResult {
        datasource: pair.name.clone(),
        files,
    })
}

fn was_started(journal: &Journal, step: &Step) -> bool {
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

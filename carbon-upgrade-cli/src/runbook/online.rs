//! Online mode: the guide's steps with each database copied at a snapshot while the old
//! servers keep running (`carbon_db::online::begin`), then the source's changes followed
//! into staging until the cut-over, which proves staging equal to the source with the old
//! servers stopped. The downtime is the cut-over.
//!
//! The same code runs the fallback window after a cut-over ([`Direction::Fallback`]): staging's
//! changes followed into the old database, which the operator asked to keep as a fallback.
//!
//! State lives under `<state_dir>/online/<datasource>/` (or `fallback/`): each stream's
//! `state.json`, the follower's lock and pid, and `cutover.json` / `rollback.json`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use carbon_db::online::{
    self, FollowReport, Lag, OnlineOptions, Phase, Proof, State, Stream, Until,
};
use serde::Serialize;

use super::datasources::Pair;
use super::journal::now_ms;
use super::preflight::{self, Check};
use super::results::{CopyResult, PreflightResult};
use super::{Homes, Settings};
use crate::UpgradeError;

/// Which way changes flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Old database → staging, before the cut-over.
    Forward,
    /// Staging → old database, the fallback window after the cut-over.
    Fallback,
}

impl Direction {
    fn dir(self) -> &'static str {
        match self {
            Direction::Forward => "online",
            Direction::Fallback => "fallback",
        }
    }

    /// The side whose servers must be stopped for the switch: the old product's before the
    /// cut-over, the new product's before a rollback.
    fn writers(self) -> &'static str {
        match self {
            Direction::Forward => "old",
            Direction::Fallback => "new",
        }
    }
}

/// One followed database.
#[derive(Debug, Clone)]
pub struct Followed {
    pub datasource: String,
    pub stream: Stream,
}

/// The state directory of one direction.
pub fn dir(settings: &Settings, direction: Direction) -> PathBuf {
    settings.state_dir.join(direction.dir())
}

/// The streams of every datasource; embedded databases (H2, SQLite) are files and refused.
pub fn streams(settings: &Settings, pairs: &[Pair], direction: Direction) -> Result<Vec<Followed>> {
    let embedded: Vec<String> = pairs
        .iter()
        .filter(|p| p.embedded)
        .map(|p| format!("{} ({})", p.name, p.vendor))
        .collect();
    if !embedded.is_empty() {
        bail!(UpgradeError::OnlineRefused {
            detail: format!(
                "{} embedded: a file database cannot be followed; online mode follows PostgreSQL and MariaDB/MySQL only (stop the servers and use `run`)",
                embedded.join(", ")
            ),
        });
    }
    let base = dir(settings, direction);
    let root = settings
        .state_dir
        .canonicalize()
        .unwrap_or_else(|_| settings.state_dir.clone());
    Ok(pairs
        .iter()
        .map(|p| {
            let (from, to) = match direction {
                Direction::Forward => (p.source.clone(), p.staging.clone()),
                Direction::Fallback => (p.staging.clone(), p.source.clone()),
            };
            let id = format!("{}|{}|{}", direction.dir(), root.display(), p.name);
            Followed {
                datasource: p.name.clone(),
                stream: Stream::new(from, to, base.join(p.slug()), &id),
            }
        })
        .collect())
}

/// Online mode refuses what it cannot follow before anything is done.
pub fn refuse_unsupported(settings: &Settings, pairs: &[Pair]) -> Result<()> {
    streams(settings, pairs, Direction::Forward)?;
    let migrating: Vec<&str> = pairs
        .iter()
        .filter(|p| super::migration::applies(settings, p))
        .map(|p| p.name.as_str())
        .collect();
    if !migrating.is_empty() {
        bail!(UpgradeError::OnlineRefused {
            detail: format!(
                "migration scripts are configured for {}: online mode follows changes into the same schema; run `online cutover` first, then `db migrate`, or use `run`",
                migrating.join(", ")
            ),
        });
    }
    Ok(())
}

/// The online preflight: what `run` checks, except that the old servers may run; plus each
/// source's requirements for following (one line per unmet setting).
pub fn preflight(homes: &Homes, pairs: &[Pair], backup_dir: &Path) -> Vec<Check> {
    let mut checks = preflight::run_online(homes, pairs, backup_dir);
    for pair in pairs.iter().filter(|p| !p.embedded) {
        let name = format!("{}: the source can be followed", pair.name);
        checks.push(match online::requirements(&pair.source) {
            Ok(unmet) if unmet.is_empty() => {
                Check::pass(name, format!("{} can be followed", pair.source))
            }
            Ok(unmet) => Check::fail(name, joined(&unmet)),
            Err(err) => Check::fail(name, carbon_db::error_chain(&err)),
        });
        let name = format!("{}: staging can apply the changes", pair.name);
        checks.push(match online::staging_requirements(&pair.staging) {
            Ok(unmet) if unmet.is_empty() => {
                Check::pass(name, format!("{} can apply them", pair.staging))
            }
            Ok(unmet) => Check::fail(name, joined(&unmet)),
            Err(err) => Check::fail(name, carbon_db::error_chain(&err)),
        });
    }
    checks
}

fn joined(unmet: &[online::Unmet]) -> String {
    unmet
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Online mode's own steps of the runbook (`RunOptions::online`).
impl super::steps::Runner<'_> {
    pub(crate) fn preflight_online(&self) -> Result<PreflightResult> {
        refuse_unsupported(self.settings, self.pairs)?;
        let mut checks = vec![preflight::homes_exist(
            &self.settings.old_home,
            &self.settings.new_home,
        )];
        checks.extend(preflight(self.homes, self.pairs, &self.settings.backup_dir));
        super::steps::passed(checks)
    }

    /// The snapshot copy of online mode: the start point of following first, then the copy
    /// at it, verified at the snapshot. A second call continues from the stream's state.
    pub(crate) fn copy_online(&self, pair: &Pair) -> Result<CopyResult> {
        let opts = self.options.online.clone().unwrap_or_default();
        let followed = streams(
            self.settings,
            std::slice::from_ref(pair),
            Direction::Forward,
        )?;
        let stream = &followed
            .first()
            .context("no stream for the datasource")?
            .stream;
        let state = carbon_db::online::begin(stream, &opts, self.ui.db_progress())
            .with_context(|| format!("copying {} to {} online", pair.source, pair.staging))?;
        let copy = state
            .copy
            .with_context(|| format!("the online copy of {} recorded no copy report", pair.name))?;
        Ok(CopyResult {
            datasource: pair.name.clone(),
            copy,
        })
    }

    /// Copies again what changed on the old home since the replicate step (the cut-over).
    pub fn resync(&self) -> Result<()> {
        self.replicate().map(|_| ())
    }
}

/// The fallback follows staging's changes into the old database: only when the two schemas
/// have the same shape (no difference but cosmetic names). Returns what makes it impossible.
pub fn reverse_blockers(pairs: &[Pair]) -> Result<Vec<String>> {
    use carbon_db::schema::{self, Class};
    let mut blockers = Vec::new();
    for pair in pairs {
        let staging = schema::read_catalog(&pair.staging)
            .with_context(|| format!("reading the catalog of {}", pair.staging))?;
        let old = schema::read_catalog(&pair.source)
            .with_context(|| format!("reading the catalog of {}", pair.source))?;
        let diff = schema::diff(pair.vendor, &staging, &old);
        blockers.extend(
            diff.differences
                .iter()
                .filter(|d| d.class != Class::Cosmetic)
                .map(|d| format!("{}: {}", pair.name, d.to_string().trim())),
        );
    }
    Ok(blockers)
}

/// Refuses a fallback whose schemas differ, listing the differences.
pub fn refuse_reverse(pairs: &[Pair]) -> Result<()> {
    let blockers = reverse_blockers(pairs)?;
    if !blockers.is_empty() {
        bail!(UpgradeError::OnlineRefused {
            detail: format!(
                "the schemas differ, so staging's changes cannot be applied to the old database: {}",
                blockers.join("; ")
            ),
        });
    }
    Ok(())
}

/// The one follower of a state directory: an exclusive lock on `follower.lock`, with the
/// holder's pid beside it so that `cutover` and `abort` can ask it to stop.
#[derive(Debug)]
pub struct FollowerLock {
    _file: File,
    pid_file: PathBuf,
}

impl FollowerLock {
    /// Takes the lock. When another process holds it: with `take_over`, sends it SIGTERM (it
    /// stops cleanly between transactions) and waits up to `wait`; without, refuses.
    pub fn acquire(dir: &Path, take_over: bool, wait: Duration) -> Result<FollowerLock> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("follower.lock");
        let pid_file = dir.join("follower.pid");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let started = Instant::now();
        let mut asked = false;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    let holder = std::fs::read_to_string(&pid_file).unwrap_or_default();
                    let holder = holder.trim();
                    if !take_over {
                        bail!(UpgradeError::OnlineRefused {
                            detail: format!(
                                "another follower (pid {holder}) holds {}: one follower at a time",
                                path.display()
                            ),
                        });
                    }
                    if !asked {
                        ask_to_stop(holder);
                        asked = true;
                    }
                    if started.elapsed() > wait {
                        bail!(UpgradeError::OnlineRefused {
                            detail: format!(
                                "the follower (pid {holder}) did not stop within {}s",
                                wait.as_secs()
                            ),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("locking {}", path.display()));
                }
            }
        }
        carbon_fs::write_atomic(&pid_file, std::process::id().to_string().as_bytes(), None)
            .with_context(|| format!("writing {}", pid_file.display()))?;
        Ok(FollowerLock {
            _file: file,
            pid_file,
        })
    }
}

impl Drop for FollowerLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

fn ask_to_stop(pid: &str) {
    use rustix::process::{Pid, Signal, kill_process};
    if let Some(pid) = pid.parse::<i32>().ok().and_then(Pid::from_raw) {
        let _ = kill_process(pid, Signal::TERM);
    }
}

/// Follows every stream on its own thread until `until` or `stop`; the first failure stops
/// the others and is returned.
pub fn follow_all(
    streams: &[Followed],
    opts: &OnlineOptions,
    until: Until,
    stop: &AtomicBool,
) -> Result<Vec<FollowReport>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = streams
            .iter()
            .map(|f| {
                scope.spawn(move || {
                    let result =
                        online::follow(&f.stream, opts, until, stop, &carbon_db::NoProgress);
                    if result.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    result.with_context(|| format!("following {}", f.datasource))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a follower thread panicked")))
            })
            .collect()
    })
}

/// What `online status` shows of one stream.
#[derive(Debug, Clone, Serialize)]
pub struct StreamStatus {
    pub datasource: String,
    pub phase: Phase,
    pub applied: Option<String>,
    pub lag: Option<Lag>,
    /// Why the lag could not be read (the source down, say).
    pub lag_error: Option<String>,
    pub transactions: u64,
    pub rows: u64,
    pub dirty: Vec<String>,
    pub max_lag_ms: u64,
    /// Seconds behind: 0 when nothing waits, else now minus the time up to which every source
    /// commit is applied (MariaDB) or the commit time of the last transaction applied
    /// (PostgreSQL).
    pub lag_seconds: Option<f64>,
}

/// Status of every stream, and whether a cut-over (or rollback) may start now.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub direction: Direction,
    pub follower_pid: Option<u32>,
    pub streams: Vec<StreamStatus>,
    pub switch_allowed: bool,
    pub why_not: Option<String>,
}

pub fn status(settings: &Settings, streams: &[Followed], direction: Direction) -> Result<Status> {
    let mut out = Vec::new();
    for f in streams {
        let state = State::load(&f.stream)?;
        let (lag, lag_error) = if state.phase == Phase::Following {
            match online::lag(&f.stream) {
                Ok(lag) => (Some(lag), None),
                Err(err) => (None, Some(carbon_db::error_chain(&err))),
            }
        } else {
            (None, None)
        };
        let lag_seconds = lag.as_ref().map(|l| {
            if l.bytes == 0 {
                0.0
            } else {
                // MariaDB: every source commit before caught_up_ms is applied; PostgreSQL:
                // the commit time of the last applied transaction.
                state
                    .caught_up_ms
                    .or(state.last_commit_ms)
                    .map_or(0.0, |at| now_ms().saturating_sub(at) as f64 / 1000.0)
            }
        });
        out.push(StreamStatus {
            datasource: f.datasource.clone(),
            lag_seconds,
            phase: state.phase.clone(),
            applied: state.applied.clone(),
            lag,
            lag_error,
            transactions: state.transactions,
            rows: state.rows.values().sum(),
            dirty: state.dirty.iter().cloned().collect(),
            max_lag_ms: state.max_lag_ms,
        });
    }
    let why_not = out
        .iter()
        .find(|s| !matches!(s.phase, Phase::Following | Phase::Drained | Phase::Proven))
        .map(|s| format!("{} is {:?}, not following", s.datasource, s.phase));
    let pid = std::fs::read_to_string(dir(settings, direction).join("follower.pid"))
        .ok()
        .and_then(|p| p.trim().parse().ok());
    Ok(Status {
        direction,
        follower_pid: pid,
        switch_allowed: why_not.is_none() && !out.is_empty(),
        why_not,
        streams: out,
    })
}

/// The switch (`online cutover`, `online fallback rollback`), phase by phase, each timed.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct SwitchReport {
    pub direction: Option<Direction>,
    /// Every stream proved equal.
    pub equal: bool,
    pub datasources: Vec<SwitchedDatabase>,
    /// Proving the writers stopped (before the downtime clock, which starts once they are).
    pub confirm_ms: u64,
    pub drain_ms: u64,
    pub recopy_ms: u64,
    pub counters_ms: u64,
    pub proof_ms: u64,
    pub resync_ms: u64,
    pub remove_ms: u64,
    /// From "writers confirmed stopped" to "proven" (file re-sync included).
    pub downtime_ms: u64,
    pub objects_removed: Vec<String>,
    /// The fallback streams started at the proven point (`cutover --fallback`).
    pub fallback_started: bool,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SwitchedDatabase {
    pub datasource: String,
    /// "staging equal to source at <position>".
    pub statement: String,
    pub position: String,
    pub transactions: u64,
    pub rows: u64,
    pub max_lag_ms: u64,
    pub follow_ms: u64,
    pub recopied: Vec<String>,
    pub keys_compared: u64,
    pub counters_set: usize,
    pub verify: String,
    /// What the proof's reads cost, per side and step.
    #[serde(default)]
    pub proof_steps: String,
}

/// What a switch needs besides the streams.
#[allow(missing_debug_implementations)] // holds a closure
pub struct Switch<'a> {
    pub settings: &'a Settings,
    pub homes: &'a Homes,
    pub pairs: &'a [Pair],
    pub direction: Direction,
    pub full_verify: bool,
    /// Seconds to wait for a running follower to stop.
    pub take_over_wait: Duration,
    /// Files changed on the old home since the first replication are copied again.
    pub resync: &'a dyn Fn() -> Result<()>,
    /// Forward only: start the fallback streams at the proven point.
    pub fallback: bool,
}

impl Switch<'_> {
    /// Confirms the writers stopped, drains and proves while it re-syncs files, removes what
    /// was created.
    /// Each stream's phase is saved as it moves, so a killed switch continues where it was.
    pub fn run(&self, streams: &[Followed], opts: &OnlineOptions) -> Result<SwitchReport> {
        let state_dir = dir(self.settings, self.direction);
        refuse_before_following(streams)?;
        if self.fallback && self.direction == Direction::Forward {
            refuse_reverse(self.pairs)?;
        }
        let _lock = FollowerLock::acquire(&state_dir, true, self.take_over_wait)?;
        if let Some(done) = finished_report(&state_dir, self.direction, streams) {
            return Ok(done);
        }
        let mut report = SwitchReport {
            direction: Some(self.direction),
            ..SwitchReport::default()
        };
        let t = Instant::now();
        self.confirm_stopped()?;
        report.confirm_ms = ms(t);

        let window = Instant::now();
        // The files (old home stopped) and the databases are independent: the file re-sync
        // runs while the streams drain and are proved.
        let full = self.full_verify;
        let (proved, resynced) = std::thread::scope(|scope| {
            let proving = scope.spawn(move || drain_and_prove(streams, opts, full));
            let t = Instant::now();
            let resynced = if self.direction == Direction::Forward {
                (self.resync)()
                    .context("re-syncing deployment/server and tenants")
                    .map(|()| ms(t))
            } else {
                Ok(0)
            };
            let proved = proving
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("a proof thread panicked")));
            (proved, resynced)
        });
        let (drain_ms, proofs) = proved?;
        report.drain_ms = drain_ms;
        report.resync_ms = resynced?;
        report.equal = true;
        for (f, proof) in streams.iter().zip(&proofs) {
            report.recopy_ms = report.recopy_ms.max(proof.recopy_ms);
            report.counters_ms = report.counters_ms.max(proof.counters_ms);
            report.proof_ms = report.proof_ms.max(proof.proof_ms);
            let state = State::load(&f.stream)?;
            let equal = proof.verify.is_ok();
            report.equal &= equal;
            report.datasources.push(SwitchedDatabase {
                datasource: f.datasource.clone(),
                statement: if equal {
                    format!(
                        "{} equal to {} at {}",
                        f.stream.to, f.stream.from, proof.position
                    )
                } else {
                    format!(
                        "{} DIFFERS from {}: {}",
                        f.stream.to,
                        f.stream.from,
                        proof.verify.summary()
                    )
                },
                position: proof.position.clone(),
                transactions: state.transactions,
                rows: state.rows.values().sum(),
                max_lag_ms: state.max_lag_ms,
                follow_ms: state
                    .created
                    .first()
                    .map_or(0, |c| now_ms().saturating_sub(c.created_ms)),
                recopied: proof.recopied.clone(),
                keys_compared: proof.keys_compared,
                proof_steps: proof.proof_steps.clone(),
                counters_set: proof.counters_set,
                verify: proof.verify.summary(),
            });
        }
        report.downtime_ms = ms(window);
        if !report.equal {
            let summary: Vec<String> = report
                .datasources
                .iter()
                .map(|d| d.statement.clone())
                .collect();
            write_report(&state_dir, self.direction, &report)?;
            bail!(UpgradeError::Mismatch {
                summary: summary.join("; ")
            });
        }

        if self.fallback && self.direction == Direction::Forward {
            for f in streams_for(self.settings, self.pairs, Direction::Fallback)? {
                online::begin_equal(&f.stream, opts)
                    .with_context(|| format!("starting the fallback of {}", f.datasource))?;
            }
            report.fallback_started = true;
        }

        let t = Instant::now();
        for f in streams {
            let state = online::remove(&f.stream)
                .with_context(|| format!("removing what following {} created", f.datasource))?;
            report
                .objects_removed
                .extend(state.created.iter().map(created_line));
        }
        report.remove_ms = ms(t);
        write_report(&state_dir, self.direction, &report)?;
        Ok(report)
    }

    /// The writers' servers are stopped: no Carbon process or port on their home (forward:
    /// the old home; fallback: the new one) and no other session on any source. A session
    /// still closing (the follower just stopped, or a killed switch's query still running on
    /// the server) is given up to 10 s; a writer stays.
    fn confirm_stopped(&self) -> Result<()> {
        let started = Instant::now();
        loop {
            match self.writers_gone() {
                Err(_) if started.elapsed() < Duration::from_secs(10) => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                outcome => return outcome,
            }
        }
    }

    fn writers_gone(&self) -> Result<()> {
        let home = match self.direction {
            Direction::Forward => &self.homes.old,
            Direction::Fallback => &self.homes.new,
        };
        let mut checks = vec![preflight::server_stopped(
            &format!("{} home", self.direction.writers()),
            home,
        )];
        for pair in self.pairs {
            let source = match self.direction {
                Direction::Forward => pair.clone(),
                Direction::Fallback => Pair {
                    source: pair.staging.clone(),
                    ..pair.clone()
                },
            };
            checks.push(preflight::source_sessions(&source));
        }
        if let Some(failed) = super::steps::failures(&checks) {
            bail!(UpgradeError::PreflightFailed {
                failed: format!(
                    "the {} servers are not stopped: {failed}",
                    self.direction.writers()
                ),
            });
        }
        Ok(())
    }
}

/// Drains every stream still following, then proves each (a thread each); the drain's
/// duration and the proofs.
fn drain_and_prove(
    streams: &[Followed],
    opts: &OnlineOptions,
    full: bool,
) -> Result<(u64, Vec<Proof>)> {
    let t = Instant::now();
    let draining: Vec<Followed> = streams
        .iter()
        .filter(|f| State::load(&f.stream).is_ok_and(|s| s.phase == Phase::Following))
        .cloned()
        .collect();
    let never = AtomicBool::new(false);
    follow_all(&draining, opts, Until::SourceEnd, &never)?;
    for f in &draining {
        set_phase(&f.stream, Phase::Drained)?;
    }
    let drain_ms = ms(t);
    let proofs = std::thread::scope(|scope| {
        let handles: Vec<_> = streams
            .iter()
            .map(|f| scope.spawn(move || prove_one(f, opts, full)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a proof thread panicked")))
            })
            .collect::<Result<Vec<_>>>()
    })?;
    Ok((drain_ms, proofs))
}

fn prove_one(f: &Followed, opts: &OnlineOptions, full: bool) -> Result<Proof> {
    let proof = online::prove(&f.stream, opts, full, &carbon_db::NoProgress)
        .with_context(|| format!("proving {} equal to {}", f.stream.to, f.stream.from))?;
    if proof.verify.is_ok() {
        set_phase(&f.stream, Phase::Proven)?;
    }
    Ok(proof)
}

fn streams_for(settings: &Settings, pairs: &[Pair], direction: Direction) -> Result<Vec<Followed>> {
    streams(settings, pairs, direction)
}

/// Stops following and removes everything the streams created; the target is left as it is.
pub fn abort(
    settings: &Settings,
    streams: &[Followed],
    direction: Direction,
    wait: Duration,
) -> Result<Vec<String>> {
    let _lock = FollowerLock::acquire(&dir(settings, direction), true, wait)?;
    let mut removed = Vec::new();
    for f in streams {
        let state = online::remove(&f.stream)
            .with_context(|| format!("removing what following {} created", f.datasource))?;
        removed.extend(state.created.iter().map(created_line));
    }
    Ok(removed)
}

/// A switch needs every stream past its snapshot copy: stopping a `start` still copying would
/// only lose that copy.
fn refuse_before_following(streams: &[Followed]) -> Result<()> {
    for f in streams {
        let state = State::load(&f.stream)?;
        if matches!(state.phase, Phase::New | Phase::Copying) {
            bail!(UpgradeError::OnlineRefused {
                detail: format!(
                    "{} is not followed yet ({:?}): let `online start` finish its copy first (`online status`)",
                    f.datasource, state.phase
                ),
            });
        }
    }
    Ok(())
}

/// A switch killed after its last removal: its report is already written.
fn finished_report(dir: &Path, direction: Direction, streams: &[Followed]) -> Option<SwitchReport> {
    let all_removed = streams
        .iter()
        .all(|f| State::load(&f.stream).is_ok_and(|s| s.phase == Phase::Removed));
    if !all_removed {
        return None;
    }
    let bytes = std::fs::read(dir.join(report_name(direction))).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn report_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Forward => "cutover.json",
        Direction::Fallback => "rollback.json",
    }
}

/// One object a stream created, as the report lists it.
fn created_line(c: &carbon_db::online::Created) -> String {
    format!("{} {} on {} ({})", c.kind, c.name, c.side, c.server)
}

fn set_phase(stream: &Stream, phase: Phase) -> Result<()> {
    let mut state = State::load(stream)?;
    state.phase = phase;
    state.save(stream)?;
    Ok(())
}

fn write_report(dir: &Path, direction: Direction, report: &SwitchReport) -> Result<PathBuf> {
    let path = dir.join(report_name(direction));
    let bytes = serde_json::to_vec_pretty(report)?;
    carbon_fs::write_atomic(&path, &bytes, None)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn ms(t: Instant) -> u64 {
    t.elapsed().as_millis() as u64
}

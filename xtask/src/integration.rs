//! `cargo xtask integration`: end-to-end upgrades with the release-like binary on real servers
//! (PostgreSQL, MariaDB), an embedded SQLite home and an H2-file home, each checked outside
//! the tool's own verifier; then the same upgrades killed with SIGKILL at seeded random
//! moments and finished with `resume`.
//!
//! Checks after every upgrade: staging equals the source (per-table fingerprints computed by
//! the database server itself, or file hashes for embedded databases), the source and the old
//! home are unchanged, the new home points at staging, the replicated trees hold every old
//! file, and the report says `completed`.

use carbon_upgrade_cli::runbook::journal::Event;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use carbon_config::fixture::{CarbonVersion, ContentScale, DatasourceSpec, HomeSpec, write_home};
use carbon_config::secret::Secret;
use carbon_db::fixture::{self, Scale};
use mysql::prelude::Queryable;
use sha2::{Digest, Sha256};

use crate::servers::{Servers, database_url};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// SIGKILL runs per vendor (0: only the clean upgrades).
    #[arg(long, default_value_t = 3)]
    kills: u32,
    /// Seed for the kill moments (printed, so a failure can be replayed).
    #[arg(long)]
    seed: Option<u64>,
    /// Only these vendors: postgres, mariadb, sqlite, h2 (default: all).
    #[arg(long, value_delimiter = ',')]
    vendors: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Postgres,
    MariaDb,
    Sqlite,
    H2,
}

impl Kind {
    /// PostgreSQL and MariaDB: a database server, not a file in the home.
    pub(crate) fn is_server(self) -> bool {
        matches!(self, Kind::Postgres | Kind::MariaDb)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Postgres => "postgres",
            Kind::MariaDb => "mariadb",
            Kind::Sqlite => "sqlite",
            Kind::H2 => "h2",
        }
    }
}

pub fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    let seed = args.seed.unwrap_or_else(time_seed);
    println!("==> integration: seed {seed} (replay with --seed {seed})");
    let servers = Servers::find_or_start()?;
    servers.print();
    let root = crate::workspace_root().join("target/integration");
    let binary = prepare_binary(&root)?;
    let mut rng = fastrand::Rng::with_seed(seed);
    let kinds = [Kind::Postgres, Kind::MariaDb, Kind::Sqlite, Kind::H2]
        .into_iter()
        .filter(|k| args.vendors.is_empty() || args.vendors.iter().any(|v| v == k.name()));
    let mut summary = Vec::new();
    for kind in kinds {
        let clean = Scenario::create(&root, kind, "clean", &servers)?;
        let timer = Instant::now();
        clean.run_to_completion(&binary, None)?;
        let full = timer.elapsed();
        clean.check()?;
        println!(
            "    {}: clean upgrade verified independently in {:.1}s",
            kind.name(),
            full.as_secs_f64()
        );
        clean.cleanup(&servers)?;
        let (mut killed, mut attempt) = (0, 0);
        // Until `kills` SIGKILLs have landed mid-run (a run may finish before its moment).
        while killed < args.kills && attempt < args.kills * 4 {
            let scenario = Scenario::create(&root, kind, &format!("kill{attempt}"), &servers)?;
            attempt += 1;
            let span = (full.as_millis() as u64 * 8 / 10).max(40);
            let at = Duration::from_millis(rng.u64(10..span));
            let kills = scenario.run_to_completion(&binary, Some(Kill::At(at)))?;
            scenario
                .check()
                .with_context(|| format!("{} killed at {:?}", kind.name(), at))?;
            let step = scenario.killed_in();
            scenario.cleanup(&servers)?;
            killed += kills;
            let what = if kills == 0 {
                "finished before the kill".to_owned()
            } else {
                format!("SIGKILL {step}, resumed, verified")
            };
            println!(
                "    {}: kill at {:>5}ms: {what}",
                kind.name(),
                at.as_millis()
            );
        }
        ensure!(
            killed >= args.kills,
            "{}: only {killed} of {} kills landed mid-run",
            kind.name(),
            args.kills
        );
        let survived = killed;
        summary.push(format!("{} {survived}/{killed}", kind.name()));
    }
    println!(
        "==> integration: passed in {:.0}s; kills survived/attempted per vendor: {}",
        started.elapsed().as_secs_f64(),
        summary.join(", ")
    );
    Ok(())
}

/// When to SIGKILL a run.
#[derive(Debug, Clone)]
pub(crate) enum Kill {
    /// This long after it starts.
    At(Duration),
    /// This long after the journal records that `step` started.
    AfterStep(String, Duration),
}

/// How often the watcher reads the journal: short enough to land inside steps that take
/// a millisecond or two (connect), cheap enough (a few KiB read) not to slow the run.
const POLL: Duration = Duration::from_micros(200);

impl Kill {
    fn due(&self, started: Instant, journal: &Path) -> bool {
        match self {
            Kill::At(at) => started.elapsed() >= *at,
            Kill::AfterStep(step, delay) => {
                step_started_at(journal, step).is_some_and(|seen| seen.elapsed() >= *delay)
            }
        }
    }
}

/// The run journal's complete events, read through the runbook's own types; a line torn by
/// a kill (or being written) is skipped.
pub(crate) fn journal_events(path: &Path) -> Vec<Event> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Event>(l).ok())
        .collect()
}

/// When this process first saw `step` start in the journal (remembered across polls).
fn step_started_at(journal: &Path, step: &str) -> Option<Instant> {
    use std::sync::Mutex;
    static SEEN: Mutex<Option<(PathBuf, String, Instant)>> = Mutex::new(None);
    let mut seen = SEEN.lock().ok()?;
    if let Some((path, s, at)) = seen.as_ref()
        && path == journal
        && s == step
    {
        return Some(*at);
    }
    let started = journal_events(journal)
        .iter()
        .any(|e| matches!(e, Event::Started { step: s, .. } if s.to_string() == step));
    if !started {
        return None;
    }
    let now = Instant::now();
    *seen = Some((journal.to_path_buf(), step.to_owned(), now));
    Some(now)
}

/// How long each step took as the watcher saw it (journal `started` to `completed`), at
/// the same polling resolution the kills use.
pub(crate) type StepTimes = BTreeMap<String, Duration>;

pub(crate) fn time_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.as_secs())
}

/// Builds the binary and copies it under `root` (emptied first): a concurrent `cargo build`
/// may replace the one under target/debug while scenarios run.
pub(crate) fn prepare_binary(root: &Path) -> Result<PathBuf> {
    crate::run_step(
        "cargo build -p carbon-upgrade-cli",
        crate::cargo().args(["build", "-p", "carbon-upgrade-cli"]),
    )?;
    if root.exists() {
        std::fs::remove_dir_all(root).with_context(|| format!("removing {}", root.display()))?;
    }
    let binary = root.join("bin/carbon-upgrade");
    std::fs::create_dir_all(root.join("bin"))?;
    std::fs::copy(
        crate::workspace_root().join("target/debug/carbon-upgrade"),
        &binary,
    )
    .context("copying the carbon-upgrade binary")?;
    Ok(binary)
}

pub(crate) struct Scenario {
    pub(crate) kind: Kind,
    pub(crate) dir: PathBuf,
    /// Native URL of the source database (servers) or its file (embedded).
    pub(crate) source: String,
    pub(crate) staging: String,
    old_tree: BTreeMap<PathBuf, String>,
    source_print: Vec<String>,
}

impl Scenario {
    pub(crate) fn create(
        root: &Path,
        kind: Kind,
        label: &str,
        servers: &Servers,
    ) -> Result<Scenario> {
        let dir = root.join(format!("{}-{label}", kind.name()));
        std::fs::create_dir_all(&dir)?;
        let name = format!("carbon_it_{}_{label}_{}", kind.name(), std::process::id());
        let scale = Scale {
            seed: 7 + label.len() as u64,
            ..Scale::tiny()
        };
        let (datasource, source, staging, tenants) = match kind {
            Kind::Postgres => {
                let url = database_url(&servers.postgres, &name);
                let mut admin = postgres::Client::connect(
                    &database_url(&servers.postgres, "postgres"),
                    postgres::NoTls,
                )?;
                admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
                admin.batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {name}_staging WITH (FORCE)"
                ))?;
                admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
                let mut client = postgres::Client::connect(&url, postgres::NoTls)?;
                let summary = fixture::generate_postgres(&mut client, &scale)?;
                let spec =
                    server_datasource("postgresql", &url, "postgres", "org.postgresql.Driver");
                (
                    spec,
                    url,
                    database_url(&servers.postgres, &format!("{name}_staging")),
                    summary.tenant_ids,
                )
            }
            Kind::MariaDb => {
                let url = database_url(&servers.mariadb, &name);
                let mut admin =
                    mysql::Conn::new(mysql::Opts::from_url(&database_url(&servers.mariadb, ""))?)?;
                admin.query_drop(format!("DROP DATABASE IF EXISTS {name}"))?;
                admin.query_drop(format!("DROP DATABASE IF EXISTS {name}_staging"))?;
                admin.query_drop(format!(
                    "CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                ))?;
                let mut conn = mysql::Conn::new(mysql::Opts::from_url(&url)?)?;
                let summary = fixture::generate_mysql(&mut conn, &scale)?;
                let spec = server_datasource("mysql", &url, "root", "com.mysql.jdbc.Driver");
                (
                    spec,
                    url,
                    database_url(&servers.mariadb, &format!("{name}_staging")),
                    summary.tenant_ids,
                )
            }
            Kind::Sqlite => {
                let rel = "repository/database/WSO2CARBON_DB.db";
                let file = dir.join("old").join(rel);
                std::fs::create_dir_all(file.parent().unwrap_or(&dir))?;
                let mut conn = rusqlite::Connection::open(&file)?;
                let summary = fixture::generate_sqlite(&mut conn, &scale)?;
                let spec = DatasourceSpec {
                    url: format!("jdbc:sqlite:{rel}"),
                    driver_class_name: "org.sqlite.JDBC".into(),
                    ..DatasourceSpec::carbon_h2()
                };
                let staging = dir.join("new").join(rel).display().to_string();
                (
                    spec,
                    file.display().to_string(),
                    staging,
                    summary.tenant_ids,
                )
            }
            Kind::H2 => {
                // Carbon's embedded default. Nothing here can write H2, so the page-store file
                // is synthetic bytes: the tool copies H2 databases as files, byte for byte.
                let rel = "repository/database/WSO2CARBON_DB.h2.db";
                let file = dir.join("old").join(rel);
                std::fs::create_dir_all(file.parent().unwrap_or(&dir))?;
                let mut bytes = b"-- H2 0.5/B -- \n".to_vec();
                let mut rng = fastrand::Rng::with_seed(scale.seed);
                bytes.extend((0..(2 << 20)).map(|_| rng.u8(..)));
                std::fs::write(&file, bytes)?;
                let staging = dir.join("new").join(rel).display().to_string();
                (
                    DatasourceSpec::carbon_h2(),
                    file.display().to_string(),
                    staging,
                    vec![1, 2, 5],
                )
            }
        };
        let mut old = HomeSpec::new(CarbonVersion::V4_4_6);
        old.port_offset = 3;
        old.tenant_ids = tenants;
        old.content = ContentScale::Small;
        old.datasources = vec![datasource.clone()];
        // On a database server, every secondary store uses the old database too: the run
        // must point the replicated files at staging (connect-userstores).
        old.stores_on_first_datasource = kind.is_server();
        write_home(&dir.join("old"), &old)?;
        let mut new = HomeSpec::new(CarbonVersion::V4_4_7);
        new.tenant_ids = Vec::new();
        if matches!(kind, Kind::Sqlite | Kind::H2) {
            new.datasources = vec![datasource];
        }
        write_home(&dir.join("new"), &new)?;
        if kind.is_server() {
            // A fresh product has no secondary store of its own.
            std::fs::remove_dir_all(dir.join("new/repository/deployment/server/userstores"))?;
        }
        let scenario = Scenario {
            kind,
            old_tree: tree_digest(&dir.join("old"))?,
            dir,
            source_print: Vec::new(),
            source,
            staging,
        };
        let source_print = scenario.fingerprint(&scenario.source)?;
        Ok(Scenario {
            source_print,
            ..scenario
        })
    }

    pub(crate) fn command(&self, binary: &Path, verb: &str) -> Command {
        let mut cmd = Command::new(binary);
        cmd.arg(verb)
            .arg("--old-home")
            .arg(self.dir.join("old"))
            .arg("--new-home")
            .arg(self.dir.join("new"))
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs the upgrade; with `kill`, SIGKILLs it then, and resumes until it completes.
    /// Returns how many times it was killed.
    pub(crate) fn run_to_completion(&self, binary: &Path, kill: Option<Kill>) -> Result<u32> {
        let mut kills = 0;
        let mut verb = "run";
        let journal = self.dir.join("state/journal.jsonl");
        loop {
            let started = Instant::now();
            let mut child = self
                .command(binary, verb)
                .spawn()
                .context("starting carbon-upgrade")?;
            if let Some(kill) = kill.as_ref().filter(|_| kills == 0) {
                while child.try_wait()?.is_none() && !kill.due(started, &journal) {
                    std::thread::sleep(POLL);
                }
                if child.try_wait()?.is_none() {
                    child.kill()?; // SIGKILL
                    child.wait()?;
                    kills += 1;
                    self.record_kill_step();
                    verb = "resume";
                    continue;
                }
            }
            let output = child.wait_with_output()?;
            if output.status.success() {
                return Ok(kills);
            }
            let stderr = String::from_utf8_lossy(&output.stderr);
            // A kill before the journal's first line leaves nothing to resume: run afresh.
            if verb == "resume" && stderr.contains("not start with a run record") {
                std::fs::remove_dir_all(self.dir.join("state"))?;
                verb = "run";
                continue;
            }
            bail!(
                "carbon-upgrade {verb} failed ({}): {}",
                output.status,
                stderr.trim()
            );
        }
    }

    /// Which step the kill interrupted, from the journal (for the summary): `in STEP`, or
    /// `after STEP ended` when the kill fell between two steps.
    fn record_kill_step(&self) {
        let events = journal_events(&self.dir.join("state/journal.jsonl"));
        let last = events.iter().rev().find_map(|e| match e {
            Event::Started { step, .. } => Some(format!("in {step}")),
            Event::Completed { step, .. } | Event::Failed { step, .. } => {
                Some(format!("after {step} ended"))
            }
            Event::Run { .. } | Event::StagingClaimed { .. } => None,
        });
        let step = last.unwrap_or_else(|| "before the first step".to_owned());
        let _ = std::fs::write(self.dir.join("killed-in"), step);
    }

    /// Runs the upgrade once, unkilled, watching the journal as a kill would: how long each
    /// step took. Kill moments are drawn inside these spans.
    pub(crate) fn time_steps(&self, binary: &Path) -> Result<StepTimes> {
        let journal = self.dir.join("state/journal.jsonl");
        let mut child = self
            .command(binary, "run")
            .spawn()
            .context("starting carbon-upgrade")?;
        let mut started: BTreeMap<String, Instant> = BTreeMap::new();
        let mut times = StepTimes::new();
        loop {
            let exited = child.try_wait()?.is_some();
            for event in journal_events(&journal) {
                match event {
                    Event::Started { step, .. } => {
                        started.entry(step.to_string()).or_insert_with(Instant::now);
                    }
                    Event::Completed { step, .. } | Event::Failed { step, .. } => {
                        let step = step.to_string();
                        if let Some(at) = started.get(&step) {
                            times.entry(step).or_insert_with(|| at.elapsed());
                        }
                    }
                    Event::Run { .. } | Event::StagingClaimed { .. } => {}
                }
            }
            if exited {
                break;
            }
            std::thread::sleep(POLL);
        }
        let output = child.wait_with_output()?;
        ensure!(
            output.status.success(),
            "carbon-upgrade run failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Ok(times)
    }

    pub(crate) fn killed_in(&self) -> String {
        std::fs::read_to_string(self.dir.join("killed-in")).unwrap_or_default()
    }

    pub(crate) fn fingerprint(&self, target: &str) -> Result<Vec<String>> {
        match self.kind {
            Kind::Postgres => {
                let mut client = postgres::Client::connect(target, postgres::NoTls)?;
                let mut prints = fixture::TABLES
                    .iter()
                    .map(|t| {
                        let sql = format!(
                            "SELECT count(*)::text || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM {} x",
                            t.name
                        );
                        Ok(format!("{} {}", t.name, client.query_one(&sql, &[])?.get::<_, String>(0)))
                    })
                    .collect::<Result<Vec<String>>>()?;
                // Counters: every sequence's value, standalone WSO2 ones included.
                let sql = "SELECT coalesce(string_agg(sequencename || '=' || coalesce(last_value::text, 'null'), ',' \
                           ORDER BY sequencename), '') FROM pg_sequences WHERE schemaname = 'public'";
                prints.push(format!(
                    "sequences {}",
                    client.query_one(sql, &[])?.get::<_, String>(0)
                ));
                Ok(prints)
            }
            Kind::MariaDb => {
                let mut conn = mysql::Conn::new(mysql::Opts::from_url(target)?)?;
                conn.query_drop("SET SESSION group_concat_max_len = 1073741824")?;
                let mut prints = fixture::TABLES
                    .iter()
                    .map(|t| {
                        let columns: Vec<String> =
                            t.columns.iter().map(|c| format!("COALESCE(HEX({}), 'NULL')", c.name)).collect();
                        let row = format!("CONCAT_WS(',', {})", columns.join(", "));
                        let sql = format!(
                            "SELECT CONCAT(COUNT(*), ':', COALESCE(MD5(GROUP_CONCAT({row} ORDER BY {row} SEPARATOR '|')), '')) FROM {}",
                            t.name
                        );
                        let print: Option<String> = conn.query_first(sql)?;
                        Ok(format!("{} {}", t.name, print.unwrap_or_default()))
                    })
                    .collect::<Result<Vec<String>>>()?;
                let sql = "SELECT GROUP_CONCAT(CONCAT(TABLE_NAME, '=', COALESCE(AUTO_INCREMENT, 'null')) \
                           ORDER BY TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()";
                let print: Option<String> = conn.query_first(sql)?;
                prints.push(format!("auto_increment {}", print.unwrap_or_default()));
                Ok(prints)
            }
            Kind::Sqlite => sqlite_fingerprint(Path::new(target)),
            Kind::H2 => Ok(vec![file_hash(Path::new(target))?]),
        }
    }

    /// The source and the old home as they were when the scenario was made.
    pub(crate) fn check_source_and_old_home(&self) -> Result<()> {
        let what = self.kind.name();
        ensure!(
            self.fingerprint(&self.source)? == self.source_print,
            "{what}: the source changed"
        );
        ensure!(
            tree_digest(&self.dir.join("old"))? == self.old_tree,
            "{what}: the old home changed"
        );
        Ok(())
    }

    /// Whether the database of `url` exists on its server (servers only).
    pub(crate) fn database_exists(&self, url: &str) -> Result<bool> {
        let name = url.rsplit('/').next().unwrap_or_default().to_owned();
        let server = url.rsplit_once('/').map_or(url, |(s, _)| s);
        match self.kind {
            Kind::Postgres => {
                let mut admin =
                    postgres::Client::connect(&format!("{server}/postgres"), postgres::NoTls)?;
                let rows = admin.query("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])?;
                Ok(!rows.is_empty())
            }
            Kind::MariaDb => {
                let mut admin = mysql::Conn::new(mysql::Opts::from_url(&format!("{server}/"))?)?;
                let found: Option<String> = admin.exec_first(
                    "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
                    (name,),
                )?;
                Ok(found.is_some())
            }
            Kind::Sqlite | Kind::H2 => Ok(Path::new(url).exists()),
        }
    }

    pub(crate) fn check(&self) -> Result<()> {
        let what = self.kind.name();
        ensure!(
            self.fingerprint(&self.staging)? == self.source_print,
            "{what}: staging differs from the source"
        );
        self.check_source_and_old_home()?;
        let new = self.dir.join("new");
        for part in ["repository/deployment/server", "repository/tenants"] {
            let old_files = tree_digest(&self.dir.join("old").join(part))?;
            let new_files = tree_digest(&new.join(part))?;
            let missing: Vec<_> = old_files
                .keys()
                .filter(|k| !new_files.contains_key(*k))
                .collect();
            ensure!(
                missing.is_empty(),
                "{what}: {part}: not replicated: {missing:?}"
            );
        }
        let datasources = std::fs::read_to_string(
            new.join("repository/conf/datasources/master-datasources.xml"),
        )?;
        if matches!(self.kind, Kind::Postgres | Kind::MariaDb) {
            ensure!(
                datasources.contains("_staging"),
                "{what}: the new home is not connected to staging"
            );
        }
        let carbon_xml =
            String::from_utf8_lossy(&std::fs::read(new.join("repository/conf/carbon.xml"))?)
                .into_owned();
        ensure!(
            carbon_xml.matches("<Offset>3</Offset>").count() == 1,
            "{what}: the port offset was not carried exactly once"
        );
        let block = datasources
            .split("<name>WSO2_CARBON_DB</name>")
            .nth(1)
            .and_then(|rest| rest.split("</datasource>").next())
            .unwrap_or_default();
        ensure!(
            ["<url>", "<username>", "<password>", "<driverClassName>"]
                .iter()
                .all(|tag| block.matches(tag).count() == 1),
            "{what}: a datasource edit was applied more than once: {block}"
        );
        if self.kind.is_server() {
            self.check_user_stores(&new, what)?;
        }
        self.check_manifests(&new)?;
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.dir.join("state/report.json"))?)?;
        ensure!(
            report["status"] == "completed",
            "{what}: report status {}",
            report["status"]
        );
        Ok(())
    }

    /// Every replicated store file names staging in exactly one `url` property.
    fn check_user_stores(&self, new: &Path, what: &str) -> Result<()> {
        let mut files = 0;
        for entry in walkdir::WalkDir::new(new.join("repository")) {
            let entry = entry?;
            let path = entry.path();
            let in_store_dir = path.parent().is_some_and(|p| p.ends_with("userstores"));
            if !in_store_dir || path.extension().is_none_or(|e| e != "xml") {
                continue;
            }
            files += 1;
            let text = std::fs::read_to_string(path)?;
            ensure!(
                text.matches("<Property name=\"url\">").count() == 1
                    && text.contains("_staging</Property>"),
                "{what}: {} does not point at staging (exactly once)",
                path.display()
            );
        }
        ensure!(files > 0, "{what}: no user store was replicated");
        Ok(())
    }

    /// The replicated trees against their manifests, with GNU `sha256sum -c` from each root.
    /// A mismatch is accepted only for a user-store file that connect-userstores recorded
    /// editing, and only with exactly the recorded result.
    fn check_manifests(&self, new: &Path) -> Result<()> {
        let manifests = self.dir.join("state/manifests");
        for (part, root) in [
            (
                "deployment-server",
                new.join("repository/deployment/server"),
            ),
            ("tenants", new.join("repository/tenants")),
        ] {
            let sums = manifests.join(format!("{part}.SHA256SUMS"));
            if !sums.exists() {
                continue;
            }
            let output = Command::new("sha256sum")
                .args(["-c", "--quiet", "--strict"])
                .arg(&sums)
                .current_dir(&root)
                .stderr(Stdio::null())
                .output()
                .context("running sha256sum -c")?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            let lines: Vec<&str> = stdout.lines().filter(|l| !l.is_empty()).collect();
            let explained = |line: &&str| {
                line.strip_suffix(": FAILED")
                    .is_some_and(|f| self.recorded_edit(&root.join(f)))
            };
            ensure!(
                output.status.success() || (!lines.is_empty() && lines.iter().all(explained)),
                "{}: {} does not match {} ({lines:?})",
                self.kind.name(),
                root.display(),
                sums.display()
            );
        }
        Ok(())
    }

    /// Whether `file` is recorded in `state/userstore-edits.json` with its current hash as the result.
    fn recorded_edit(&self, file: &Path) -> bool {
        let Ok(bytes) = std::fs::read(self.dir.join("state/userstore-edits.json")) else {
            return false;
        };
        let Ok(record) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            return false;
        };
        let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        record["edits"].as_array().into_iter().flatten().any(|e| {
            e["file"]
                .as_str()
                .is_some_and(|f| canonical(Path::new(f)) == canonical(file))
                && file_hash(file).is_ok_and(|h| e["sha256_after"] == h.as_str())
        })
    }

    pub(crate) fn cleanup(&self, servers: &Servers) -> Result<()> {
        let database = |url: &str| url.rsplit('/').next().unwrap_or_default().to_owned();
        match self.kind {
            Kind::Postgres => {
                let mut admin = postgres::Client::connect(
                    &database_url(&servers.postgres, "postgres"),
                    postgres::NoTls,
                )?;
                for url in [&self.source, &self.staging] {
                    admin.batch_execute(&format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        database(url)
                    ))?;
                }
            }
            Kind::MariaDb => {
                let mut admin =
                    mysql::Conn::new(mysql::Opts::from_url(&database_url(&servers.mariadb, ""))?)?;
                for url in [&self.source, &self.staging] {
                    admin.query_drop(format!("DROP DATABASE IF EXISTS {}", database(url)))?;
                }
            }
            Kind::Sqlite | Kind::H2 => {}
        }
        std::fs::remove_dir_all(&self.dir)
            .with_context(|| format!("removing {}", self.dir.display()))
    }
}

pub(crate) fn server_datasource(
    scheme: &str,
    native: &str,
    user: &str,
    driver: &str,
) -> DatasourceSpec {
    let authority = native.split_once("://").map_or(native, |(_, rest)| rest);
    let host_port_db = authority
        .rsplit_once('@')
        .map_or(authority, |(_, rest)| rest);
    DatasourceSpec {
        url: format!("jdbc:{scheme}://{host_port_db}"),
        username: user.into(),
        password: Secret::Empty,
        driver_class_name: driver.into(),
        ..DatasourceSpec::carbon_h2()
    }
}

/// Per table: the row count and a hash of the sorted rows, read without writing.
fn sqlite_fingerprint(path: &Path) -> Result<Vec<String>> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    fixture::TABLES
        .iter()
        .map(|t| {
            let mut statement = conn.prepare(&format!("SELECT * FROM {}", t.name))?;
            let width = statement.column_count();
            let mut rows: Vec<String> = statement
                .query_map([], |row| {
                    (0..width)
                        .map(|i| row.get_ref(i).map(|v| format!("{v:?}")))
                        .collect::<rusqlite::Result<Vec<_>>>()
                })?
                .map(|r| r.map(|cells| cells.join("\u{1f}")))
                .collect::<rusqlite::Result<_>>()?;
            rows.sort();
            let digest = hex::encode(Sha256::digest(rows.join("\u{1e}").as_bytes()));
            Ok(format!("{} {}:{digest}", t.name, rows.len()))
        })
        .collect()
}

fn file_hash(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(Sha256::digest(bytes)))
}

pub(crate) fn tree_digest(root: &Path) -> Result<BTreeMap<PathBuf, String>> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry?;
        if entry.file_type().is_file() {
            let rel = entry.path().strip_prefix(root)?.to_path_buf();
            out.insert(rel, file_hash(entry.path())?);
        }
    }
    Ok(out)
}

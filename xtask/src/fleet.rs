//! `cargo xtask fleet`: the Ansible playbook (`carbon-upgrade-cli/ansible/cluster.yml`) over a
//! three-node cluster on this machine: hosts with `ansible_connection=local`, each with its own
//! old and new home and state directory, all on one source database (as a cluster's nodes are).
//!
//! Cases: a clean upgrade on PostgreSQL and MariaDB (staging equal to the source, every node
//! connected and verified, the cluster report listing every node); one node's server still
//! running (the play stops before any database is written); a node killed mid-play, then the
//! play run again (it resumes and completes); `--check` (nothing changes). Homes and databases
//! come from `integration::Scenario`, checked outside the tool as there.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use carbon_upgrade_cli::runbook::journal::Event;

use crate::integration::{Kind, Scenario, journal_events, prepare_binary};
use crate::servers::Servers;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only these cases: clean, running, session, killed, shared, check (default: all).
    #[arg(long, value_delimiter = ',')]
    cases: Vec<String>,
}

const NODES: usize = 3;

pub fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    let playbook = ensure_ansible()?;
    let servers = Servers::find_or_start()?;
    servers.print();
    let root = crate::workspace_root().join("target/fleet");
    let binary = prepare_binary(&root)?;
    let wanted = |case: &str| args.cases.is_empty() || args.cases.iter().any(|c| c == case);
    let mut lines = Vec::new();
    if wanted("clean") {
        for kind in [Kind::Postgres, Kind::MariaDb] {
            let cluster = Cluster::create(&root, kind, "clean", &servers)?;
            if kind == Kind::Postgres {
                cluster.with_secret()?;
            }
            let (output, took) = cluster.play(&playbook, &binary, &[])?;
            cluster.require_success(&output)?;
            cluster.check_upgraded()?;
            if kind == Kind::Postgres {
                cluster.check_secret(&output)?;
            }
            let mut again = String::new();
            if kind == Kind::Postgres {
                // Played again: every scope resumes complete and no node task changes anything.
                let (output, took) = cluster.play(&playbook, &binary, &[])?;
                cluster.require_success(&output)?;
                let recap = String::from_utf8_lossy(&output.stdout).into_owned();
                for node in 0..NODES {
                    let line = recap
                        .lines()
                        .find(|l| l.starts_with(&format!("node{node} ")))
                        .unwrap_or_default();
                    ensure!(
                        line.contains("changed=0") && line.contains("failed=0"),
                        "played again, node{node} changed something: {line}"
                    );
                }
                again = format!(
                    ", played again: changed=0 on every node in {:.1}s; the staging password, given only as carbon_upgrade_env, reached every new home and no output, journal or report",
                    took.as_secs_f64()
                );
            }
            let line = format!(
                "clean {}: 3 nodes upgraded and verified, play {:.1}s{again}",
                kind.name(),
                took.as_secs_f64()
            );
            println!("    {line}");
            lines.push(line);
            cluster.cleanup(&servers)?;
        }
    }
    if wanted("running") {
        let cluster = Cluster::create(&root, Kind::Postgres, "running", &servers)?;
        let fake = cluster.fake_server(1)?;
        let result = cluster.play(&playbook, &binary, &[]);
        drop(fake);
        let (output, took) = result?;
        ensure!(
            !output.status.success(),
            "the play passed with node1's server running"
        );
        let said = failure_lines(&output);
        ensure!(
            said.contains("no Carbon server on the old home"),
            "the play did not name the running server: {said}"
        );
        ensure!(
            !cluster.staging_exists()?,
            "a staging database was written although a server ran"
        );
        for node in 0..NODES {
            let state = cluster.state(node);
            ensure!(
                !state.join("journal-databases.jsonl").exists()
                    && !state.join("journal-node.jsonl").exists(),
                "node{node} started a run although a server ran"
            );
        }
        let line = format!(
            "running server on node1: play stopped in {:.1}s before any database was written; it said: {said}",
            took.as_secs_f64()
        );
        println!("    {line}");
        lines.push(line);
        cluster.cleanup(&servers)?;
    }
    if wanted("session") {
        // A node the inventory forgot, still running: it holds a session on the source.
        let cluster = Cluster::create(&root, Kind::Postgres, "session", &servers)?;
        let forgotten = postgres::Client::connect(&cluster.scenario.source, postgres::NoTls)?;
        let result = cluster.play(&playbook, &binary, &[]);
        drop(forgotten);
        let (output, took) = result?;
        ensure!(
            !output.status.success(),
            "the play passed with a session on the source"
        );
        let said = failure_lines(&output);
        ensure!(
            said.contains("nobody else on the source"),
            "the play did not name the session: {said}"
        );
        ensure!(
            !cluster.staging_exists()?,
            "a staging database was written although a session was on the source"
        );
        let line = format!(
            "a session on the source (a node not in the inventory): play stopped in {:.1}s before any database was written; it said: {said}",
            took.as_secs_f64()
        );
        println!("    {line}");
        lines.push(line);
        cluster.cleanup(&servers)?;
    }
    if wanted("killed") {
        let cluster = Cluster::create(&root, Kind::MariaDb, "killed", &servers)?;
        let (output, took, step) = cluster.play_killing(&playbook, &binary, 2, "replicate")?;
        ensure!(
            !output.status.success(),
            "the play passed although node2 was killed"
        );
        let said = failure_lines(&output);
        let (again, took_again) = cluster.play(&playbook, &binary, &[])?;
        cluster.require_success(&again)?;
        cluster.check_upgraded()?;
        let resumed = journal_events(&cluster.state(2).join("journal-node.jsonl"))
            .iter()
            .filter(|e| matches!(e, Event::Run { .. }))
            .count();
        ensure!(
            resumed == 1,
            "node2's journal has {resumed} runs: the re-run did not resume it"
        );
        let line = format!(
            "node2 killed in {step} ({:.1}s, play said: {said}); play re-run resumed and completed in {:.1}s",
            took.as_secs_f64(),
            took_again.as_secs_f64()
        );
        println!("    {line}");
        lines.push(line);
        cluster.cleanup(&servers)?;
    }
    if wanted("shared") {
        let cluster = Cluster::create(&root, Kind::Postgres, "shared", &servers)?;
        let shared = cluster.node(0).join("new/repository/deployment/server");
        for node in 1..NODES {
            // One directory for every node, as an NFS mount would be (same device and inode).
            let own = cluster.node(node).join("new/repository/deployment/server");
            std::fs::remove_dir_all(&own)?;
            std::os::unix::fs::symlink(&shared, &own)?;
        }
        let (output, took) = cluster.play(&playbook, &binary, &[])?;
        cluster.require_success(&output)?;
        cluster.check_upgraded()?;
        let mut replicated_by = Vec::new();
        let mut said = String::new();
        for node in 0..NODES {
            let report: serde_json::Value = serde_json::from_slice(&std::fs::read(
                cluster.state(node).join("report-node.json"),
            )?)?;
            let replicate = report["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|s| s["name"] == "replicate")
                .map(|s| s["detail"].clone())
                .unwrap_or_default();
            let parts = replicate["parts"].as_array().cloned().unwrap_or_default();
            if parts.iter().any(|p| p["name"] == "deployment-server") {
                replicated_by.push(node);
            } else {
                let reason = replicate["skipped"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|s| s["name"] == "deployment-server")
                    .and_then(|s| s["reason"].as_str())
                    .unwrap_or_default()
                    .to_owned();
                ensure!(
                    reason.starts_with("shared with another node"),
                    "node{node} neither replicated deployment/server nor said it was shared: {replicate}"
                );
                said = reason;
            }
        }
        ensure!(
            replicated_by == [0],
            "deployment/server replicated by nodes {replicated_by:?}, not once by node0"
        );
        let line = format!(
            "shared deployment/server: replicated once (node0), node1 and node2 said: {said}; play {:.1}s",
            took.as_secs_f64()
        );
        println!("    {line}");
        lines.push(line);
        cluster.cleanup(&servers)?;
    }
    if wanted("check") {
        let cluster = Cluster::create(&root, Kind::Postgres, "check", &servers)?;
        let before: Vec<_> = (0..NODES)
            .map(|n| crate::integration::tree_digest(&cluster.node(n)))
            .collect::<Result<_>>()?;
        let (output, took) = cluster.play(&playbook, &binary, &["--check"])?;
        cluster.require_success(&output)?;
        for (node, tree) in before.iter().enumerate() {
            ensure!(
                crate::integration::tree_digest(&cluster.node(node))? == *tree,
                "--check changed node{node}"
            );
        }
        ensure!(!cluster.staging_exists()?, "--check created staging");
        let report = cluster.cluster_report()?;
        let planned = report["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|n| n["status"] == "planned")
            .count();
        ensure!(
            planned == NODES,
            "--check planned {planned} nodes: {report}"
        );
        let line = format!(
            "--check: {NODES} nodes planned, nothing changed, {:.1}s",
            took.as_secs_f64()
        );
        println!("    {line}");
        lines.push(line);
        cluster.cleanup(&servers)?;
    }
    println!(
        "==> fleet: passed in {:.0}s\n    {}",
        started.elapsed().as_secs_f64(),
        lines.join("\n    ")
    );
    Ok(())
}

/// `ansible-playbook` on PATH, else Debian's `ansible-core`, else PyPI's in a venv under
/// target/. Returns the `ansible-playbook` to run.
fn ensure_ansible() -> Result<PathBuf> {
    let venv = crate::workspace_root().join("target/ansible-venv");
    for candidate in [
        PathBuf::from("ansible-playbook"),
        venv.join("bin/ansible-playbook"),
    ] {
        if works(&candidate) {
            return Ok(candidate);
        }
    }
    println!("==> fleet: installing ansible-core (apt-get)");
    let apt = Command::new("sh")
        .args([
            "-c",
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ansible-core",
        ])
        .status();
    if apt.is_ok_and(|s| s.success()) && works(Path::new("ansible-playbook")) {
        return Ok(PathBuf::from("ansible-playbook"));
    }
    println!(
        "==> fleet: Debian's ansible-core is unusable; installing it from PyPI into {}",
        venv.display()
    );
    crate::run_step(
        "python3 -m venv",
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
    )?;
    crate::run_step(
        "pip install ansible-core",
        Command::new(venv.join("bin/pip")).args(["install", "-q", "ansible-core"]),
    )?;
    let playbook = venv.join("bin/ansible-playbook");
    ensure!(works(&playbook), "{} does not run", playbook.display());
    Ok(playbook)
}

fn works(playbook: &Path) -> bool {
    Command::new(playbook)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The task lines of a failed play that say why (`fatal:` / `FAILED!` and the message).
fn failure_lines(output: &Output) -> String {
    let text = String::from_utf8_lossy(&output.stdout);
    let messages: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("fatal:") || l.contains("FAILED!"))
        .map(|l| {
            let msg = l
                .split("\"msg\": \"")
                .nth(1)
                .and_then(|m| m.split('"').next())
                .unwrap_or(l);
            let host = l
                .split('[')
                .nth(1)
                .and_then(|h| h.split(']').next())
                .unwrap_or("?");
            format!("[{host}] {msg}")
        })
        .collect();
    messages.join(" | ")
}

/// Three nodes on one source: node0 is an integration scenario, node1 and node2 copies of its
/// homes (each node its own old and new home, as on separate machines).
struct Cluster {
    scenario: Scenario,
    root: PathBuf,
}

/// The staging password of the secrets case: given to the play only through a vars file as
/// `carbon_upgrade_env`, named in each node's upgrade.toml by `staging_password_env`.
/// (PostgreSQL's test server trusts local connections, so any password is accepted.)
const SECRET: &str = "fleet-Secret-7f3a9c";
const SECRET_ENV: &str = "CARBON_FLEET_STAGING_PASSWORD";

impl Cluster {
    fn create(root: &Path, kind: Kind, label: &str, servers: &Servers) -> Result<Cluster> {
        let scenario = Scenario::create(root, kind, &format!("fleet_{label}"), servers)?;
        let cluster = Cluster {
            root: root.to_path_buf(),
            scenario,
        };
        for node in 1..NODES {
            let dir = cluster.node(node);
            std::fs::create_dir_all(&dir)?;
            for home in ["old", "new"] {
                let status = Command::new("cp")
                    .arg("-a")
                    .arg(cluster.node(0).join(home))
                    .arg(dir.join(home))
                    .status()?;
                ensure!(status.success(), "copying node0's {home} home");
            }
        }
        Ok(cluster)
    }

    fn node(&self, node: usize) -> PathBuf {
        if node == 0 {
            self.scenario.dir.clone()
        } else {
            self.scenario.dir.with_extension(format!("node{node}"))
        }
    }

    fn state(&self, node: usize) -> PathBuf {
        self.node(node).join("state")
    }

    fn fleet_dir(&self) -> PathBuf {
        self.scenario.dir.with_extension("fleet")
    }

    /// Every node reads an upgrade.toml naming the staging password's variable; the play
    /// gets the value from a vars file (never an argument).
    fn with_secret(&self) -> Result<()> {
        for node in 0..NODES {
            std::fs::write(
                self.node(node).join("upgrade.toml"),
                format!("[datasources.WSO2_CARBON_DB]\nstaging_password_env = \"{SECRET_ENV}\"\n"),
            )?;
        }
        std::fs::create_dir_all(self.fleet_dir())?;
        std::fs::write(
            self.fleet_dir().join("secrets.json"),
            serde_json::json!({ "carbon_upgrade_env": { SECRET_ENV: SECRET } }).to_string(),
        )?;
        Ok(())
    }

    /// The secret is in each new home's datasource (that is its use) and nowhere else: not in
    /// the play's output, a journal, a report, databases.json or the cluster report.
    fn check_secret(&self, output: &Output) -> Result<()> {
        for (what, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
            ensure!(
                !String::from_utf8_lossy(bytes).contains(SECRET),
                "the play's {what} shows the secret"
            );
        }
        let mut dirs = vec![self.fleet_dir()];
        dirs.extend((0..NODES).map(|n| self.state(n)));
        for dir in dirs {
            for entry in walkdir::WalkDir::new(&dir) {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy();
                if !entry.file_type().is_file() || name == "secrets.json" {
                    continue;
                }
                if entry.path().components().any(|c| c.as_os_str() == "backup") {
                    continue; // the old home's backup: the old home never held it
                }
                let text = String::from_utf8_lossy(&std::fs::read(entry.path())?).into_owned();
                ensure!(
                    !text.contains(SECRET),
                    "{} holds the secret",
                    entry.path().display()
                );
            }
        }
        for node in 0..NODES {
            let datasources = std::fs::read_to_string(
                self.node(node)
                    .join("new/repository/conf/datasources/master-datasources.xml"),
            )?;
            ensure!(
                datasources.contains(SECRET),
                "node{node}: the staging password did not reach the binary through the environment"
            );
        }
        Ok(())
    }

    fn inventory(&self, binary: &Path) -> Result<PathBuf> {
        let mut text = String::from("[carbon_cluster]\n");
        let secret = self.fleet_dir().join("secrets.json").exists();
        for node in 0..NODES {
            let dir = self.node(node);
            if secret {
                text.push_str(&format!(
                    "node{node} carbon_upgrade_config={}\n",
                    dir.join("upgrade.toml").display()
                ));
            }
            text.push_str(&format!(
                "node{node} ansible_connection=local carbon_old_home={} carbon_new_home={} carbon_state_dir={}\n",
                dir.join("old").display(),
                dir.join("new").display(),
                dir.join("state").display()
            ));
        }
        text.push_str(&format!(
            "\n[carbon_cluster:vars]\ncarbon_upgrade_binary={}\ncarbon_fleet_dir={}\ncarbon_database_host=node0\nansible_python_interpreter={}\n",
            binary.display(),
            self.fleet_dir().display(),
            python_of_ansible()
        ));
        let path = self.fleet_dir().join("inventory.ini");
        std::fs::create_dir_all(self.fleet_dir())?;
        std::fs::write(&path, text)?;
        Ok(path)
    }

    fn command(&self, playbook: &Path, binary: &Path, extra: &[&str]) -> Result<Command> {
        let dir = crate::workspace_root().join("carbon-upgrade-cli/ansible");
        let mut cmd = Command::new(playbook);
        cmd.current_dir(&dir)
            .env("ANSIBLE_CONFIG", dir.join("ansible.cfg"))
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_LOCALHOST_WARNING", "0")
            .arg("-i")
            .arg(self.inventory(binary)?)
            .arg("cluster.yml")
            .args(extra)
            .args(
                self.fleet_dir()
                    .join("secrets.json")
                    .exists()
                    .then(|| format!("-e@{}", self.fleet_dir().join("secrets.json").display())),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Ok(cmd)
    }

    /// Runs the play; its output is kept beside the cluster for reading after a failure.
    fn play(&self, playbook: &Path, binary: &Path, extra: &[&str]) -> Result<(Output, Duration)> {
        let started = Instant::now();
        let output = self
            .command(playbook, binary, extra)?
            .output()
            .context("running ansible-playbook")?;
        let took = started.elapsed();
        self.keep_log(&output)?;
        Ok((output, took))
    }

    fn keep_log(&self, output: &Output) -> Result<()> {
        let mut log = output.stdout.clone();
        log.extend_from_slice(&output.stderr);
        std::fs::write(self.fleet_dir().join("play.log"), log)?;
        Ok(())
    }

    /// Runs the play and SIGKILLs node `node`'s carbon-upgrade once its journal shows `step`
    /// started (the node dying mid-play). Returns the play's output, its time and the step.
    fn play_killing(
        &self,
        playbook: &Path,
        binary: &Path,
        node: usize,
        step: &str,
    ) -> Result<(Output, Duration, String)> {
        let started = Instant::now();
        let child = self.command(playbook, binary, &[])?.spawn()?;
        let journal = self.state(node).join("journal-node.jsonl");
        let deadline = Instant::now() + Duration::from_secs(600);
        let mut killed = None;
        while killed.is_none() && Instant::now() < deadline {
            let reached = journal_events(&journal)
                .iter()
                .any(|e| matches!(e, Event::Started { step: s, .. } if s.to_string() == step));
            if reached && let Some(pid) = process_with(binary, &self.state(node)) {
                let status = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status()?;
                ensure!(status.success(), "kill -KILL {pid} failed");
                killed = Some(step.to_owned());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let output = child.wait_with_output()?;
        self.keep_log(&output)?;
        let Some(step) = killed else {
            bail!(
                "node{node} never reached {step}: {}",
                failure_lines(&output)
            );
        };
        Ok((output, started.elapsed(), step))
    }

    fn require_success(&self, output: &Output) -> Result<()> {
        ensure!(
            output.status.success(),
            "the play failed ({}): {} (log: {})",
            output.status,
            failure_lines(output),
            self.fleet_dir().join("play.log").display()
        );
        Ok(())
    }

    fn cluster_report(&self) -> Result<serde_json::Value> {
        let path = self.fleet_dir().join("cluster-report.json");
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// Staging equals the source (once for the cluster), the source and every old home are
    /// unchanged, every node is connected to staging, replicated, and says completed; the
    /// cluster report lists every node completed.
    fn check_upgraded(&self) -> Result<()> {
        let what = self.scenario.kind.name();
        let source = self.scenario.fingerprint(&self.scenario.source)?;
        ensure!(
            self.scenario.fingerprint(&self.scenario.staging)? == source,
            "{what}: staging differs from the source"
        );
        self.scenario.check_source_and_old_home()?;
        for node in 0..NODES {
            let dir = self.node(node);
            let datasources = std::fs::read_to_string(
                dir.join("new/repository/conf/datasources/master-datasources.xml"),
            )?;
            let staging_db = self.scenario.staging.rsplit('/').next().unwrap_or_default();
            ensure!(
                datasources.contains(staging_db),
                "{what}: node{node} is not connected to {staging_db}"
            );
            for part in ["repository/deployment/server", "repository/tenants"] {
                let old = crate::integration::tree_digest(&dir.join("old").join(part))?;
                let new = crate::integration::tree_digest(&dir.join("new").join(part))?;
                ensure!(
                    old.keys().all(|k| new.contains_key(k)),
                    "{what}: node{node}: {part} not replicated"
                );
            }
            let report: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join("state/report-node.json"))?)?;
            ensure!(
                report["status"] == "completed",
                "{what}: node{node} report {}",
                report["status"]
            );
        }
        let report = self.cluster_report()?;
        let nodes = report["nodes"].as_array().cloned().unwrap_or_default();
        ensure!(
            nodes.len() == NODES && nodes.iter().all(|n| n["status"] == "completed"),
            "{what}: the cluster report does not list every node completed: {report}"
        );
        Ok(())
    }

    fn staging_exists(&self) -> Result<bool> {
        self.scenario.database_exists(&self.scenario.staging)
    }

    /// A process that looks like node `node`'s running Carbon server (pid file + Bootstrap).
    fn fake_server(&self, node: usize) -> Result<FakeServer> {
        let old = self.node(node).join("old");
        let child = Command::new("sh")
            .args(["-c", "sleep 600", "java"])
            .arg(format!("-Dcarbon.home={}", old.display()))
            .arg("org.wso2.carbon.bootstrap.Bootstrap")
            .stdin(Stdio::null())
            .spawn()?;
        let mut pid = format!("{}\n", child.id()).into_bytes();
        pid.resize(100, 0);
        let pid_file = old.join("wso2carbon.pid");
        std::fs::write(&pid_file, pid)?;
        Ok(FakeServer { child, pid_file })
    }

    fn cleanup(self, servers: &Servers) -> Result<()> {
        for node in 1..NODES {
            std::fs::remove_dir_all(self.node(node))?;
        }
        std::fs::remove_dir_all(self.fleet_dir())?;
        let _ = &self.root;
        self.scenario.cleanup(servers)
    }
}

struct FakeServer {
    child: std::process::Child,
    pid_file: PathBuf,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

/// The python Ansible runs modules with: the venv's when Ansible came from PyPI.
fn python_of_ansible() -> String {
    let venv = crate::workspace_root().join("target/ansible-venv/bin/python3");
    if !works(Path::new("ansible-playbook")) && venv.exists() {
        return venv.display().to_string();
    }
    "/usr/bin/python3".into()
}

/// The pid of a running `binary` whose arguments name `state_dir`.
fn process_with(binary: &Path, state_dir: &Path) -> Option<i32> {
    let binary = binary.display().to_string();
    let state = state_dir.display().to_string();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.first() == Some(&binary) && args.iter().any(|a| a == &state) {
            return Some(pid);
        }
    }
    None
}

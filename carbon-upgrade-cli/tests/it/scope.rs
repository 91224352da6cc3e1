//! `run --scope databases` once and `run --scope node --databases FILE` on each node of a
//! cluster: every node's old home uses the same source database; the copy happens once, each
//! node connects to it, replicates and verifies; journals, reports and resume per scope.

use std::path::{Path, PathBuf};
use std::process::Output;

use carbon_config::fixture::{CarbonVersion, ContentScale, DatasourceSpec, HomeSpec, write_home};
use carbon_config::secret::Secret;
use carbon_db::Vendor;
use carbon_db::fixture::{self, Scale};
use carbon_db::testkit::{self, TestDb};

use crate::support::{
    DropOnExit, carbon_upgrade, code, fingerprints, jdbc_url, stderr, tree_digest,
};

/// A cluster of `nodes` nodes, each with an old 4.4.6 home on the shared source and a new 4.4.7.
struct Cluster {
    dir: tempfile::TempDir,
    vendor: Vendor,
    source: TestDb,
    staging: DropOnExit,
    nodes: usize,
}

impl Cluster {
    fn new(vendor: Vendor, nodes: usize) -> Cluster {
        let source = TestDb::new(vendor);
        let scale = Scale::tiny();
        let summary = match vendor {
            Vendor::Postgres => fixture::generate_postgres(&mut source.pg_client(), &scale),
            _ => fixture::generate_mysql(&mut source.mysql_conn(), &scale),
        }
        .unwrap();
        let (scheme, user, driver) = match vendor {
            Vendor::Postgres => ("postgresql", "postgres", "org.postgresql.Driver"),
            _ => ("mysql", "root", "com.mysql.jdbc.Driver"),
        };
        let datasource = DatasourceSpec {
            url: jdbc_url(scheme, source.url()),
            username: user.into(),
            password: Secret::Empty,
            driver_class_name: driver.into(),
            ..DatasourceSpec::carbon_h2()
        };
        let dir = tempfile::tempdir().unwrap();
        for node in 0..nodes {
            let mut old = HomeSpec::new(CarbonVersion::V4_4_6);
            old.port_offset = 3 + node as u16;
            old.tenant_ids = summary.tenant_ids.clone();
            old.datasources = vec![datasource.clone()];
            write_home(&dir.path().join(format!("node{node}/old")), &old).unwrap();
            let mut new = HomeSpec::new(CarbonVersion::V4_4_7);
            new.tenant_ids = Vec::new();
            new.content = ContentScale::Tiny;
            write_home(&dir.path().join(format!("node{node}/new")), &new).unwrap();
        }
        let staging = DropOnExit {
            vendor,
            name: format!("{}_staging", source.name()),
            tls: false,
        };
        Cluster {
            dir,
            vendor,
            source,
            staging,
            nodes,
        }
    }

    fn node(&self, node: usize) -> PathBuf {
        self.dir.path().join(format!("node{node}"))
    }

    /// The database scope runs on node 0's homes with its own state directory.
    fn db_state(&self) -> PathBuf {
        self.dir.path().join("db-state")
    }

    fn databases_file(&self) -> PathBuf {
        self.db_state().join("databases.json")
    }

    fn staging_url(&self) -> String {
        testkit::with_database(&self.staging.server(), &self.staging.name)
    }

    fn cli(&self, verb: &str, node: usize, state: &Path, extra: &[&str]) -> Output {
        let old = self.node(node).join("old").display().to_string();
        let new = self.node(node).join("new").display().to_string();
        let state = state.display().to_string();
        let mut args = vec![
            verb,
            "--old-home",
            &old,
            "--new-home",
            &new,
            "--state-dir",
            &state,
        ];
        args.extend_from_slice(extra);
        carbon_upgrade(&args)
    }

    fn databases(&self, verb: &str) -> Output {
        self.cli(
            verb,
            0,
            &self.db_state(),
            &["--scope", "databases", "--json"],
        )
    }

    fn node_run(&self, verb: &str, node: usize) -> Output {
        let file = self.databases_file().display().to_string();
        let state = self.node(node).join("state");
        self.cli(
            verb,
            node,
            &state,
            &["--scope", "node", "--databases", &file, "--json"],
        )
    }
}

fn outcome(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("not one JSON outcome ({e}): {stdout} / {}", stderr(output)))
}

fn names(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// The databases once, then every node: staging equals the source, each node is connected to
/// it and verified, the old homes and the source unchanged; each scope resumes as done.
fn check(vendor: Vendor) {
    let cluster = Cluster::new(vendor, 2);
    let source_before = fingerprints(vendor, cluster.source.url());
    let old_before: Vec<_> = (0..cluster.nodes)
        .map(|n| tree_digest(&cluster.node(n).join("old")))
        .collect();
    let new0_before = tree_digest(&cluster.node(0).join("new"));

    let output = cluster.databases("run");
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let result = outcome(&output);
    assert_eq!(result["status"], "completed");
    assert_eq!(result["scope"], "databases");
    // In the order they finished: the backup runs beside the copy and may end after it.
    let mut applied = names(&result["applied"]);
    assert_eq!(applied.first().map(String::as_str), Some("preflight"));
    applied.sort();
    assert_eq!(
        applied,
        [
            "backup-db:WSO2_CARBON_DB",
            "copy:WSO2_CARBON_DB",
            "preflight"
        ]
    );
    assert_eq!(
        fingerprints(vendor, &cluster.staging_url()),
        source_before,
        "staging equals the source"
    );
    assert_eq!(
        tree_digest(&cluster.node(0).join("new")),
        new0_before,
        "the database scope does not touch a home"
    );
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cluster.databases_file()).unwrap()).unwrap();
    assert_eq!(file["format"], "carbon-upgrade/databases");
    assert_eq!(file["version"], 1);
    let staged = &file["databases"][0];
    assert_eq!(staged["datasource"], "WSO2_CARBON_DB");
    assert!(
        staged["staging_jdbc"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/{}", cluster.staging.name)),
        "{file}"
    );
    let state_files: Vec<String> = std::fs::read_dir(cluster.db_state())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(state_files.contains(&"journal-databases.jsonl".to_owned()));
    assert!(state_files.contains(&"report-databases.json".to_owned()));
    assert!(!state_files.contains(&"journal.jsonl".to_owned()));

    for (node, old_home) in old_before.iter().enumerate() {
        let output = cluster.node_run("run", node);
        assert_eq!(code(&output), 0, "node {node}: {}", stderr(&output));
        let result = outcome(&output);
        let applied = names(&result["applied"]);
        assert_eq!(applied.first().map(String::as_str), Some("preflight"));
        assert!(applied.contains(&"verify-home".to_owned()), "{applied:?}");
        assert!(
            !applied
                .iter()
                .any(|s| s.starts_with("copy:") || s.starts_with("backup-db:")),
            "a node copies no database on a server: {applied:?}"
        );
        let datasources = std::fs::read_to_string(
            cluster
                .node(node)
                .join("new/repository/conf/datasources/master-datasources.xml"),
        )
        .unwrap();
        assert!(
            datasources.contains(&cluster.staging.name),
            "node {node} connected to staging"
        );
        let carbon_xml = String::from_utf8_lossy(
            &std::fs::read(cluster.node(node).join("new/repository/conf/carbon.xml")).unwrap(),
        )
        .into_owned();
        assert!(
            carbon_xml.contains(&format!("<Offset>{}</Offset>", 3 + node)),
            "node {node}'s own port offset carried"
        );
        for part in ["repository/deployment/server", "repository/tenants"] {
            let old = tree_digest(&cluster.node(node).join("old").join(part));
            let new = tree_digest(&cluster.node(node).join("new").join(part));
            assert!(
                old.keys().all(|k| new.contains_key(k)),
                "node {node}: {part} replicated"
            );
        }
        let report: serde_json::Value = serde_json::from_slice(
            &std::fs::read(cluster.node(node).join("state/report-node.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(report["status"], "completed");
        assert_eq!(
            tree_digest(&cluster.node(node).join("old")),
            *old_home,
            "node {node}'s old home unchanged"
        );
    }
    assert_eq!(
        fingerprints(vendor, cluster.source.url()),
        source_before,
        "source unchanged"
    );

    // resume per scope: each finds its own journal complete and does nothing again.
    let again = outcome(&cluster.databases("resume"));
    assert_eq!(again["status"], "completed");
    assert!(names(&again["applied"]).is_empty(), "{again}");
    assert_eq!(names(&again["already_done"]).len(), 3);
    let again = outcome(&cluster.node_run("resume", 1));
    assert!(names(&again["applied"]).is_empty(), "{again}");
    assert_eq!(cluster.vendor, vendor);
}

#[test]
fn scopes_upgrade_a_two_node_cluster_postgres() {
    check(Vendor::Postgres);
}

#[test]
fn scopes_upgrade_a_two_node_cluster_mariadb() {
    check(Vendor::MySql);
}

/// A node refuses a databases file that does not name its database, and a file of another
/// format, before writing anything; without `--databases` the node scope does not start.
#[test]
fn a_node_refuses_a_databases_file_that_does_not_fit_postgres() {
    let cluster = Cluster::new(Vendor::Postgres, 1);
    let new_before = tree_digest(&cluster.node(0).join("new"));
    let state = cluster.node(0).join("state");
    let flags: [(&[&str], &str); 4] = [
        (&["--scope", "node"], "--scope node needs --databases FILE"),
        (
            &["--databases", "x.json"],
            "--databases is read by --scope node only",
        ),
        (
            &["--scope", "databases", "--databases", "x.json"],
            "--databases is read by --scope node only",
        ),
        (
            &["--scope", "databases", "--shared-deployment-from", "d"],
            "--shared-deployment-from is read by --scope node only",
        ),
    ];
    for (extra, needle) in flags {
        let output = cluster.cli("run", 0, &state, extra);
        assert_eq!(code(&output), 2, "{extra:?}: {}", stderr(&output));
        assert!(
            stderr(&output).contains(needle),
            "{extra:?}: {}",
            stderr(&output)
        );
        assert!(!state.exists(), "{extra:?} wrote the state directory");
    }

    std::fs::create_dir_all(cluster.db_state()).unwrap();
    let cases = [
        (
            r#"{"format":"carbon-upgrade/databases","version":1,"run_id":"r","databases":[]}"#,
            "no datasource WSO2_CARBON_DB",
        ),
        (
            r#"{"format":"carbon-upgrade/databases","version":9,"run_id":"r","databases":[]}"#,
            "version 9; this carbon-upgrade reads carbon-upgrade/databases version 1",
        ),
        ("{}", "not a databases file"),
    ];
    for (text, needle) in cases {
        std::fs::write(cluster.databases_file(), text).unwrap();
        let output = cluster.node_run("run", 0);
        let err = stderr(&output);
        assert_eq!(code(&output), 2, "{err}");
        assert!(err.contains(needle), "{needle}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert_eq!(outcome(&output)["status"], "refused");
        assert!(!state.exists(), "nothing written for {needle}");
    }
    assert_eq!(tree_digest(&cluster.node(0).join("new")), new_before);
}

/// A node whose server runs stops at its preflight with exit 3; `resume --scope node` after
/// the server stopped finishes it. The database scope's journal is not the node's.
#[test]
fn a_node_with_its_server_running_stops_then_resumes_mariadb() {
    let cluster = Cluster::new(Vendor::MySql, 1);
    assert_eq!(code(&cluster.databases("run")), 0);
    let old = cluster.node(0).join("old");
    let mut fake = std::process::Command::new("sh")
        .args(["-c", "read _", "java"])
        .arg(format!("-Dcarbon.home={}", old.display()))
        .arg("org.wso2.carbon.bootstrap.Bootstrap")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut pid = format!("{}\n", fake.id()).into_bytes();
    pid.resize(100, 0);
    std::fs::write(old.join("wso2carbon.pid"), pid).unwrap();
    let output = cluster.node_run("run", 0);
    fake.kill().unwrap();
    fake.wait().unwrap();
    std::fs::remove_file(old.join("wso2carbon.pid")).unwrap();
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    let result = outcome(&output);
    assert_eq!(result["status"], "failed");
    assert_eq!(result["failed_step"], "preflight");
    assert!(
        result["error"]
            .as_str()
            .unwrap()
            .contains("no Carbon server on the old home"),
        "{result}"
    );
    let output = cluster.node_run("resume", 0);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(outcome(&output)["status"], "completed");
}

/// Two nodes on one `deployment/server` (same device and inode): node 0 replicates it, node 1
/// verifies it against node 0's manifest and says so; a file changed behind their backs makes
/// node 1 fail naming it.
#[test]
fn a_shared_deployment_is_replicated_once_postgres() {
    let cluster = Cluster::new(Vendor::Postgres, 2);
    let shared = cluster.node(0).join("new/repository/deployment/server");
    let own = cluster.node(1).join("new/repository/deployment/server");
    std::fs::remove_dir_all(&own).unwrap();
    std::os::unix::fs::symlink(&shared, &own).unwrap();
    assert_eq!(code(&cluster.databases("run")), 0);
    let output = cluster.node_run("run", 0);
    assert_eq!(code(&output), 0, "{}", stderr(&output));

    let from = cluster.node(0).join("state").display().to_string();
    let file = cluster.databases_file().display().to_string();
    let node1 = |verb: &str| {
        cluster.cli(
            verb,
            1,
            &cluster.node(1).join("state"),
            &[
                "--scope",
                "node",
                "--databases",
                &file,
                "--shared-deployment-from",
                &from,
                "--json",
            ],
        )
    };
    // Tampered: one replicated file differs from node 0's manifest.
    let victim = walkdir::WalkDir::new(&shared)
        .into_iter()
        .map(Result::unwrap)
        .find(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "war"))
        .or_else(|| {
            walkdir::WalkDir::new(&shared)
                .into_iter()
                .map(Result::unwrap)
                .find(|e| {
                    e.file_type().is_file() && !e.path().to_string_lossy().contains("userstores")
                })
        })
        .unwrap()
        .into_path();
    let original = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, b"changed behind our back").unwrap();
    let output = node1("run");
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    let result = outcome(&output);
    assert_eq!(result["failed_step"], "replicate");
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        result["error"].as_str().unwrap().contains(&name),
        "names {name}: {result}"
    );

    // Restored (bytes, and the mtime node 0's manifest recorded): resume verifies, completes.
    let rel = victim.strip_prefix(&shared).unwrap().display().to_string();
    let manifest = std::fs::read_to_string(
        cluster
            .node(0)
            .join("state/manifests/deployment-server.manifest.jsonl"),
    )
    .unwrap();
    let entry: serde_json::Value = manifest
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["path"] == rel.as_str())
        .unwrap();
    std::fs::write(&victim, original).unwrap();
    let mtime = std::time::UNIX_EPOCH
        + std::time::Duration::new(
            entry["mtime"]["secs"].as_u64().unwrap(),
            entry["mtime"]["nanos"].as_u64().unwrap() as u32,
        );
    std::fs::File::options()
        .write(true)
        .open(&victim)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let output = node1("resume");
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(cluster.node(1).join("state/report-node.json")).unwrap(),
    )
    .unwrap();
    let replicate = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "replicate")
        .unwrap();
    let detail = &replicate["detail"];
    assert!(
        !detail["parts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "deployment-server"),
        "{detail}"
    );
    let reason = detail["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "deployment-server")
        .unwrap()["reason"]
        .as_str()
        .unwrap();
    assert!(
        reason.starts_with("shared with another node (device ")
            && reason.contains("0 missing, 0 extra"),
        "{reason}"
    );
}

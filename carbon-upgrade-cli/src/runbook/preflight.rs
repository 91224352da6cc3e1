//! Preflight: everything that must hold before anything is written. One line per check,
//! pass / warn / fail; a single failure stops the run before its first write.

use std::path::Path;

use carbon_config::home::ProductHome;
use carbon_config::running::{PidFile, carbon_ports, listening_ports, pid_file_state};
use carbon_db::Vendor;
use serde::{Deserialize, Serialize};

use super::Homes;
use super::datasources::Pair;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
}

impl Check {
    pub(crate) fn pass(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check::new(name, Status::Pass, detail)
    }

    pub(crate) fn fail(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check::new(name, Status::Fail, detail)
    }

    fn new(name: impl Into<String>, status: Status, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status,
            detail: detail.into(),
        }
    }
}

pub fn any_failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == Status::Fail)
}

/// Online mode's checks: those of [`run`] except that the old servers keep running and other
/// sessions on the sources are expected (the cut-over proves them gone).
pub(crate) fn run_online(homes: &Homes, pairs: &[Pair], backup_dir: &Path) -> Vec<Check> {
    let mut checks = vec![versions(&homes.old, &homes.new)];
    checks.push(server_stopped("new home", &homes.new));
    checks.push(not_toml_driven(&homes.new));
    for pair in pairs {
        checks.push(staging_state(pair));
    }
    checks.push(dump_tools(pairs));
    checks.push(free_disk(&homes.old.root, pairs, backup_dir));
    checks.extend(old_system(homes, pairs));
    checks.extend(super::secrets::preflight(&homes.old.root, &homes.new.root));
    checks
}

/// The checks that need both homes open; `homes_exist` comes first and gates these.
pub fn run(homes: &Homes, pairs: &[Pair], backup_dir: &Path) -> Vec<Check> {
    let mut checks = vec![versions(&homes.old, &homes.new)];
    checks.push(server_stopped("old home", &homes.old));
    checks.push(server_stopped("new home", &homes.new));
    checks.push(not_toml_driven(&homes.new));
    for pair in pairs {
        checks.push(source_sessions(pair));
        checks.push(staging_state(pair));
    }
    checks.push(dump_tools(pairs));
    checks.push(free_disk(&homes.old.root, pairs, backup_dir));
    checks.extend(old_system(homes, pairs));
    checks.extend(super::secrets::preflight(&homes.old.root, &homes.new.root));
    checks
}

/// verify-home's offline checks on the old home and its database (read-only): what the old
/// system already gets wrong is shown before anything is done, and is not blamed on the
/// upgrade later. Warnings only: the upgrade cannot be asked to fix the old system.
pub(crate) fn old_system(homes: &Homes, pairs: &[Pair]) -> Vec<Check> {
    let name = "old system";
    let db = super::datasources::realm_pair(&homes.old, pairs).map(|p| &p.source);
    let report = match carbon_verify::verify_old_system(&homes.old.root, db) {
        Ok(report) => report,
        Err(err) => {
            return vec![Check::new(
                name,
                Status::Warn,
                format!("the offline checks could not run on the old home: {err}"),
            )];
        }
    };
    let findings: Vec<Check> = report
        .findings
        .iter()
        .filter(|f| f.severity != carbon_verify::Severity::Info)
        .map(|f| {
            Check::new(
                name,
                Status::Warn,
                format!("{} {} {}: {}", f.severity, f.check, f.object, f.message),
            )
        })
        .collect();
    if findings.is_empty() {
        return vec![Check::new(
            name,
            Status::Pass,
            "the offline checks find nothing wrong with the old home and database",
        )];
    }
    findings
}

/// Both homes exist and are different directories.
pub fn homes_exist(old: &Path, new: &Path) -> Check {
    let name = "homes exist and differ";
    for (label, home) in [("old", old), ("new", new)] {
        if !home.join("repository/conf").is_dir() {
            return Check::new(
                name,
                Status::Fail,
                format!(
                    "{label} home {} has no repository/conf: not a Carbon product home",
                    home.display()
                ),
            );
        }
    }
    let same = old.canonicalize().ok() == new.canonicalize().ok();
    if same {
        return Check::new(
            name,
            Status::Fail,
            format!("old and new home are both {}", old.display()),
        );
    }
    Check::new(
        name,
        Status::Pass,
        format!("old {}, new {}", old.display(), new.display()),
    )
}

/// The product version: `bin/version.txt` (`WSO2 Carbon Framework v4.4.7`), else carbon.xml's
/// `<Version>` unless it is an unfiltered build placeholder such as `${product.version}`.
pub(crate) fn version_of(home: &ProductHome) -> Option<String> {
    let from_txt = home
        .version_txt
        .as_ref()
        .and_then(|t| t.rsplit(" v").next().map(str::to_owned));
    let from_xml = home.version.clone().filter(|v| !v.contains("${"));
    from_txt.or(from_xml)
}

fn numeric(version: &str) -> Vec<u64> {
    version
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn versions(old: &ProductHome, new: &ProductHome) -> Check {
    let name = "versions";
    let (Some(old_v), Some(new_v)) = (version_of(old), version_of(new)) else {
        return Check::new(
            name,
            Status::Warn,
            "a home does not state its version (bin/version.txt, carbon.xml <Version>)",
        );
    };
    let detail = format!("old {old_v}, new {new_v}");
    match numeric(&old_v).cmp(&numeric(&new_v)) {
        std::cmp::Ordering::Less => Check::new(name, Status::Pass, detail),
        std::cmp::Ordering::Equal => {
            Check::new(name, Status::Warn, format!("{detail}: the same version"))
        }
        std::cmp::Ordering::Greater => Check::new(
            name,
            Status::Fail,
            format!("{detail}: the new home is older"),
        ),
    }
}

pub(crate) fn server_stopped(label: &str, home: &ProductHome) -> Check {
    let name = format!("no Carbon server on the {label}");
    let pid = pid_file_state(&home.root);
    let offset = match &pid {
        PidFile::Running {
            port_offset: Some(offset),
            ..
        } => *offset,
        _ => home.ports.offset,
    };
    if let PidFile::Running { pid, .. } = pid {
        return Check::new(
            name,
            Status::Fail,
            format!(
                "process {pid} runs org.wso2.carbon.bootstrap.Bootstrap for {}: stop it first",
                home.root.display()
            ),
        );
    }
    let listening = listening_ports(&carbon_ports(offset));
    if !listening.is_empty() {
        return Check::new(
            name,
            Status::Fail,
            format!(
                "ports {listening:?} (9443/9763 + offset {offset}) accept connections: a Carbon server may be running"
            ),
        );
    }
    let note = match pid {
        PidFile::Stale { pid: Some(pid) } => {
            format!("stale wso2carbon.pid ({pid}, not running); ports free")
        }
        _ => format!("no live pid; ports 9443/9763 + offset {offset} free"),
    };
    Check::new(name, Status::Pass, note)
}

fn not_toml_driven(home: &ProductHome) -> Check {
    let name = "new home configured by XML";
    if home
        .root
        .join(carbon_config::home::DEPLOYMENT_TOML)
        .is_file()
    {
        return Check::new(
            name,
            Status::Fail,
            "repository/conf/deployment.toml exists: a Carbon 4.5+ product regenerates its XML at start-up",
        );
    }
    Check::new(name, Status::Pass, "Carbon 4.4 XML configuration")
}

pub(crate) fn source_sessions(pair: &Pair) -> Check {
    let name = format!("{}: nobody else on the source", pair.name);
    if pair.embedded {
        let files = super::datasources::embedded_files(pair);
        if files.is_empty() {
            return Check::new(
                name,
                Status::Fail,
                format!("{} has no database file", pair.source),
            );
        }
        let lock = pair.source.path().map(|p| p.with_extension("lock.db"));
        if let Some(lock) = lock.filter(|l| l.exists()) {
            return Check::new(
                name,
                Status::Warn,
                format!(
                    "{} exists: a server had the database open (or was killed)",
                    lock.display()
                ),
            );
        }
        return Check::new(
            name,
            Status::Pass,
            format!("embedded, {} file(s)", files.len()),
        );
    }
    match carbon_db::backup::other_sessions(&pair.source) {
        Ok(sessions) if sessions.is_empty() => Check::new(
            name,
            Status::Pass,
            format!("{} has no other session", pair.source),
        ),
        Ok(sessions) => {
            let who: Vec<String> = sessions
                .iter()
                .map(|s| format!("{}@{}", s.user, s.host))
                .collect();
            Check::new(
                name,
                Status::Fail,
                format!(
                    "{} session(s) on {}: {}; stop every server using it",
                    sessions.len(),
                    pair.source,
                    who.join(", ")
                ),
            )
        }
        Err(err) => Check::new(name, Status::Fail, carbon_db::error_chain(&err)),
    }
}

fn staging_state(pair: &Pair) -> Check {
    let name = format!("{}: staging empty or absent", pair.name);
    if let Err(err) = carbon_db::check_pair(&pair.source, &pair.staging) {
        return Check::new(name, Status::Fail, err.to_string());
    }
    if pair.embedded {
        return Check::new(
            name,
            Status::Pass,
            format!("copied as files to {}", pair.staging),
        );
    }
    // The same answer the copy and a reset use: preflight cannot pass what copy refuses.
    match carbon_db::contents(&pair.staging) {
        Ok(held) if !held.exists => Check::new(
            name,
            Status::Pass,
            format!("{} is absent and will be created", pair.staging),
        ),
        Ok(held) => match held.require_empty() {
            Ok(()) => Check::new(
                name,
                Status::Pass,
                format!("{} exists and is empty", pair.staging),
            ),
            Err(err) => Check::new(name, Status::Fail, err.to_string()),
        },
        Err(err) => Check::new(name, Status::Fail, err.to_string()),
    }
}

fn dump_tools(pairs: &[Pair]) -> Check {
    let name = "native dump tools";
    let mut found = Vec::new();
    for vendor in [Vendor::Postgres, Vendor::MySql] {
        if !pairs.iter().any(|p| p.vendor == vendor) {
            continue;
        }
        let Some(names) = carbon_db::backup::dump_tool(vendor) else {
            continue;
        };
        match carbon_db::backup::find_tool(names) {
            Some(path) => found.push(path.display().to_string()),
            None => {
                let package = if vendor == Vendor::Postgres {
                    "postgresql-client"
                } else {
                    "mariadb-client"
                };
                return Check::new(
                    name,
                    Status::Fail,
                    format!(
                        "{} not found on PATH: apt-get install -y {package}",
                        names.join(" or ")
                    ),
                );
            }
        }
    }
    if found.is_empty() {
        return Check::new(
            name,
            Status::Pass,
            "none needed (embedded databases are copied as files)",
        );
    }
    Check::new(name, Status::Pass, found.join(", "))
}

fn free_disk(old_home: &Path, pairs: &[Pair], backup_dir: &Path) -> Check {
    let name = "free disk for the backup";
    let home_bytes: u64 = walkdir::WalkDir::new(old_home)
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    let db_bytes: u64 = pairs
        .iter()
        .filter_map(|p| carbon_db::inspect(&p.source).ok())
        .map(|i| i.bytes)
        .sum();
    let needed = home_bytes + db_bytes;
    let mut probe = backup_dir.to_path_buf();
    while !probe.exists() {
        if !probe.pop() {
            probe = std::path::PathBuf::from(".");
            break;
        }
    }
    match rustix::fs::statvfs(&probe) {
        Ok(stat) => {
            let free = stat.f_bavail.saturating_mul(stat.f_frsize);
            let detail = format!(
                "need ~{} MiB (home + databases), {} MiB free at {}",
                needed >> 20,
                free >> 20,
                probe.display()
            );
            let status = if free > needed.saturating_add(needed / 10) {
                Status::Pass
            } else {
                Status::Fail
            };
            Check::new(name, status, detail)
        }
        Err(err) => Check::new(
            name,
            Status::Warn,
            format!("cannot read free space at {}: {err}", probe.display()),
        ),
    }
}

/// The checks of one scope: the database scope asks about the databases on servers (sessions,
/// staging, dump tools, disk for their backups); a node about itself (versions, its servers
/// stopped, XML configuration, its embedded databases, disk, the old system's findings).
pub fn run_scope(
    scope: super::scope::Scope,
    homes: &Homes,
    pairs: &[Pair],
    backup_dir: &Path,
) -> Vec<Check> {
    use super::scope::Scope;
    let (servers, embedded): (Vec<Pair>, Vec<Pair>) =
        pairs.iter().cloned().partition(|p| !p.embedded);
    match scope {
        Scope::All => run(homes, pairs, backup_dir),
        Scope::Databases => {
            let mut checks = Vec::new();
            for pair in &servers {
                checks.push(source_sessions(pair));
                checks.push(staging_state(pair));
            }
            checks.push(dump_tools(&servers));
            checks.push(free_disk(&homes.old.root, &servers, backup_dir));
            checks
        }
        Scope::Node => {
            let mut checks = vec![versions(&homes.old, &homes.new)];
            checks.push(server_stopped("old home", &homes.old));
            checks.push(server_stopped("new home", &homes.new));
            checks.push(not_toml_driven(&homes.new));
            for pair in &embedded {
                checks.push(source_sessions(pair));
                checks.push(staging_state(pair));
            }
            checks.push(free_disk(&homes.old.root, &embedded, backup_dir));
            checks.extend(old_system(homes, pairs));
            checks
        }
    }
}

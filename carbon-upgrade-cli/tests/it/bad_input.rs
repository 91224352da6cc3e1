//! The bad-input corpus: every command refuses malformed, dangerous or impossible input with
//! one short line on stderr naming the thing at fault, a documented exit code (1 check failed,
//! 2 bad input, 3 unsafe), no panic, and nothing half-written under a final name.
//!
//! Each table row is a command line, the expected code, what the error line must name, the
//! trees that must stay byte-identical and the paths that must not appear.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use carbon_config::fixture::{CarbonVersion, ContentScale, DatasourceSpec, HomeSpec, write_home};
use carbon_db::Vendor;
use carbon_db::fixture::{self, Scale};
use carbon_db::testkit::{self, TestDb};

use crate::support::{DropOnExit, code, copy_tree, jdbc_url, stderr, tree_digest};

pub struct Case {
    pub name: &'static str,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub code: i32,
    /// What the error line must name (a path, a datasource, a key, a URL…).
    pub needle: String,
    /// Trees (or files) that must be byte-identical before and after.
    pub unchanged: Vec<PathBuf>,
    /// Paths that must not exist afterwards.
    pub absent: Vec<PathBuf>,
}

impl Case {
    pub fn new(name: &'static str, args: &[&dyn AsRef<std::ffi::OsStr>], code: i32) -> Case {
        Case {
            name,
            args: args
                .iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned())
                .collect(),
            env: Vec::new(),
            code,
            needle: String::new(),
            unchanged: Vec::new(),
            absent: Vec::new(),
        }
    }

    pub fn names(mut self, needle: impl std::fmt::Display) -> Case {
        self.needle = needle.to_string();
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Case {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn unchanged(mut self, path: impl AsRef<Path>) -> Case {
        self.unchanged.push(path.as_ref().to_path_buf());
        self
    }

    pub fn absent(mut self, path: impl AsRef<Path>) -> Case {
        self.absent.push(path.as_ref().to_path_buf());
        self
    }
}

fn digest(path: &Path) -> BTreeMap<PathBuf, String> {
    if path.is_file() {
        let bytes = std::fs::read(path).unwrap();
        return BTreeMap::from([(path.to_path_buf(), format!("{:?}", bytes))]);
    }
    if path.exists() {
        tree_digest(path)
    } else {
        BTreeMap::new()
    }
}

fn run_with_env(args: &[String], env: &[(String, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_carbon-upgrade"));
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Runs one case; `Err` says what is wrong with the command's behaviour.
pub fn check(case: &Case) -> Result<(), String> {
    let before: Vec<_> = case.unchanged.iter().map(|p| digest(p)).collect();
    let output = run_with_env(&case.args, &case.env);
    let err = stderr(&output);
    let mut problems = Vec::new();
    if code(&output) != case.code {
        problems.push(format!("exit {} (expected {})", code(&output), case.code));
    }
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        if err.contains(bad) {
            problems.push(format!("stderr has {bad:?}"));
        }
    }
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    match errors.as_slice() {
        [line] => {
            if !line.contains(&case.needle) {
                problems.push(format!("the error does not name {:?}", case.needle));
            }
            // A cause printed twice (Display with the source, and the source again).
            let parts: Vec<&str> = line.split(": ").filter(|p| p.len() >= 12).collect();
            if let Some(twice) = parts
                .iter()
                .enumerate()
                .find(|(i, p)| parts[i + 1..].contains(p))
            {
                problems.push(format!("the error repeats {:?}", twice.1));
            }
            if line.len() > 400 {
                problems.push(format!("the error is {} characters long", line.len()));
            }
        }
        // Exit 1 and 3 may report through the command's own output (preflight's FAIL lines).
        [] if case.code != 2 => {
            let all = format!("{}{err}", String::from_utf8_lossy(&output.stdout));
            if !all.contains(&case.needle) {
                problems.push(format!("the output does not name {:?}", case.needle));
            }
        }
        _ => problems.push(format!("{} error lines", errors.len())),
    }
    for (path, before) in case.unchanged.iter().zip(before) {
        if digest(path) != before {
            problems.push(format!("{} changed", path.display()));
        }
    }
    for path in &case.absent {
        if path.symlink_metadata().is_ok() {
            problems.push(format!("{} was written", path.display()));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}\n    carbon-upgrade {}\n    stderr: {err}",
            case.name,
            problems.join("; "),
            case.args.join(" ")
        ))
    }
}

/// Runs a table; fails listing every case that misbehaved, and prints the tally.
#[allow(clippy::print_stdout)]
pub fn check_all(suite: &str, cases: &[Case]) {
    let failures: Vec<String> = cases.iter().filter_map(|c| check(c).err()).collect();
    println!(
        "{suite}: {} passed, {} failed",
        cases.len() - failures.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// An old 4.4.6 home on an embedded SQLite WSO2_CARBON_DB and a new 4.4.7 home.
pub struct Homes {
    pub dir: tempfile::TempDir,
    _db: TestDb,
}

impl Homes {
    pub fn new() -> Homes {
        let db = TestDb::new(Vendor::Sqlite);
        let summary = fixture::generate_sqlite(&mut db.sqlite_conn(), &Scale::tiny()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let datasource = DatasourceSpec::carbon_sqlite();
        let mut old = HomeSpec::new(CarbonVersion::V4_4_6);
        old.tenant_ids = summary.tenant_ids.clone();
        old.datasources = vec![datasource.clone()];
        let homes = Homes { dir, _db: db };
        write_home(&homes.old(), &old).unwrap();
        let embedded = homes.old().join("repository/database/WSO2CARBON_DB.db");
        std::fs::create_dir_all(embedded.parent().unwrap()).unwrap();
        std::fs::copy(homes._db.sqlite_path(), embedded).unwrap();
        let mut new = HomeSpec::new(CarbonVersion::V4_4_7);
        new.tenant_ids = Vec::new();
        new.content = ContentScale::Tiny;
        new.datasources = vec![datasource];
        write_home(&homes.new_home(), &new).unwrap();
        homes
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn old(&self) -> PathBuf {
        self.path("old")
    }

    pub fn new_home(&self) -> PathBuf {
        self.path("new")
    }

    /// A copy of the old home under `name`, for variants.
    pub fn variant(&self, name: &str) -> PathBuf {
        let home = self.path(name);
        copy_tree(&self.old(), &home);
        home
    }

    /// `command --old-home OLD --new-home NEW --state-dir STATE` as owned strings.
    pub fn runbook(&self, command: &str, old: &Path, state: &Path) -> Vec<String> {
        vec![
            command.into(),
            "--old-home".into(),
            old.display().to_string(),
            "--new-home".into(),
            self.new_home().display().to_string(),
            "--state-dir".into(),
            state.display().to_string(),
        ]
    }
}

fn datasources_xml(home: &Path) -> PathBuf {
    home.join("repository/conf/datasources/master-datasources.xml")
}

/// Replaces the old home's datasource (url, user, password element) in place.
pub fn set_datasource(home: &Path, url: &str, user: &str, password_element: &str) {
    let file = datasources_xml(home);
    let text = std::fs::read_to_string(&file).unwrap();
    let start = text.find("<url>").unwrap();
    let end = text.find("</url>").unwrap() + "</url>".len();
    let mut text = format!("{}<url>{url}</url>{}", &text[..start], &text[end..]);
    let user_start = text.find("<username>").unwrap();
    let user_end = text.find("</username>").unwrap() + "</username>".len();
    text = format!(
        "{}<username>{user}</username>{}",
        &text[..user_start],
        &text[user_end..]
    );
    let (pw_start, pw_end) = match (text.find("<password>"), text.find("</password>")) {
        (Some(s), Some(e)) => (s, e + "</password>".len()),
        _ => {
            let s = text.find("<password").unwrap();
            (s, s + text[s..].find("/>").unwrap() + 2)
        }
    };
    text = format!("{}{password_element}{}", &text[..pw_start], &text[pw_end..]);
    std::fs::write(&file, text).unwrap();
}

/// A process whose command line says it is Carbon on `home`, recorded in wso2carbon.pid.
pub struct FakeCarbon(std::process::Child);

impl FakeCarbon {
    pub fn start(home: &Path) -> FakeCarbon {
        let child = Command::new("sh")
            .args(["-c", "read _", "java"])
            .arg(format!("-Dcarbon.home={}", home.display()))
            .arg("org.wso2.carbon.bootstrap.Bootstrap")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut pid = format!("{}\n", child.id()).into_bytes();
        pid.resize(100, 0);
        std::fs::write(home.join("wso2carbon.pid"), pid).unwrap();
        FakeCarbon(child)
    }
}

impl Drop for FakeCarbon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A tmpfs mounted for the test (needs root with CAP_SYS_ADMIN: fails loudly otherwise).
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(path: &Path, options: &str) -> Mount {
        std::fs::create_dir_all(path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(path)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mounting a tmpfs at {} failed; this test needs root with CAP_SYS_ADMIN",
            path.display()
        );
        Mount(path.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Every file under `dst` holds the bytes of its counterpart under `src` (no half-written
/// file under a final name) and no temp file is left.
fn assert_only_source_bytes(src: &Path, dst: &Path) {
    if !dst.exists() {
        return;
    }
    for entry in walkdir::WalkDir::new(dst) {
        let entry = entry.unwrap();
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(dst).unwrap();
        let name = rel.to_string_lossy();
        assert!(
            !name.contains(".carbon-tmp") && !name.ends_with(".tmp"),
            "temp file left: {name}"
        );
        if name.contains("manifest") || name.contains("SHA256SUMS") {
            panic!("a manifest was written for an incomplete tree: {name}");
        }
        let original = src.join(rel);
        assert_eq!(
            std::fs::read(entry.path()).unwrap(),
            std::fs::read(&original).unwrap_or_default(),
            "{} is not the source's bytes",
            entry.path().display()
        );
    }
}

/// The faulty inputs of the files/config/runbook corpus, made once and shared by its tables.
struct Corpus {
    h: Homes,
    old: PathBuf,
    new: PathBuf,
    carbon_xml: PathBuf,
    missing: PathBuf,
    broken_xml: PathBuf,
    ambiguous: PathBuf,
    malformed_home: PathBuf,
    bad_toml: PathBuf,
    unknown_key: PathBuf,
    unknown_ds: PathBuf,
    unset_env: PathBuf,
    vault: PathBuf,
    oracle: PathBuf,
    running: PathBuf,
    _fake: FakeCarbon,
    escaping: PathBuf,
    with_fifo: PathBuf,
    tree: PathBuf,
    replica: PathBuf,
    manifest: PathBuf,
    corrupted: PathBuf,
    tampered: PathBuf,
    full_backup: PathBuf,
    state: PathBuf,
    torn_state: PathBuf,
    corrupt_state: PathBuf,
    headless_state: PathBuf,
    other: Homes,
    foreign_args: Vec<String>,
    sqlite_src: PathBuf,
    sqlite_busy: PathBuf,
}

impl Corpus {
    fn new() -> Corpus {
        let h = Homes::new();
        let (old, new) = (h.old(), h.new_home());
        let carbon_xml = old.join("repository/conf/carbon.xml");
        let missing = h.path("missing-home");

        // Files with faults.
        let broken_xml = h.path("broken.xml");
        std::fs::write(&broken_xml, "<Server><Ports><Offset>1</Ports></Server>\n").unwrap();
        let ambiguous = h.path("ambiguous.xml");
        std::fs::write(&ambiguous, "<a>\n  <b>1</b>\n  <b>2</b>\n</a>\n").unwrap();
        let malformed_home = h.variant("malformed-home");
        std::fs::write(
            datasources_xml(&malformed_home),
            "<datasources-configuration><datasources><datasource>\n",
        )
        .unwrap();
        let bad_toml = h.path("bad.toml");
        std::fs::write(&bad_toml, "old_home = \"/x\n").unwrap();
        let unknown_key = h.path("unknown.toml");
        std::fs::write(&unknown_key, "old_hme = \"/x\"\n").unwrap();
        let unknown_ds = h.path("unknown-ds.toml");
        std::fs::write(
            &unknown_ds,
            format!(
                "old_home = {old:?}\nnew_home = {new:?}\n[datasources.NO_SUCH_DB]\nstaging_url = \"jdbc:sqlite:x.db\"\n"
            ),
        )
        .unwrap();
        let unset_env = h.path("unset-env.toml");
        std::fs::write(
            &unset_env,
            format!(
                "old_home = {old:?}\nnew_home = {new:?}\n[datasources.WSO2_CARBON_DB]\nsource_password_env = \"CARBON_IT_UNSET_PW\"\n"
            ),
        )
        .unwrap();
        let vault = h.variant("vault-home");
        set_datasource(
            &vault,
            "jdbc:postgresql://127.0.0.1:1/carbon",
            "carbon",
            "<password svns:secretAlias=\"Datasources.WSO2_CARBON_DB.Configuration.Password\"/>",
        );
        let oracle = h.variant("oracle-home");
        set_datasource(
            &oracle,
            "jdbc:oracle:thin:@127.0.0.1:1521/orcl",
            "carbon",
            "<password>x</password>",
        );
        let running = h.variant("running-home");
        let _fake = FakeCarbon::start(&running);

        // Trees with faults.
        let escaping = h.path("escaping");
        std::fs::create_dir_all(&escaping).unwrap();
        std::fs::write(escaping.join("a.jar"), "a").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", escaping.join("passwd")).unwrap();
        let with_fifo = h.path("with-fifo");
        std::fs::create_dir_all(&with_fifo).unwrap();
        std::fs::write(with_fifo.join("a.jar"), "a").unwrap();
        assert!(
            Command::new("mkfifo")
                .arg(with_fifo.join("pipe"))
                .status()
                .unwrap()
                .success()
        );
        let tree = h.path("tree");
        std::fs::create_dir_all(tree.join("webapps")).unwrap();
        std::fs::write(tree.join("webapps/ROOT.war"), "war").unwrap();
        let replica = h.path("replica");
        let made = run_with_env(
            &[
                "fs".into(),
                "copy".into(),
                tree.display().to_string(),
                replica.display().to_string(),
            ],
            &[],
        );
        assert_eq!(code(&made), 0, "{}", stderr(&made));
        let manifest = h.path("replica.manifest.jsonl");
        assert!(manifest.exists(), "fs copy writes DST.manifest.jsonl");
        let corrupted = h.path("corrupted.manifest.jsonl");
        let mut text = std::fs::read_to_string(&manifest).unwrap();
        text.insert_str(text.len() / 2, "}{\u{0}");
        std::fs::write(&corrupted, text).unwrap();
        let tampered = h.path("tampered");
        copy_tree(&replica, &tampered);
        std::fs::write(tampered.join("webapps/ROOT.war"), "WAR").unwrap();
        let full_backup = h.path("full-backup");
        std::fs::create_dir_all(&full_backup).unwrap();
        std::fs::write(full_backup.join("unrelated.txt"), "keep").unwrap();

        // Journals with faults: a completed run's state, then copies of it damaged.
        let state = h.path("state");
        let done = run_with_env(&h.runbook("run", &old, &state), &[]);
        assert_eq!(code(&done), 0, "{}", stderr(&done));
        let journal = std::fs::read_to_string(state.join("journal.jsonl")).unwrap();
        let torn_state = h.path("torn-state");
        std::fs::create_dir_all(&torn_state).unwrap();
        std::fs::write(
            torn_state.join("journal.jsonl"),
            format!("{journal}{{\"event\":\"started\",\"st"),
        )
        .unwrap();
        let corrupt_state = h.path("corrupt-state");
        std::fs::create_dir_all(&corrupt_state).unwrap();
        let mut lines: Vec<&str> = journal.lines().collect();
        lines.insert(1, "{\"event\":\"started\"");
        std::fs::write(corrupt_state.join("journal.jsonl"), lines.join("\n") + "\n").unwrap();
        let headless_state = h.path("headless-state");
        std::fs::create_dir_all(&headless_state).unwrap();
        std::fs::write(
            headless_state.join("journal.jsonl"),
            journal.lines().skip(1).collect::<Vec<_>>().join("\n") + "\n",
        )
        .unwrap();
        let other = Homes::new();
        let foreign_args = {
            let mut args = other.runbook("resume", &other.old(), &state);
            args[0] = "resume".into();
            args
        };

        let sqlite_src = old.join("repository/database/WSO2CARBON_DB.db");
        let sqlite_busy = h.path("busy.db");
        {
            let conn = rusqlite::Connection::open(&sqlite_busy).unwrap();
            conn.execute_batch("CREATE TABLE leftover (x int)").unwrap();
        }
        Corpus {
            h,
            old,
            new,
            carbon_xml,
            missing,
            broken_xml,
            ambiguous,
            malformed_home,
            bad_toml,
            unknown_key,
            unknown_ds,
            unset_env,
            vault,
            oracle,
            running,
            _fake,
            escaping,
            with_fifo,
            tree,
            replica,
            manifest,
            corrupted,
            tampered,
            full_backup,
            state,
            torn_state,
            corrupt_state,
            headless_state,
            other,
            foreign_args,
            sqlite_src,
            sqlite_busy,
        }
    }
}

/// Bad input to `config show/get/set/diff/connect`.
fn config_cases(c: &Corpus) -> Vec<Case> {
    let Corpus {
        h,
        old,
        new,
        carbon_xml,
        missing,
        broken_xml,
        ambiguous,
        malformed_home,
        ..
    } = c;
    let fresh = |name: &str| h.path(name);
    vec![
        Case::new(
            "config show: missing home",
            &[&"config", &"show", &missing],
            2,
        )
        .names(missing.display()),
        Case::new(
            "config show: malformed XML in the home",
            &[&"config", &"show", &malformed_home],
            2,
        )
        .names("master-datasources.xml"),
        Case::new(
            "config get: malformed XML",
            &[&"config", &"get", &broken_xml, &"Server/Ports/Offset"],
            2,
        )
        .names("broken.xml"),
        Case::new(
            "config get: bad path expression",
            &[&"config", &"get", &carbon_xml, &"Server/[["],
            2,
        )
        .names("Server/[["),
        Case::new(
            "config get: path matches nothing",
            &[&"config", &"get", &carbon_xml, &"Server/Ports/Nope"],
            2,
        )
        .names("Server/Ports/Nope"),
        Case::new(
            "config get: missing file",
            &[&"config", &"get", &fresh("nope.xml"), &"a"],
            2,
        )
        .names("nope.xml"),
        Case::new(
            "config set: ambiguous path",
            &[&"config", &"set", &ambiguous, &"a/b", &"3"],
            2,
        )
        .names("a/b")
        .unchanged(ambiguous)
        .absent(h.path("ambiguous.xml.bak")),
        Case::new(
            "config set: malformed XML",
            &[&"config", &"set", &broken_xml, &"Server/Ports/Offset", &"3"],
            2,
        )
        .names("broken.xml")
        .unchanged(broken_xml)
        .absent(h.path("broken.xml.bak")),
        Case::new(
            "config diff: missing new home",
            &[&"config", &"diff", &old, &missing],
            2,
        )
        .names(missing.display()),
        Case::new(
            "config connect: unknown datasource",
            &[
                &"config",
                &"connect",
                &new,
                &"--datasource",
                &"NO_SUCH_DB=jdbc:postgresql://h/x",
                &"--dry-run",
            ],
            2,
        )
        .names("NO_SUCH_DB")
        .unchanged(new),
        Case::new(
            "config connect: malformed NAME=URL",
            &[
                &"config",
                &"connect",
                &new,
                &"--datasource",
                &"WSO2_CARBON_DB",
                &"--dry-run",
            ],
            2,
        )
        .names("WSO2_CARBON_DB")
        .unchanged(new),
        Case::new(
            "config connect: malformed JDBC URL",
            &[
                &"config",
                &"connect",
                &new,
                &"--datasource",
                &"WSO2_CARBON_DB=jdbc:postgresql",
                &"--dry-run",
            ],
            2,
        )
        .names("jdbc:postgresql")
        .unchanged(new),
        Case::new(
            "config connect: password variable unset",
            &[
                &"config",
                &"connect",
                &new,
                &"--datasource",
                &"WSO2_CARBON_DB=jdbc:postgresql://h/x",
                &"--password-env",
                &"CARBON_IT_UNSET_PW",
            ],
            2,
        )
        .names("CARBON_IT_UNSET_PW")
        .unchanged(new),
        Case::new(
            "config connect: staging == the old database",
            &[
                &"config",
                &"connect",
                &new,
                &"--datasource",
                &"WSO2_CARBON_DB=jdbc:sqlite:repository/database/WSO2CARBON_DB.db",
                &"--old-home",
                &old,
            ],
            3,
        )
        .names("WSO2_CARBON_DB")
        .unchanged(new),
        Case::new(
            "config connect: missing home",
            &[
                &"config",
                &"connect",
                &missing,
                &"--datasource",
                &"WSO2_CARBON_DB=jdbc:postgresql://h/x",
            ],
            2,
        )
        .names(missing.display())
        .absent(missing),
    ]
}

/// Bad input to `db inspect/copy/verify`.
fn db_cases(c: &Corpus) -> Vec<Case> {
    let Corpus {
        h,
        sqlite_src,
        sqlite_busy,
        ..
    } = c;
    let fresh = |name: &str| h.path(name);
    let sqlite = |p: &Path| format!("sqlite:{}", p.display());
    vec![
        Case::new(
            "db inspect: unsupported vendor",
            &[&"db", &"inspect", &"jdbc:oracle:thin:@127.0.0.1:1521/orcl"],
            2,
        )
        .names("Oracle"),
        Case::new(
            "db inspect: malformed URL",
            &[&"db", &"inspect", &"not-a-url"],
            2,
        )
        .names("not-a-url"),
        Case::new(
            "db inspect: missing SQLite file",
            &[&"db", &"inspect", &sqlite(&fresh("none.db"))],
            2,
        )
        .names("none.db")
        .absent(fresh("none.db")),
        Case::new(
            "db copy: vendor mismatch",
            &[
                &"db",
                &"copy",
                &"--from",
                &sqlite(sqlite_src),
                &"--to",
                &"postgres://postgres@127.0.0.1:1/x",
            ],
            2,
        )
        .names("one vendor")
        .unchanged(sqlite_src),
        Case::new(
            "db copy: unsupported target vendor",
            &[
                &"db",
                &"copy",
                &"--from",
                &sqlite(sqlite_src),
                &"--to",
                &"jdbc:sqlserver://h:1433;databaseName=x",
            ],
            2,
        )
        .names("SQL Server")
        .unchanged(sqlite_src),
        Case::new(
            "db copy: staging == source",
            &[
                &"db",
                &"copy",
                &"--from",
                &sqlite(sqlite_src),
                &"--to",
                &sqlite(sqlite_src),
            ],
            3,
        )
        .names("WSO2CARBON_DB.db")
        .unchanged(sqlite_src),
        Case::new(
            "db copy: non-empty staging",
            &[
                &"db",
                &"copy",
                &"--from",
                &sqlite(sqlite_src),
                &"--to",
                &sqlite(sqlite_busy),
            ],
            3,
        )
        .names("busy.db")
        .unchanged(sqlite_src)
        .unchanged(sqlite_busy),
        Case::new(
            "db copy: missing source file",
            &[
                &"db",
                &"copy",
                &"--from",
                &sqlite(&fresh("gone.db")),
                &"--to",
                &sqlite(&fresh("to.db")),
            ],
            2,
        )
        .names("gone.db")
        .absent(fresh("gone.db"))
        .absent(fresh("to.db")),
        Case::new(
            "db verify: vendor mismatch",
            &[
                &"db",
                &"verify",
                &"--from",
                &sqlite(sqlite_src),
                &"--to",
                &"mysql://root@127.0.0.1:1/x",
            ],
            2,
        )
        .names("one vendor"),
    ]
}

/// Bad input to `fs copy/verify/backup/carbon`.
fn fs_cases(c: &Corpus) -> Vec<Case> {
    let Corpus {
        h,
        old,
        new,
        missing,
        escaping,
        with_fifo,
        tree,
        replica,
        manifest,
        corrupted,
        tampered,
        full_backup,
        ..
    } = c;
    let fresh = |name: &str| h.path(name);
    vec![
        Case::new(
            "fs copy: missing source",
            &[&"fs", &"copy", &fresh("no-src"), &fresh("dst1")],
            2,
        )
        .names("no-src")
        .absent(fresh("dst1"))
        .absent(fresh("dst1.manifest.jsonl")),
        Case::new(
            "fs copy: symlink escaping the tree",
            &[&"fs", &"copy", &escaping, &fresh("dst2")],
            2,
        )
        .names("passwd")
        .unchanged(escaping)
        .absent(fresh("dst2"))
        .absent(fresh("dst2.manifest.jsonl")),
        Case::new(
            "fs copy: FIFO in the tree",
            &[&"fs", &"copy", &with_fifo, &fresh("dst3")],
            2,
        )
        .names("pipe")
        .absent(fresh("dst3"))
        .absent(fresh("dst3.manifest.jsonl")),
        Case::new(
            "fs copy: destination inside the source",
            &[&"fs", &"copy", &tree, &tree.join("webapps/inner")],
            2,
        )
        .names(tree.display())
        .unchanged(tree)
        .absent(tree.join("webapps/inner")),
        Case::new(
            "fs verify: missing manifest",
            &[
                &"fs",
                &"verify",
                &replica,
                &"--manifest",
                &fresh("none.jsonl"),
            ],
            2,
        )
        .names("none.jsonl")
        .unchanged(replica),
        Case::new(
            "fs verify: corrupted manifest",
            &[&"fs", &"verify", &replica, &"--manifest", &corrupted],
            2,
        )
        .names("corrupted.manifest.jsonl")
        .unchanged(replica),
        Case::new(
            "fs verify: tree differs from its manifest",
            &[&"fs", &"verify", &tampered, &"--manifest", &manifest],
            1,
        )
        .names("ROOT.war")
        .unchanged(tampered),
        Case::new(
            "fs backup: missing home",
            &[&"fs", &"backup", &missing, &fresh("bk1")],
            2,
        )
        .names(missing.display())
        .absent(fresh("bk1")),
        Case::new(
            "fs backup: destination holds something else",
            &[&"fs", &"backup", &tree, &full_backup],
            2,
        )
        .names("full-backup")
        .unchanged(full_backup),
        Case::new(
            "fs carbon: missing old home",
            &[&"fs", &"carbon", &missing, &new],
            2,
        )
        .names(missing.display())
        .unchanged(new),
        Case::new(
            "fs carbon: old home == new home",
            &[&"fs", &"carbon", &old, &old],
            2,
        )
        .names(old.display())
        .unchanged(old),
    ]
}

/// Bad input to `verify home/server`.
fn verify_cases(c: &Corpus) -> Vec<Case> {
    let Corpus { new, missing, .. } = c;
    vec![
        Case::new(
            "verify home: missing home",
            &[&"verify", &"home", &"--home", &missing],
            2,
        )
        .names(missing.display()),
        Case::new(
            "verify home: unsupported --db vendor",
            &[
                &"verify",
                &"home",
                &"--home",
                &new,
                &"--db",
                &"jdbc:db2://h:50000/x",
            ],
            2,
        )
        .names("DB2")
        .unchanged(new),
        Case::new(
            "verify server: password variable unset",
            &[
                &"verify",
                &"server",
                &"--url",
                &"https://127.0.0.1:1",
                &"--user",
                &"admin",
                &"--password-env",
                &"CARBON_IT_UNSET_PW",
            ],
            2,
        )
        .names("CARBON_IT_UNSET_PW"),
    ]
}

/// Bad input to `plan`, `preflight`, `run`, `resume` and `status`.
fn runbook_cases(c: &Corpus) -> Vec<Case> {
    let Corpus {
        h,
        old,
        new,
        missing,
        malformed_home,
        bad_toml,
        unknown_key,
        unknown_ds,
        unset_env,
        vault,
        oracle,
        running,
        state,
        corrupt_state,
        headless_state,
        other,
        foreign_args,
        ..
    } = c;
    let fresh = |name: &str| h.path(name);
    let q = |p: &Path| p.display().to_string();
    vec![
        Case::new("run: malformed TOML", &[&"run", &"--config", &bad_toml], 2)
            .names("bad.toml")
            .absent(h.path("carbon-upgrade-state")),
        Case::new(
            "run: unknown key in upgrade.toml",
            &[&"run", &"--config", &unknown_key],
            2,
        )
        .names("old_hme"),
        Case::new(
            "plan: unknown datasource in upgrade.toml",
            &[&"plan", &"--config", &unknown_ds],
            2,
        )
        .names("NO_SUCH_DB"),
        Case::new(
            "plan: password variable unset",
            &[&"plan", &"--config", &unset_env],
            2,
        )
        .names("CARBON_IT_UNSET_PW"),
        Case::new(
            "plan: missing old home",
            &as_args(&h.runbook("plan", missing, &fresh("s1"))),
            3,
        )
        .names(missing.display())
        .absent(fresh("s1")),
        Case::new(
            "plan: malformed XML in the old home",
            &as_args(&h.runbook("plan", malformed_home, &fresh("s2"))),
            2,
        )
        .names("master-datasources.xml")
        .absent(fresh("s2")),
        Case::new(
            "plan: unsupported vendor in the old home",
            &as_args(&h.runbook("plan", oracle, &fresh("s3"))),
            2,
        )
        .names("Oracle")
        .absent(fresh("s3")),
        Case::new(
            "run: old home == new home",
            &as_args(&[
                "run".into(),
                "--old-home".into(),
                q(old),
                "--new-home".into(),
                q(old),
                "--state-dir".into(),
                q(&fresh("s4")),
            ]),
            3,
        )
        .names(old.display())
        .unchanged(old)
        .absent(fresh("s4")),
        Case::new(
            "run: secure-vault alias without its secret",
            &as_args(&h.runbook("run", vault, &fresh("s5"))),
            2,
        )
        .names("Datasources.WSO2_CARBON_DB.Configuration.Password")
        .unchanged(vault)
        .unchanged(new)
        .absent(fresh("s5")),
        Case::new(
            "preflight: a Carbon server runs on the old home",
            &as_args(&h.runbook("preflight", running, &fresh("s6"))),
            3,
        )
        .names("no Carbon server on the old home")
        .absent(fresh("s6")),
        Case::new(
            "run: a Carbon server runs on the old home",
            &as_args(&h.runbook("run", running, &fresh("s7"))),
            3,
        )
        .names("Carbon server")
        .unchanged(new),
        Case::new(
            "run: a journal already exists",
            &as_args(&h.runbook("run", old, state)),
            2,
        )
        .names("journal.jsonl")
        .unchanged(state),
        Case::new(
            "resume: no journal",
            &as_args(&h.runbook("resume", old, &fresh("s8"))),
            2,
        )
        .names("journal.jsonl")
        .unchanged(new),
        Case::new("resume: journal of another run", &as_args(foreign_args), 2)
            .names("belongs to another run")
            .unchanged(state)
            .unchanged(other.new_home()),
        Case::new(
            "resume: corrupted journal line",
            &as_args(&h.runbook("resume", old, corrupt_state)),
            2,
        )
        .names("line 2")
        .unchanged(corrupt_state)
        .unchanged(new),
        Case::new(
            "resume: journal without its run record",
            &as_args(&h.runbook("resume", old, headless_state)),
            2,
        )
        .names("not a carbon-upgrade journal")
        .unchanged(headless_state),
        Case::new(
            "status: no run recorded",
            &as_args(&h.runbook("status", old, &fresh("s9"))),
            2,
        )
        .names("s9")
        .absent(fresh("s9")),
        Case::new(
            "status: corrupted journal line",
            &as_args(&h.runbook("status", old, corrupt_state)),
            2,
        )
        .names("line 2")
        .unchanged(corrupt_state),
    ]
}

#[test]
fn bad_input_corpus_files_config_and_runbook_sqlite() {
    let c = Corpus::new();
    let cases: Vec<Case> = [
        config_cases(&c),
        db_cases(&c),
        fs_cases(&c),
        verify_cases(&c),
        runbook_cases(&c),
    ]
    .into_iter()
    .flatten()
    .collect();
    check_all("bad input (files, config, runbook)", &cases);
    let Corpus {
        h, old, torn_state, ..
    } = &c;

    // An interrupted journal (torn last line) is not an error: the torn event never happened.
    let torn = run_with_env(&h.runbook("status", old, torn_state), &[]);
    assert_eq!(code(&torn), 0, "{}", stderr(&torn));
    assert!(String::from_utf8_lossy(&torn.stdout).contains(": completed"));
}

fn as_args(args: &[String]) -> Vec<&dyn AsRef<std::ffi::OsStr>> {
    args.iter()
        .map(|s| s as &dyn AsRef<std::ffi::OsStr>)
        .collect()
}

/// Disk full and a read-only destination, on tmpfs mounts made by the test (root only).
#[test]
fn bad_input_corpus_disk_full_and_read_only() {
    let h = Homes::new();
    let big = h.path("big");
    std::fs::create_dir_all(big.join("webapps")).unwrap();
    std::fs::write(big.join("webapps/a.war"), vec![7u8; 64 * 1024]).unwrap();
    std::fs::write(big.join("webapps/b.war"), vec![9u8; 3 * 1024 * 1024]).unwrap();
    let small = Mount::tmpfs(&h.path("small"), "size=1m");
    let ro = Mount::tmpfs(&h.path("ro"), "size=4m");
    std::fs::write(
        ro.0.join("carbon.xml"),
        "<Server><Offset>0</Offset></Server>\n",
    )
    .unwrap();
    assert!(
        Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&ro.0)
            .status()
            .unwrap()
            .success()
    );
    let old = h.old();
    let cases = vec![
        Case::new(
            "fs copy: disk full",
            &[&"fs", &"copy", &big, &small.0.join("dst")],
            2,
        )
        .names("dst")
        .unchanged(&big)
        .absent(small.0.join("dst.manifest.jsonl")),
        Case::new(
            "fs copy: read-only destination",
            &[&"fs", &"copy", &big, &ro.0.join("dst")],
            2,
        )
        .names("dst")
        .unchanged(&big)
        .absent(ro.0.join("dst")),
        Case::new(
            "fs backup: disk full",
            &[&"fs", &"backup", &old, &small.0.join("backup")],
            2,
        )
        .names("backup")
        .unchanged(&old)
        .absent(small.0.join("backup.manifest.jsonl")),
        Case::new(
            "config set: read-only file system",
            &[
                &"config",
                &"set",
                &ro.0.join("carbon.xml"),
                &"Server/Offset",
                &"3",
            ],
            2,
        )
        .names("carbon.xml")
        .unchanged(&ro.0),
        Case::new(
            "run: no room for the backup (preflight)",
            &as_args(&{
                let mut args = h.runbook("run", &old, &h.path("state"));
                args.extend([
                    "--backup-dir".into(),
                    small.0.join("run-backup").display().to_string(),
                ]);
                args
            }),
            3,
        )
        .names("free disk for the backup")
        .unchanged(&old),
        Case::new(
            "run: the state directory is on a read-only file system",
            &as_args(&h.runbook("run", &old, &ro.0.join("state"))),
            2,
        )
        .names("Read-only file system")
        .unchanged(&old),
    ];
    check_all("bad input (disk full, read-only)", &cases);
    assert_only_source_bytes(&big, &small.0.join("dst"));
    assert_only_source_bytes(&old, &small.0.join("backup"));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(h.path("state/report.json")).unwrap()).unwrap();
    assert_eq!(
        report["status"], "failed",
        "the report does not claim success"
    );
}

/// Non-empty staging, staging == source and an unreachable server, on PostgreSQL.
#[test]
fn bad_input_corpus_postgres() {
    let source = TestDb::new(Vendor::Postgres);
    fixture::generate_postgres(&mut source.pg_client(), &Scale::tiny()).unwrap();
    let busy = TestDb::new(Vendor::Postgres);
    busy.pg_client()
        .batch_execute("CREATE TABLE leftover (x int); INSERT INTO leftover VALUES (1)")
        .unwrap();
    let h = Homes::new();
    let pg_home = h.variant("pg-home");
    set_datasource(
        &pg_home,
        &jdbc_url("postgresql", source.url()),
        "postgres",
        "<password></password>",
    );
    std::fs::remove_file(pg_home.join("repository/database/WSO2CARBON_DB.db")).unwrap();
    let _staging = DropOnExit {
        vendor: Vendor::Postgres,
        name: format!("{}_staging", source.name()),
        tls: false,
    };
    // The default staging database exists and holds a table.
    let server = testkit::server_url(Vendor::Postgres).unwrap();
    let mut admin = postgres::Client::connect(&server, postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE \"{}_staging\"", source.name()))
        .unwrap();
    let staging_url = testkit::with_database(&server, &format!("{}_staging", source.name()));
    postgres::Client::connect(&staging_url, postgres::NoTls)
        .unwrap()
        .batch_execute("CREATE TABLE leftover (x int)")
        .unwrap();
    let unreachable = h.variant("unreachable-home");
    set_datasource(
        &unreachable,
        "jdbc:postgresql://127.0.0.1:1/carbon",
        "postgres",
        "<password></password>",
    );
    let before = crate::support::fingerprints(Vendor::Postgres, source.url());
    let busy_before = crate::support::fingerprints(Vendor::Postgres, busy.url());
    let state = h.path("state");
    // A journal under a regular file cannot be opened, even by root: its cause is told once.
    let empty = TestDb::new(Vendor::Postgres);
    std::fs::write(h.path("not-a-dir"), "").unwrap();
    let journal = h.path("not-a-dir/journal.jsonl");
    let cases = vec![
        Case::new(
            "db copy: the journal cannot be opened (PostgreSQL)",
            &[
                &"db",
                &"copy",
                &"--from",
                &source.url(),
                &"--to",
                &empty.url(),
                &"--journal",
                &journal,
            ],
            2,
        )
        .names("not-a-dir/journal.jsonl: Not a directory"),
        Case::new(
            "db copy: non-empty staging (PostgreSQL)",
            &[
                &"db",
                &"copy",
                &"--from",
                &source.url(),
                &"--to",
                &busy.url(),
            ],
            3,
        )
        .names(busy.name()),
        Case::new(
            "db copy: staging == source (PostgreSQL)",
            &[
                &"db",
                &"copy",
                &"--from",
                &source.url(),
                &"--to",
                &source.url(),
            ],
            3,
        )
        .names(source.name()),
        Case::new(
            "db inspect: unreachable host",
            &[&"db", &"inspect", &"postgres://postgres@127.0.0.1:1/carbon"],
            2,
        )
        .names("127.0.0.1:1"),
        Case::new(
            "db verify: unreachable target",
            &[
                &"db",
                &"verify",
                &"--from",
                &source.url(),
                &"--to",
                &"postgres://postgres@127.0.0.1:1/carbon",
            ],
            2,
        )
        .names("127.0.0.1:1"),
        Case::new(
            "run: non-empty staging (PostgreSQL)",
            &as_args(&h.runbook("run", &pg_home, &state)),
            3,
        )
        .names("is not empty")
        .absent(state.join("backup/home"))
        .unchanged(&pg_home),
        Case::new(
            "preflight: unreachable source",
            &as_args(&h.runbook("preflight", &unreachable, &h.path("s2"))),
            3,
        )
        .names("127.0.0.1:1")
        .absent(h.path("s2")),
    ];
    check_all("bad input (PostgreSQL)", &cases);
    assert_eq!(
        crate::support::fingerprints(Vendor::Postgres, source.url()),
        before
    );
    assert_eq!(
        crate::support::fingerprints(Vendor::Postgres, busy.url()),
        busy_before
    );
}

/// A MariaDB user with a password, created for the test and dropped after it.
pub struct MariaUser {
    pub name: String,
    pub password: String,
}

impl MariaUser {
    pub fn create(password: &str) -> MariaUser {
        use mysql::prelude::Queryable;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("carbon_it_{:x}_{nanos:x}", std::process::id());
        let server = testkit::server_url(Vendor::MySql).unwrap();
        let mut conn = mysql::Conn::new(testkit::mysql_opts(&server)).unwrap();
        conn.query_drop(format!(
            "CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'"
        ))
        .unwrap();
        conn.query_drop(format!(
            "CREATE USER '{name}'@'localhost' IDENTIFIED BY '{password}'"
        ))
        .unwrap();
        // Everything on the test server: the copy creates `<db>_staging` and other databases.
        for host in ["%", "localhost"] {
            conn.query_drop(format!("GRANT ALL PRIVILEGES ON *.* TO '{name}'@'{host}'"))
                .unwrap();
        }
        MariaUser {
            name,
            password: password.into(),
        }
    }

    /// `mysql://user:password@host:port/database` on the test server.
    pub fn url(&self, database: &str) -> String {
        maria_url(&self.name, &self.password, database)
    }
}

/// `mysql://user:password@host:port/database` on the MariaDB test server.
pub fn maria_url(user: &str, password: &str, database: &str) -> String {
    {
        let server = testkit::server_url(Vendor::MySql).unwrap();
        let rest = server.split_once("://").unwrap().1;
        let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        let host = host.split('/').next().unwrap();
        format!("mysql://{user}:{password}@{host}/{database}")
    }
}

impl Drop for MariaUser {
    fn drop(&mut self) {
        use mysql::prelude::Queryable;
        let server = testkit::server_url(Vendor::MySql).unwrap();
        let mut conn = mysql::Conn::new(testkit::mysql_opts(&server)).unwrap();
        for host in ["%", "localhost"] {
            let _ = conn.query_drop(format!("DROP USER IF EXISTS '{}'@'{host}'", self.name));
        }
    }
}

/// Wrong password (MariaDB: PostgreSQL trusts local connections) and a vendor mismatch.
#[test]
fn bad_input_corpus_wrong_password_mariadb() {
    let source = TestDb::new(Vendor::MySql);
    fixture::generate_mysql(&mut source.mysql_conn(), &Scale::tiny()).unwrap();
    let user = MariaUser::create("Right-Pw-7731");
    let wrong = maria_url(&user.name, "Wrong-Pw-4410", source.name());
    let h = Homes::new();
    let home = h.variant("maria-home");
    set_datasource(
        &home,
        &jdbc_url("mysql", source.url()),
        &user.name,
        "<password>Wrong-Pw-4410</password>",
    );
    std::fs::remove_file(home.join("repository/database/WSO2CARBON_DB.db")).unwrap();
    let _staging = DropOnExit {
        vendor: Vendor::MySql,
        name: format!("{}_staging", source.name()),
        tls: false,
    };
    let to = h.path("to.db");
    let cases = vec![
        Case::new(
            "db inspect: wrong password (MariaDB)",
            &[&"db", &"inspect", &wrong],
            2,
        )
        .names(&user.name),
        Case::new(
            "db copy: wrong password (MariaDB)",
            &[
                &"db",
                &"copy",
                &"--from",
                &wrong,
                &"--to",
                &user.url(&format!("{}_staging", source.name())),
            ],
            2,
        )
        .names(&user.name),
        Case::new(
            "db copy: vendor mismatch (MariaDB to SQLite)",
            &[
                &"db",
                &"copy",
                &"--from",
                &user.url(source.name()),
                &"--to",
                &format!("sqlite:{}", to.display()),
            ],
            2,
        )
        .names("one vendor")
        .absent(&to),
        Case::new(
            "preflight: wrong password in the old home (MariaDB)",
            &as_args(&h.runbook("preflight", &home, &h.path("s1"))),
            3,
        )
        .names(&user.name)
        .absent(h.path("s1")),
    ];
    let mut cases = cases;
    cases.push(
        Case::new(
            "db inspect: wrong password from CARBON_PASSWORD (MariaDB)",
            &[&"db", &"inspect", &source.url(), &"--user", &user.name],
            2,
        )
        .names(&user.name)
        .env("CARBON_PASSWORD", "Wrong-Pw-4410"),
    );
    check_all("bad input (MariaDB)", &cases);
}

/// TLS asked for and impossible: every case stops before any work with one line naming why.
#[test]
fn bad_input_corpus_tls_postgres() {
    let source = TestDb::new_tls(Vendor::Postgres);
    fixture::generate_postgres(&mut source.pg_client(), &Scale::tiny()).unwrap();
    let target = TestDb::reserve_tls(Vendor::Postgres);
    let plain = |url: &str| url.split_once('?').map_or(url, |(base, _)| base).to_owned();
    let with = |url: &str, query: &str| format!("{}?{query}", plain(url));
    let ca = testkit::tls_ca().display().to_string();
    let by_name = |url: &str| url.replacen("127.0.0.1", "localhost", 1);
    let h = Homes::new();
    let keystore_home = h.variant("keystore-home");
    set_datasource(
        &keystore_home,
        "jdbc:mysql://127.0.0.1:3306/carbon?useSSL=true&amp;verifyServerCertificate=true&amp;trustCertificateKeyStoreUrl=file:/opt/ts.jks",
        "root",
        "<password></password>",
    );
    let before = crate::support::fingerprints(Vendor::Postgres, source.url());
    let cases = vec![
        Case::new(
            "db copy: verify-full against a certificate for another name",
            &[
                &"db",
                &"copy",
                &"--from",
                &with(
                    source.url(),
                    &format!("sslmode=verify-full&sslrootcert={ca}"),
                ),
                &"--to",
                &target.url(),
            ],
            2,
        )
        .names("not valid for name \"127.0.0.1\""),
        Case::new(
            "db copy: verify-ca with a missing CA file",
            &[
                &"db",
                &"copy",
                &"--from",
                &with(
                    source.url(),
                    "sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem",
                ),
                &"--to",
                &target.url(),
            ],
            2,
        )
        .names("/nonexistent/ca.pem"),
        Case::new(
            "db inspect: verify-full without a CA that knows the server",
            &[
                &"db",
                &"inspect",
                &by_name(&with(source.url(), "sslmode=verify-full")),
            ],
            2,
        )
        .names("UnknownIssuer"),
        Case::new(
            "db inspect: plain session to a TLS-only server",
            &[&"db", &"inspect", &plain(source.url())],
            2,
        )
        .names("no encryption"),
        Case::new(
            "db inspect: unknown sslmode",
            &[&"db", &"inspect", &with(source.url(), "sslmode=sometimes")],
            2,
        )
        .names("sslmode=\"sometimes\""),
        Case::new(
            "preflight: datasource trusting a Java keystore",
            &as_args(&h.runbook("preflight", &keystore_home, &h.path("s-ks"))),
            3,
        )
        .names("serverSslCert")
        .unchanged(&keystore_home)
        .absent(h.path("s-ks")),
    ];
    check_all("bad input (TLS)", &cases);
    assert_eq!(
        crate::support::fingerprints(Vendor::Postgres, source.url()),
        before
    );
}

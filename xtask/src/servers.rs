//! Finds the PostgreSQL and MariaDB servers the tests use, or starts private ones.
//!
//! Order: `CARBON_TEST_PG_URL` / `CARBON_TEST_MYSQL_URL`, else the loopback defaults; if a
//! server does not answer, a private instance is started from the installed binaries under
//! `target/test-servers/`; if the binaries are missing, the error gives the install command.
//! Nothing here ever lets the suite run without a vendor.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use carbon_db::testkit::{
    self, DEFAULT_MYSQL_URL, DEFAULT_PG_URL, MYSQL_TLS_URL_ENV, MYSQL_URL_ENV, PG_TLS_URL_ENV,
    PG_URL_ENV, TLS_CA_ENV, TestCertificates,
};

const PRIVATE_PG_PORT: u16 = 55432;
const PRIVATE_MARIADB_PORT: u16 = 53306;
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
const START_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Server {
    label: &'static str,
    url: String,
    version: String,
    /// Set when this process started the server; it is stopped on drop.
    private: Option<Private>,
}

#[derive(Debug)]
enum Private {
    Postgres {
        pg_ctl: PathBuf,
        data: PathBuf,
        user: Option<String>,
    },
    MariaDb {
        child: Child,
    },
}

#[derive(Debug)]
pub struct Servers {
    pub postgres: Server,
    pub mariadb: Server,
}

/// A private PostgreSQL or MariaDB instance: where it lives, its port, and whether it takes
/// TLS sessions only.
struct Instance<'a> {
    name: &'static str,
    port: u16,
    tls: Option<&'a TlsFiles>,
    /// Server settings beyond the defaults: PostgreSQL `name=value` (as `-c`), MariaDB
    /// `--option=value`.
    settings: &'a [&'a str],
}

/// The test CA and the server's certificate and key, written for the servers to read.
#[derive(Debug)]
pub struct TlsFiles {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl TlsFiles {
    /// The files an earlier run generated, when all three are there.
    fn existing(dir: &Path) -> Option<TlsFiles> {
        let files = TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        };
        [&files.ca, &files.cert, &files.key]
            .iter()
            .all(|p| p.is_file())
            .then_some(files)
    }

    /// A fresh CA and a certificate for `localhost` only: a client checking the host name
    /// must connect by that name (127.0.0.1 fails `verify-full`, passes `verify-ca`).
    fn generate(dir: &Path) -> Result<TlsFiles> {
        let certs =
            TestCertificates::generate(&["localhost"]).context("generating test certificates")?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let files = TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        };
        for (path, pem) in [
            (&files.ca, &certs.ca_pem),
            (&files.cert, &certs.cert_pem),
            (&files.key, &certs.key_pem),
        ] {
            std::fs::write(path, pem).with_context(|| format!("writing {}", path.display()))?;
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&files.key, std::fs::Permissions::from_mode(0o600))
            .context("restricting the key file")?;
        Ok(files)
    }
}

/// PostgreSQL and MariaDB servers that refuse plain sessions, for the TLS tests.
#[derive(Debug)]
pub struct TlsServers {
    pub postgres: Server,
    pub mariadb: Server,
    files: TlsFiles,
}

impl TlsServers {
    /// Reuses TLS servers that already answer with this target directory's test CA (another
    /// `cargo xtask servers`, say), else starts private ones on free ports (a fixed port may
    /// be another checkout's).
    pub fn start() -> Result<TlsServers> {
        let dir = servers_dir().join("tls");
        let files = TlsFiles::existing(&dir).map_or_else(|| TlsFiles::generate(&dir), Ok)?;
        let postgres = reuse_or_start("postgres-tls", probe_postgres, |port| {
            start_private_postgres(&Instance {
                name: "postgres-tls",
                port,
                tls: Some(&files),
                settings: &[],
            })
        })?;
        let mariadb = reuse_or_start("mariadb-tls", probe_mariadb, |port| {
            start_private_mariadb(&Instance {
                name: "mariadb-tls",
                port,
                tls: Some(&files),
                settings: &[],
            })
        })?;
        Ok(TlsServers {
            postgres,
            mariadb,
            files,
        })
    }

    pub fn apply(&self, cmd: &mut Command) {
        cmd.env(PG_TLS_URL_ENV, &self.postgres.url)
            .env(MYSQL_TLS_URL_ENV, &self.mariadb.url)
            .env(TLS_CA_ENV, &self.files.ca);
    }

    pub fn print(&self) {
        for server in [&self.postgres, &self.mariadb] {
            println!(
                "==> {} (TLS only, test CA): {} at {}",
                server.label,
                server.version,
                redact(&server.url)
            );
        }
    }
}

/// PostgreSQL with `wal_level=logical` and MariaDB with a ROW binlog, for the online tests:
/// always private (the shared servers must not be reconfigured), on free ports.
#[derive(Debug)]
pub struct StreamServers {
    pub postgres: Server,
    pub mariadb: Server,
}

impl StreamServers {
    /// Reuses streaming servers that already answer (another `cargo xtask servers` on this
    /// target directory), else starts private ones on free ports.
    pub fn start() -> Result<StreamServers> {
        let postgres = reuse_or_start("postgres-logical", probe_postgres, |port| {
            start_private_postgres(&Instance {
                name: "postgres-logical",
                port,
                tls: None,
                settings: &[
                    "wal_level=logical",
                    "max_replication_slots=20",
                    "max_wal_senders=20",
                ],
            })
        })?;
        let mariadb = reuse_or_start("mariadb-binlog", probe_mariadb, |port| {
            start_private_mariadb(&Instance {
                name: "mariadb-binlog",
                port,
                tls: None,
                settings: &[
                    "--log-bin=binlog",
                    "--binlog-format=ROW",
                    "--binlog-row-image=FULL",
                    "--server-id=7",
                    "--local-infile=1",
                    // Like the private PostgreSQL's fsync=off: a test server need not survive
                    // an OS crash, and two fsyncs per commit would throttle the writer.
                    "--innodb-flush-log-at-trx-commit=2",
                    "--sync-binlog=0",
                ],
            })
        })?;
        Ok(StreamServers { postgres, mariadb })
    }

    pub fn apply(&self, cmd: &mut Command) {
        cmd.env(testkit::PG_STREAM_URL_ENV, &self.postgres.url)
            .env(testkit::MYSQL_STREAM_URL_ENV, &self.mariadb.url);
    }

    pub fn print(&self) {
        for server in [&self.postgres, &self.mariadb] {
            println!(
                "==> {} (logical decoding / ROW binlog, private): {} at {}",
                server.label,
                server.version,
                redact(&server.url)
            );
        }
    }
}

/// A private server recorded in `<name>/url` that still answers, else a new one on a free port.
fn reuse_or_start(
    name: &str,
    probe: fn(&str) -> Result<String>,
    start: impl FnOnce(u16) -> Result<Server>,
) -> Result<Server> {
    let record = servers_dir().join(name).join("url");
    if let Ok(url) = std::fs::read_to_string(&record)
        && let Ok(version) = probe(url.trim())
    {
        let label = if name.starts_with("postgres") {
            "PostgreSQL"
        } else {
            "MariaDB"
        };
        return Ok(Server {
            label,
            url: url.trim().to_owned(),
            version,
            private: None,
        });
    }
    let server = start(free_port()?)?;
    std::fs::write(&record, &server.url)
        .with_context(|| format!("writing {}", record.display()))?;
    Ok(server)
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

impl Servers {
    pub fn find_or_start() -> Result<Servers> {
        Ok(Servers {
            postgres: find_or_start_postgres()?,
            mariadb: find_or_start_mariadb()?,
        })
    }

    /// Points a test process at these servers.
    pub fn apply(&self, cmd: &mut Command) {
        cmd.env(PG_URL_ENV, &self.postgres.url)
            .env(MYSQL_URL_ENV, &self.mariadb.url);
    }

    pub fn print(&self) {
        for server in [&self.postgres, &self.mariadb] {
            let origin = if server.private.is_some() {
                "private, started for this run"
            } else {
                "found"
            };
            println!(
                "==> {}: {} at {} ({origin})",
                server.label,
                server.version,
                redact(&server.url)
            );
        }
    }

    pub fn names(&self) -> String {
        format!("{} and {}", self.postgres.version, self.mariadb.version)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        match self.private.take() {
            Some(Private::Postgres { pg_ctl, data, user }) => {
                let mut stop = as_user(user.as_deref(), &pg_ctl);
                stop.arg("-D").arg(&data).args(["-m", "fast", "-w", "stop"]);
                let _ = stop.stdout(Stdio::null()).status();
            }
            Some(Private::MariaDb { mut child }) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            None => {}
        }
    }
}

/// `cargo xtask servers`: starts everything `cargo xtask test` would, prints the environment
/// as shell `export` lines, and stops private servers when stdin reaches its end.
pub fn hold() -> Result<()> {
    let servers = Servers::find_or_start()?;
    let tls = TlsServers::start()?;
    let streams = StreamServers::start()?;
    let mut cmd = Command::new("true");
    servers.apply(&mut cmd);
    tls.apply(&mut cmd);
    streams.apply(&mut cmd);
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            println!(
                "export {}='{}'",
                key.to_string_lossy(),
                value.to_string_lossy()
            );
        }
    }
    println!("# servers up; close stdin (Ctrl-D) to stop the private ones");
    let mut sink = String::new();
    while std::io::stdin().read_line(&mut sink)? > 0 {}
    Ok(())
}

fn url_from_env(env: &str, default: &str) -> String {
    std::env::var(env)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn probe_postgres(url: &str) -> Result<String> {
    let parsed = carbon_db::DbUrl::parse(url).context("parsing the PostgreSQL URL")?;
    let mut config = parsed.postgres_config();
    config.connect_timeout(PROBE_TIMEOUT);
    let mut client = parsed.connect_postgres(&config)?;
    let version: String = client.query_one("SHOW server_version", &[])?.get(0);
    Ok(format!("PostgreSQL {version}"))
}

fn probe_mariadb(url: &str) -> Result<String> {
    use mysql::prelude::Queryable;
    let mut conn = if url.contains("ssl") {
        let parsed = carbon_db::DbUrl::parse(url).context("parsing the MySQL URL")?;
        let builder = parsed
            .mysql_builder(false)
            .tcp_connect_timeout(Some(PROBE_TIMEOUT));
        parsed.connect_mysql(builder)?
    } else {
        let opts = mysql::Opts::from_url(url).context("parsing the MySQL URL")?;
        let opts = mysql::OptsBuilder::from_opts(opts).tcp_connect_timeout(Some(PROBE_TIMEOUT));
        mysql::Conn::new(opts)?
    };
    let version: Option<String> = conn.query_first("SELECT VERSION()")?;
    let version = version.unwrap_or_default();
    let product = if version.to_lowercase().contains("mariadb") {
        "MariaDB"
    } else {
        "MySQL"
    };
    Ok(format!("{product} {version}"))
}

fn find_or_start_postgres() -> Result<Server> {
    let url = url_from_env(PG_URL_ENV, DEFAULT_PG_URL);
    match probe_postgres(&url) {
        Ok(version) => Ok(Server {
            label: "PostgreSQL",
            url,
            version,
            private: None,
        }),
        Err(err) => {
            println!(
                "==> PostgreSQL at {} does not answer ({err:#}); starting a private one",
                redact(&url)
            );
            start_private_postgres(&Instance {
                name: "postgres",
                port: PRIVATE_PG_PORT,
                tls: None,
                settings: &[],
            })
        }
    }
}

fn find_or_start_mariadb() -> Result<Server> {
    let url = url_from_env(MYSQL_URL_ENV, DEFAULT_MYSQL_URL);
    match probe_mariadb(&url) {
        Ok(version) => Ok(Server {
            label: "MariaDB",
            url,
            version,
            private: None,
        }),
        Err(err) => {
            println!(
                "==> MariaDB at {} does not answer ({err:#}); starting a private one",
                redact(&url)
            );
            start_private_mariadb(&Instance {
                name: "mariadb",
                port: PRIVATE_MARIADB_PORT,
                tls: None,
                settings: &[],
            })
        }
    }
}

fn servers_dir() -> PathBuf {
    crate::workspace_root().join("target/test-servers")
}

/// PostgreSQL refuses to run as root; as root, run it as the `postgres` system user.
fn unprivileged_user() -> Option<String> {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .ok()?
        .stdout
        .starts_with(b"0");
    if !is_root {
        return None;
    }
    for candidate in ["postgres", "nobody"] {
        let exists = Command::new("id")
            .arg(candidate)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if exists.is_ok_and(|s| s.success()) {
            return Some(candidate.to_owned());
        }
    }
    None
}

fn as_user(user: Option<&str>, program: &Path) -> Command {
    match user {
        Some(user) => {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", user, "--"]).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

fn find_binary(name: &str, globs: &[&str]) -> Option<PathBuf> {
    for pattern in globs {
        let mut matches: Vec<PathBuf> = glob_dirs(pattern)
            .into_iter()
            .map(|d| d.join(name))
            .collect();
        matches.sort();
        if let Some(found) = matches.into_iter().rev().find(|p| p.is_file()) {
            return Some(found);
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// Expands one `*` in a directory pattern such as `/usr/lib/postgresql/*/bin`.
fn glob_dirs(pattern: &str) -> Vec<PathBuf> {
    let Some((head, tail)) = pattern.split_once('*') else {
        return vec![PathBuf::from(pattern)];
    };
    let tail = tail.trim_start_matches('/');
    std::fs::read_dir(head)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path().join(tail))
                .collect()
        })
        .unwrap_or_default()
}

fn start_private_postgres(instance: &Instance<'_>) -> Result<Server> {
    const PG_DIRS: &[&str] = &["/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin"];
    let (Some(initdb), Some(pg_ctl)) = (
        find_binary("initdb", PG_DIRS),
        find_binary("pg_ctl", PG_DIRS),
    ) else {
        bail!(
            "no PostgreSQL server answers and no PostgreSQL binaries are installed; install them with: \
             apt-get update && apt-get install -y postgresql (or set {PG_URL_ENV})"
        );
    };
    let dir = servers_dir().join(instance.name);
    let data = dir.join("data");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let user = unprivileged_user();
    let mut tls_options = String::new();
    if let Some(tls) = instance.tls {
        // The server reads its key as its own user, and only a 0600 key.
        for (from, to) in [(&tls.cert, "server.pem"), (&tls.key, "server.key")] {
            std::fs::copy(from, dir.join(to))
                .with_context(|| format!("copying {}", from.display()))?;
        }
        tls_options = format!(
            " -c ssl=on -c ssl_cert_file={0}/server.pem -c ssl_key_file={0}/server.key \
             -c hba_file={0}/pg_hba.conf",
            dir.display()
        );
        // TCP sessions must be TLS ones: no `host` line, only `hostssl`.
        std::fs::write(
            dir.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
        )
        .context("writing pg_hba.conf")?;
    }
    if let Some(user) = &user {
        let status = Command::new("chown")
            .args(["-R", user])
            .arg(&dir)
            .status()?;
        if !status.success() {
            bail!("chown {} to {user} failed", dir.display());
        }
    }
    if !data.join("PG_VERSION").is_file() {
        let mut init = as_user(user.as_deref(), &initdb);
        init.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        let output = init.output().context("running initdb")?;
        if !output.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&output.stderr));
        }
    }
    let settings: String = instance
        .settings
        .iter()
        .map(|s| format!(" -c {s}"))
        .collect();
    let options = format!(
        "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off{tls_options}{settings}",
        instance.port,
        dir.display()
    );
    let mut start = as_user(user.as_deref(), &pg_ctl);
    start
        .arg("-D")
        .arg(&data)
        .args(["-o", &options, "-l"])
        .arg(dir.join("log"))
        .args(["-w", "start"]);
    let output = start.output().context("running pg_ctl start")?;
    if !output.status.success() {
        bail!(
            "pg_ctl start failed: {} (log: {})",
            String::from_utf8_lossy(&output.stderr),
            dir.join("log").display()
        );
    }
    let url = match instance.tls {
        None => format!("postgres://postgres@127.0.0.1:{}/postgres", instance.port),
        Some(tls) => tls_url("postgres", instance.port, tls),
    };
    let private = Private::Postgres { pg_ctl, data, user };
    let version = wait_for(|| probe_postgres(&url))?;
    Ok(Server {
        label: "PostgreSQL",
        url,
        version,
        private: Some(private),
    })
}

fn start_private_mariadb(instance: &Instance<'_>) -> Result<Server> {
    const DIRS: &[&str] = &["/usr/sbin", "/usr/bin", "/usr/local/mysql/bin"];
    let install =
        find_binary("mariadb-install-db", DIRS).or_else(|| find_binary("mysql_install_db", DIRS));
    let server = find_binary("mariadbd", DIRS).or_else(|| find_binary("mysqld", DIRS));
    let (Some(install), Some(server)) = (install, server) else {
        bail!(
            "no MariaDB server answers and no MariaDB binaries are installed; install them with: \
             apt-get update && apt-get install -y mariadb-server (or set {MYSQL_URL_ENV})"
        );
    };
    let dir = servers_dir().join(instance.name);
    let data = dir.join("data");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let user = if unprivileged_user().is_some() {
        "root"
    } else {
        ""
    };
    if !data.join("mysql").is_dir() {
        let mut init = Command::new(&install);
        init.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db");
        if !user.is_empty() {
            init.arg(format!("--user={user}"));
        }
        let output = init.output().context("running mariadb-install-db")?;
        if !output.status.success() {
            bail!(
                "mariadb-install-db failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    let log = std::fs::File::create(dir.join("log")).context("creating the MariaDB log")?;
    let mut start = Command::new(&server);
    start
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
        .arg(format!("--port={}", instance.port))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()));
    if let Some(tls) = instance.tls {
        start
            .arg(format!("--ssl-ca={}", tls.ca.display()))
            .arg(format!("--ssl-cert={}", tls.cert.display()))
            .arg(format!("--ssl-key={}", tls.key.display()))
            .arg("--require-secure-transport=ON");
    }
    start.args(instance.settings);
    if !user.is_empty() {
        start.arg(format!("--user={user}"));
    }
    let child = start
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting mariadbd")?;
    let url = match instance.tls {
        None => format!("mysql://root@127.0.0.1:{}/", instance.port),
        Some(tls) => tls_url("mysql", instance.port, tls),
    };
    let private = Private::MariaDb { child };
    let mut server = Server {
        label: "MariaDB",
        url,
        version: String::new(),
        private: Some(private),
    };
    server.version = wait_for(|| probe_mariadb(&server.url))?;
    Ok(server)
}

/// A TLS-only server's URL: checked against the test CA, not the host name (the
/// certificate names `localhost`, the URL 127.0.0.1).
fn tls_url(scheme: &str, port: u16, files: &TlsFiles) -> String {
    let (user, db) = if scheme == "postgres" {
        ("postgres", "postgres")
    } else {
        ("root", "mysql")
    };
    format!(
        "{scheme}://{user}@127.0.0.1:{port}/{db}?sslmode=verify-ca&sslrootcert={}",
        files.ca.display()
    )
}

fn wait_for(mut probe: impl FnMut() -> Result<String>) -> Result<String> {
    let started = Instant::now();
    loop {
        match probe() {
            Ok(version) => return Ok(version),
            Err(err) if started.elapsed() > START_TIMEOUT => {
                return Err(err.context("the private server did not answer in time"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// Hides a password in `scheme://user:password@host` (carbon-config's redactor and mask).
pub fn redact(url: &str) -> String {
    carbon_config::redact::redact_url_credentials(url)
}

/// Keeps the testkit's URL helper reachable for the fixture task.
pub fn database_url(server: &Server, database: &str) -> String {
    testkit::with_database(&server.url, database)
}

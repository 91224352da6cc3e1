//! `cargo xtask fixture`: a Carbon-shaped database on each vendor and a product home.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use carbon_config::fixture::{CarbonVersion, ContentScale, HomeSpec, write_home};
use carbon_db::fixture::{self, FixtureSummary, Scale};
use mysql::prelude::Queryable;

use crate::servers::{Servers, database_url};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// tiny (tests), small (demo), bench (~450 MB, ~1.8 M rows).
    #[arg(long, default_value = "small")]
    scale: String,
    /// Which databases to build: all, postgres, mariadb, sqlite, none.
    #[arg(long, default_value = "all")]
    vendor: String,
    /// Where the SQLite file and the product home go (default: target/fixtures).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: &Args) -> Result<()> {
    let scale = Scale::named(&args.scale)
        .with_context(|| format!("unknown scale {:?}: use tiny, small or bench", args.scale))?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| crate::workspace_root().join("target/fixtures"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let name = format!("carbon_fixture_{}", args.scale);
    let wanted = |v: &str| args.vendor == "all" || args.vendor == v;
    if !["all", "postgres", "mariadb", "sqlite", "none"].contains(&args.vendor.as_str()) {
        bail!(
            "unknown vendor {:?}: use all, postgres, mariadb, sqlite or none",
            args.vendor
        );
    }
    let servers = if wanted("postgres") || wanted("mariadb") {
        Some(Servers::find_or_start()?)
    } else {
        None
    };
    let mut tenant_ids = vec![1, 2, 5];
    println!(
        "{:<10} {:>10} {:>14} {:>14} {:>8}  where",
        "vendor", "rows", "payload", "on disk", "secs"
    );
    if let Some(servers) = &servers {
        if wanted("postgres") {
            let started = Instant::now();
            let (summary, size) = postgres(servers, &name, &scale)?;
            tenant_ids = summary.tenant_ids.clone();
            print_row(
                "postgres",
                &summary,
                size,
                started,
                &redacted(&servers.postgres_url(&name)),
            );
        }
        if wanted("mariadb") {
            let started = Instant::now();
            let (summary, size) = mariadb(servers, &name, &scale)?;
            tenant_ids = summary.tenant_ids.clone();
            print_row(
                "mariadb",
                &summary,
                size,
                started,
                &redacted(&servers.mariadb_url(&name)),
            );
        }
    }
    if wanted("sqlite") {
        let started = Instant::now();
        let path = out.join(format!("{name}.db"));
        let summary = sqlite(&path, &scale)?;
        tenant_ids = summary.tenant_ids.clone();
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        print_row(
            "sqlite",
            &summary,
            size,
            started,
            &path.display().to_string(),
        );
    }
    let started = Instant::now();
    let home = out.join(format!("home-{}", args.scale));
    if home.exists() {
        std::fs::remove_dir_all(&home).with_context(|| format!("removing {}", home.display()))?;
    }
    let mut spec = HomeSpec::new(CarbonVersion::V4_4_6);
    spec.tenant_ids = tenant_ids;
    spec.content = match args.scale.as_str() {
        "tiny" => ContentScale::Tiny,
        "bench" => ContentScale::Bench,
        _ => ContentScale::Small,
    };
    let written =
        write_home(&home, &spec).with_context(|| format!("writing {}", home.display()))?;
    println!(
        "{:<10} {:>10} {:>14} {:>14} {:>8.1}  {} ({} dirs, {} tenants)",
        "home",
        format!("{} files", written.files),
        "",
        human(written.bytes),
        started.elapsed().as_secs_f64(),
        home.display(),
        written.dirs,
        spec.tenant_ids.len()
    );
    Ok(())
}

impl Servers {
    fn postgres_url(&self, database: &str) -> String {
        database_url(&self.postgres, database)
    }

    fn mariadb_url(&self, database: &str) -> String {
        database_url(&self.mariadb, database)
    }
}

fn redacted(url: &str) -> String {
    crate::servers::redact(url)
}

fn print_row(vendor: &str, summary: &FixtureSummary, size: u64, started: Instant, place: &str) {
    println!(
        "{vendor:<10} {:>10} {:>14} {:>14} {:>8.1}  {place}",
        summary.rows,
        human(summary.payload_bytes),
        human(size),
        started.elapsed().as_secs_f64()
    );
}

fn human(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn postgres(servers: &Servers, name: &str, scale: &Scale) -> Result<(FixtureSummary, u64)> {
    let admin_url = database_url(&servers.postgres, "postgres");
    let mut admin = postgres::Client::connect(&admin_url, postgres::NoTls)
        .context("connecting to PostgreSQL")?;
    // Two statements: a multi-statement batch would run inside one implicit transaction.
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
    admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
    let mut client = postgres::Client::connect(&servers.postgres_url(name), postgres::NoTls)?;
    let summary =
        fixture::generate_postgres(&mut client, scale).context("generating on PostgreSQL")?;
    client.batch_execute("VACUUM ANALYZE")?;
    let size: i64 = client
        .query_one("SELECT pg_database_size(current_database())", &[])?
        .get(0);
    Ok((summary, u64::try_from(size).unwrap_or(0)))
}

fn mariadb(servers: &Servers, name: &str, scale: &Scale) -> Result<(FixtureSummary, u64)> {
    let mut admin = mysql::Conn::new(mysql::Opts::from_url(&servers.mariadb_url(""))?)
        .context("connecting to MariaDB")?;
    admin.query_drop(format!("DROP DATABASE IF EXISTS {name}"))?;
    admin.query_drop(format!(
        "CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    ))?;
    let mut conn = mysql::Conn::new(mysql::Opts::from_url(&servers.mariadb_url(name))?)?;
    let summary = fixture::generate_mysql(&mut conn, scale).context("generating on MariaDB")?;
    conn.query_drop("ANALYZE TABLE UM_USER, REG_CONTENT, REG_LOG")?;
    let size: Option<u64> = conn.exec_first(
        "SELECT CAST(SUM(data_length + index_length) AS UNSIGNED) FROM information_schema.TABLES WHERE table_schema = ?",
        (name,),
    )?;
    Ok((summary, size.unwrap_or(0)))
}

fn sqlite(path: &std::path::Path, scale: &Scale) -> Result<FixtureSummary> {
    if path.exists() {
        std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
    }
    let mut conn =
        rusqlite::Connection::open(path).with_context(|| format!("creating {}", path.display()))?;
    fixture::generate_sqlite(&mut conn, scale).context("generating on SQLite")
}

//! `cargo xtask bench online [--scale bench|small|tiny] [--vendors postgres,mariadb] [--follow SECS] [--rate TX_PER_S]`
//!
//! The downtime of an offline `run` against that of an online cut-over, on the same
//! Carbon-shaped database, same machine, same run, on the private servers that can be
//! followed (PostgreSQL `wal_level=logical`, MariaDB ROW binlog). Online: a Carbon-like
//! writer runs at `--rate` transactions/s during the snapshot copy and `--follow` seconds of
//! following; it stops (the old servers stop), then `online cutover` proves staging equal.
//! With `--fallback`, the cut-over starts the fallback, the writer runs against staging, and
//! `online fallback rollback` is timed the same way. Every run ends verified by an
//! independent `carbon_db::verify`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use carbon_config::fixture::{CarbonVersion, DatasourceSpec, HomeSpec, write_home};
use carbon_config::secret::Secret;
use carbon_db::fixture::writer::Writer;
use carbon_db::fixture::{self, Scale};
use carbon_db::{DbUrl, Vendor};

use crate::servers::{StreamServers, database_url};

struct Options {
    scale: String,
    vendors: Vec<Vendor>,
    follow_secs: u64,
    rate: u32,
    fallback: bool,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        scale: "bench".into(),
        vendors: vec![Vendor::Postgres, Vendor::MySql],
        follow_secs: 20,
        rate: 200,
        fallback: true,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--no-fallback" {
            o.fallback = false;
            continue;
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--scale" => o.scale = value.clone(),
            "--follow" => o.follow_secs = value.parse().context("--follow")?,
            "--rate" => o.rate = value.parse().context("--rate")?,
            "--vendors" => {
                o.vendors = value
                    .split(',')
                    .map(|v| match v {
                        "postgres" | "pg" => Ok(Vendor::Postgres),
                        "mariadb" | "mysql" => Ok(Vendor::MySql),
                        other => bail!("online mode follows postgres and mariadb, not {other}"),
                    })
                    .collect::<Result<_>>()?;
            }
            other => bail!(
                "unknown flag {other}; usage: cargo xtask bench online [--scale bench|small|tiny] [--vendors postgres,mariadb] [--follow SECS] [--rate TX_PER_S] [--no-fallback]"
            ),
        }
    }
    if Scale::named(&o.scale).is_none() {
        bail!("unknown scale {} (tiny, small, bench)", o.scale);
    }
    Ok(o)
}

/// One vendor's figures.
#[derive(Debug, Default)]
struct Row {
    vendor: String,
    rows: u64,
    offline_s: f64,
    setup_s: f64,
    follow_s: f64,
    writer_tps: f64,
    max_lag_ms: u64,
    /// The largest lag `online status` showed once following had caught up with the backlog
    /// of the snapshot copy (sampled every second of the follow window).
    steady_lag_s: f64,
    cutover_downtime_s: f64,
    cutover_wall_s: f64,
    rollback_downtime_s: Option<f64>,
    breakdown: String,
}

pub fn run(args: &[String]) -> Result<()> {
    let o = parse(args)?;
    let scale = Scale::named(&o.scale).context("scale")?;
    let root = crate::workspace_root();
    println!("==> cargo build --release -p carbon-upgrade-cli");
    let status = crate::cargo()
        .args(["build", "--release", "--quiet", "-p", "carbon-upgrade-cli"])
        .status()?;
    if !status.success() {
        bail!("release build failed");
    }
    let bin = root.join("target/release/carbon-upgrade");
    let servers = StreamServers::start()?;
    servers.print();
    let mut rows = Vec::new();
    for &vendor in &o.vendors {
        let server = match vendor {
            Vendor::Postgres => &servers.postgres,
            _ => &servers.mariadb,
        };
        rows.push(bench_vendor(&bin, vendor, server, &scale, &o)?);
    }
    print_rows(&rows);
    Ok(())
}

fn bench_vendor(
    bin: &Path,
    vendor: Vendor,
    server: &crate::servers::Server,
    scale: &Scale,
    o: &Options,
) -> Result<Row> {
    let name = format!("carbon_bench_online_{}", std::process::id());
    let names = [
        name.clone(),
        format!("{name}_offline"),
        format!("{name}_online"),
    ];
    let admin = admin_url(vendor, server)?;
    for n in &names {
        let _ = carbon_db::drop_database(&admin, n);
    }
    let result = bench_databases(bin, vendor, server, scale, o, &names);
    for n in &names {
        let _ = carbon_db::drop_database(&admin, n);
    }
    result
}

fn bench_databases(
    bin: &Path,
    vendor: Vendor,
    server: &crate::servers::Server,
    scale: &Scale,
    o: &Options,
    names: &[String; 3],
) -> Result<Row> {
    let admin = admin_url(vendor, server)?;
    let source = carbon_db::create_database(&admin, &names[0])?;
    println!("==> {vendor}: generating the {} database", o.scale);
    let summary = match vendor {
        Vendor::Postgres => {
            let mut client = carbon_db::testkit::pg_connect(&database_url(server, &names[0]))?;
            fixture::generate_postgres(&mut client, scale)?
        }
        _ => {
            let mut conn = carbon_db::testkit::mysql_connect(&database_url(server, &names[0]))?;
            fixture::generate_mysql(&mut conn, scale)?
        }
    };
    Writer::prepare(&source)?;
    let rows_total = summary.rows;
    let work = crate::workspace_root().join("target/bench-online");
    let _ = std::fs::remove_dir_all(&work);
    let mut row = Row {
        vendor: vendor.to_string(),
        rows: rows_total,
        ..Row::default()
    };

    // Offline: every server stopped for the whole run.
    let offline = Setup::write(
        work.join("offline"),
        vendor,
        server,
        &names[0],
        &names[1],
        &summary.tenant_ids,
    )?;
    println!("==> {vendor}: offline run (downtime = the whole run)");
    let t = Instant::now();
    expect_ok(offline.command(bin, &["run"]).output()?, "run")?;
    row.offline_s = t.elapsed().as_secs_f64();

    // Online: the writer runs during the copy and following, then stops.
    let online = Setup::write(
        work.join("online"),
        vendor,
        server,
        &names[0],
        &names[2],
        &summary.tenant_ids,
    )?;
    println!(
        "==> {vendor}: online start with the writer at {} tx/s",
        o.rate
    );
    let writer = Writer::spawn(&source, 7, o.rate)?;
    let started = Instant::now();
    let mut follower = online.spawn_logged(bin, &["online", "start"], "start")?;
    online.wait_following(bin, &["online"], &mut follower)?;
    row.setup_s = started.elapsed().as_secs_f64();
    let following = Instant::now();
    row.steady_lag_s = online.steady_lag(bin, &["online"], o.follow_secs)?;
    let stats = writer.stop()?;
    row.follow_s = following.elapsed().as_secs_f64();
    row.writer_tps = stats.transactions as f64 / started.elapsed().as_secs_f64();
    println!(
        "==> {vendor}: the writer stopped after {} transactions; online cutover",
        stats.transactions
    );
    let t = Instant::now();
    // With the fallback measured too, the cut-over starts it at the proven point.
    let mut cut_args = vec!["online", "cutover", "--json"];
    if o.fallback {
        cut_args.push("--fallback");
    }
    let cut = online.command(bin, &cut_args).output()?;
    row.cutover_wall_s = t.elapsed().as_secs_f64();
    let report = expect_ok(cut, "online cutover")?;
    let _ = follower.wait();
    let report: serde_json::Value = serde_json::from_str(&report)?;
    row.cutover_downtime_s = report["downtime_ms"].as_f64().unwrap_or(0.0) / 1000.0;
    row.max_lag_ms = report["datasources"][0]["max_lag_ms"].as_u64().unwrap_or(0);
    row.breakdown = format!(
        "confirm {} ms, drain {} ms, re-sync {} ms, re-copy {} ms, counters {} ms, proof {} ms ({})",
        report["confirm_ms"],
        report["drain_ms"],
        report["resync_ms"],
        report["recopy_ms"],
        report["counters_ms"],
        report["proof_ms"],
        report["datasources"][0]["proof_steps"]
            .as_str()
            .unwrap_or("")
    );
    let staging = DbUrl::parse(&database_url(server, &names[2]))?;
    independent_check(&source, &staging)?;

    if o.fallback {
        println!("==> {vendor}: fallback: writer on staging, then rollback");
        // The cut-over started the fallback at the proven point: the new product's writes
        // from now on are followed into the old database.
        let writer = Writer::spawn(&staging, 8, o.rate)?;
        let mut fallback =
            online.spawn_logged(bin, &["online", "fallback", "start"], "fallback-start")?;
        online.wait_following(bin, &["online", "fallback"], &mut fallback)?;
        std::thread::sleep(Duration::from_secs(o.follow_secs.min(10)));
        writer.stop()?;
        let rb = online
            .command(bin, &["online", "fallback", "rollback", "--json"])
            .output()?;
        let rb = expect_ok(rb, "online fallback rollback")?;
        let _ = fallback.wait();
        let rb: serde_json::Value = serde_json::from_str(&rb)?;
        row.rollback_downtime_s = Some(rb["downtime_ms"].as_f64().unwrap_or(0.0) / 1000.0);
        independent_check(&staging, &source)?;
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(row)
}

/// The server's maintenance database, where CREATE / DROP DATABASE run.
fn admin_url(vendor: Vendor, server: &crate::servers::Server) -> Result<DbUrl> {
    let db = match vendor {
        Vendor::Postgres => "postgres",
        _ => "mysql",
    };
    Ok(DbUrl::parse(&database_url(server, db))?)
}

fn independent_check(a: &DbUrl, b: &DbUrl) -> Result<()> {
    let report = carbon_db::verify(a, b, 2, &carbon_db::NoProgress)?;
    if !report.is_ok() {
        bail!("{b} differs from {a}: {}", report.summary());
    }
    Ok(())
}

fn expect_ok(out: std::process::Output, what: &str) -> Result<String> {
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Two homes and an upgrade.toml naming staging.
struct Setup {
    config: PathBuf,
    dir: PathBuf,
}

impl Setup {
    fn write(
        dir: PathBuf,
        vendor: Vendor,
        server: &crate::servers::Server,
        source: &str,
        staging: &str,
        tenants: &[i64],
    ) -> Result<Setup> {
        let (scheme, user, driver) = match vendor {
            Vendor::Postgres => ("postgresql", "postgres", "org.postgresql.Driver"),
            _ => ("mysql", "root", "com.mysql.jdbc.Driver"),
        };
        let jdbc = |db: &str| {
            let native = database_url(server, db);
            let authority = native.split_once("://").map_or(native.as_str(), |(_, a)| a);
            let host_db = authority.rsplit_once('@').map_or(authority, |(_, r)| r);
            format!("jdbc:{scheme}://{host_db}")
        };
        let mut old = HomeSpec::new(CarbonVersion::V4_4_6);
        old.port_offset = 7;
        old.tenant_ids = tenants.to_vec();
        old.datasources = vec![DatasourceSpec {
            url: jdbc(source),
            username: user.into(),
            password: Secret::Empty,
            driver_class_name: driver.into(),
            ..DatasourceSpec::carbon_h2()
        }];
        write_home(&dir.join("old"), &old)?;
        let mut new = HomeSpec::new(CarbonVersion::V4_4_7);
        new.tenant_ids = Vec::new();
        write_home(&dir.join("new"), &new)?;
        let config = dir.join("upgrade.toml");
        std::fs::write(
            &config,
            format!(
                "old_home = {:?}\nnew_home = {:?}\nstate_dir = {:?}\nbackup_dir = {:?}\n\n[datasources.WSO2_CARBON_DB]\nstaging_url = {:?}\nstaging_username = {user:?}\n",
                dir.join("old"),
                dir.join("new"),
                dir.join("state"),
                dir.join("backup"),
                jdbc(staging)
            ),
        )?;
        Ok(Setup { config, dir })
    }

    /// A background command whose stderr goes to `<dir>/<name>.log` (named in errors).
    fn spawn_logged(&self, bin: &Path, args: &[&str], name: &str) -> Result<Child> {
        let log = self.dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log)?;
        Ok(self
            .command(bin, args)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()?)
    }

    fn command(&self, bin: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin);
        cmd.arg("-q").args(args).arg("--config").arg(&self.config);
        cmd
    }

    /// Samples `status` for `secs` seconds; returns the largest lag in seconds seen after the
    /// first sample under one second (the copy's backlog applied).
    fn steady_lag(&self, bin: &Path, prefix: &[&str], secs: u64) -> Result<f64> {
        let started = Instant::now();
        let mut caught_up = false;
        let mut worst: f64 = 0.0;
        while started.elapsed() < Duration::from_secs(secs) {
            let args: Vec<&str> = prefix.iter().copied().chain(["status", "--json"]).collect();
            let out = self.command(bin, &args).output()?;
            let json: serde_json::Value =
                serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
            let lag = json["streams"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["lag_seconds"].as_f64())
                .fold(0.0, f64::max);
            caught_up |= lag < 1.0;
            if caught_up {
                worst = worst.max(lag);
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        Ok(if caught_up { worst } else { f64::INFINITY })
    }

    fn wait_following(&self, bin: &Path, prefix: &[&str], child: &mut Child) -> Result<()> {
        let started = Instant::now();
        loop {
            if let Some(exit) = child.try_wait()? {
                let logs: Vec<String> = ["start.log", "fallback-start.log"]
                    .iter()
                    .filter_map(|l| std::fs::read_to_string(self.dir.join(l)).ok())
                    .collect();
                bail!(
                    "the follower exited with {exit} before following: {}",
                    logs.join(" | ").trim()
                );
            }
            let args: Vec<&str> = prefix.iter().copied().chain(["status", "--json"]).collect();
            let out = self.command(bin, &args).output()?;
            let json: serde_json::Value =
                serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
            if json["switch_allowed"] == true {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(1800) {
                bail!("not following after 30 minutes");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

fn print_rows(rows: &[Row]) {
    println!();
    println!(
        "| vendor | rows | offline downtime | online setup (no downtime) | followed | writer | max lag (copy backlog included) | steady lag | cut-over downtime | ratio | rollback downtime |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {:.2} s | {:.2} s | {:.1} s | {:.0} tx/s | {} ms | {:.1} s | {:.2} s (command {:.2} s) | {:.3}× | {} |",
            r.vendor,
            r.rows,
            r.offline_s,
            r.setup_s,
            r.follow_s,
            r.writer_tps,
            r.max_lag_ms,
            r.steady_lag_s,
            r.cutover_downtime_s,
            r.cutover_wall_s,
            r.cutover_downtime_s / r.offline_s.max(0.001),
            r.rollback_downtime_s
                .map_or("-".to_owned(), |s| format!("{s:.2} s")),
        );
    }
    for r in rows {
        println!("{} cut-over: {}", r.vendor, r.breakdown);
        let lag_ok = r.steady_lag_s < 2.0;
        let down_ok = r.cutover_downtime_s <= 5.0 && r.cutover_downtime_s <= 0.1 * r.offline_s;
        println!(
            "{} targets: cut-over ≤ 5 s and ≤ 0.1× offline: {}; steady lag < 2 s: {}",
            r.vendor,
            if down_ok { "met" } else { "NOT met" },
            if lag_ok { "met" } else { "NOT met" }
        );
    }
}

//! `carbon-upgrade db schema-diff`: the schema proof on its own (logic in `carbon_db::schema`).

use std::path::PathBuf;

use anyhow::Context;
use carbon_config::Secret;
use clap::Args;

use crate::Status;

#[derive(Debug, Args)]
pub struct SchemaDiffArgs {
    /// The database to prove (staging): PostgreSQL or MySQL/MariaDB URL.
    #[arg(long, value_name = "URL")]
    db: String,
    /// Fresh-install scripts in order: files, or directories holding the vendor's script
    /// (`postgresql.sql`, `mysql.sql`, `…-mb.sql`), e.g. `<new home>/dbscripts`
    /// `<new home>/dbscripts/apimgt`.
    #[arg(long, value_name = "DIR|FILE", num_args = 1.., required = true)]
    scripts: Vec<PathBuf>,
    /// User name (overrides the URL's); the password comes from CARBON_PASSWORD.
    #[arg(long)]
    user: Option<String>,
    /// Run the safe `align` statements on the database (widen columns, add missing indexes,
    /// rename indexes, set defaults) and prove again.
    #[arg(long)]
    align: bool,
    /// Print the proof as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn schema_diff(args: SchemaDiffArgs) -> anyhow::Result<Status> {
    let password = std::env::var("CARBON_PASSWORD").ok().map(Secret::from);
    let url = super::db::parse(&args.db, None, args.user, password.as_ref()).context("--db")?;
    let mut proof = carbon_db::schema::prove(&url, &args.scripts)?;
    if args.align {
        let ran = carbon_db::schema::align(&url, &proof.diff)?;
        eprintln!("align: {ran} statement(s) ran on {url}");
        proof = carbon_db::schema::prove(&url, &args.scripts)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&proof)?);
    } else {
        println!(
            "schema proof of {url}: {} staging tables, {} fresh tables ({} script(s), {} ms): {}",
            proof.staging_tables,
            proof.fresh_tables,
            proof.scripts.len(),
            proof.elapsed_ms,
            proof.diff.summary()
        );
        for d in &proof.diff.differences {
            println!("  {d}");
            if let Some(sql) = &d.align {
                println!("             align: {sql}");
            }
        }
    }
    Ok(if proof.is_ok() {
        Status::Ok
    } else {
        Status::CheckFailed
    })
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The database to migrate (staging; never a source): PostgreSQL or MySQL/MariaDB URL.
    #[arg(long, value_name = "URL")]
    db: String,
    /// Migration scripts in order: files, or directories holding the vendor's script.
    #[arg(long, value_name = "DIR|FILE", num_args = 1.., required = true)]
    scripts: Vec<PathBuf>,
    /// Statement journal; the same file resumes at the statement that failed.
    #[arg(long, value_name = "FILE")]
    journal: PathBuf,
    /// User name (overrides the URL's); the password comes from CARBON_PASSWORD.
    #[arg(long)]
    user: Option<String>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn migrate(args: MigrateArgs) -> anyhow::Result<Status> {
    let password = std::env::var("CARBON_PASSWORD").ok().map(Secret::from);
    let url = super::db::parse(&args.db, None, args.user, password.as_ref()).context("--db")?;
    let report = carbon_db::migrate::migrate(&url, &args.scripts, &args.journal)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(Status::Ok);
    }
    for s in &report.scripts {
        println!("{}: {}", s.script.display(), s.summary());
    }
    for lost in report.lost() {
        println!("lost rows: {lost}");
    }
    Ok(Status::Ok)
}

//! `carbon-upgrade verify home|server`: prove the upgraded system, offline and live.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use carbon_config::Secret;
use carbon_db::DbUrl;
use carbon_verify::{HomeOptions, Progress, Report, ServerOptions, Trust};
use clap::{Args, Subcommand};

use crate::Status;

#[derive(Debug, Subcommand)]
pub enum VerifyCommand {
    /// Offline: tenant rows vs folders, user stores vs UM_DOMAIN, user counts, datasources,
    /// keystore, H2 files.
    Home(HomeArgs),
    /// Live: the guide's user-store, user and tenant tests against the running new server.
    Server(ServerArgs),
    /// Offline: every encrypted value (user stores of every tenant, deployment files, secure
    /// vault) opens with the home's primary key; keystores compared with the old home's.
    /// A keystore password given as a secure-vault alias: CARBON_KEYSTORE_PASSWORD
    /// (old home: CARBON_OLD_KEYSTORE_PASSWORD, default the same).
    Secrets(SecretsArgs),
}

#[derive(Debug, Args)]
pub struct SecretsArgs {
    /// The product home whose key must open every value.
    #[arg(long, value_name = "HOME")]
    home: PathBuf,
    /// The old home: names the key a failing value needs; keystores and trust stores compared.
    #[arg(long, value_name = "OLD_HOME")]
    old_home: Option<PathBuf>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct HomeArgs {
    /// The upgraded product home.
    #[arg(long, value_name = "NEW_HOME")]
    home: PathBuf,
    /// Staging database (default: the home's realm datasource). Password: CARBON_DB_PASSWORD.
    #[arg(long, value_name = "URL")]
    db: Option<String>,
    /// Old database, opened read-only. Password: CARBON_OLD_DB_PASSWORD.
    #[arg(long, value_name = "URL")]
    old_db: Option<String>,
    /// Old product home: compares embedded H2 files, and runs the same checks on the old home
    /// and old database so that each finding is marked pre-existing or introduced.
    #[arg(long, value_name = "OLD_HOME")]
    old_home: Option<PathBuf>,
    /// Fail on pre-existing errors too (by default they are warnings; needs --old-home).
    #[arg(long, requires = "old_home")]
    strict: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The server, e.g. https://host:9443 (http:// only for test servers).
    #[arg(long, value_name = "URL")]
    url: String,
    /// Super-tenant admin user.
    #[arg(long, value_name = "NAME")]
    user: String,
    /// Environment variable holding the admin password.
    #[arg(long, value_name = "VAR")]
    password_env: String,
    /// The upgraded home: staging datasource and dbscripts/<vendor>.sql.
    #[arg(long, value_name = "NEW_HOME")]
    home: Option<PathBuf>,
    /// Server for the fresh user-store databases, e.g. postgres://user@host:5432/ (default: the
    /// staging database's server). Password: CARBON_USERSTORE_DB_PASSWORD.
    #[arg(long, value_name = "URL")]
    userstore_db: Option<String>,
    /// Tenants to add.
    #[arg(long, value_name = "K", default_value_t = 2)]
    tenants: u32,
    /// Super-tenant JDBC user stores to add.
    #[arg(long, value_name = "N", default_value_t = 2)]
    userstores: u32,
    /// Users per store.
    #[arg(long, value_name = "M", default_value_t = 2)]
    users: u32,
    /// Seconds to wait for each user store to be deployed.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    deploy_timeout: u64,
    /// Trust only the certificates in this PEM file.
    #[arg(long, value_name = "PEM", conflicts_with = "insecure")]
    ca_cert: Option<PathBuf>,
    /// Do not verify the server's certificate.
    #[arg(long)]
    insecure: bool,
    /// Leave what the run created in place (users, stores, databases, tenants).
    #[arg(long)]
    keep: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: VerifyCommand) -> anyhow::Result<Status> {
    match cmd {
        VerifyCommand::Home(args) => home(args),
        VerifyCommand::Server(args) => server(args),
        VerifyCommand::Secrets(args) => secrets(args),
    }
}

fn db_url(flag: &str, url: &str, password_var: &str) -> anyhow::Result<DbUrl> {
    let parsed = DbUrl::parse(url).with_context(|| format!("--{flag}"))?;
    Ok(parsed.with_credentials(None, std::env::var(password_var).ok()))
}

/// A server to create databases on: the database name may be left out.
fn server_url(flag: &str, url: &str, password_var: &str) -> anyhow::Result<DbUrl> {
    let parsed = DbUrl::parse_server(url).with_context(|| format!("--{flag}"))?;
    Ok(parsed.with_credentials(None, std::env::var(password_var).ok()))
}

fn home(args: HomeArgs) -> anyhow::Result<Status> {
    let opts = HomeOptions {
        home: args.home,
        db: args
            .db
            .map(|u| db_url("db", &u, "CARBON_DB_PASSWORD"))
            .transpose()?,
        old_db: args
            .old_db
            .map(|u| db_url("old-db", &u, "CARBON_OLD_DB_PASSWORD"))
            .transpose()?,
        old_home: args.old_home,
        strict: args.strict,
    };
    let report = carbon_verify::verify_home(&opts).context("verify home")?;
    print(&report, args.json)
}

fn secrets(args: SecretsArgs) -> anyhow::Result<Status> {
    use carbon_verify::secrets::{KEYSTORE_PASSWORD_ENV, OLD_KEYSTORE_PASSWORD_ENV};
    let env = |var: &str| std::env::var(var).ok().map(Secret::from);
    let opts = carbon_verify::SecretsOptions {
        home: args.home,
        keystore_password: env(KEYSTORE_PASSWORD_ENV),
        old_home: args.old_home,
        old_keystore_password: env(OLD_KEYSTORE_PASSWORD_ENV),
        now: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
    };
    let report = carbon_verify::verify_secrets(&opts).context("verify secrets")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let cert = &report.key.cert;
        println!(
            "key          {} alias {} ({}, expires {})",
            report.key.keystore.display(),
            cert.alias,
            cert.sha256,
            cert.not_after_date
        );
        println!("{}", report.report);
        println!(
            "{} of {} encrypted value(s) open",
            report.opening(),
            report.values.len()
        );
    }
    Ok(if report.report.is_ok() {
        Status::Ok
    } else {
        Status::CheckFailed
    })
}

/// Progress goes to the log (`-v`), never to stdout.
struct LogProgress;

impl Progress for LogProgress {
    fn step(&self, what: &str) {
        tracing::info!("{what}");
    }
}

fn server(args: ServerArgs) -> anyhow::Result<Status> {
    let password = std::env::var(&args.password_env).map_err(|_| {
        anyhow::anyhow!(
            "--password-env: environment variable {} is not set",
            args.password_env
        )
    })?;
    let mut opts = ServerOptions::new(&args.url, &args.user, Secret::from(password));
    opts.home = args.home;
    opts.userstore_db = args
        .userstore_db
        .map(|u| server_url("userstore-db", &u, "CARBON_USERSTORE_DB_PASSWORD"))
        .transpose()?;
    opts.tenants = args.tenants;
    opts.userstores = args.userstores;
    opts.users = args.users;
    opts.deploy_timeout = Duration::from_secs(args.deploy_timeout);
    opts.keep = args.keep;
    opts.trust = match (args.ca_cert, args.insecure) {
        (Some(pem), _) => Trust::CaCert(pem),
        (None, true) => Trust::Insecure,
        (None, false) => Trust::WebPki,
    };
    let report = carbon_verify::verify_server(&opts, &LogProgress).context("verify server")?;
    print(&report, args.json)
}

fn print(report: &Report, json: bool) -> anyhow::Result<Status> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        println!("{report}");
        if !report.leftover_tenants.is_empty() {
            println!(
                "tenants left deactivated (deleteTenant cannot delete on carbon-multitenancy 4.6.x): {}",
                report.leftover_tenants.join(", ")
            );
        }
    }
    Ok(if report.is_ok() {
        Status::Ok
    } else {
        Status::CheckFailed
    })
}

//! `carbon-upgrade db ...`

use clap::Subcommand;

use crate::Status;

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Not yet implemented.
    Todo,
}

pub fn run(command: DbCommand) -> anyhow::Result<Status> {
    match command {
        DbCommand::Todo => anyhow::bail!("carbon-upgrade db: not implemented yet"),
    }
}

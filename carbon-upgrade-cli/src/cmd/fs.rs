//! `carbon-upgrade fs ...`

use clap::Subcommand;

use crate::Status;

#[derive(Debug, Subcommand)]
pub enum FsCommand {
    /// Not yet implemented.
    Todo,
}

pub fn run(command: FsCommand) -> anyhow::Result<Status> {
    match command {
        FsCommand::Todo => anyhow::bail!("carbon-upgrade fs: not implemented yet"),
    }
}

//! `carbon-upgrade config ...`

use clap::Subcommand;

use crate::Status;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Not yet implemented.
    Todo,
}

pub fn run(command: ConfigCommand) -> anyhow::Result<Status> {
    match command {
        ConfigCommand::Todo => anyhow::bail!("carbon-upgrade config: not implemented yet"),
    }
}

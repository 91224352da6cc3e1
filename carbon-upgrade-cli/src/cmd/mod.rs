//! One module per subcommand group; each exposes a clap `Subcommand` enum and `run`.

pub mod config;
pub mod db;
pub mod demo;
pub mod fs;
pub mod generate;
pub mod online;
pub mod schema;
pub mod upgrade;
pub mod verify;

#![allow(clippy::unwrap_used)]
mod config;
mod db;
mod fs;
mod upgrade;
mod verify;

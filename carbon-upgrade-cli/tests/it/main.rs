#![allow(clippy::unwrap_used)]
mod bad_input;
mod config;
mod conformance;
mod db;
mod fs;
mod migrate;
mod online;
mod schema_conformance;
mod scope;
mod secrets;
mod support;
mod upgrade;
mod verify;
mod verify_secrets;

#![allow(clippy::unwrap_used)]
mod config;
mod conformance;
mod db;
mod fs;
mod support;
mod upgrade;
mod verify;

#![allow(clippy::unwrap_used)]
mod db;
mod fs;

#![allow(clippy::unwrap_used)]
mod db;

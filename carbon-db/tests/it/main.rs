#![allow(clippy::unwrap_used)]

mod backup;
mod bad_input;
mod conformance;
mod copy;
mod fixture;
mod journal;
mod migrate;
mod migrate_conformance;
mod online_my;
mod online_pg;
mod schema;
mod schema_conformance;
mod session;
mod staging;
mod support;
mod testkit;
mod tls;
mod url;
mod verify;

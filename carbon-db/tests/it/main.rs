#![allow(clippy::unwrap_used)]

mod backup;
mod fixture;
mod testkit;
mod bad_input;
mod conformance;
mod copy;
mod journal;
mod support;
mod url;
mod verify;

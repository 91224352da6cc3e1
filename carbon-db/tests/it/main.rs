#![allow(clippy::unwrap_used)]

mod backup;
mod bad_input;
mod conformance;
mod copy;
mod fixture;
mod journal;
mod support;
mod testkit;
mod url;
mod verify;

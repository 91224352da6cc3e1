#![allow(clippy::unwrap_used)]

mod fixture;
mod testkit;

#![allow(clippy::unwrap_used)]

mod fixture;
mod testkit;
mod copy;
mod support;

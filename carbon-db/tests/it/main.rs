#![allow(clippy::unwrap_used)]

mod testkit;

//! The one integration test binary of carbon-config.
#![allow(clippy::unwrap_used)]

mod carry;
mod conformance;
mod connect;
mod editor;
mod fixture;
mod home;
mod jdbc;
mod props;
mod running;
mod secret_props;
mod support;

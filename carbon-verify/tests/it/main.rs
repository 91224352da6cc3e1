#![allow(clippy::unwrap_used)]

mod conformance;
mod live;
mod offline;
mod secrets;
mod server;
mod support;
mod tls;
mod wsdl;
mod xml;

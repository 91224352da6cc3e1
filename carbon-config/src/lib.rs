//! carbon-config

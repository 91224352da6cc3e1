//! carbon-verify

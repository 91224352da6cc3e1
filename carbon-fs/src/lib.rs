//! carbon-fs

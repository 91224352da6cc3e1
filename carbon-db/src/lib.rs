//! carbon-db

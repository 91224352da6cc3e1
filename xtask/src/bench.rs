//! `cargo xtask bench`: benchmarks against the peer tools (being written for issue 3).

use anyhow::{Result, bail};

pub fn run(args: &[String]) -> Result<()> {
    bail!("cargo xtask bench {}: not implemented yet", args.join(" "))
}

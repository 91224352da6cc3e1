//! `carbon-upgrade generate man|bash|zsh|fish|elvish|powershell` (hidden): release artifacts
//! generated from the same clap definition the binary parses with.

use std::io::Write;

use anyhow::Context;
use clap_complete::Shell;

use crate::Status;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Artifact {
    Man,
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

pub fn run(what: Artifact, mut command: clap::Command) -> anyhow::Result<Status> {
    let mut out = std::io::stdout().lock();
    let shell = match what {
        Artifact::Man => {
            clap_mangen::Man::new(command)
                .render(&mut out)
                .context("writing the man page")?;
            return Ok(Status::Ok);
        }
        Artifact::Bash => Shell::Bash,
        Artifact::Zsh => Shell::Zsh,
        Artifact::Fish => Shell::Fish,
        Artifact::Elvish => Shell::Elvish,
        Artifact::Powershell => Shell::PowerShell,
    };
    clap_complete::generate(shell, &mut command, "carbon-upgrade", &mut out);
    out.flush().context("writing completions")?;
    Ok(Status::Ok)
}

//! `microctl completions SHELL` and `microctl man`: generated from the clap definitions, so
//! they always match the binary.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::error::{Error, ErrorKind, Result};

pub fn completions(args: CompletionsArgs) -> Result<i32> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "microctl", &mut std::io::stdout());
    Ok(0)
}

pub fn man() -> Result<i32> {
    clap_mangen::Man::new(Cli::command())
        .render(&mut std::io::stdout())
        .map_err(|e| Error::new(ErrorKind::Io, "cannot write the man page").caused_by(e))?;
    Ok(0)
}

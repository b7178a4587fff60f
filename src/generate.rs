//! `deskpool generate`: the man pages and shell completions, made from the clap definitions so
//! that they never drift from the program (the Debian package is built with them).

use std::path::Path;

use anyhow::Context;
use clap_complete::Shell;

/// Writes `deskpool.1` and one page per visible subcommand (`deskpool-serve.1`, ...) into `dir`.
pub fn man_pages(command: clap::Command, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    clap_mangen::generate_to(command, dir)
        .with_context(|| format!("{}: cannot write the man pages", dir.display()))
}

/// Prints the completion script for `shell` to stdout.
pub fn completions(mut command: clap::Command, shell: Shell) {
    let name = command.get_name().to_string();
    clap_complete::generate(shell, &mut command, name, &mut std::io::stdout());
}

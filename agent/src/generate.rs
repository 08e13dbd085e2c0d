//! The man pages and shell completions a package installs, generated from the clap definitions
//! so that they cannot drift from `--help`.

use std::{fs, io, path::Path};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// Writes `man/tcpwhy.1` (and a page per subcommand) and `completions/` for bash
/// (`tcpwhy.bash`), zsh (`_tcpwhy`) and fish (`tcpwhy.fish`) under `dir`.
pub fn write_all(dir: &Path) -> io::Result<()> {
    let man = dir.join("man");
    fs::create_dir_all(&man)?;
    clap_mangen::generate_to(Cli::command(), &man)?;
    let completions = dir.join("completions");
    fs::create_dir_all(&completions)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut Cli::command(), "tcpwhy", &completions)?;
    }
    Ok(())
}

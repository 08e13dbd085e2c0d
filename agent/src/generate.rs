//! The man pages and shell completions a package installs, generated from the clap definitions
//! so that they cannot drift from `--help`.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use clap::{Arg, CommandFactory, value_parser};
use clap_complete::Shell;

use crate::cli::Cli;

/// The packaging step's subcommand. It is added to the parser at run time, not to [`Cli`], so
/// that the man pages and completions written from [`Cli`] never offer it to users (a hidden
/// subcommand still shows up in completions).
pub const SUBCOMMAND: &str = "generate-docs";

pub fn command() -> clap::Command {
    clap::Command::new(SUBCOMMAND)
        .hide(true)
        .about("Write the man pages and shell completions under DIR (for packaging)")
        .arg(
            Arg::new("dir")
                .value_name("DIR")
                .required(true)
                .value_parser(value_parser!(PathBuf)),
        )
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_and_man_pages_do_not_offer_the_packaging_subcommand() {
        let dir = std::env::temp_dir().join(format!("tcpwhy-docs-{}", std::process::id()));
        write_all(&dir).unwrap();
        for sub in ["completions", "man"] {
            for entry in fs::read_dir(dir.join(sub)).unwrap() {
                let path = entry.unwrap().path();
                let text = fs::read_to_string(&path).unwrap();
                assert!(text.contains("tcpwhy"), "{}", path.display());
                assert!(!text.contains(SUBCOMMAND), "{}", path.display());
            }
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}

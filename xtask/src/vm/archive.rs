//! Where the matrix's kernel packages come from: the host's own apt sources, or the suites of
//! another Debian release through a private apt directory (its own sources, lists and cache),
//! used for `apt-get download` only, so the host's sources never change.

use std::{fs, path::PathBuf, process::Command};

use anyhow::Result;

use crate::run::checked;

/// The Debian registry, as the host's own apt sources name it.
pub const DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";

pub enum Archive {
    /// The host's configured sources and their lists.
    Host,
    /// A Debian release by codename: its main suite and its security suite (where the newest
    /// kernels of an old release are published).
    Debian(&'static str),
}

/// Apt as one archive sees it.
pub struct Apt {
    /// The private configuration, laid over the host's (its proxy and keyrings still apply).
    config: Option<PathBuf>,
}

impl Archive {
    /// Makes the archive's package lists current where they are private (the host's lists are
    /// the host's business).
    pub fn open(&self, cache: &std::path::Path) -> Result<Apt> {
        let Archive::Debian(release) = self else {
            return Ok(Apt { config: None });
        };
        let dir = cache.join("apt").join(release);
        for sub in [
            "sources.list.d",
            "state/lists/partial",
            "cache/archives/partial",
        ] {
            fs::create_dir_all(dir.join(sub))?;
        }
        let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
        fs::write(
            dir.join("sources.list"),
            format!(
                "deb [signed-by={keyring}] {DEBIAN_MIRROR} {release} main\n\
                 deb [signed-by={keyring}] {DEBIAN_MIRROR}-security {release}-security main\n"
            ),
        )?;
        fs::write(dir.join("state/status"), "")?;
        let config = dir.join("apt.conf");
        // The host's update hooks (cache cleaning, AppStream refreshes) concern the host's own
        // lists, and only package indexes are needed here.
        fs::write(
            &config,
            format!(
                "Dir::Etc::SourceList \"{dir}/sources.list\";\n\
                 Dir::Etc::SourceParts \"{dir}/sources.list.d\";\n\
                 Dir::State \"{dir}/state\";\n\
                 Dir::State::status \"{dir}/state/status\";\n\
                 Dir::Cache \"{dir}/cache\";\n\
                 #clear APT::Update::Post-Invoke;\n\
                 #clear APT::Update::Post-Invoke-Success;\n\
                 Acquire::IndexTargets::deb::DEP-11::DefaultEnabled \"false\";\n\
                 Acquire::Languages \"none\";\n",
                dir = dir.display()
            ),
        )?;
        let apt = Apt {
            config: Some(config),
        };
        checked(
            &format!("updating the private package lists of Debian {release}"),
            apt.command("apt-get").args(["update", "-qq"]),
        )?;
        Ok(apt)
    }
}

impl Apt {
    /// `apt-get`, `apt-cache`: reading this archive's lists.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        if let Some(config) = &self.config {
            command.arg("-c").arg(config);
        }
        command
    }
}

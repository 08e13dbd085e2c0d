//! `tcpwhy_<version>_amd64.deb`, built with dpkg-deb: the binary, the systemd unit, the
//! configuration as a conffile, man pages and shell completions generated from the clap
//! definitions (`tcpwhy generate-docs`), and maintainer scripts that start nothing where systemd
//! does not run.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result};

use super::{VERSION, fresh_dir};
use crate::{
    rootfs::shared_libraries,
    run::{checked, output_text, workspace_root},
};

const CONFFILE: &str = "etc/tcpwhy/tcpwhy.toml";

/// Generated documentation: where it comes from under the generated tree, where it goes.
const COMPLETIONS: [(&str, &str); 3] = [
    (
        "tcpwhy.bash",
        "usr/share/bash-completion/completions/tcpwhy",
    ),
    ("_tcpwhy", "usr/share/zsh/vendor-completions/_tcpwhy"),
    (
        "tcpwhy.fish",
        "usr/share/fish/vendor_completions.d/tcpwhy.fish",
    ),
];

pub fn build(binary: &Path, out: &Path) -> Result<PathBuf> {
    let root = fresh_dir(out, "deb-root")?;
    let deploy = workspace_root().join("deploy");
    place(binary, &root.join("usr/bin/tcpwhy"), 0o755)?;
    place(
        &deploy.join("tcpwhy.service"),
        &root.join("usr/lib/systemd/system/tcpwhy.service"),
        0o644,
    )?;
    place(&deploy.join("tcpwhy.toml"), &root.join(CONFFILE), 0o644)?;
    place_generated_docs(binary, out, &root)?;

    let control = root.join("DEBIAN");
    fs::create_dir_all(&control)?;
    for script in ["postinst", "prerm", "postrm"] {
        place(
            &deploy.join("debian").join(script),
            &control.join(script),
            0o755,
        )?;
    }
    fs::write(control.join("conffiles"), format!("/{CONFFILE}\n"))?;
    let template = fs::read_to_string(deploy.join("debian/control"))?;
    fs::write(
        control.join("control"),
        template
            .replace("{version}", VERSION)
            .replace("{depends}", &depends(binary)?.join(", "))
            .replace(
                "{installed_size}",
                &tree_bytes(&root)?.div_ceil(1024).to_string(),
            ),
    )?;

    let deb = out.join(format!("tcpwhy_{VERSION}_amd64.deb"));
    checked(
        "building the Debian package",
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "--build"])
            .arg(&root)
            .arg(&deb),
    )?;
    Ok(deb)
}

/// Copies a file into the package tree with the given mode.
fn place(from: &Path, to: &Path, mode: u32) -> Result<()> {
    fs::create_dir_all(to.parent().context("a file has a directory")?)?;
    fs::copy(from, to).with_context(|| format!("copying {}", from.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Man pages (compressed, as Debian installs them) and completions, from the binary itself.
fn place_generated_docs(binary: &Path, out: &Path, root: &Path) -> Result<()> {
    let generated = fresh_dir(out, "generated-docs")?;
    checked(
        "generating man pages and completions",
        Command::new(binary).arg("generate-docs").arg(&generated),
    )?;
    let man = root.join("usr/share/man/man1");
    for page in fs::read_dir(generated.join("man"))? {
        let page = page?.path();
        let name = page.file_name().context("a page has a name")?;
        place(&page, &man.join(name), 0o644)?;
    }
    checked(
        "compressing the man pages",
        Command::new("gzip")
            .args(["-9", "--no-name", "--force"])
            .args(
                fs::read_dir(&man)?
                    .map(|e| e.map(|e| e.path()))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
    )?;
    for (name, target) in COMPLETIONS {
        place(
            &generated.join("completions").join(name),
            &root.join(target),
            0o644,
        )?;
    }
    Ok(())
}

/// The packages that own the shared libraries the binary loads.
fn depends(binary: &Path) -> Result<Vec<String>> {
    let mut packages = Vec::new();
    for library in shared_libraries(binary)? {
        let owner = output_text(Command::new("dpkg-query").arg("-S").arg(&library))?;
        let package = owner
            .split([':', ','])
            .next()
            .context("dpkg-query -S names a package")?
            .trim()
            .to_string();
        if !packages.contains(&package) {
            packages.push(package);
        }
    }
    Ok(packages)
}

/// The tree's size in bytes (Installed-Size is in KiB).
fn tree_bytes(dir: &Path) -> Result<u64> {
    let mut bytes = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        bytes += if entry.file_type()?.is_dir() {
            tree_bytes(&entry.path())?
        } else {
            entry.metadata()?.len()
        };
    }
    Ok(bytes)
}

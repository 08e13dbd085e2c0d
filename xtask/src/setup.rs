//! Installs what building the eBPF programs needs, and only what is missing.
//!
//! The recipe (verified on these machines, see shared/ENVIRONMENT.md): LLVM 22 development
//! libraries for bpf-linker, nightly's rust-src for `-Z build-std=core`, bpf-linker 0.13 built
//! against LLVM 22.

use std::process::Command;

use anyhow::{Result, bail};

use crate::run::checked;

/// Debian packages the build and the tests need.
const PACKAGES: &[(&str, &str)] = &[
    ("llvm-22-dev", "bpf-linker links against LLVM 22"),
    ("libpolly-22-dev", "bpf-linker links against LLVM 22"),
    ("util-linux", "the tests drop privileges with setpriv"),
    (
        "iproute2",
        "the tests create network namespaces with ip netns",
    ),
    (
        "nftables",
        "the tests hold back packets inside their namespaces with nft",
    ),
];
const BPF_LINKER_VERSION: &str = "0.13.0";
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

pub fn ensure() -> Result<()> {
    let mut changed = false;
    changed |= ensure_packages()?;
    changed |= ensure_rust_src()?;
    changed |= ensure_bpf_linker()?;
    if !changed {
        eprintln!("xtask: setup: everything needed is present");
    }
    Ok(())
}

fn ensure_packages() -> Result<bool> {
    let missing: Vec<&(&str, &str)> = PACKAGES
        .iter()
        .filter(|(p, _)| !package_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(false);
    }
    for (package, why) in &missing {
        eprintln!("xtask: setup: {package} is missing ({why})");
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("installing Debian packages needs root: run `sudo cargo xtask setup`");
    }
    checked(
        "apt-get update",
        Command::new("apt-get").args(["update", "-qq"]),
    )?;
    let names: Vec<&str> = missing.iter().map(|(p, _)| *p).collect();
    checked(
        &format!("installing {}", names.join(" ")),
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&names)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    Ok(true)
}

fn package_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn ensure_rust_src() -> Result<bool> {
    let installed = Command::new("rustup")
        .args(["component", "list", "--toolchain", "nightly", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.starts_with("rust-src"))
        })
        .unwrap_or(false);
    if installed {
        return Ok(false);
    }
    checked(
        "installing nightly rust-src (the eBPF programs build core from source)",
        Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]),
    )?;
    Ok(true)
}

fn ensure_bpf_linker() -> Result<bool> {
    let present = Command::new("bpf-linker")
        .arg("--version")
        .output()
        .map(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains(BPF_LINKER_VERSION)
        })
        .unwrap_or(false);
    if present {
        return Ok(false);
    }
    checked(
        &format!("installing bpf-linker {BPF_LINKER_VERSION} (about 3 minutes)"),
        Command::new(env!("CARGO"))
            .args(["install", "bpf-linker", "--version", BPF_LINKER_VERSION])
            .args(["--no-default-features", "--features", "llvm-22"])
            .env("LLVM_PREFIX", LLVM_PREFIX)
            .env("LLVM_SYS_221_PREFIX", LLVM_PREFIX),
    )?;
    Ok(true)
}

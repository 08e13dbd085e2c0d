//! Installs everything the build, the tests, the kernel matrix, the benchmarks and the packaging
//! run, and only what is missing. `cargo xtask test` checks that every program they spawn comes
//! from this list (see programs.rs): a fresh Debian machine has nothing else.
//!
//! The toolchain recipe (verified on these machines): LLVM 22 development libraries for
//! bpf-linker, nightly's rust-src for `-Z build-std=core`, bpf-linker 0.13 built against LLVM 22.
//! cargo-fuzz for the fuzz targets.
//! Everything setup runs writes to stderr: stdout belongs to the task that was asked for.

use std::process::Command;

use anyhow::{Result, bail};

use crate::run::checked;

/// A Debian package and why the project needs it.
pub struct Package {
    pub name: &'static str,
    why: &'static str,
}

const fn package(name: &'static str, why: &'static str) -> Package {
    Package { name, why }
}

pub const PACKAGES: &[Package] = &[
    package("llvm-22-dev", "bpf-linker links against LLVM 22"),
    package("libpolly-22-dev", "bpf-linker links against LLVM 22"),
    package("util-linux", "the tests drop privileges with setpriv"),
    package(
        "iproute2",
        "the tests create network namespaces with ip netns",
    ),
    package(
        "nftables",
        "the tests hold back packets in their namespaces with nft",
    ),
    package("prometheus", "the tests run promtool and a real Prometheus"),
    package(
        "bpftool",
        "the daemon test checks that nothing is left in the kernel",
    ),
    package("systemd", "the tests verify the unit with systemd-analyze"),
    package(
        "man-db",
        "the package test finds the installed man page with man -w",
    ),
    package(
        "umoci",
        "cargo xtask package builds the OCI image; its test unpacks it",
    ),
    package(
        "qemu-system-x86",
        "the kernel matrix boots kernels under qemu",
    ),
    package("busybox-static", "the kernel matrix's guests run busybox"),
    package("cpio", "the kernel matrix packs the guests' initramfs"),
    package(
        "kmod",
        "the kernel matrix resolves the guest kernels' modules",
    ),
    package("xz-utils", "the kernel matrix decompresses kernel modules"),
    package(
        "bpftrace",
        "cargo xtask bench runs bpftrace's tools beside the agent",
    ),
    package(
        "debootstrap",
        "the kernel matrix builds a Debian system with systemd for its guests",
    ),
    package(
        "curl",
        "the systemd guests' checks and the README's daemon examples query /metrics with it",
    ),
    package(
        "e2fsprogs",
        "the kernel matrix makes the systemd guests' disks with mkfs.ext4",
    ),
];
const BPF_LINKER_VERSION: &str = "0.13.0";
/// The fuzz targets (`fuzz/`) run under `cargo fuzz`, which `cargo xtask test` runs.
const CARGO_FUZZ_VERSION: &str = "0.13.2";
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

pub fn ensure() -> Result<()> {
    let mut changed = false;
    changed |= ensure_packages()?;
    changed |= ensure_rust_src()?;
    changed |= ensure_bpf_linker()?;
    changed |= ensure_cargo_fuzz()?;
    if !changed {
        eprintln!("xtask: setup: everything needed is present");
    }
    Ok(())
}

fn ensure_packages() -> Result<bool> {
    let missing: Vec<&Package> = PACKAGES
        .iter()
        .filter(|p| !package_installed(p.name))
        .collect();
    if missing.is_empty() {
        return Ok(false);
    }
    for package in &missing {
        eprintln!(
            "xtask: setup: {} is missing ({})",
            package.name, package.why
        );
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("installing Debian packages needs root: run `sudo cargo xtask setup`");
    }
    checked("apt-get update", apt().args(["update", "-qq"]))?;
    let names: Vec<&str> = missing.iter().map(|p| p.name).collect();
    checked(
        &format!("installing {}", names.join(" ")),
        apt()
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&names),
    )?;
    Ok(true)
}

/// apt-get, waiting for another apt or dpkg run to finish instead of failing on its lock.
fn apt() -> Command {
    let mut apt = Command::new("apt-get");
    apt.args(["-o", "DPkg::Lock::Timeout=600"])
        .env("DEBIAN_FRONTEND", "noninteractive");
    apt
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

fn ensure_cargo_fuzz() -> Result<bool> {
    let present = Command::new(env!("CARGO"))
        .args(["fuzz", "--version"])
        .output()
        .map(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains(CARGO_FUZZ_VERSION)
        })
        .unwrap_or(false);
    if present {
        return Ok(false);
    }
    checked(
        &format!("installing cargo-fuzz {CARGO_FUZZ_VERSION} (the fuzz targets run under it)"),
        Command::new(env!("CARGO"))
            .args(["install", "cargo-fuzz", "--locked"])
            .args(["--version", CARGO_FUZZ_VERSION]),
    )?;
    Ok(true)
}

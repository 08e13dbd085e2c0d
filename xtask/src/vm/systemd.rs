//! The Debian package under a real systemd: a Debian system built with debootstrap (cached like
//! the kernels) booted under qemu with a matrix kernel, where a oneshot service installs the
//! package, checks `tcpwhy.service` (see systemd/check.sh) and reports on the serial console.
//!
//! The unit's sandbox (capabilities, read-only system, RLIMIT_MEMLOCK as systemd sets it on
//! kernels that charge BPF maps to it) only shows its effect under systemd itself:
//! `systemd-analyze verify` checks the syntax, not that the agent still works inside it.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};

use super::{
    Kernel, archive::DEBIAN_MIRROR, busybox_root, cache, guest_log, install_modules,
    pack_with_init, run_qemu,
};
use crate::run::{checked, output_text};

/// Packages beyond debootstrap's minimal base: systemd as init, and what the checks run.
const GUEST_PACKAGES: &str = "systemd,systemd-sysv,udev,iproute2,curl,kmod";

/// What the initramfs loads to mount the guest's disk (ext4 is built into Debian's kernels;
/// modprobe lists built-in modules without a file to load).
const BOOT_MODULES: [&str; 3] = ["virtio_pci", "virtio_blk", "ext4"];

/// The guest's disk: a sparse file, holding the system, the kernel's modules and the package.
const DISK_BYTES: u64 = 2 << 30;

/// Booting systemd and starting the agent three times under TCG.
const GUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// The checks systemd/check.sh reports, in its order.
const CHECKS: [&str; 10] = [
    "installed",
    "sandboxed",
    "ready-after-attach",
    "probes",
    "namespaces",
    "events",
    "metrics",
    "sighup",
    "restart",
    "journal",
];

/// Boots the package's guest with a kernel; returns every check that did not pass.
pub fn run(kernel: &Kernel, deb: &Path) -> Result<Vec<String>> {
    let system = debian_system()?;
    let disk = disk(&system, kernel, deb)?;
    let initramfs = initramfs(kernel)?;
    let log = guest_log(&format!("{}-systemd", kernel.release))?;
    eprintln!(
        "xtask: vm-test: booting Linux {} with systemd...",
        kernel.release
    );
    let started = Instant::now();
    run_qemu(
        kernel,
        &initramfs,
        "console=ttyS0 quiet panic=-1 systemd.unit=tcpwhy-check.target",
        Some(&disk),
        &log,
        GUEST_TIMEOUT,
    )
    .with_context(|| format!("Linux {} with systemd", kernel.release))?;
    let console = String::from_utf8_lossy(&fs::read(&log)?).into_owned();
    let reported = reported_checks(&console);
    for (name, passed, detail) in &reported {
        let status = if *passed { "ok" } else { "FAILED" };
        eprintln!("xtask: vm-test:   {name}: {status} {detail}");
    }
    let problems: Vec<String> = CHECKS
        .iter()
        .filter_map(
            |check| match reported.iter().find(|(name, ..)| name == check) {
                Some((_, true, _)) => None,
                Some((_, false, detail)) => {
                    Some(format!("{check}: {detail} (see {})", log.display()))
                }
                None => Some(format!("{check}: did not run (see {})", log.display())),
            },
        )
        .collect();
    eprintln!(
        "xtask: vm-test: Linux {} with systemd finished in {:.0} s: {} of {} checks passed",
        kernel.release,
        started.elapsed().as_secs_f64(),
        CHECKS.len() - problems.len(),
        CHECKS.len()
    );
    Ok(problems)
}

/// `@@ CHECK <name> ok|FAILED <detail>` lines: name, passed, detail.
fn reported_checks(console: &str) -> Vec<(String, bool, String)> {
    console
        .lines()
        .filter_map(|line| line.trim().strip_prefix("@@ CHECK "))
        .filter_map(|rest| {
            let (name, rest) = rest.split_once(' ')?;
            let (status, detail) = rest.split_once(' ').unwrap_or((rest, ""));
            Some((name.to_string(), status == "ok", detail.trim().to_string()))
        })
        .collect()
}

/// The host's release (the package's Depends name the host's library versions) with systemd,
/// built once with debootstrap from the Debian registry.
fn debian_system() -> Result<PathBuf> {
    let release = host_codename()?;
    let system = cache().join(format!("systemd-rootfs-{release}"));
    // The package list it was built with: another list means another system.
    let recipe = system.with_extension("packages");
    if system.is_dir() && fs::read_to_string(&recipe).ok().as_deref() == Some(GUEST_PACKAGES) {
        return Ok(system);
    }
    let partial = system.with_extension("partial");
    for stale in [&system, &partial] {
        if stale.exists() {
            fs::remove_dir_all(stale)?;
        }
    }
    checked(
        &format!("building a Debian {release} system with systemd (debootstrap, about 2 minutes)"),
        Command::new("debootstrap")
            .args(["--variant=minbase", &format!("--include={GUEST_PACKAGES}")])
            .arg(&release)
            .arg(&partial)
            .arg(DEBIAN_MIRROR),
    )?;
    // The downloaded packages are installed by now; every disk would carry them.
    for deb in fs::read_dir(partial.join("var/cache/apt/archives"))? {
        let deb = deb?.path();
        if deb.extension().is_some_and(|e| e == "deb") {
            fs::remove_file(deb)?;
        }
    }
    fs::rename(&partial, &system)?;
    fs::write(&recipe, GUEST_PACKAGES)?;
    Ok(system)
}

fn host_codename() -> Result<String> {
    let os_release = fs::read_to_string("/etc/os-release")?;
    os_release
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|c| c.trim_matches('"').to_string())
        .context("/etc/os-release names no VERSION_CODENAME")
}

/// A fresh raw ext4 disk (made with `mkfs.ext4 -d`, no loop mount): the cached system, the
/// kernel's modules (so that the agent's sock_diag and the rest load on demand), the package and
/// the checks.
fn disk(system: &Path, kernel: &Kernel, deb: &Path) -> Result<PathBuf> {
    let stage = cache().join("systemd-stage");
    if stage.exists() {
        fs::remove_dir_all(&stage)?;
    }
    copy_tree(system, &stage)?;
    let modules = stage.join("usr/lib/modules");
    fs::create_dir_all(&modules)?;
    copy_tree(
        &kernel.root.join("lib/modules").join(&kernel.release),
        &modules.join(&kernel.release),
    )?;
    fs::copy(deb, stage.join("root/tcpwhy.deb"))?;
    let units = stage.join("etc/systemd/system");
    fs::write(
        units.join("tcpwhy-check.target"),
        include_str!("systemd/tcpwhy-check.target"),
    )?;
    fs::write(
        units.join("tcpwhy-check.service"),
        include_str!("systemd/tcpwhy-check.service"),
    )?;
    let script = stage.join("usr/local/sbin/tcpwhy-check");
    fs::write(&script, include_str!("systemd/check.sh"))?;
    fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;

    let image = cache().join(format!("systemd-{}.img", kernel.release));
    fs::File::create(&image)?.set_len(DISK_BYTES)?;
    checked(
        "making the guest's disk",
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-d"])
            .arg(&stage)
            .arg(&image),
    )?;
    fs::remove_dir_all(&stage)?;
    Ok(image)
}

/// Copies a directory tree with owners, modes and links as they are.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    output_text(Command::new("cp").arg("-a").arg(from).arg(to))
        .with_context(|| format!("copying {}", from.display()))?;
    Ok(())
}

/// An initramfs that loads the disk's driver, mounts it and hands over to systemd.
fn initramfs(kernel: &Kernel) -> Result<PathBuf> {
    let root = busybox_root(&format!("systemd-{}", kernel.release))?;
    fs::create_dir_all(root.join("newroot"))?;
    let mut init = String::from(
        "#!/bin/busybox sh\n\
         /bin/busybox --install -s /bin\n\
         mount -t proc proc /proc; mount -t devtmpfs dev /dev\n",
    );
    for module in install_modules(&root, kernel, &BOOT_MODULES)? {
        init.push_str(&format!("insmod /modules/{module}\n"));
    }
    init.push_str(
        "# The disk appears once virtio_blk has probed it.\n\
         for i in $(seq 50); do [ -b /dev/vda ] && break; sleep 0.1; done\n\
         mount -t ext4 /dev/vda /newroot || echo \"@@ BOOT cannot mount /dev/vda\"\n\
         umount /proc; mount -o move /dev /newroot/dev\n\
         exec switch_root /newroot /sbin/init\n",
    );
    let image = cache().join(format!("initramfs-systemd-{}.cpio.gz", kernel.release));
    pack_with_init(&root, &init, &image)?;
    Ok(image)
}

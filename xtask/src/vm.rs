//! `cargo xtask vm-test`: the scenario tests on real Debian kernels under qemu.
//!
//! The host kernel only allows tracepoints; users run kernels from 5.x LTS to 6.1x, where
//! function probes (fentry, kprobe) and the pre-6.10 reason-blind `tcp_send_reset` matter. Each
//! kernel is fetched with apt (the package registry is the only network there is), booted under
//! TCG (KVM is not available) into an initramfs holding busybox, the tools the tests call, and
//! the test binaries at their host paths, and runs the reset, queue and connection scenarios.

mod archive;
mod idle;
mod systemd;

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::{
    rootfs::install_with_libraries,
    run::{checked, output, output_text, workspace_root},
};
use archive::Archive;

/// A kernel line of the matrix: its label, the apt package pattern of its newest release, and
/// the archive that publishes it.
pub struct KernelLine {
    pub label: &'static str,
    package_pattern: &'static str,
    archive: Archive,
    /// Whether the kernel charges BPF memory to RLIMIT_MEMLOCK (before 5.11) rather than to
    /// memory cgroups.
    memlock_charged: bool,
}

pub const KERNELS: [KernelLine; 3] = [
    KernelLine {
        label: "5.10",
        package_pattern: r"^linux-image-5\.10\.0-[0-9]+-cloud-amd64-unsigned$",
        archive: Archive::Debian("bullseye"),
        memlock_charged: true,
    },
    KernelLine {
        label: "6.1",
        package_pattern: r"^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$",
        archive: Archive::Host,
        memlock_charged: false,
    },
    KernelLine {
        label: "6.12",
        package_pattern: r"^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64-unsigned$",
        archive: Archive::Host,
        memlock_charged: false,
    },
];

/// Attach-method runs per kernel: the default chain, and function probes forced to kprobe.
const RUNS: [(&str, &str); 2] = [
    ("default", "tp_btf,tracepoint,fentry,kprobe"),
    ("kprobe", "kprobe,tracepoint,tp_btf"),
];

/// The run that also measures the idle daemon (it takes two minutes of emulated time).
const IDLE_RUN: &str = "default";

/// The test binaries run inside the guests (the others need host tools: Prometheus, systemd).
const GUEST_TESTS: [&str; 7] = [
    "resets",
    "queues",
    "connections",
    "drops",
    "firewall",
    "latency",
    "silent",
];

/// The agent run with a locked-memory limit it may not raise: 64 KiB (the kernel's default
/// before 5.16) and no CAP_SYS_RESOURCE, as in a sandboxed service.
const MEMLOCK_LIMITED: &str = "prlimit --memlock=65536:65536 setpriv --bounding-set=-sys_resource";

/// Modules the scenarios need (veth pairs, nftables and its REJECT, sock_diag for TCP, TUN
/// devices for the delay line), with their dependencies.
const SCENARIO_MODULES: [&str; 5] = ["veth", "nf_tables", "nft_reject_inet", "tcp_diag", "tun"];

/// A guest that has not powered off by then is stuck.
const GUEST_TIMEOUT: Duration = Duration::from_secs(900);

fn cache() -> PathBuf {
    workspace_root().join(".cache/vm")
}

/// An unpacked kernel package: its vmlinuz and its module tree.
struct Kernel {
    release: String,
    root: PathBuf,
    memlock_charged: bool,
}

impl Kernel {
    fn vmlinuz(&self) -> PathBuf {
        self.root
            .join("boot")
            .join(format!("vmlinuz-{}", self.release))
    }
}

/// Downloads (once) and unpacks the newest package of a kernel line that the registry serves:
/// an index can name a release before its file can be downloaded (the registry answers 404).
fn fetch(line: &KernelLine) -> Result<Kernel> {
    let apt = line.archive.open(&cache())?;
    let list = output_text(apt.command("apt-cache").args([
        "search",
        "--names-only",
        line.package_pattern,
    ]))?;
    let mut packages: Vec<&str> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    packages.sort_by_key(|p| std::cmp::Reverse(natural_key(p)));
    let mut refused = Vec::new();
    for package in packages {
        match unpacked(&apt, package) {
            Ok(root) => {
                if !refused.is_empty() {
                    eprintln!(
                        "xtask: vm-test: using {package}: the registry did not serve {}",
                        refused.join(", ")
                    );
                }
                let release = fs::read_dir(root.join("lib/modules"))?
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .next()
                    .context("the kernel package has no modules")?;
                // What installing the package would do: modprobe (here, and in the systemd
                // guests that carry this tree) finds modules through modules.dep.
                checked(
                    "resolving module dependencies",
                    Command::new("depmod").arg("-b").arg(&root).arg(&release),
                )?;
                return Ok(Kernel {
                    release,
                    root,
                    memlock_charged: line.memlock_charged,
                });
            }
            Err(err) => {
                eprintln!("xtask: vm-test: {package}: {err:#}");
                refused.push(package);
            }
        }
    }
    bail!(
        "no package matching {} could be downloaded (refused: {refused:?})",
        line.package_pattern
    )
}

/// The unpacked tree of a kernel package, downloaded the first time.
fn unpacked(apt: &archive::Apt, package: &str) -> Result<PathBuf> {
    let root = cache().join("kernels").join(package);
    if root.join("boot").is_dir() {
        return Ok(root);
    }
    let downloads = cache().join("debs");
    fs::create_dir_all(&downloads)?;
    eprintln!("xtask: vm-test: downloading {package}");
    checked(
        "apt-get download",
        apt.command("apt-get")
            .args(["download", "-qq", package])
            .current_dir(&downloads),
    )?;
    let deb = fs::read_dir(&downloads)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{package}_")))
        })
        .context("the downloaded package is missing")?;
    fs::create_dir_all(&root)?;
    checked(
        "unpacking the kernel",
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root),
    )?;
    Ok(root)
}

/// Sort key comparing version numbers inside names numerically.
fn natural_key(name: &str) -> Vec<(u64, String)> {
    let mut key = Vec::new();
    let mut digits = String::new();
    let mut text = String::new();
    for c in name.chars() {
        if c.is_ascii_digit() {
            if !text.is_empty() {
                key.push((0, std::mem::take(&mut text)));
            }
            digits.push(c);
        } else {
            if !digits.is_empty() {
                key.push((digits.parse().unwrap_or(0), String::new()));
                digits.clear();
            }
            text.push(c);
        }
    }
    if !digits.is_empty() {
        key.push((digits.parse().unwrap_or(0), String::new()));
    }
    key.push((0, text));
    key
}

/// The built test binaries the guests run, and the agent binary.
fn test_binaries() -> Result<Vec<(String, PathBuf)>> {
    let json = output_text(
        Command::new(env!("CARGO"))
            .current_dir(workspace_root())
            .args(["test", "--release", "--no-run", "--message-format=json"]),
    )?;
    let mut found = Vec::new();
    for line in json.lines() {
        let Ok(message) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let name = message["target"]["name"].as_str().unwrap_or("");
        if message["reason"] == "compiler-artifact"
            && message["target"]["kind"][0] == "test"
            && GUEST_TESTS.contains(&name)
        {
            if let Some(path) = message["executable"].as_str() {
                found.push((name.to_string(), PathBuf::from(path)));
            }
        }
    }
    if found.len() != GUEST_TESTS.len() {
        bail!("expected test binaries {GUEST_TESTS:?}, found {found:?}");
    }
    Ok(found)
}

/// Copies modules and their dependencies (none for those built in) to `root/modules`,
/// decompressed, and returns their file names in load order.
fn install_modules(root: &Path, kernel: &Kernel, modules: &[&str]) -> Result<Vec<String>> {
    let mut order: Vec<String> = Vec::new();
    for module in modules {
        let plan = output_text(Command::new("modprobe").arg("-d").arg(&kernel.root).args([
            "-S",
            &kernel.release,
            "--show-depends",
            module,
        ]))?;
        for path in plan.lines().filter_map(|l| l.strip_prefix("insmod ")) {
            let path = path.trim();
            let name = Path::new(path)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches(".xz")
                .to_string();
            if order.contains(&name) {
                continue;
            }
            let target = root.join("modules").join(&name);
            fs::create_dir_all(target.parent().unwrap())?;
            if path.ends_with(".xz") {
                fs::write(&target, output(Command::new("xz").args(["-dc", path]))?)?;
            } else {
                fs::copy(path, &target)?;
            }
            order.push(name);
        }
    }
    Ok(order)
}

fn init_script(modules: &[String], agent: &Path, tests: &[(String, PathBuf)]) -> String {
    let mut script = String::from(
        "#!/bin/busybox sh\n\
         /bin/busybox --install -s /bin\n\
         # The real ip and nft come first: busybox's applets lack netns and nftables.\n\
         export PATH=/usr/sbin:/usr/bin:/sbin:/bin\n\
         mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev\n\
         # /tmp stays the initramfs's own (writable) directory: binaries may live under it.\n\
         mount -t tmpfs run /run; mount -t tracefs nodev /sys/kernel/tracing\n\
         ip link set lo up\n",
    );
    for module in modules {
        // crc32c-intel needs SSE4.2, which emulated CPUs lack; the generic one serves.
        script.push_str(&format!(
            "insmod /modules/{module} 2>/dev/null || echo \"@@ MODULE {module} not loaded\"\n"
        ));
    }
    script.push_str(
        "methods=$(sed -n 's/.*tcpwhy.methods=\\([^ ]*\\).*/\\1/p' /proc/cmdline)\n\
         export TCPWHY_PROBE_METHODS=$methods\n\
         echo \"@@ KERNEL $(uname -r)\"\n\
         echo \"@@ ATTACH BEGIN\"\n",
    );
    script.push_str(&format!(
        "{} diagnose --duration 1 --format json\n",
        agent.display()
    ));
    script.push_str("echo \"@@ ATTACH END\"\n");
    script.push_str(&format!(
        "echo \"@@ MEMLOCK BEGIN\"\n\
         {MEMLOCK_LIMITED} {} diagnose --duration 1 --format json 2>&1\n\
         echo \"@@ MEMLOCK END $?\"\n",
        agent.display()
    ));
    // Before the scenarios, whose sockets would linger in TIME_WAIT.
    script.push_str(&format!(
        "if grep -q tcpwhy.idle=1 /proc/cmdline; then\n{}fi\n",
        idle::script(agent)
    ));
    for (name, binary) in tests {
        script.push_str(&format!(
            "{} --test-threads=2; echo \"@@ TEST {name} $?\"\n",
            binary.display()
        ));
    }
    script.push_str("poweroff -f\n");
    script
}

/// A fresh initramfs tree under the cache, with busybox and the directories an init mounts on.
fn busybox_root(name: &str) -> Result<PathBuf> {
    let root = cache().join("roots").join(name);
    let _ = fs::remove_dir_all(&root);
    for dir in ["bin", "sbin", "proc", "sys", "dev", "tmp", "run", "etc"] {
        fs::create_dir_all(root.join(dir))?;
    }
    fs::copy("/usr/bin/busybox", root.join("bin/busybox"))
        .context("copying /usr/bin/busybox (busybox-static)")?;
    Ok(root)
}

/// Writes the initramfs's init script and packs the tree into `image`.
fn pack_with_init(root: &Path, init: &str, image: &Path) -> Result<()> {
    let path = root.join("init");
    fs::write(&path, init)?;
    fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    pack(root, image)
}

/// Builds the guest's initramfs for a kernel.
fn initramfs(kernel: &Kernel, agent: &Path, tests: &[(String, PathBuf)]) -> Result<PathBuf> {
    let root = busybox_root(&kernel.release)?;
    for program in [
        Path::new("/usr/sbin/ip"),
        Path::new("/usr/sbin/nft"),
        Path::new("/usr/bin/prlimit"),
        Path::new("/usr/bin/setpriv"),
        agent,
    ] {
        install_with_libraries(&root, program)?;
    }
    for (_, binary) in tests {
        install_with_libraries(&root, binary)?;
    }
    let modules = install_modules(&root, kernel, &SCENARIO_MODULES)?;
    let image = cache().join(format!("initramfs-{}.cpio.gz", kernel.release));
    pack_with_init(&root, &init_script(&modules, agent, tests), &image)?;
    Ok(image)
}

/// Packs a directory into a gzip-compressed newc archive, checking each stage on its own (a
/// pipeline whose cpio was missing once produced an empty archive, and the guest's "Initramfs
/// unpacking failed" surfaced only as a missing report).
fn pack(root: &Path, image: &Path) -> Result<()> {
    let mut entries = Vec::new();
    list_tree(root, root, &mut entries)?;
    let list = cache().join("initramfs.list");
    fs::write(&list, entries.join(&0))?;
    let archive = image.with_extension("");
    checked(
        "packing the initramfs",
        Command::new("cpio")
            .args(["--create", "--null", "--format=newc", "--quiet", "-O"])
            .arg(&archive)
            .current_dir(root)
            .stdin(fs::File::open(&list)?),
    )?;
    checked(
        "compressing the initramfs",
        Command::new("gzip").args(["-1", "--force"]).arg(&archive),
    )
}

/// Every path under `dir`, relative to `root`, each directory before its contents.
fn list_tree(root: &Path, dir: &Path, entries: &mut Vec<Vec<u8>>) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let relative = path.strip_prefix(root)?;
        entries.push(relative.as_os_str().as_encoded_bytes().to_vec());
        if entry.file_type()?.is_dir() {
            list_tree(root, &path, entries)?;
        }
    }
    Ok(())
}

/// What one boot showed.
pub struct RunResult {
    pub kernel: String,
    pub run: &'static str,
    pub probes: Vec<(String, Option<String>, bool)>,
    pub reset_reasons: bool,
    pub tests: BTreeMap<String, i32>,
    pub memlock: MemlockRun,
    /// The idle daemon's quiet windows ([`IDLE_RUN`] only).
    pub idle: idle::Idle,
    pub log: PathBuf,
}

/// The agent's run under [`MEMLOCK_LIMITED`].
pub struct MemlockRun {
    /// Whether the kernel charges BPF memory to the limit.
    pub charged: bool,
    pub exit: Option<i32>,
    pub output: String,
}

fn boot(kernel: &Kernel, image: &Path, run: &'static str, methods: &str) -> Result<RunResult> {
    let log = guest_log(&format!("{}-{run}", kernel.release))?;
    eprintln!(
        "xtask: vm-test: booting Linux {} ({run} methods: {methods})...",
        kernel.release
    );
    let started = Instant::now();
    let idle = if run == IDLE_RUN { 1 } else { 0 };
    run_qemu(
        kernel,
        image,
        &format!("console=ttyS0 quiet panic=-1 tcpwhy.methods={methods} tcpwhy.idle={idle}"),
        None,
        &log,
        GUEST_TIMEOUT,
    )
    .with_context(|| format!("Linux {} ({run})", kernel.release))?;
    let text = String::from_utf8_lossy(&fs::read(&log)?).into_owned();
    let result = parse(&text, kernel, run, log)?;
    if !result.idle.windows.is_empty() {
        eprintln!(
            "xtask: vm-test: Linux {} idle: {}",
            kernel.release,
            idle::describe(&result.idle)
        );
    }
    eprintln!(
        "xtask: vm-test: Linux {} ({run}) finished in {:.0} s: {}",
        kernel.release,
        started.elapsed().as_secs_f64(),
        result
            .tests
            .iter()
            .map(|(t, code)| format!("{t} {}", if *code == 0 { "ok" } else { "FAILED" }))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(result)
}

/// Where a guest's serial console is kept.
fn guest_log(name: &str) -> Result<PathBuf> {
    let logs = cache().join("logs");
    fs::create_dir_all(&logs)?;
    Ok(logs.join(format!("{name}.log")))
}

/// Boots a kernel under qemu until the guest powers off, its serial console written to `log`;
/// a guest still running after `timeout` is stuck and killed.
fn run_qemu(
    kernel: &Kernel,
    initrd: &Path,
    append: &str,
    disk: Option<&Path>,
    log: &Path,
    timeout: Duration,
) -> Result<()> {
    let started = Instant::now();
    let mut qemu = Command::new("qemu-system-x86_64");
    // One CPU: the kernel patches its code live (jump labels, kprobes) with int3, which
    // emulated SMP (TCG) does not always survive.
    qemu.args([
        "-m",
        "2048",
        "-smp",
        "1",
        "-accel",
        "tcg",
        "-nographic",
        "-no-reboot",
    ])
    // No network device: the guests' traffic stays on their own loopback.
    .args(["-nic", "none"])
    .arg("-kernel")
    .arg(kernel.vmlinuz())
    .arg("-initrd")
    .arg(initrd)
    .arg("-append")
    .arg(append);
    if let Some(disk) = disk {
        qemu.arg("-drive")
            .arg(format!("file={},format=raw,if=virtio", disk.display()));
    }
    let mut child = qemu
        .stdin(Stdio::null())
        .stdout(fs::File::create(log)?)
        .stderr(Stdio::null())
        .spawn()
        .context("starting qemu-system-x86_64")?;
    while child.try_wait()?.is_none() {
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "the guest did not power off within {timeout:?}; see {}",
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}

fn parse(text: &str, kernel: &Kernel, run: &'static str, log: PathBuf) -> Result<RunResult> {
    let report = text
        .split_once("@@ ATTACH BEGIN")
        .and_then(|(_, rest)| rest.split_once("@@ ATTACH END"))
        .map(|(json, _)| json)
        .with_context(|| {
            let panic = text.lines().find(|l| l.contains("Kernel panic"));
            format!(
                "no attach report in {}{}",
                log.display(),
                panic
                    .map(|p| format!(" ({})", p.trim()))
                    .unwrap_or_default()
            )
        })?;
    let start = report.find('{').context("the attach report is not JSON")?;
    let end = report.rfind('}').context("the attach report is not JSON")?;
    let report: Value =
        serde_json::from_str(&report[start..=end]).context("parsing the attach report")?;
    let probes = report["probes"]
        .as_array()
        .context("no probes in the report")?
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or("").to_string(),
                p["method"].as_str().map(str::to_string),
                p["attached"] == true,
            )
        })
        .collect();
    let memlock = text
        .split_once("@@ MEMLOCK BEGIN")
        .and_then(|(_, rest)| rest.split_once("@@ MEMLOCK END"))
        .map(|(output, rest)| MemlockRun {
            charged: kernel.memlock_charged,
            exit: rest.split_whitespace().next().and_then(|c| c.parse().ok()),
            output: output.trim().to_string(),
        })
        .with_context(|| format!("no limited-memlock run in {}", log.display()))?;
    let tests = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("@@ TEST "))
        .filter_map(|rest| {
            let (name, code) = rest.split_once(' ')?;
            Some((name.to_string(), code.trim().parse().ok()?))
        })
        .collect();
    Ok(RunResult {
        kernel: kernel.release.clone(),
        run,
        probes,
        reset_reasons: report["kernel"]["reset_reasons"] == true,
        tests,
        memlock,
        idle: idle::parse(text)?,
        log,
    })
}

impl RunResult {
    pub fn method_of(&self, probe: &str) -> Option<&str> {
        self.probes
            .iter()
            .find(|(name, _, attached)| name == probe && *attached)
            .and_then(|(_, method, _)| method.as_deref())
    }

    /// What the matrix requires of this run, beyond its tests passing.
    fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = GUEST_TESTS
            .iter()
            .filter(|t| self.tests.get(**t) != Some(&0))
            .map(|t| format!("{t} failed or did not run (see {})", self.log.display()))
            .collect();
        let reset_functions = [
            "tcp_v4_send_reset",
            "tcp_v6_send_reset",
            "tcp_send_active_reset",
        ];
        let queue_functions = [
            "tcp_conn_request",
            "tcp_v4_syn_recv_sock",
            "tcp_v6_syn_recv_sock",
        ];
        let mut expect = |probe: &str, method: &str| {
            if self.method_of(probe) != Some(method) {
                problems.push(format!(
                    "{probe} should attach by {method}, got {:?}",
                    self.method_of(probe)
                ));
            }
        };
        // netfilter's REJECT is a module on these kernels (loaded at boot for the firewall
        // scenarios), and fentry targets are looked up in the kernel's own BTF: kprobe it is.
        for probe in ["nf_send_reset", "nf_send_reset6"] {
            expect(probe, "kprobe");
        }
        match (self.run, self.reset_reasons) {
            // Before 6.10 the tracepoint is blind to resets without a socket: function probes.
            ("default", false) => reset_functions.iter().for_each(|p| expect(p, "fentry")),
            ("default", true) => expect("tcp:tcp_send_reset", "tp_btf"),
            _ => reset_functions.iter().for_each(|p| expect(p, "kprobe")),
        }
        for probe in queue_functions {
            // Some kernels refuse fentry on some functions (6.1: ENOTSUPP on the syn_recv_sock
            // pair): the chain's kprobe is the expected outcome there.
            let method = self.method_of(probe);
            let ok = match self.run {
                "kprobe" => method == Some("kprobe"),
                _ => matches!(method, Some("fentry" | "kprobe")),
            };
            if !ok {
                problems.push(format!(
                    "{probe} should attach by a function probe, got {method:?}"
                ));
            }
        }
        problems.extend(self.memlock.problem());
        if self.run == IDLE_RUN {
            problems.extend(idle::problem(&self.idle));
        }
        problems
    }
}

impl MemlockRun {
    /// A kernel that charges BPF memory to RLIMIT_MEMLOCK must get a report naming the limit and
    /// what would lift it; one that does not must not be affected by the limit.
    fn problem(&self) -> Option<String> {
        let names_limit =
            self.output.contains("RLIMIT_MEMLOCK") && self.output.contains("CAP_SYS_RESOURCE");
        match (self.charged, self.exit) {
            (true, _) if names_limit => None,
            (false, Some(0)) if !names_limit => None,
            (true, exit) => Some(format!(
                "with a 64 KiB memlock limit it may not raise, the agent (exit {exit:?}) did not \
                 name RLIMIT_MEMLOCK and CAP_SYS_RESOURCE: {}",
                self.output
            )),
            (false, exit) => Some(format!(
                "a 64 KiB memlock limit should not matter on this kernel, but the agent exited \
                 {exit:?}: {}",
                self.output
            )),
        }
    }
}

/// What each kernel boots.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Guests {
    /// The scenario runs, then the package under systemd.
    All,
    /// Only the package under systemd.
    Systemd,
    /// Only the idle measurement, with the default attach methods.
    Idle,
}

/// Runs the matrix for the kernel lines selected (a line's label, or "all"), and the package's
/// unit under systemd on each of them.
pub fn run(selection: &str, guests: Guests, deb: &Path) -> Result<Vec<RunResult>> {
    let lines: Vec<&KernelLine> = KERNELS
        .iter()
        .filter(|k| selection == "all" || k.label == selection)
        .collect();
    if lines.is_empty() {
        let labels: Vec<&str> = KERNELS.iter().map(|k| k.label).collect();
        bail!(
            "unknown kernel {selection:?}: use {} or all",
            labels.join(", ")
        );
    }
    let tests = match guests {
        Guests::All => test_binaries()?,
        Guests::Systemd | Guests::Idle => Vec::new(),
    };
    let agent = workspace_root().join("target/release/tcpwhy");
    let mut results = Vec::new();
    let mut problems = Vec::new();
    for line in lines {
        let kernel = fetch(line)?;
        match guests {
            Guests::All => {
                let image = initramfs(&kernel, &agent, &tests)?;
                for (run, methods) in RUNS {
                    results.push(boot(&kernel, &image, run, methods)?);
                }
            }
            Guests::Idle => {
                let image = initramfs(&kernel, &agent, &tests)?;
                let methods = RUNS.iter().find(|(run, _)| *run == IDLE_RUN).unwrap().1;
                let result = boot(&kernel, &image, IDLE_RUN, methods)?;
                problems.extend(
                    idle::problem(&result.idle).map(|p| format!("Linux {}: {p}", kernel.release)),
                );
                continue;
            }
            Guests::Systemd => {}
        }
        problems.extend(
            systemd::run(&kernel, deb)?
                .into_iter()
                .map(|p| format!("Linux {} under systemd: {p}", kernel.release)),
        );
    }
    problems.extend(results.iter().flat_map(|r| {
        r.problems()
            .into_iter()
            .map(move |p| format!("Linux {} ({}): {p}", r.kernel, r.run))
    }));
    if !problems.is_empty() {
        bail!("the kernel matrix failed:\n  {}", problems.join("\n  "));
    }
    Ok(results)
}

/// The README's kernel support table, from what the runs showed (and the host's own report).
pub fn support_table(results: &[RunResult], host: &Value) -> String {
    let mut rows = vec![
        "| kernel | RSTs sent | queue overflows | TCP drops | kprobe forced | reset reasons | scenarios |"
            .to_string(),
        "|---|---|---|---|---|---|---|".to_string(),
    ];
    let method = |probes: &[(String, Option<String>, bool)], name: &str| {
        probes
            .iter()
            .find(|(n, _, attached)| n == name && *attached)
            .and_then(|(_, m, _)| m.clone())
    };
    for default in results.iter().filter(|r| r.run == "default") {
        let forced = results
            .iter()
            .find(|r| r.run == "kprobe" && r.kernel == default.kernel);
        let sent = match method(&default.probes, "tcp:tcp_send_reset") {
            Some(m) => format!("`tcp:tcp_send_reset` ({m})"),
            None => format!(
                "function probes ({})",
                method(&default.probes, "tcp_v4_send_reset").unwrap_or_else(|| "none".into())
            ),
        };
        let queues = method(&default.probes, "tcp_conn_request")
            .map(|m| format!("exact ({m})"))
            .unwrap_or_else(|| "counters + sock_diag".into());
        let drops = drops_cell(method(&default.probes, DROPS_PROBE));
        let passed = |r: &RunResult| r.tests.values().all(|c| *c == 0);
        rows.push(format!(
            "| {} | {sent} | {queues} | {drops} | {} | {} | {} |",
            default.kernel,
            if forced.is_some_and(passed) {
                "passes"
            } else {
                "fails"
            },
            if default.reset_reasons {
                "yes"
            } else {
                "no (causes from evidence)"
            },
            if passed(default) {
                "all pass (VM)"
            } else {
                "failures"
            },
        ));
    }
    let host_method = |name: &str| {
        host["probes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == name && p["attached"] == true)
            .and_then(|p| p["method"].as_str().map(str::to_string))
    };
    rows.push(format!(
        "| {} (build host) | `tcp:tcp_send_reset` ({}) | {} | {} | n/a (no kprobes) | {} | all pass (host) |",
        host["kernel"]["release"].as_str().unwrap_or("?"),
        host_method("tcp:tcp_send_reset").unwrap_or_else(|| "none".into()),
        host_method("tcp_conn_request")
            .map(|m| format!("exact ({m})"))
            .unwrap_or_else(|| "counters + sock_diag".into()),
        drops_cell(host_method(DROPS_PROBE)),
        if host["kernel"]["reset_reasons"] == true { "yes" } else { "no" },
    ));
    rows.join("\n")
}

/// The drops probe: its reason appeared in Linux 5.17, and the agent does not attach without it.
const DROPS_PROBE: &str = "skb:kfree_skb";

fn drops_cell(method: Option<String>) -> String {
    match method {
        Some(m) => format!("`{DROPS_PROBE}` ({m})"),
        None => "no (no drop reason)".into(),
    }
}

/// Replaces the table between the README's markers.
pub fn write_support_table(table: &str) -> Result<()> {
    let path = workspace_root().join("README.md");
    let readme = fs::read_to_string(&path)?;
    let (begin, end) = ("<!-- kernel-matrix:begin -->", "<!-- kernel-matrix:end -->");
    let (Some(i), Some(j)) = (readme.find(begin), readme.find(end)) else {
        bail!("README.md has no {begin} ... {end} markers");
    };
    let updated = format!("{}{begin}\n{table}\n{}", &readme[..i], &readme[j..]);
    fs::write(path, updated)?;
    Ok(())
}

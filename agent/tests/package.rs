//! The packages `cargo xtask package` builds, installed and run as a user would: the .deb with
//! dpkg on this machine (then removed), the OCI image unpacked with umoci. `cargo xtask test`
//! builds them first and names their directory in `TCPWHY_PACKAGE_DIR`.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The packages' directory, when they were built for this run and the tests may install them.
fn package_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("TCPWHY_PACKAGE_DIR").map(PathBuf::from);
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    match (dir, root) {
        (Some(dir), true) => Some(dir),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI=true: the package tests need root and TCPWHY_PACKAGE_DIR (cargo xtask test)")
        }
        _ => {
            eprintln!("SKIPPED: run as root by `cargo xtask test`, which builds the packages");
            None
        }
    }
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("{program}: {err} (cargo xtask setup installs it)"))
}

fn succeeds(program: &str, args: &[&str]) -> String {
    let output = run(program, args);
    assert!(
        output.status.success(),
        "{program} {args:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn dpkg_status() -> String {
    String::from_utf8_lossy(&run("dpkg-query", &["-W", "-f=${Status}", "tcpwhy"]).stdout)
        .into_owned()
}

/// Purges the package however the test ends, so that the machine is left as it was.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = run("dpkg", &["--purge", "tcpwhy"]);
    }
}

/// Processes running the installed binary (a daemon the package would have started).
fn installed_binary_processes() -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let exe = std::fs::read_link(path.join("exe")).ok()?;
            (exe == Path::new("/usr/bin/tcpwhy")).then(|| path.display().to_string())
        })
        .collect()
}

#[test]
fn the_deb_installs_runs_and_removes_leaving_only_its_configuration() {
    let Some(dir) = package_dir() else { return };
    let deb = dir.join(format!("tcpwhy_{VERSION}_amd64.deb"));
    let deb = deb.to_str().unwrap();
    assert!(
        !dpkg_status().contains("installed") && !dpkg_status().contains("config-files"),
        "tcpwhy is already installed here ({}): the test will not replace it",
        dpkg_status()
    );
    let files: Vec<String> = succeeds("dpkg-deb", &["--contents", deb])
        .lines()
        .filter(|line| !line.starts_with('d'))
        .filter_map(|line| line.split_whitespace().last())
        .map(|path| path.trim_start_matches('.').to_string())
        .collect();
    for expected in [
        "/usr/bin/tcpwhy",
        "/usr/lib/systemd/system/tcpwhy.service",
        "/etc/tcpwhy/tcpwhy.toml",
        "/usr/share/man/man1/tcpwhy.1.gz",
        "/usr/share/man/man1/tcpwhy-diagnose.1.gz",
        "/usr/share/man/man1/tcpwhy-daemon.1.gz",
        "/usr/share/bash-completion/completions/tcpwhy",
        "/usr/share/zsh/vendor-completions/_tcpwhy",
        "/usr/share/fish/vendor_completions.d/tcpwhy.fish",
    ] {
        assert!(
            files.iter().any(|f| f == expected),
            "{expected} not in {files:?}"
        );
    }
    let conffiles = succeeds("dpkg-deb", &["--info", deb, "conffiles"]);
    assert_eq!(conffiles.trim(), "/etc/tcpwhy/tcpwhy.toml");

    let installed = Installed;
    let started_before = installed_binary_processes();
    succeeds("dpkg", &["--install", deb]);
    assert!(dpkg_status().contains("install ok installed"));
    if !Path::new("/run/systemd/system").exists() {
        assert_eq!(
            installed_binary_processes(),
            started_before,
            "installing started tcpwhy on a machine without systemd"
        );
    }

    let version = succeeds("/usr/bin/tcpwhy", &["--version"]);
    assert_eq!(version.trim(), format!("tcpwhy {VERSION}"));
    let report: serde_json::Value = serde_json::from_str(&succeeds(
        "/usr/bin/tcpwhy",
        &["diagnose", "--duration", "1", "--format", "json"],
    ))
    .expect("diagnose --format json prints JSON only on stdout");
    assert!(
        report["probes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["attached"] == true),
        "{report}"
    );
    assert_eq!(
        succeeds("man", &["-w", "tcpwhy"]).trim(),
        "/usr/share/man/man1/tcpwhy.1.gz"
    );
    let verify = run(
        "systemd-analyze",
        &[
            "verify",
            "--man=no",
            "/usr/lib/systemd/system/tcpwhy.service",
        ],
    );
    let said = String::from_utf8_lossy(&verify.stdout) + String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "{said}");
    assert!(
        !said.contains("tcpwhy.service"),
        "systemd-analyze complains:\n{said}"
    );
    let bash = std::fs::read_to_string("/usr/share/bash-completion/completions/tcpwhy").unwrap();
    assert!(bash.contains("diagnose") && bash.contains("--probe-methods"));

    succeeds("dpkg", &["--remove", "tcpwhy"]);
    assert!(dpkg_status().contains("config-files"), "{}", dpkg_status());
    let left: Vec<&String> = files.iter().filter(|f| Path::new(f).exists()).collect();
    assert_eq!(left, ["/etc/tcpwhy/tcpwhy.toml"], "left after removal");
    succeeds("dpkg", &["--purge", "tcpwhy"]);
    assert!(
        !Path::new("/etc/tcpwhy").exists(),
        "purge leaves /etc/tcpwhy"
    );
    drop(installed);
}

#[test]
fn the_oci_image_holds_the_built_binary_and_runs_it() {
    let Some(dir) = package_dir() else { return };
    let scratch = std::env::temp_dir().join(format!("tcpwhy-oci-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let layout = scratch.join("layout");
    std::fs::create_dir_all(&layout).unwrap();
    let archive = dir.join(format!("tcpwhy-{VERSION}-oci.tar"));
    succeeds(
        "tar",
        &[
            "-xf",
            archive.to_str().unwrap(),
            "-C",
            layout.to_str().unwrap(),
        ],
    );
    let bundle = scratch.join("bundle");
    succeeds(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:{VERSION}", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    let rootfs = bundle.join("rootfs");
    let inside = std::fs::read(rootfs.join("usr/bin/tcpwhy")).unwrap();
    let built = std::fs::read(env!("CARGO_BIN_EXE_tcpwhy")).unwrap();
    assert!(
        inside == built,
        "the image's /usr/bin/tcpwhy is not the binary built"
    );
    // Run inside the image's own file system: it must carry every library the binary loads.
    let version = succeeds(
        "chroot",
        &[rootfs.to_str().unwrap(), "/usr/bin/tcpwhy", "--version"],
    );
    assert_eq!(version.trim(), format!("tcpwhy {VERSION}"));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["process"]["args"][0], "/usr/bin/tcpwhy");
    std::fs::remove_dir_all(&scratch).unwrap();
}

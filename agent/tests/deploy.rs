//! The files in deploy/: the systemd unit verifies, the default configuration loads, and the
//! DaemonSet runs the image the README says to push.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
};

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

#[test]
fn the_systemd_unit_verifies() {
    // The unit names the installed binary; point it at the one just built.
    let unit = std::fs::read_to_string(repo_file("deploy/tcpwhy.service"))
        .unwrap()
        .replace("/usr/bin/tcpwhy", env!("CARGO_BIN_EXE_tcpwhy"));
    assert!(unit.contains("Type=notify"));
    let dir = std::env::temp_dir().join(format!("tcpwhy-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tcpwhy.service");
    std::fs::write(&path, unit).unwrap();
    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze (cargo xtask setup installs systemd)");
    let said = String::from_utf8_lossy(&output.stderr).to_string()
        + &String::from_utf8_lossy(&output.stdout);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(output.status.success(), "{said}");
    assert!(
        !said.contains("tcpwhy.service"),
        "systemd-analyze complains:\n{said}"
    );
}

#[test]
fn the_default_configuration_loads() {
    // Loading succeeds and the daemon goes on to bind: a port in use is the first error met.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tcpwhy"))
        .args(["daemon", "--config"])
        .arg(repo_file("deploy/tcpwhy.toml"))
        .args([
            "--events",
            "off",
            "--listen",
            &taken.local_addr().unwrap().to_string(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("already in use"), "{stderr}");
}

/// `promtool check config` on a configuration, written to a scratch directory.
fn promtool_accepts(name: &str, config: &str) {
    let dir = std::env::temp_dir().join(format!("tcpwhy-promcfg-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, config).unwrap();
    let output = Command::new("promtool")
        .args(["check", "config"])
        .arg(&path)
        .output()
        .expect("promtool (cargo xtask setup installs prometheus)");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        output.status.success(),
        "{name}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_fleet_scrape_configuration_is_valid() {
    // Point its rule file at the repository's rules, which promtool checks too.
    let config = std::fs::read_to_string(repo_file("deploy/prometheus/fleet.yml"))
        .unwrap()
        .replace(
            "/etc/prometheus/rules/tcpwhy.rules.yml",
            repo_file("dashboards/tcpwhy.rules.yml").to_str().unwrap(),
        );
    promtool_accepts("fleet", &config);
}

#[test]
fn the_daemonset_runs_the_image_the_readme_pushes() {
    let daemonset = std::fs::read_to_string(repo_file("deploy/kubernetes/daemonset.yaml")).unwrap();
    let image = daemonset
        .lines()
        .find_map(|line| line.trim().strip_prefix("image: "))
        .expect("the DaemonSet names an image");
    assert!(
        image.ends_with(&format!("/tcpwhy:{}", env!("CARGO_PKG_VERSION"))),
        "{image} is not this version's image"
    );
    let readme = std::fs::read_to_string(repo_file("README.md")).unwrap();
    let push = format!(
        "skopeo copy oci-archive:target/package/tcpwhy-{}-oci.tar docker://{image}",
        env!("CARGO_PKG_VERSION")
    );
    assert!(readme.contains(&push), "the README does not say `{push}`");
}

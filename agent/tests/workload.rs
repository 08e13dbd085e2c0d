//! The container and pod of a process, as a finding names them: a real process in a cgroup laid
//! out as the kubelet and containerd lay theirs out, with the kubelet's pod log directory.

mod support;

use std::{
    fs,
    io::Write,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use support::{Agent, require_bpf, unique_ipv4};

const POD_UID: &str = "6e0f3bb4-1d5c-4a57-9a8c-2f0e1b7c9d11";
const CONTAINER_ID: &str = "4f1c9a7e2b3d4c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6";

/// Removes what the test created, however it ends.
struct Cleanup {
    cgroups: Vec<PathBuf>,
    pod_logs: PathBuf,
    /// `/var/log/pods` itself, when this test created it.
    created_pod_logs_root: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for dir in self.cgroups.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
        let _ = fs::remove_dir(&self.pod_logs);
        if self.created_pod_logs_root {
            let _ = fs::remove_dir("/var/log/pods");
        }
    }
}

/// Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup` or, on hybrid hosts,
/// `/sys/fs/cgroup/unified`).
fn cgroup2_mount() -> Option<PathBuf> {
    let mounts = fs::read_to_string("/proc/self/mountinfo").ok()?;
    mounts.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        let mount_point = before.split_whitespace().nth(4)?;
        (after.split_whitespace().next() == Some("cgroup2")).then(|| PathBuf::from(mount_point))
    })
}

#[test]
fn a_connect_from_a_pod_container_names_the_pod_and_the_container() {
    if !require_bpf() {
        return;
    }
    let Some(root) = cgroup2_mount() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "no cgroup v2 hierarchy on this host"
        );
        eprintln!("SKIPPED: no cgroup v2 hierarchy on this host");
        return;
    };
    let pod_slice = format!("kubepods-besteffort-pod{}.slice", POD_UID.replace('-', "_"));
    let dirs = [
        "kubepods.slice".to_string(),
        "kubepods-besteffort.slice".to_string(),
        pod_slice,
        format!("cri-containerd-{CONTAINER_ID}.scope"),
    ];
    let mut cleanup = Cleanup {
        cgroups: Vec::new(),
        pod_logs: Path::new("/var/log/pods").join(format!("shop_web-0_{POD_UID}")),
        created_pod_logs_root: !Path::new("/var/log/pods").exists(),
    };
    let mut path = root.clone();
    for dir in &dirs {
        path.push(dir);
        fs::create_dir(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        cleanup.cgroups.push(path.clone());
    }
    fs::create_dir_all(&cleanup.pod_logs).unwrap();

    let ip = IpAddr::V4(unique_ipv4());
    let server = SocketAddr::new(ip, 7);
    // The child waits for a line, then connects to a closed port from inside the container's
    // cgroup (bash's /dev/tcp, opened by the shell itself for a builtin): the refused connect is
    // the child's. It stays a moment: the agent reads a process's cgroup when the event arrives.
    let mut child = Command::new("bash")
        .args(["-c", &format!("read go; echo > /dev/tcp/{ip}/7; sleep 1")])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    fs::write(path.join("cgroup.procs"), child.id().to_string()).unwrap();
    let agent = Agent::start(&[]);
    writeln!(child.stdin.take().unwrap(), "go").unwrap();
    let _ = child.wait();
    let report = agent.finish();

    let refused: Vec<_> = report
        .findings()
        .iter()
        .filter(|f| f["kind"] == "rst_received" && f["remote"] == server.to_string())
        .collect();
    assert_eq!(refused.len(), 1, "{:#?}", report.findings());
    let process = &refused[0]["process"];
    assert_eq!(process["pid"], child.id(), "{process:#}");
    assert_eq!(process["container"]["id"], CONTAINER_ID, "{process:#}");
    assert_eq!(process["container"]["runtime"], "containerd");
    assert_eq!(
        process["pod"],
        serde_json::json!({"namespace": "shop", "name": "web-0", "uid": POD_UID})
    );
    assert_eq!(
        process["unit"],
        format!("cri-containerd-{CONTAINER_ID}.scope"),
        "{process:#}"
    );
}

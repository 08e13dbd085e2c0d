//! Which systemd unit, container and Kubernetes pod a process belongs to, read from its cgroup
//! path alone: runtimes and the kubelet name the cgroups they create after what runs in them, so
//! no runtime socket and no API server are needed.
//!
//! Recognised path components (`<id>` is a container's 64 hex digits):
//!
//! | runtime    | systemd cgroup driver         | cgroupfs driver                    |
//! |------------|-------------------------------|------------------------------------|
//! | docker     | `docker-<id>.scope`           | `docker/<id>`                      |
//! | containerd | `cri-containerd-<id>.scope`   | `kubepods/…/pod<uid>/<id>`         |
//! | CRI-O      | `crio-<id>.scope`             | `crio-<id>`                        |
//! | podman     | `libpod-<id>.scope`           | `libpod-<id>`                      |
//!
//! crun adds a `container` cgroup below the scope; runtime monitors (`crio-conmon-<id>`,
//! `libpod-conmon-<id>`) are not containers. Pods are `…kubepods[-<qos>]-pod<uid>.slice` (systemd
//! driver, `-` in the uid written `_`) or `kubepods/[<qos>/]pod<uid>` (cgroupfs driver).
use std::{cmp::Reverse, fs, path::Path};

use crate::model::workload::{Container, Pod, Runtime, Workload};

/// Where the kubelet keeps each pod's logs, in a directory named `<namespace>_<name>_<uid>`.
const POD_LOGS: &str = "/var/log/pods";

/// The v1 hierarchies systemd and the runtimes always place a process in, after the v2 line
/// (whose controller list is empty), in order of preference.
const HIERARCHIES: [&str; 5] = ["", "name=systemd", "memory", "pids", "cpu"];

/// How runtimes name a container's cgroup, before the id (and `.scope` with the systemd driver).
const CONTAINER_PREFIXES: [(&str, Runtime); 4] = [
    ("docker-", Runtime::Docker),
    ("cri-containerd-", Runtime::Containerd),
    ("crio-", Runtime::CriO),
    ("libpod-", Runtime::Podman),
];

/// The systemd unit types whose cgroups hold processes (slices only group other units).
const UNIT_SUFFIXES: [&str; 5] = [".service", ".scope", ".socket", ".mount", ".swap"];

/// The workload of `pid`; empty when its cgroup file cannot be read (the process is gone).
pub fn of_process(pid: u32) -> Workload {
    fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map(|file| parse(&file, Path::new(POD_LOGS)))
        .unwrap_or_default()
}

/// The workload named by the text of a `/proc/<pid>/cgroup` file (v1, v2 or hybrid), with pods
/// named from the kubelet's log directories under `pod_logs`. Of the hierarchies' paths, the first
/// naming a container or pod wins, else the first naming a unit, else the first below the root: on
/// hybrid hosts a runtime may manage only the v1 hierarchies.
pub fn parse(cgroup_file: &str, pod_logs: &Path) -> Workload {
    let Some(best) = preferred_paths(cgroup_file)
        .into_iter()
        .map(Reading::of)
        .min_by_key(|reading| Reverse(reading.specificity()))
    else {
        return Workload::default();
    };
    Workload {
        cgroup: Some(best.path.to_string()),
        unit: best.unit.map(str::to_string),
        pod: best.pod_uid.and_then(|uid| pod_from_logs(pod_logs, &uid)),
        container: best.container,
    }
}

/// The paths of the hierarchies in [`HIERARCHIES`], in that order.
fn preferred_paths(cgroup_file: &str) -> Vec<&str> {
    let mut ranked: Vec<(usize, &str)> = cgroup_file
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_id, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
            let rank = HIERARCHIES
                .iter()
                .position(|wanted| controllers.split(',').any(|c| c == *wanted))?;
            Some((rank, path))
        })
        .collect();
    ranked.sort_by_key(|(rank, _)| *rank);
    ranked.into_iter().map(|(_, path)| path).collect()
}

/// What one cgroup path names.
struct Reading<'a> {
    path: &'a str,
    unit: Option<&'a str>,
    container: Option<Container>,
    pod_uid: Option<String>,
}

impl<'a> Reading<'a> {
    fn of(path: &'a str) -> Self {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let pod = parts
            .iter()
            .enumerate()
            .rev()
            .find_map(|(at, part)| pod_uid(part, &parts[..at]).map(|uid| (at, uid)));
        let container = parts.iter().enumerate().rev().find_map(|(at, part)| {
            let parent = at.checked_sub(1).map(|p| parts[p]);
            let pod_is_parent = pod.as_ref().is_some_and(|(pod_at, _)| pod_at + 1 == at);
            container_named(part, parent, pod_is_parent)
        });
        Reading {
            path,
            unit: parts.iter().rev().copied().find(|part| is_unit(part)),
            container,
            pod_uid: pod.map(|(_, uid)| uid),
        }
    }

    fn specificity(&self) -> u8 {
        if self.container.is_some() || self.pod_uid.is_some() {
            3
        } else if self.unit.is_some() {
            2
        } else if self.path != "/" {
            1
        } else {
            0
        }
    }
}

fn is_unit(part: &str) -> bool {
    UNIT_SUFFIXES
        .iter()
        .any(|suffix| part.len() > suffix.len() && part.ends_with(suffix))
}

/// The container a path component names. The cgroupfs drivers of docker and of containerd's CRI
/// plugin name it by the bare id, so the parent tells the runtime.
fn container_named(part: &str, parent: Option<&str>, pod_is_parent: bool) -> Option<Container> {
    if is_container_id(part) {
        let runtime = match parent {
            Some("docker") => Runtime::Docker,
            _ if pod_is_parent => Runtime::Containerd,
            _ => return None,
        };
        return Some(Container {
            id: part.to_string(),
            runtime,
        });
    }
    let name = part.strip_suffix(".scope").unwrap_or(part);
    CONTAINER_PREFIXES.iter().find_map(|(prefix, runtime)| {
        let id = name.strip_prefix(prefix)?;
        is_container_id(id).then(|| Container {
            id: id.to_string(),
            runtime: *runtime,
        })
    })
}

fn is_container_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The pod uid a kubelet cgroup names. The systemd driver's slice names carry their ancestors'
/// (`kubepods-besteffort-pod<uid>.slice`, also below a custom cgroup root as in kind's
/// `kubelet-kubepods-…`); the cgroupfs driver's `pod<uid>` sits somewhere below `kubepods`.
fn pod_uid(part: &str, ancestors: &[&str]) -> Option<String> {
    let uid = match part.strip_suffix(".slice") {
        Some(slice) if slice.contains("kubepods") => slice
            .rsplit('-')
            .next()?
            .strip_prefix("pod")?
            // systemd reserves `-` for nesting, so the kubelet escapes the uid's as `_`.
            .replace('_', "-"),
        Some(_) => return None,
        None if ancestors.contains(&"kubepods") => part.strip_prefix("pod")?.to_string(),
        None => return None,
    };
    is_pod_uid(&uid).then_some(uid)
}

/// Pods from the API server have UUIDs; static pods a 32-hex-digit hash of their manifest.
fn is_pod_uid(uid: &str) -> bool {
    let groups: Vec<usize> = uid.split('-').map(str::len).collect();
    uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
        && (groups == [8, 4, 4, 4, 12] || groups == [32])
}

/// The pod whose log directory is `<namespace>_<name>_<uid>`: neither namespaces nor pod names
/// may contain `_`, so the split is unambiguous.
fn pod_from_logs(pod_logs: &Path, uid: &str) -> Option<Pod> {
    fs::read_dir(pod_logs)
        .ok()?
        .filter_map(Result::ok)
        .find_map(|entry| {
            let dir = entry.file_name().into_string().ok()?;
            let mut fields = dir.split('_');
            let (namespace, name, dir_uid) = (fields.next()?, fields.next()?, fields.next()?);
            let matches = dir_uid == uid && fields.next().is_none() && entry.path().is_dir();
            matches.then(|| Pod {
                namespace: namespace.to_string(),
                name: name.to_string(),
                uid: uid.to_string(),
            })
        })
}

#[cfg(test)]
mod tests {
    use std::{
        path::PathBuf,
        sync::atomic::{AtomicU32, Ordering},
    };

    use super::*;

    const ID: &str = "ba959032a156f22cf227dfed4137fff9e325e0d02b11d5062af0a79eacac4e41";
    const UID: &str = "c298070e-275e-463f-9cc1-ad6521913e53";
    /// [`UID`] as the kubelet's systemd cgroup driver writes it.
    const UID_ESCAPED: &str = "c298070e_275e_463f_9cc1_ad6521913e53";

    /// A v1 `/proc/<pid>/cgroup` with every hierarchy at `path`, as the cgroupfs drivers leave a
    /// container.
    fn v1_file(path: &str) -> String {
        [
            "12:hugetlb",
            "11:pids",
            "10:net_cls,net_prio",
            "9:cpu,cpuacct",
            "8:memory",
            "7:devices",
            "6:freezer",
            "5:blkio",
            "4:cpuset",
            "3:perf_event",
            "2:rdma",
            "1:name=systemd",
        ]
        .map(|hierarchy| format!("{hierarchy}:{path}\n"))
        .concat()
    }

    fn read(cgroup_file: &str) -> Workload {
        parse(cgroup_file, Path::new("/nonexistent/pod-logs"))
    }

    fn container(runtime: Runtime, id: &str) -> Option<Container> {
        Some(Container {
            id: id.to_string(),
            runtime,
        })
    }

    /// A directory of this test's own, removed when dropped.
    struct ScratchDir(PathBuf);

    impl ScratchDir {
        fn new() -> Self {
            // Tests run in parallel threads of one process.
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "tcpwhy-workload-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&path).unwrap();
            ScratchDir(path)
        }
    }

    impl Drop for ScratchDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// The container a file names, and the uid of the pod it names (given a log directory).
    fn container_and_pod(cgroup_file: &str) -> (Option<Container>, Option<String>) {
        let logs = ScratchDir::new();
        fs::create_dir(logs.0.join(format!("shop_web-7d4b9c_{UID}"))).unwrap();
        let workload = parse(cgroup_file, &logs.0);
        (workload.container, workload.pod.map(|pod| pod.uid))
    }

    #[test]
    fn docker_with_either_driver() {
        assert_eq!(
            read(&format!("0::/system.slice/docker-{ID}.scope\n")),
            Workload {
                cgroup: Some(format!("/system.slice/docker-{ID}.scope")),
                unit: Some(format!("docker-{ID}.scope")),
                container: container(Runtime::Docker, ID),
                pod: None,
            }
        );
        assert_eq!(
            read(&v1_file(&format!("/docker/{ID}"))),
            Workload {
                cgroup: Some(format!("/docker/{ID}")),
                unit: None,
                container: container(Runtime::Docker, ID),
                pod: None,
            }
        );
        let cgroupfs_v2 = read(&format!("0::/docker/{ID}\n"));
        assert_eq!(cgroupfs_v2.container, container(Runtime::Docker, ID));
    }

    #[test]
    fn hybrid_hosts_fall_back_to_the_v1_hierarchies() {
        // A runtime that manages only the v1 hierarchies leaves the unified one at its service.
        let v1_only = format!(
            "{}0::/system.slice/containerd.service\n",
            v1_file(&format!("/docker/{ID}"))
        );
        let workload = read(&v1_only);
        assert_eq!(workload.container, container(Runtime::Docker, ID));
        assert_eq!(workload.cgroup, Some(format!("/docker/{ID}")));

        // systemd's hybrid mode mirrors name=systemd in the unified hierarchy.
        let scope = format!("/system.slice/docker-{ID}.scope");
        let both = format!("5:memory:{scope}\n1:name=systemd:{scope}\n0::{scope}\n");
        assert_eq!(read(&both).container, container(Runtime::Docker, ID));

        let unit_in_v1_only = "5:memory:/\n1:name=systemd:/system.slice/nginx.service\n0::/\n";
        let workload = read(unit_in_v1_only);
        assert_eq!(workload.unit.as_deref(), Some("nginx.service"));
        assert_eq!(
            workload.cgroup.as_deref(),
            Some("/system.slice/nginx.service")
        );

        let below_root_in_memory_only = "4:memory:/batch/job-7\n1:name=systemd:/\n0::/\n";
        assert_eq!(
            read(below_root_in_memory_only).cgroup.as_deref(),
            Some("/batch/job-7")
        );
    }

    #[test]
    fn containerd_cri_in_every_qos_class_with_either_driver() {
        let systemd_pod_slices = [
            format!("kubepods-pod{UID_ESCAPED}.slice"),
            format!("kubepods-burstable.slice/kubepods-burstable-pod{UID_ESCAPED}.slice"),
            format!("kubepods-besteffort.slice/kubepods-besteffort-pod{UID_ESCAPED}.slice"),
        ];
        let expected = (container(Runtime::Containerd, ID), Some(UID.to_string()));
        for pod_slice in systemd_pod_slices {
            let path = format!("/kubepods.slice/{pod_slice}/cri-containerd-{ID}.scope");
            assert_eq!(
                container_and_pod(&format!("0::{path}\n")),
                expected,
                "{path}"
            );
            assert_eq!(container_and_pod(&v1_file(&path)), expected, "{path}");
        }
        for qos in ["", "burstable/", "besteffort/"] {
            let path = format!("/kubepods/{qos}pod{UID}/{ID}");
            assert_eq!(
                container_and_pod(&format!("0::{path}\n")),
                expected,
                "{path}"
            );
            assert_eq!(container_and_pod(&v1_file(&path)), expected, "{path}");
        }
    }

    #[test]
    fn cri_o_with_either_driver_but_not_its_monitor() {
        let pod_slice = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_ESCAPED}.slice"
        );
        let expected = (container(Runtime::CriO, ID), Some(UID.to_string()));
        let systemd = format!("0::{pod_slice}/crio-{ID}.scope\n");
        assert_eq!(container_and_pod(&systemd), expected);
        let cgroupfs = v1_file(&format!("/kubepods/burstable/pod{UID}/crio-{ID}"));
        assert_eq!(container_and_pod(&cgroupfs), expected);

        // conmon runs in the pod's cgroup, next to the container it watches.
        let conmon = read(&format!("0::{pod_slice}/crio-conmon-{ID}.scope\n"));
        assert_eq!(conmon.container, None);
        assert_eq!(conmon.unit, Some(format!("crio-conmon-{ID}.scope")));
        let conmon_cgroupfs = read(&format!(
            "0::/kubepods/burstable/pod{UID}/crio-conmon-{ID}\n"
        ));
        assert_eq!(conmon_cgroupfs.container, None);
    }

    #[test]
    fn podman_rootful_rootless_and_cgroupfs_but_not_its_monitor() {
        let rootful = read(&format!("0::/machine.slice/libpod-{ID}.scope/container\n"));
        assert_eq!(rootful.container, container(Runtime::Podman, ID));
        assert_eq!(rootful.unit, Some(format!("libpod-{ID}.scope")));
        let rootless = format!(
            "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container\n"
        );
        assert_eq!(read(&rootless).container, container(Runtime::Podman, ID));
        let cgroupfs = v1_file(&format!("/libpod_parent/libpod-{ID}"));
        assert_eq!(read(&cgroupfs).container, container(Runtime::Podman, ID));

        let conmon = read(&format!("0::/machine.slice/libpod-conmon-{ID}.scope\n"));
        assert_eq!(conmon.container, None);
        assert_eq!(conmon.unit, Some(format!("libpod-conmon-{ID}.scope")));
    }

    #[test]
    fn pods_below_a_custom_root_or_seen_from_a_cgroup_namespace() {
        let expected = (container(Runtime::Containerd, ID), Some(UID.to_string()));
        // kind runs the kubelet with the cgroup root /kubelet.
        let kind = format!(
            "0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/\
             kubelet-kubepods-besteffort-pod{UID_ESCAPED}.slice/cri-containerd-{ID}.scope\n"
        );
        assert_eq!(container_and_pod(&kind), expected);
        // An agent in a pod with a private cgroup namespace sees paths relative to its own.
        let from_a_namespace = format!(
            "0::/../../kubepods-besteffort-pod{UID_ESCAPED}.slice/cri-containerd-{ID}.scope\n"
        );
        assert_eq!(container_and_pod(&from_a_namespace), expected);
    }

    #[test]
    fn static_pods_have_hash_uids() {
        let hash = "c31e5529c01b01e6161290e531469a3e";
        let file = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{hash}.slice/cri-containerd-{ID}.scope\n"
        );
        let logs = ScratchDir::new();
        fs::create_dir(logs.0.join(format!("kube-system_etcd-node-1_{hash}"))).unwrap();
        assert_eq!(
            parse(&file, &logs.0).pod,
            Some(Pod {
                namespace: "kube-system".to_string(),
                name: "etcd-node-1".to_string(),
                uid: hash.to_string(),
            })
        );
    }

    #[test]
    fn pods_are_named_only_by_their_own_log_directory() {
        let file = format!("0::/kubepods/besteffort/pod{UID}/{ID}\n");
        let logs = ScratchDir::new();
        let other_uid = "a1c50172-793d-4cb0-91e0-47a47d144dae";
        fs::create_dir(logs.0.join(format!("shop_cart-0_{other_uid}"))).unwrap();
        // A file of that name is not the kubelet's directory.
        fs::write(logs.0.join(format!("shop_impostor_{UID}")), "").unwrap();
        let workload = parse(&file, &logs.0);
        assert_eq!(workload.pod, None);
        assert_eq!(workload.container, container(Runtime::Containerd, ID));

        fs::create_dir(
            logs.0
                .join(format!("kube-system_coredns-5d78c9869d-x2x7k_{UID}")),
        )
        .unwrap();
        assert_eq!(
            parse(&file, &logs.0).pod,
            Some(Pod {
                namespace: "kube-system".to_string(),
                name: "coredns-5d78c9869d-x2x7k".to_string(),
                uid: UID.to_string(),
            })
        );
    }

    #[test]
    fn sessions_services_and_roots_name_no_container() {
        for (file, unit) in [
            (
                "0::/user.slice/user-1000.slice/session-3.scope\n",
                Some("session-3.scope"),
            ),
            ("0::/system.slice/nginx.service\n", Some("nginx.service")),
            (
                "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-firefox.scope\n",
                Some("app-firefox.scope"),
            ),
            ("0::/init.scope\n", Some("init.scope")),
            ("0::/\n", None),
        ] {
            let workload = read(file);
            assert_eq!(workload.unit.as_deref(), unit, "{file}");
            assert_eq!((workload.container, workload.pod), (None, None), "{file}");
        }
        assert_eq!(read("0::/\n").cgroup.as_deref(), Some("/"));
        assert_eq!(read(""), Workload::default());
    }

    #[test]
    fn look_alikes_are_not_containers_or_pods() {
        let short_id = &ID[..12];
        for file in [
            format!("0::/docker/{short_id}\n"),
            format!("0::/system.slice/docker-{short_id}.scope\n"),
            "0::/system.slice/docker.service\n".to_string(),
            // A bare id is a container only below `docker` or a pod.
            format!("0::/batch/{ID}\n"),
            // `pod<uid>` names a pod only below `kubepods`.
            format!("0::/machine/pod{UID}/{ID}\n"),
            "0::/kubepods/besteffort/podnot-a-uid/x\n".to_string(),
            format!("0::/system.slice/pod{UID_ESCAPED}.slice/x.service\n"),
        ] {
            let workload = read(&file);
            assert_eq!(workload.container, None, "{file}");
            assert_eq!(
                Reading::of(file.trim_start_matches("0::").trim_end()).pod_uid,
                None,
                "{file}"
            );
        }
    }

    #[test]
    fn serialises_only_what_is_known() {
        assert_eq!(
            serde_json::to_value(read("0::/\n")).unwrap(),
            serde_json::json!({"cgroup": "/"})
        );
        let logs = ScratchDir::new();
        fs::create_dir(logs.0.join(format!("shop_web-0_{UID}"))).unwrap();
        let file = format!("0::/kubepods/pod{UID}/crio-{ID}\n");
        assert_eq!(
            serde_json::to_value(parse(&file, &logs.0)).unwrap(),
            serde_json::json!({
                "cgroup": format!("/kubepods/pod{UID}/crio-{ID}"),
                "container": {"id": ID, "runtime": "cri-o"},
                "pod": {"namespace": "shop", "name": "web-0", "uid": UID},
            })
        );
    }

    /// The real kernel: a child holding a listening socket, moved into cgroups named the way the
    /// runtimes and the kubelet name theirs, resolved from its own `/proc/<pid>/cgroup`.
    mod in_real_cgroups {
        use std::{
            iter,
            net::TcpListener,
            os::{
                fd::{AsRawFd, OwnedFd},
                unix::fs::MetadataExt,
            },
            process::{Child, Command},
            thread::sleep,
            time::Duration,
        };

        use super::*;
        use crate::host::owners::find_socket_owner;

        /// Where the cgroup hierarchy of type `fstype` with super option `option` (any, when
        /// empty) is mounted whole and writable, or why this host has none.
        fn hierarchy(fstype: &str, option: &str) -> Result<PathBuf, String> {
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } != 0 {
                if std::env::var_os("CI").is_some() {
                    panic!("CI=true but the tests are not running as root: cannot create cgroups");
                }
                return Err("not root".to_string());
            }
            let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
            let (path, read_only) = mountinfo
                .lines()
                .find_map(|line| {
                    let (mount, source) = line.split_once(" - ")?;
                    let mount: Vec<&str> = mount.split(' ').collect();
                    let source: Vec<&str> = source.split(' ').collect();
                    let wanted = source.first() == Some(&fstype)
                        && (option.is_empty() || source.get(2)?.split(',').any(|o| o == option))
                        && mount.get(3) == Some(&"/");
                    wanted.then(|| {
                        let read_only = mount.get(5)?.split(',').any(|o| o == "ro");
                        Some((PathBuf::from(mount.get(4)?), read_only))
                    })?
                })
                .ok_or(format!("no {fstype} {option} hierarchy is mounted here"))?;
            if read_only {
                return Err(format!("{} is mounted read-only", path.display()));
            }
            Ok(path)
        }

        fn or_skip(hierarchy: Result<PathBuf, String>) -> Option<PathBuf> {
            hierarchy
                .map_err(|why| {
                    eprintln!("SKIPPED ({why}): this test moves a process into cgroups it creates");
                })
                .ok()
        }

        /// A child holding a listening socket on loopback, moved into `relative` below a cgroup
        /// of the test's own at the root of the hierarchy mounted at `mount`. Dropping it ends
        /// the child, then removes the cgroups.
        struct HeldListener {
            child: Child,
            inode: u32,
            created: Vec<PathBuf>,
            /// The child's cgroup as `/proc/<pid>/cgroup` shows it.
            cgroup: String,
        }

        impl HeldListener {
            fn start(mount: &Path, test: &str, relative: &str) -> Self {
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                let inode = fs::metadata(format!("/proc/self/fd/{}", listener.as_raw_fd()))
                    .unwrap()
                    .ino() as u32;
                // The listener is the child's stdin: it holds the socket for as long as it sleeps.
                let child = Command::new("sleep")
                    .arg("60")
                    .stdin(OwnedFd::from(listener))
                    .spawn()
                    .unwrap();
                let own = format!("tcpwhy-test-{}-{test}", std::process::id());
                let mut held = HeldListener {
                    child,
                    inode,
                    created: Vec::new(),
                    cgroup: format!("/{own}/{relative}"),
                };
                let mut dir = mount.to_path_buf();
                for part in iter::once(own.as_str()).chain(relative.split('/')) {
                    dir.push(part);
                    fs::create_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
                    held.created.push(dir.clone());
                }
                fs::write(dir.join("cgroup.procs"), held.child.id().to_string()).unwrap();
                held
            }

            /// The process the kernel's fd tables show holding the listener.
            fn holder(&self) -> u32 {
                let (owner, _fd) = find_socket_owner(self.inode, [self.child.id()])
                    .expect("the child holds the listener");
                owner.process.pid
            }
        }

        impl Drop for HeldListener {
            fn drop(&mut self) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                for dir in self.created.iter().rev() {
                    // A cgroup can stay busy for a moment after its last process is reaped.
                    let removed = (0..100).any(|_| {
                        fs::remove_dir(dir).is_ok() || {
                            sleep(Duration::from_millis(10));
                            false
                        }
                    });
                    if !removed {
                        eprintln!("could not remove the test cgroup {}", dir.display());
                    }
                }
            }
        }

        #[test]
        fn a_listener_in_a_cri_container_of_a_pod_on_cgroup_v2() {
            let Some(mount) = or_skip(hierarchy("cgroup2", "")) else {
                return;
            };
            let held = HeldListener::start(
                &mount,
                "cri",
                &format!(
                    "kubepods.slice/kubepods-besteffort.slice/\
                     kubepods-besteffort-pod{UID_ESCAPED}.slice/cri-containerd-{ID}.scope"
                ),
            );
            let logs = ScratchDir::new();
            fs::create_dir(logs.0.join(format!("tcpwhy-test_web-0_{UID}"))).unwrap();

            let pid = held.holder();
            let file = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
            let expected = Workload {
                cgroup: Some(held.cgroup.clone()),
                unit: Some(format!("cri-containerd-{ID}.scope")),
                container: container(Runtime::Containerd, ID),
                pod: Some(Pod {
                    namespace: "tcpwhy-test".to_string(),
                    name: "web-0".to_string(),
                    uid: UID.to_string(),
                }),
            };
            assert_eq!(parse(&file, &logs.0), expected, "{file}");
            // The host's own /var/log/pods has no directory for this test's uid.
            assert_eq!(
                of_process(pid),
                Workload {
                    pod: None,
                    ..expected
                }
            );
        }

        #[test]
        fn a_listener_in_a_podman_container_on_cgroup_v2() {
            let Some(mount) = or_skip(hierarchy("cgroup2", "")) else {
                return;
            };
            let held = HeldListener::start(
                &mount,
                "podman",
                &format!("machine.slice/libpod-{ID}.scope/container"),
            );
            assert_eq!(
                of_process(held.holder()),
                Workload {
                    cgroup: Some(held.cgroup.clone()),
                    unit: Some(format!("libpod-{ID}.scope")),
                    container: container(Runtime::Podman, ID),
                    pod: None,
                }
            );
        }

        #[test]
        fn a_listener_in_a_docker_container_on_a_v1_hierarchy() {
            // Only a hybrid or v1 host has it: the v2 line then names no container, and the
            // name=systemd line is read instead.
            let Some(mount) = or_skip(hierarchy("cgroup", "name=systemd")) else {
                return;
            };
            let held = HeldListener::start(&mount, "docker", &format!("docker/{ID}"));
            let workload = of_process(held.holder());
            assert_eq!(workload.cgroup, Some(held.cgroup.clone()));
            assert_eq!(workload.container, container(Runtime::Docker, ID));
        }
    }
}

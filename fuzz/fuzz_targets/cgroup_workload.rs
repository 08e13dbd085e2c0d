//! `/proc/<pid>/cgroup`: the workload read from it is one of the file's own paths, and the unit,
//! container and pod it names are read from that path.

#![no_main]

use std::{fs, path::PathBuf, sync::OnceLock};

use libfuzzer_sys::fuzz_target;
use tcpwhy::parsers::{Container, Workload, workload_of_cgroup_file};

/// The pod of the seeds' Kubernetes paths, as the kubelet's log directory names it.
const POD_LOG_DIR: &str = "shop_web-0_c298070e-275e-463f-9cc1-ad6521913e53";

fn pod_logs() -> &'static PathBuf {
    static LOGS: OnceLock<PathBuf> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = std::env::temp_dir().join(format!("tcpwhy-fuzz-pods-{}", std::process::id()));
        fs::create_dir_all(logs.join(POD_LOG_DIR)).expect("creating the pod log directory");
        logs
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let workload = workload_of_cgroup_file(text, pod_logs());
    let Some(cgroup) = &workload.cgroup else {
        assert_eq!(workload, Workload::default());
        return;
    };
    assert!(
        text.lines()
            .any(|line| line.splitn(3, ':').nth(2) == Some(cgroup)),
        "{cgroup:?} is not a path of {text:?}"
    );
    let parts: Vec<&str> = cgroup.split('/').collect();
    if let Some(unit) = &workload.unit {
        assert!(parts.contains(&unit.as_str()), "{unit:?} in {cgroup:?}");
    }
    if let Some(Container { id, .. }) = &workload.container {
        assert_eq!(id.len(), 64, "{id:?}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id:?}");
        assert!(parts.iter().any(|part| part.contains(id.as_str())));
    }
    if let Some(pod) = &workload.pod {
        assert_eq!(
            format!("{}_{}_{}", pod.namespace, pod.name, pod.uid),
            POD_LOG_DIR
        );
        let escaped = pod.uid.replace('-', "_");
        assert!(
            cgroup.contains(&pod.uid) || cgroup.contains(&escaped),
            "{cgroup:?}"
        );
    }
});

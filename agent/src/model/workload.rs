//! What a process runs as, in the names people use on container hosts: its cgroup, systemd
//! unit, container and Kubernetes pod. `host::workload` reads them from the cgroup path.

use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Workload {
    /// The cgroup path the rest was read from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// The innermost systemd unit or scope, e.g. `nginx.service`, `session-3.scope`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// Only when the kubelet's log directory for the pod's uid exists on this host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<Pod>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Container {
    pub id: String,
    pub runtime: Runtime,
}

impl Container {
    /// The id as `docker ps` and `crictl ps` print it: its first 12 characters.
    pub fn short_id(&self) -> String {
        self.id.chars().take(12).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runtime {
    Docker,
    Containerd,
    CriO,
    Podman,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Podman => "podman",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl Pod {
    /// `namespace/name`, as `kubectl` names a pod across namespaces.
    pub fn qualified_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

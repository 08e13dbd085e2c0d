//! The parsers of bytes tcpwhy does not control, for the fuzz targets in `fuzz/`: the config
//! file, tracefs format files, the kernel's BTF (reset-reason names), `/proc` netstat, cgroup
//! paths, sock_diag replies and the programs' ring-buffer records.

pub use crate::{
    events::{flow::ConnectFailed, reset::Reset},
    host::{
        netstat::TcpExt,
        sock_diag::{DiagSocket, EXPIRES_IN_MESSAGE, ReplyPart, decode_reply},
        workload::parse as workload_of_cgroup_file,
    },
    kernel::{btf::KernelBtf, reset_reasons, tracefs::RecordFormat},
    model::workload::{Container, Workload},
    settings::{EventSink, Settings},
};

//! Why one program could not be attached by one method, typed from aya's errors, and worded for
//! an operator who has to act on it.

use std::{fmt, io};

use aya::{
    programs::{ProgramError, kprobe::KProbeError},
    sys::SyscallError,
};

/// The kernel's internal "operation not supported" (not in libc): what attaching fentry to a
/// function the trampoline cannot handle returns.
const ENOTSUPP: i32 = 524;

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("load refused ({0}): this kernel or its security policy does not allow it")]
    Refused(io::Error),
    #[error("load failed: {0}")]
    LoadFailed(io::Error),
    #[error("this kernel cannot attach fentry to this function (ENOTSUPP)")]
    NotSupported,
    #[error("this kernel has no kprobe support (built without CONFIG_KPROBES)")]
    NoKprobes,
    #[error("no kernel BTF")]
    NoBtf,
    #[error("program {0} missing from the eBPF object")]
    ProgramMissing(&'static str),
    #[error("{}", WithCauses(.0))]
    Failed(ProgramError),
}

impl From<ProgramError> for AttachError {
    fn from(err: ProgramError) -> Self {
        match err {
            ProgramError::LoadError {
                io_error,
                verifier_log,
            } => {
                tracing::debug!(%verifier_log, "verifier rejected a program");
                if io_error.raw_os_error() == Some(libc::EPERM) {
                    AttachError::Refused(io_error)
                } else {
                    AttachError::LoadFailed(io_error)
                }
            }
            ProgramError::SyscallError(SyscallError { ref io_error, .. })
                if io_error.raw_os_error() == Some(ENOTSUPP) =>
            {
                AttachError::NotSupported
            }
            // Creating a kprobe starts by reading the kprobe PMU's type from sysfs: a kernel
            // without kprobes has none.
            ProgramError::KProbeError(KProbeError::FileError { ref io_error, .. })
                if io_error.kind() == io::ErrorKind::NotFound =>
            {
                AttachError::NoKprobes
            }
            other => AttachError::Failed(other),
        }
    }
}

/// An error followed by its causes: aya's messages name the failing call, the cause says why.
struct WithCauses<'a>(&'a ProgramError);

impl fmt::Display for WithCauses<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = std::error::Error::source(self.0);
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn syscall_error(errno: i32) -> ProgramError {
        ProgramError::SyscallError(SyscallError {
            call: "bpf_raw_tracepoint_open",
            io_error: io::Error::from_raw_os_error(errno),
        })
    }

    #[test]
    fn errors_are_sorted_by_kind_not_by_text() {
        assert!(matches!(
            AttachError::from(syscall_error(ENOTSUPP)),
            AttachError::NotSupported
        ));
        let no_pmu = ProgramError::KProbeError(KProbeError::FileError {
            filename: PathBuf::from("/sys/bus/event_source/devices/kprobe/type"),
            io_error: io::Error::from(io::ErrorKind::NotFound),
        });
        assert_eq!(
            AttachError::from(no_pmu).to_string(),
            "this kernel has no kprobe support (built without CONFIG_KPROBES)"
        );
    }

    #[test]
    fn other_errors_keep_their_causes() {
        let text = AttachError::from(syscall_error(libc::EINVAL)).to_string();
        assert!(
            text.starts_with("`bpf_raw_tracepoint_open` failed: Invalid argument"),
            "{text}"
        );
    }
}

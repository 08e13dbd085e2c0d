//! Tracepoint record layouts, read from tracefs `format` files.
//!
//! Tracepoint layouts change between kernel versions (`tcp:tcp_send_reset` gained `reason` in
//! 6.10), so field offsets are read from the running kernel rather than assumed.

use std::{
    collections::HashMap,
    fs, io,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};

const CANDIDATES: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// Why tracefs cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TracefsError {
    /// Mounted, but mode 0700 and root's: the usual case for a process with CAP_BPF and
    /// CAP_PERFMON only.
    #[error(
        "tracefs is mounted at {} but only root may read it, and this process lacks \
         CAP_DAC_READ_SEARCH",
        .0.display()
    )]
    Unreadable(PathBuf),
    #[error("tracefs is not mounted and mounting it at {} failed: {source}", .path.display())]
    MountFailed { path: PathBuf, source: io::Error },
}

/// Finds tracefs, mounting it at /sys/kernel/tracing when nothing is mounted (it is not by
/// default on some hosts, and aya's tracepoint attach needs it too).
pub fn locate_or_mount() -> Result<PathBuf, TracefsError> {
    let mut unreadable = None;
    for candidate in CANDIDATES.map(Path::new) {
        match fs::metadata(candidate.join("events")) {
            Ok(events) if events.is_dir() => return Ok(candidate.to_path_buf()),
            // An empty mount point may be searched by anyone; a mounted tracefs (or debugfs)
            // only by root.
            Err(err) if err.kind() == io::ErrorKind::PermissionDenied => {
                unreadable.get_or_insert(candidate);
            }
            _ => {}
        }
    }
    if let Some(path) = unreadable {
        return Err(TracefsError::Unreadable(path.to_path_buf()));
    }
    let target = Path::new(CANDIDATES[0]);
    mount_tracefs(target).map_err(|source| TracefsError::MountFailed {
        path: target.to_path_buf(),
        source,
    })?;
    Ok(target.to_path_buf())
}

fn mount_tracefs(target: &Path) -> io::Result<()> {
    use std::ffi::CString;
    let target_c = CString::new(target.as_os_str().as_encoded_bytes())?;
    // SAFETY: all pointers are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            target_c.as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The fields of one tracepoint record: name → byte offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordFormat {
    offsets: HashMap<String, u32>,
}

impl RecordFormat {
    pub fn read(tracefs: &Path, category: &str, name: &str) -> Result<Self> {
        let path = tracefs
            .join("events")
            .join(category)
            .join(name)
            .join("format");
        let text = fs::read_to_string(&path).with_context(|| {
            format!(
                "tracepoint {category}:{name} not found ({})",
                path.display()
            )
        })?;
        Ok(Self::parse(&text))
    }

    /// Parses lines like `field:const void * skaddr;<TAB>offset:16;<TAB>size:8;<TAB>signed:0;`.
    pub fn parse(text: &str) -> Self {
        let offsets = text
            .lines()
            .filter_map(|line| {
                let line = line.trim();
                let declaration = line.strip_prefix("field:")?.split(';').next()?;
                // `type name` or `type name[N]`; the kernel's field names are C identifiers.
                let mut words = declaration.split('[').next()?.split_whitespace();
                let name = words.next_back().filter(|name| is_identifier(name))?;
                words.next()?;
                let name = name.to_string();
                let offset = line
                    .split(';')
                    .find_map(|part| part.trim().strip_prefix("offset:"))?
                    .parse()
                    .ok()?;
                Some((name, offset))
            })
            .collect();
        Self { offsets }
    }

    pub fn offset(&self, field: &str) -> Option<u32> {
        self.offsets.get(field).copied()
    }

    /// Every field and its offset, in no particular order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, u32)> {
        self.offsets
            .iter()
            .map(|(name, offset)| (name.as_str(), *offset))
    }
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEND_RESET_6_18: &str = "name: tcp_send_reset
ID: 2280
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:const void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:const void * skaddr;\toffset:16;\tsize:8;\tsigned:0;
\tfield:int state;\toffset:24;\tsize:4;\tsigned:1;
\tfield:enum sk_rst_reason reason;\toffset:28;\tsize:4;\tsigned:0;
\tfield:__u8 saddr[28];\toffset:32;\tsize:28;\tsigned:0;

print fmt: \"skbaddr=%p\"";

    #[test]
    fn parses_pointer_enum_and_array_fields() {
        let format = RecordFormat::parse(SEND_RESET_6_18);
        assert_eq!(format.offset("common_flags"), Some(2));
        assert_eq!(format.offset("skbaddr"), Some(8));
        assert_eq!(format.offset("skaddr"), Some(16));
        assert_eq!(format.offset("reason"), Some(28));
        assert_eq!(format.offset("saddr"), Some(32));
        assert_eq!(format.offset("daddr"), None);
    }

    #[test]
    fn declarations_without_a_plain_name_are_no_fields() {
        for declaration in ["__u8 [28]", "__u8da[dd r4]", "int a.b", "int *"] {
            let line = format!("\tfield:{declaration};\toffset:32;\tsize:28;\tsigned:0;");
            assert_eq!(
                RecordFormat::parse(&line),
                RecordFormat::default(),
                "{line}"
            );
        }
    }

    #[test]
    fn older_layout_without_reason_has_no_reason_offset() {
        let format = RecordFormat::parse(
            "\tfield:const void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;\n\
             \tfield:const void * skaddr;\toffset:16;\tsize:8;\tsigned:0;\n\
             \tfield:__u16 sport;\toffset:24;\tsize:2;\tsigned:0;",
        );
        assert_eq!(format.offset("reason"), None);
        assert_eq!(format.offset("sport"), Some(24));
    }
}

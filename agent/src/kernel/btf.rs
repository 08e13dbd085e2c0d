//! Queries on the running kernel's BTF (`/sys/kernel/btf/vmlinux`).

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use btf_rs::{Btf, Type};

/// Where the kernel exposes its own BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";
/// Where each loaded module's BTF appears, named after the module.
const MODULES_BTF: &str = "/sys/kernel/btf";

pub struct KernelBtf {
    btf: Btf,
}

/// btf-rs trusts the header's section bounds (and overflows adding them up), so a blob whose
/// sections do not lie within it is refused before it is parsed.
fn check_sections(bytes: &[u8]) -> Result<()> {
    const HEADER_BYTES: usize = 24;
    let header = bytes
        .get(..HEADER_BYTES)
        .ok_or_else(|| anyhow!("{} bytes are too few for a BTF header", bytes.len()))?;
    let read: fn([u8; 4]) -> u32 = match header[..2] {
        [0x9f, 0xeb] => u32::from_le_bytes,
        [0xeb, 0x9f] => u32::from_be_bytes,
        _ => bail!("not BTF (no BTF magic number)"),
    };
    let field = |at: usize| {
        u64::from(read([
            header[at],
            header[at + 1],
            header[at + 2],
            header[at + 3],
        ]))
    };
    let header_len = field(4);
    for (section, offset, len) in [
        ("type", field(8), field(12)),
        ("string", field(16), field(20)),
    ] {
        let end = header_len + offset + len;
        if end > bytes.len() as u64 {
            bail!(
                "the BTF {section} section ends at byte {end}, past the blob's {}",
                bytes.len()
            );
        }
    }
    Ok(())
}

impl KernelBtf {
    pub fn from_sys_fs() -> Result<Self> {
        Self::from_file(Path::new(VMLINUX_BTF))
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| {
            format!(
                "cannot read the kernel's BTF at {} (kernel built without CONFIG_DEBUG_INFO_BTF?)",
                path.display()
            )
        })?;
        Self::from_bytes(&bytes).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        check_sections(bytes)?;
        Ok(Self {
            btf: Btf::from_bytes(bytes)?,
        })
    }

    /// Byte offset of `path` (dot-separated members, e.g. `ns.inum`) inside `struct name`.
    /// Members of anonymous structs and unions are found as the compiler would find them.
    pub fn member_offset(&self, struct_name: &str, path: &str) -> Result<u32> {
        let mut current = self.named_struct(struct_name)?;
        let mut offset_bits = 0u32;
        let mut segments = path.split('.').peekable();
        while let Some(segment) = segments.next() {
            let (bits, member_type) = self
                .find_member(&current, segment)?
                .ok_or_else(|| anyhow!("struct {struct_name} has no member {path}"))?;
            offset_bits += bits;
            if segments.peek().is_some() {
                current = match self.strip_qualifiers(member_type)? {
                    Type::Struct(s) | Type::Union(s) => s,
                    other => bail!(
                        "{struct_name}.{segment} is a {}, not a struct",
                        other.name()
                    ),
                };
            }
        }
        if !offset_bits.is_multiple_of(8) {
            bail!("{struct_name}.{path} is a bitfield");
        }
        Ok(offset_bits / 8)
    }

    /// The members of `enum name` as (name, value) pairs.
    pub fn enum_members(&self, name: &str) -> Result<Vec<(String, u32)>> {
        for ty in self.types_named(name)? {
            if let Type::Enum(e) = ty {
                return e
                    .members
                    .iter()
                    .map(|m| Ok((self.btf.resolve_name(m)?, m.val())))
                    .collect();
            }
        }
        bail!("the kernel's BTF has no enum {name}")
    }

    /// The value of one enumerator of `enum name`.
    pub fn enum_value(&self, name: &str, member: &str) -> Result<u32> {
        self.enum_members(name)?
            .into_iter()
            .find(|(n, _)| n == member)
            .map(|(_, v)| v)
            .ok_or_else(|| anyhow!("enum {name} has no {member}"))
    }

    /// Number of parameters of a kernel function, as BTF records it.
    pub fn function_arity(&self, function: &str) -> Result<usize> {
        for ty in self.types_named(function)? {
            if let Type::Func(func) = ty {
                if let Type::FuncProto(proto) = self.btf.resolve_chained_type(&func)? {
                    return Ok(proto.parameters.len());
                }
            }
        }
        bail!("the kernel's BTF has no function {function}")
    }

    /// Position of `function`'s parameter named `parameter`, from the kernel's BTF or, for a
    /// function built as a module, from the module's: split BTF on top of the kernel's, which
    /// exists only while the module is loaded.
    pub fn parameter_position(
        &self,
        module: &str,
        function: &str,
        parameter: &str,
    ) -> Result<usize> {
        if let Some(position) = parameter_in(&self.btf, function, parameter)? {
            return Ok(position);
        }
        let path = Path::new(MODULES_BTF).join(module);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("module {module} is not loaded ({})", path.display()))?;
        check_sections(&bytes)?;
        let module_btf = Btf::from_split_bytes(&bytes, &self.btf)
            .with_context(|| format!("parsing {}", path.display()))?;
        parameter_in(&module_btf, function, parameter)?
            .ok_or_else(|| anyhow!("{module} has no function {function} taking {parameter}"))
    }

    /// Number of arguments a BTF tracepoint passes (its `btf_trace_<name>` typedef, minus the
    /// leading `void *` that the tracing core adds).
    pub fn tracepoint_arity(&self, tracepoint: &str) -> Result<usize> {
        let typedef = format!("btf_trace_{tracepoint}");
        for ty in self.types_named(&typedef)? {
            if let Type::Typedef(td) = ty {
                if let Type::Ptr(ptr) = self.btf.resolve_chained_type(&td)? {
                    if let Type::FuncProto(proto) = self.btf.resolve_chained_type(&ptr)? {
                        return Ok(proto.parameters.len().saturating_sub(1));
                    }
                }
            }
        }
        bail!("the kernel's BTF has no tracepoint {tracepoint}")
    }

    fn types_named(&self, name: &str) -> Result<Vec<Type>> {
        types_named(&self.btf, name)
    }

    fn named_struct(&self, name: &str) -> Result<btf_rs::Struct> {
        for ty in self.types_named(name)? {
            if let Type::Struct(s) = ty {
                // Skip empty forward-like entries some kernels carry for the same name.
                if !s.members.is_empty() {
                    return Ok(s);
                }
            }
        }
        bail!("the kernel's BTF has no struct {name}")
    }

    /// Finds a member by name, descending into anonymous members. Returns its bit offset and type.
    fn find_member(&self, owner: &btf_rs::Struct, name: &str) -> Result<Option<(u32, Type)>> {
        for member in &owner.members {
            let member_name = self.btf.resolve_name(member).unwrap_or_default();
            let member_type = self.btf.resolve_chained_type(member)?;
            if member_name == name {
                return Ok(Some((member.bit_offset(), member_type)));
            }
            if member_name.is_empty() {
                if let Type::Struct(inner) | Type::Union(inner) =
                    self.strip_qualifiers(member_type)?
                {
                    if let Some((bits, ty)) = self.find_member(&inner, name)? {
                        return Ok(Some((member.bit_offset() + bits, ty)));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Follows typedefs and const/volatile qualifiers to the underlying type.
    fn strip_qualifiers(&self, mut ty: Type) -> Result<Type> {
        loop {
            ty = match ty {
                Type::Typedef(t) => self.btf.resolve_chained_type(&t)?,
                Type::Const(t) => self.btf.resolve_chained_type(&t)?,
                Type::Volatile(t) => self.btf.resolve_chained_type(&t)?,
                Type::Restrict(t) => self.btf.resolve_chained_type(&t)?,
                Type::TypeTag(t) => self.btf.resolve_chained_type(&t)?,
                other => return Ok(other),
            };
        }
    }
}

fn types_named(btf: &Btf, name: &str) -> Result<Vec<Type>> {
    // btf-rs reports an unknown name as an error; an empty list reads better to callers.
    Ok(btf.resolve_types_by_name(name).unwrap_or_default())
}

/// Position of `function`'s parameter named `parameter` in `btf`, None without such a function.
fn parameter_in(btf: &Btf, function: &str, parameter: &str) -> Result<Option<usize>> {
    for ty in types_named(btf, function)? {
        if let Type::Func(func) = ty {
            if let Type::FuncProto(proto) = btf.resolve_chained_type(&func)? {
                let names = proto.parameters.iter().map(|p| btf.resolve_name(p));
                for (position, name) in names.enumerate() {
                    if name? == parameter {
                        return Ok(Some(position));
                    }
                }
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    // These machines always have BTF; a kernel without it is a failure here, not a skip.
    fn kernel_btf() -> KernelBtf {
        KernelBtf::from_sys_fs().unwrap()
    }

    #[test]
    fn sections_beyond_the_blob_are_refused_before_parsing() {
        let mut blob = fs::read(VMLINUX_BTF).unwrap();
        assert!(KernelBtf::from_bytes(&blob).is_ok());
        // The string section's length, as the fuzzer found it: offsets that overflow u32.
        blob[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = KernelBtf::from_bytes(&blob).err().unwrap().to_string();
        assert!(err.contains("string section ends at byte"), "{err}");
        assert!(KernelBtf::from_bytes(&blob[..10]).is_err());
    }

    #[test]
    fn sock_common_sits_at_the_start_of_every_socket_kind() {
        let btf = kernel_btf();
        assert_eq!(btf.member_offset("sock", "__sk_common").unwrap(), 0);
        assert_eq!(
            btf.member_offset("inet_timewait_sock", "__tw_common")
                .unwrap(),
            0
        );
        assert_eq!(
            btf.member_offset("request_sock", "__req_common").unwrap(),
            0
        );
    }

    #[test]
    fn members_of_anonymous_unions_are_found() {
        let btf = kernel_btf();
        let daddr = btf.member_offset("sock_common", "skc_daddr").unwrap();
        let saddr = btf.member_offset("sock_common", "skc_rcv_saddr").unwrap();
        assert_eq!(
            saddr,
            daddr + 4,
            "skc_daddr and skc_rcv_saddr form skc_addrpair"
        );
        let dport = btf.member_offset("sock_common", "skc_dport").unwrap();
        let num = btf.member_offset("sock_common", "skc_num").unwrap();
        assert_eq!(num, dport + 2, "skc_dport and skc_num form skc_portpair");
    }

    #[test]
    fn nested_paths_and_enums_resolve() {
        let btf = kernel_btf();
        btf.member_offset("net", "ns.inum").unwrap();
        assert_eq!(btf.enum_value("sock_flags", "SOCK_DEAD").unwrap(), 0);
        assert!(btf.member_offset("sock", "no_such_member").is_err());
        assert!(btf.enum_value("sock_flags", "SOCK_NO_SUCH_FLAG").is_err());
    }
}

//! Builds the eBPF programs (`agent-ebpf`) with nightly for the BPF target, so that a plain
//! `cargo build --release` produces a `tcpwhy` with the programs embedded.

use anyhow::{Context as _, anyhow};
use aya_build::Toolchain;

fn main() -> anyhow::Result<()> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("reading the workspace metadata")?;
    let ebpf = metadata
        .packages
        .into_iter()
        .find(|p| p.name.as_str() == "tcpwhy-ebpf")
        .ok_or_else(|| anyhow!("package tcpwhy-ebpf not found in the workspace"))?;
    let root = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("no parent for {}", ebpf.manifest_path))?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: ebpf.name.as_str(),
            root_dir: root.as_str(),
            ..Default::default()
        }],
        Toolchain::default(),
    )
    .context("building the eBPF programs failed; `cargo xtask setup` installs what they need")
}

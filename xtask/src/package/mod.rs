//! `cargo xtask package`: the Debian package and the OCI image, in `target/package/`, from the
//! binary `cargo xtask build` left in `target/release/tcpwhy`.

mod deb;
mod oci;

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::Result;

use crate::run::workspace_root;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where the artifacts go; the package tests find them through `TCPWHY_PACKAGE_DIR`.
pub fn output_dir() -> PathBuf {
    workspace_root().join("target/package")
}

/// Builds both artifacts and returns their paths.
pub fn build() -> Result<[PathBuf; 2]> {
    let out = output_dir();
    fs::create_dir_all(&out)?;
    let binary = workspace_root().join("target/release/tcpwhy");
    let deb = deb::build(&binary, &out)?;
    let image = oci::build(&binary, &out)?;
    for artifact in [&deb, &image] {
        eprintln!(
            "xtask: package: {} ({} KiB)",
            artifact.display(),
            fs::metadata(artifact)?.len() / 1024
        );
    }
    Ok([deb, image])
}

/// An empty scratch directory under the output directory.
fn fresh_dir(out: &Path, name: &str) -> Result<PathBuf> {
    let dir = cleared(out, name)?;
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A path under the output directory with nothing at it.
fn cleared(out: &Path, name: &str) -> Result<PathBuf> {
    let path = out.join(name);
    if path.exists() {
        fs::remove_dir_all(&path)?;
    }
    Ok(path)
}

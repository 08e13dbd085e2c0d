//! Root file systems built from host files: the kernel matrix's initramfs and the OCI image.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result};

use crate::run::output_text;

/// Copies a file to the same absolute path under `root`.
pub fn install(root: &Path, file: &Path) -> Result<()> {
    let target = root.join(file.strip_prefix("/").unwrap_or(file));
    fs::create_dir_all(target.parent().context("a file has a directory")?)?;
    fs::copy(file, &target).with_context(|| format!("copying {}", file.display()))?;
    Ok(())
}

/// Copies a program and the shared libraries it needs, each at the path it will be looked for.
pub fn install_with_libraries(root: &Path, program: &Path) -> Result<()> {
    install(root, program)?;
    for library in shared_libraries(program)? {
        install(root, &library)?;
    }
    Ok(())
}

/// The shared libraries `ldd` says a program loads, the loader included.
pub fn shared_libraries(program: &Path) -> Result<Vec<PathBuf>> {
    Ok(output_text(Command::new("ldd").arg(program))?
        .lines()
        .filter_map(|line| {
            let library = line
                .split_once("=>")
                .map(|(_, rest)| rest)
                .unwrap_or(line)
                .split_whitespace()
                .next()?;
            library.starts_with('/').then(|| PathBuf::from(library))
        })
        .collect())
}

//! The check that setup's packages provide every program the tests and the tasks spawn. A
//! program that only a developer's machine has (installed by hand) fails here, by name, instead
//! of deep inside a test or a guest kernel's boot.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Result, bail};

use crate::{
    run::{output_text, workspace_root},
    setup::PACKAGES,
};

/// Where programs are spawned from: the end-to-end tests and the tasks themselves.
const SCANNED: [&str; 2] = ["agent/tests", "xtask/src"];

/// What names a program in source: the spawn forms used here, and absolute paths of programs
/// copied into the kernel matrix's guests.
const SPAWN_PREFIXES: [&str; 3] = ["Command::new(\"", "command(\"", "run(&[\""];
const PROGRAM_DIRS: [&str; 4] = ["\"/usr/bin/", "\"/usr/sbin/", "\"/bin/", "\"/sbin/"];

/// Programs from the Rust toolchain, from setup's own `cargo install`, or built here.
const NOT_FROM_PACKAGES: [&str; 4] = ["cargo", "rustup", "bpf-linker", "tcpwhy"];

pub fn check() -> Result<()> {
    let spawned = spawned_programs()?;
    let provided = packaged_programs()?;
    let unprovided: Vec<String> = spawned
        .iter()
        .filter(|(program, _)| {
            !provided.contains(*program) && !NOT_FROM_PACKAGES.contains(&program.as_str())
        })
        .map(|(program, places)| format!("{program} (run at {})", places.join(", ")))
        .collect();
    if !unprovided.is_empty() {
        bail!(
            "no package in setup's list (xtask/src/setup.rs) or Debian's required set provides:\n  {}",
            unprovided.join("\n  ")
        );
    }
    eprintln!(
        "xtask: the {} programs the tests and tasks run all come from setup's packages",
        spawned.len()
    );
    Ok(())
}

/// Program name -> the places (file:line) that run it.
fn spawned_programs() -> Result<BTreeMap<String, Vec<String>>> {
    let root = workspace_root();
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for dir in SCANNED {
        for file in rust_files(&root.join(dir))? {
            let text = fs::read_to_string(&file)?;
            let shown = file.strip_prefix(&root).unwrap_or(&file).display();
            for (number, line) in text.lines().enumerate() {
                for program in programs_in(line) {
                    found
                        .entry(program)
                        .or_default()
                        .push(format!("{shown}:{}", number + 1));
                }
            }
        }
    }
    Ok(found)
}

fn programs_in(line: &str) -> Vec<String> {
    let mut programs = Vec::new();
    for prefix in SPAWN_PREFIXES.iter().chain(&PROGRAM_DIRS) {
        for (at, _) in line.match_indices(prefix) {
            let rest = &line[at + prefix.len()..];
            if let Some(end) = rest.find('"') {
                let program = &rest[..end];
                if !program.is_empty() && !program.contains(['/', ' ', '{']) {
                    programs.push(program.to_string());
                }
            }
        }
    }
    programs
}

fn rust_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(rust_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    Ok(files)
}

/// Every program in a bin or sbin directory of setup's packages or of Debian's required set,
/// from dpkg's own file lists (setup has installed them by now).
fn packaged_programs() -> Result<BTreeSet<String>> {
    let installed = output_text(
        Command::new("dpkg-query").args(["-W", "-f=${Package}\t${Priority}\t${Essential}\n"]),
    )?;
    let required = installed.lines().filter_map(|line| {
        let mut fields = line.split('\t');
        let (name, priority, essential) = (fields.next()?, fields.next()?, fields.next()?);
        (priority == "required" || essential == "yes").then_some(name)
    });
    let packages: Vec<&str> = PACKAGES.iter().map(|p| p.name).chain(required).collect();
    let files = output_text(Command::new("dpkg-query").arg("-L").args(&packages))?;
    Ok(files
        .lines()
        .map(Path::new)
        .filter(|file| {
            file.parent()
                .is_some_and(|dir| dir.ends_with("bin") || dir.ends_with("sbin"))
        })
        .filter_map(|file| Some(file.file_name()?.to_string_lossy().into_owned()))
        .collect())
}

//! Rebuild the programs when `bpf-linker` changes: it is an undeclared build dependency (cargo
//! has no stable way to declare a binary dependency), so its mtime stands in for its version.
fn main() {
    match which::which("bpf-linker") {
        Ok(linker) => println!("cargo:rerun-if-changed={}", linker.display()),
        Err(err) => println!("cargo:warning=bpf-linker not found ({err}); run `cargo xtask setup`"),
    }
}

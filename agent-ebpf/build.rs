//! Rebuild the programs when `bpf-linker` changes: it is an undeclared build dependency (cargo
//! has no stable way to declare a binary dependency), so its mtime stands in for its version.
//!
//! And let LLVM turn small `memset`/`memmove`s into stores: bpf-linker asks it by default to
//! expand only `memcpy` (in order, for JITs that pattern-match copies, which x86-64 and arm64
//! do not), so every zeroed array or copied address became a call to a byte-at-a-time loop,
//! up to half of what a reset event cost where `cargo xtask bench` measured it.
fn main() {
    match which::which("bpf-linker") {
        Ok(linker) => println!("cargo:rerun-if-changed={}", linker.display()),
        Err(err) => println!("cargo:warning=bpf-linker not found ({err}); run `cargo xtask setup`"),
    }
    println!("cargo:rustc-link-arg-bins=--disable-expand-memcpy-in-order");
}

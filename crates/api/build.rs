//! Link flags for the `patchbay` binary.
//!
//! On Linux with glibc the binary is linked with packed relative relocations (`DT_RELR`,
//! `-z pack-relative-relocs`): a position-independent executable otherwise carries about
//! 1.2 MB of `.rela.dyn` entries that the dynamic loader reads at every start, and those pages
//! stay resident (docs/benchmarks.md, Sync: idle memory). RELR keeps the same relocations in a
//! few kilobytes; the binary stays a PIE (ASLR unchanged). It needs binutils 2.38 or LLVM lld 15
//! to link and glibc 2.36 to run (Debian 12, Ubuntu 22.04 and later; the Docker image is
//! Debian 12). `PATCHBAY_LINK_NO_RELR=1` at build time links without it for older systems.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=PATCHBAY_LINK_NO_RELR");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let opted_out = std::env::var_os("PATCHBAY_LINK_NO_RELR").is_some_and(|v| !v.is_empty() && v != "0");
    if target_os == "linux" && target_env == "gnu" && !opted_out {
        println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

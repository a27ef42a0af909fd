//! Link-time tuning of the `switchboard` binary (nothing here generates code).
//!
//! Packed relative relocations (`-z pack-relative-relocs`, DT_RELR): a position-independent Rust
//! binary carries ~1.6 MB of relocation entries that the loader reads at every start, which shows
//! up as resident memory for the life of the process. Packed, they take a few kilobytes. Needs
//! GNU ld ≥ 2.38 or lld at build time and glibc ≥ 2.36 at run time; the linker is probed first
//! and the flag is simply left out where it is not understood.
//!
//! The message path packed together (`link/hot-path.ld`, an `INSERT` linker script that GNU ld
//! and lld both read): after start-up the gateway drops its code pages, and the first message
//! faults back in what it runs, 64 KiB around each page touched. Scattered over the binary, that
//! was ~220 faults and 12 MiB back; packed, ~105 and 4.7 MiB. Optimised builds only (the file is
//! regenerated from a profile of one, see `benches/common/hot_path.rs`); a linker that cannot
//! read it (mold) builds with `SWITCHBOARD_NO_HOT_PATH=1`.

use std::io::Write;
use std::process::{Command, Stdio};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    let native = std::env::var("TARGET").ok() == std::env::var("HOST").ok();
    if linux && native && linker_accepts("-Wl,-z,pack-relative-relocs") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    let hot = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("link/hot-path.ld");
    println!("cargo:rerun-if-changed={}", hot.display());
    let optimised = std::env::var("PROFILE").as_deref() == Ok("release");
    if linux && optimised && hot.is_file() && std::env::var_os("SWITCHBOARD_NO_HOT_PATH").is_none()
    {
        println!("cargo:rustc-link-arg-bin=switchboard=-T{}", hot.display());
    }
    println!("cargo:rerun-if-env-changed=SWITCHBOARD_NO_HOT_PATH");
}

/// Whether the system C compiler links a trivial program with `flag`.
fn linker_accepts(flag: &str) -> bool {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()))
        .join("probe-relr");
    let child = Command::new("cc")
        .args(["-x", "c", "-", "-o"])
        .arg(&out)
        .arg(flag)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return false };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"int main(void) { return 0; }\n");
    }
    child.wait().map(|s| s.success()).unwrap_or(false)
        && Command::new(&out)
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
}

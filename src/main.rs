//! The `switchboard` binary: everything lives in the library; this is the edge.

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    switchboard::cli::main()
}

/// glibc gives every thread that allocates its own malloc arena and rarely returns their memory;
/// after a burst of messages across the runtime's threads the gateway stayed ~10 MiB larger than
/// before it. Two arenas are plenty for a process that mostly waits on the network.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

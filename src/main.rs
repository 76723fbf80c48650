//! The `syncplane` binary.

/// jemalloc returns freed memory to the kernel after a short decay, where
/// glibc's allocator keeps the heap it grew: loading a Python or
/// JavaScript service reads tens of MiB of component bytes (and compiling
/// one allocates hundreds of MiB) once, and that should not stay resident
/// for as long as the server runs. Measured with one Python service
/// installed and restarted: 69 MiB of retained heap with glibc, 4 MiB
/// with jemalloc. Its background threads purge the arenas of threads gone
/// idle too (Cranelift's compile workers), which otherwise keep what they
/// freed until they allocate again.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    syncplane_cli::main()
}

// glibc's malloc took about a quarter of the gateway's CPU under load (arena
// locks and chunk consolidation as tokio's workers free each other's
// allocations); mimalloc's per-thread pages do not contend. See the
// README's Performance section for the measurements.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc commits its first arena eagerly where the kernel overcommits;
/// with transparent huge pages on (`always`, as on many distributions) every
/// touched 2 MiB of it becomes resident, which doubled an idle gateway's RSS
/// (10 → 20 MiB). Committing on demand keeps RSS to what is used. This runs
/// from `.init_array`, after mimalloc has read its options and before Rust's
/// runtime makes the first allocation (which reserves the arena).
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static COMMIT_ON_DEMAND: extern "C" fn() = {
    unsafe extern "C" {
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }
    /// `mi_option_arena_eager_commit` in mimalloc.h (the same in v2 and v3).
    const ARENA_EAGER_COMMIT: std::ffi::c_int = 4;
    extern "C" fn commit_on_demand() {
        // SAFETY: sets one integer option; valid before and after init.
        unsafe { mi_option_set(ARENA_EAGER_COMMIT, 0) }
    }
    commit_on_demand
};

fn main() -> std::process::ExitCode {
    match switchboard::cli::main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("switchboard: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

// mimalloc instead of glibc's malloc: a message's copies, boxes and
// channels are small short-lived allocations, which glibc served at about a
// fifth of the delivery loop's CPU (see BENCHMARKS.md's profile).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    weir::cli::main()
}

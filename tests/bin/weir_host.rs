//! The `weir` command, built inside this crate so the tests can run it as a
//! child process (`CARGO_BIN_EXE_weir-host`).
fn main() -> std::process::ExitCode {
    weir::cli::main()
}

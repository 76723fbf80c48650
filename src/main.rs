fn main() -> std::process::ExitCode {
    syncplane_cli::main()
}

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    capstan::cli::main()
}

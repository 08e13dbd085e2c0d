fn main() -> std::process::ExitCode {
    tcpwhy::main()
}

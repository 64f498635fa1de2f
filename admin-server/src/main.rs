//! `ccp-admin`: manage users and access keys from the command line. See `ccp-admin --help`.

fn main() -> std::process::ExitCode {
    ccp_admin_server::cli::main()
}

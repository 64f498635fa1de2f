//! `ccp-admin-server`: the admin REST API on `CCP_ADMIN_ADDR`. See docs/configuration.md.

fn main() -> std::process::ExitCode {
    ccp_admin_server::server::main()
}

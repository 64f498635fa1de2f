//! `ccp-gateway`: reads `CCP_*` settings (docs/configuration.md) and serves until SIGTERM.
//! `ccp-gateway --check-config` prints the effective settings (secrets redacted) and exits
//! 0, or names the invalid setting and exits 2.

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: ccp_gateway::Allocator = ccp_gateway::ALLOCATOR;

fn main() -> ExitCode {
    if let Some(arg) = std::env::args().nth(1) {
        if arg == "--version" || arg == "-V" {
            println!("ccp-gateway {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        if arg == "--check-config" {
            return match ccp_core::config::Config::from_env() {
                Ok(config) => {
                    use std::io::Write;
                    // A closed pipe (`| head`) is not an error worth a panic.
                    let _ = writeln!(
                        std::io::stdout(),
                        "{config:#?}\nccp-gateway: the settings are valid."
                    );
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("ccp-gateway: {err}");
                    ExitCode::from(2)
                }
            };
        }
        println!(
            "ccp-gateway is configured by CCP_* variables (see docs/configuration.md).\n\
             Options: --check-config (print the effective settings, secrets redacted), --version."
        );
        return if arg == "--help" || arg == "-h" {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        };
    }
    let config = match ccp_core::config::Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("ccp-gateway: {err}");
            return ExitCode::from(2);
        }
    };
    let _log = ccp_gateway::init_tracing(config.log_format);
    match ccp_gateway::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("ccp-gateway: {err:#}");
            ExitCode::FAILURE
        }
    }
}

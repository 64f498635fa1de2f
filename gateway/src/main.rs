//! `ccp-gateway`: reads `CCP_*` settings (docs/configuration.md) and serves until SIGTERM.

use std::process::ExitCode;

fn main() -> ExitCode {
    if let Some(arg) = std::env::args().nth(1) {
        if arg == "--version" || arg == "-V" {
            println!("ccp-gateway {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        println!(
            "ccp-gateway takes no arguments; it is configured by CCP_* variables (see docs/configuration.md)."
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
    ccp_gateway::init_tracing(config.log_format);
    match ccp_gateway::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("ccp-gateway: {err:#}");
            ExitCode::FAILURE
        }
    }
}

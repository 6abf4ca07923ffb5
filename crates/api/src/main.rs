#![forbid(unsafe_code)]
//! The `patchbay` binary.

use clap::Parser;
use patchbay_api::cli::{self, Cli, Exit};
use std::process::ExitCode;

fn main() -> ExitCode {
    // A `.env` file is read in development only; variables already set always win.
    if std::env::var("PATCHBAY_ENV").as_deref() != Ok("production") {
        let _ = dotenvy::dotenv();
    }
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Exit::Ok => ExitCode::SUCCESS,
        Exit::Failed => ExitCode::FAILURE,
        Exit::Config => ExitCode::from(2),
    }
}

//! The pggat command line.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "pggat",
    version,
    about = "PostgreSQL-aware connection pooler and gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve clients as the config says. SIGHUP reloads the config.
    Run {
        /// Gatfile or JSON config.
        #[arg(long, short, default_value = "Gatfile")]
        config: PathBuf,
        /// Reload whenever the config file changes.
        #[arg(long)]
        watch: bool,
    },
    /// Check a config and exit: 0 if valid, 1 with the first error otherwise.
    Validate {
        /// Gatfile or JSON config.
        #[arg(long, short, default_value = "Gatfile")]
        config: PathBuf,
    },
    /// Print a config in its JSON form (which `run --config x.json` takes).
    Adapt {
        /// Gatfile or JSON config.
        #[arg(long, short, default_value = "Gatfile")]
        config: PathBuf,
        /// Indent the JSON.
        #[arg(long)]
        pretty: bool,
    },
    /// Start a throwaway PostgreSQL cluster with pggat in front of it.
    Demo {
        /// Port pggat listens on.
        #[arg(long, default_value_t = 5433)]
        port: u16,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Validate { config } => match gat::load(&config) {
            Ok(_) => {
                println!("{}: valid", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Adapt { config, pretty } => match gat::load(&config) {
            Ok(c) => {
                println!("{}", c.to_json(pretty));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Run {
            config: path,
            watch,
        } => {
            let config = match gat::load(&path) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            let rt = match runtime(config.global.threads) {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            rt.block_on(async {
                let mut running = match pggat::app::start(&config).await {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("{e}");
                        return ExitCode::FAILURE;
                    }
                };
                pggat::reload::serve(&mut running, &path, watch).await;
                tracing::info!("shutting down");
                running.shutdown().await;
                ExitCode::SUCCESS
            })
        }
        Command::Demo { port } => {
            let rt = match runtime(None) {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(pggat::demo::run(port)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn runtime(threads: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = threads {
        b.worker_threads(n.max(1));
    }
    b.enable_all().build()
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("PGGAT_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

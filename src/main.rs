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
    /// Serve clients as PgBouncer would with this pgbouncer.ini (a drop-in
    /// replacement: databases, users, auth_file, auth_query, the admin
    /// console). SIGHUP reloads it; SIGINT waits for servers, SIGTERM for
    /// clients, as PgBouncer.
    Pgbouncer {
        /// The pgbouncer.ini.
        #[arg(required_unless_present = "version")]
        file: Option<PathBuf>,
        /// Print the version as PgBouncer does (its first line is what SHOW
        /// VERSION says) and exit.
        #[arg(short = 'V', long = "version")]
        version: bool,
        /// PgBouncer's daemon mode: refused (run pggat under a service manager).
        #[arg(short = 'd', long = "daemon")]
        daemon: bool,
        /// PgBouncer's online restart: refused (pggat listens with
        /// SO_REUSEPORT; start the new process beside the old one).
        #[arg(short = 'R', long = "reboot")]
        reboot: bool,
        /// Log only warnings and errors.
        #[arg(short = 'q', long = "quiet")]
        quiet: bool,
        /// Log more (repeat for more still).
        #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
        verbose: u8,
        /// PgBouncer's switch to another OS user: refused (let the service
        /// manager start pggat as that user).
        #[arg(short = 'u', long = "user")]
        user: Option<String>,
    },
    /// Start a throwaway PostgreSQL cluster with pggat in front of it.
    Demo {
        /// Port pggat listens on.
        #[arg(long, default_value_t = 5433)]
        port: u16,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(arguments());
    let level = match &cli.command {
        Command::Pgbouncer { quiet: true, .. } => "warn",
        Command::Pgbouncer { verbose: 1, .. } => "debug",
        Command::Pgbouncer { verbose: 2.., .. } => "trace",
        _ => "info",
    };
    init_logging(level);
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
            serve(rt, &config, &pggat::reload::Source::Gatfile(path), watch)
        }
        Command::Pgbouncer { version: true, .. } => {
            println!("{}", pggat::pgbouncer::version_line());
            println!("pggat's PgBouncer drop-in: `pggat pgbouncer --help` lists what it takes");
            ExitCode::SUCCESS
        }
        Command::Pgbouncer {
            file,
            daemon,
            reboot,
            user,
            ..
        } => {
            let Some(file) = file else {
                eprintln!("a pgbouncer.ini is required");
                return ExitCode::FAILURE;
            };
            let refused = if daemon {
                Some(
                    "-d/--daemon is not supported: run pggat in the foreground under a service manager (systemd, a container)",
                )
            } else if reboot {
                Some(
                    "-R/--reboot is not supported: pggat listens with SO_REUSEPORT, so start the new process beside the old one, then send the old one SIGTERM",
                )
            } else if user.is_some() {
                Some(
                    "-u/--user is not supported: have the service manager start pggat as that user",
                )
            } else {
                None
            };
            if let Some(why) = refused {
                eprintln!("{why}");
                return ExitCode::FAILURE;
            }
            let source = pggat::reload::Source::Pgbouncer(file);
            let config = match source.load() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            let rt = match runtime(None) {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            serve(rt, &config, &source, false)
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

/// The command line, as `pggat pgbouncer ...` when the binary was started
/// under the name `pgbouncer` (a symlink, or an image that installs it as
/// /usr/bin/pgbouncer): a drop-in for what runs PgBouncer by that name, such
/// as CloudNativePG's pooler.
fn arguments() -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let invoked_as = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_owned());
    if invoked_as.as_deref() == Some(std::ffi::OsStr::new("pgbouncer")) {
        args.insert(1, "pgbouncer".into());
    }
    args
}

/// Starts serving `config` and runs until shut down.
fn serve(
    rt: tokio::runtime::Runtime,
    config: &gat::Config,
    source: &pggat::reload::Source,
    watch: bool,
) -> ExitCode {
    rt.block_on(async {
        let running = match pggat::app::start(config).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        pggat::reload::serve(running, source, watch).await;
        ExitCode::SUCCESS
    })
}

fn runtime(threads: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = threads {
        b.worker_threads(n.max(1));
    }
    b.enable_all().build()
}

fn init_logging(level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("PGGAT_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

//! `pggat demo`: a throwaway PostgreSQL cluster with pggat in front of it,
//! so a newcomer sees pggat work without setting anything up.

use std::time::Duration;

use crate::cluster::{Cluster, Options};

/// Starts the cluster and pggat on `port`, prints how to connect, and runs
/// until Ctrl-C or SIGTERM; everything is removed on the way out.
pub async fn run(port: u16) -> Result<(), String> {
    eprintln!("starting a throwaway PostgreSQL cluster...");
    let cluster = tokio::task::spawn_blocking(|| Cluster::start(&Options::default()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("could not start PostgreSQL: {e}"))?;
    for sql in [
        "SET password_encryption = 'scram-sha-256'; CREATE ROLE demo LOGIN PASSWORD 'demo'",
        "CREATE DATABASE demo OWNER demo",
    ] {
        cluster.sql("postgres", sql).map_err(|e| e.to_string())?;
    }
    let gatfile = format!(
        "# The Gatfile pggat demo runs.\n\
         127.0.0.1:{port} {{\n\
         \x20   pool * {{\n\
         \x20       address {addr}\n\
         \x20       username demo\n\
         \x20       password demo\n\
         \x20       database demo\n\
         \x20       max_connections 4\n\
         \x20       pool basic transaction\n\
         \x20   }}\n\
         }}\n",
        addr = cluster.address()
    );
    let config = gat::parse_str("demo Gatfile", &gatfile).map_err(|e| e.to_string())?;
    let running = crate::app::start(&config)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "\nPostgreSQL {} is running in {} (port {}).\n\
         pggat is listening on 127.0.0.1:{port} with this Gatfile:\n\n{gatfile}\n\
         Connect with:\n\n    psql \"postgres://demo:demo@127.0.0.1:{port}/demo\"\n\n\
         Press Ctrl-C to stop; the cluster is deleted on exit.",
        cluster.bin_dir().display(),
        cluster.data_dir().display(),
        cluster.port(),
    );
    crate::signals::terminated().await;
    eprintln!("stopping...");
    let _ = tokio::time::timeout(Duration::from_secs(10), running.shutdown()).await;
    drop(cluster);
    Ok(())
}

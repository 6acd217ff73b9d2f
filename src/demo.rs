//! `pggat demo`: a throwaway PostgreSQL primary and streaming replica with
//! pggat in front of them as a hybrid pool, so a newcomer sees pggat work,
//! reads going to the replica and writes to the primary, without setting
//! anything up.

use std::time::Duration;

use crate::cluster::{Cluster, Options};

/// Starts the clusters and pggat on `port`, prints how to connect, and runs
/// until Ctrl-C or SIGTERM; everything is removed on the way out.
pub async fn run(port: u16) -> Result<(), String> {
    eprintln!("starting a throwaway PostgreSQL primary and replica...");
    let (cluster, replica) = tokio::task::spawn_blocking(|| {
        let cluster = Cluster::start(&Options::default())?;
        for sql in [
            "SET password_encryption = 'scram-sha-256'; CREATE ROLE demo LOGIN PASSWORD 'demo'",
            "CREATE DATABASE demo OWNER demo",
        ] {
            cluster.sql("postgres", sql)?;
        }
        // After the role and database exist, so the replica has them.
        let replica = cluster.replica()?;
        Ok::<_, std::io::Error>((cluster, replica))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("could not start PostgreSQL: {e}"))?;
    let gatfile = format!(
        "# The Gatfile pggat demo runs.\n\
         127.0.0.1:{port} {{\n\
         \x20   pool * {{\n\
         \x20       address {addr}\n\
         \x20       replica {replica}\n\
         \x20       username demo\n\
         \x20       password demo\n\
         \x20       database demo\n\
         \x20       max_connections 4\n\
         \x20       pool hybrid {{\n\
         \x20           primary_stickiness 1s\n\
         \x20           penalize replication_latency {{\n\
         \x20               threshold 1s\n\
         \x20               validity 1s\n\
         \x20               max_lag 10s\n\
         \x20           }}\n\
         \x20       }}\n\
         \x20   }}\n\
         }}\n",
        addr = cluster.address(),
        replica = replica.address(),
    );
    let config = gat::parse_str("demo Gatfile", &gatfile).map_err(|e| e.to_string())?;
    let running = crate::app::start(&config)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "\nPostgreSQL {} is running in {} (port {}).\n\
         Its replica is running in {} (port {}).\n\
         pggat is listening on 127.0.0.1:{port} with this Gatfile:\n\n{gatfile}\n\
         Reads run on the replica (SELECT pg_is_in_recovery() says t), writes on the primary.\n\
         Connect with:\n\n    psql \"postgres://demo:demo@127.0.0.1:{port}/demo\"\n\n\
         Press Ctrl-C to stop; both clusters are deleted on exit.",
        cluster.bin_dir().display(),
        cluster.data_dir().display(),
        cluster.port(),
        replica.data_dir().display(),
        replica.port(),
    );
    crate::signals::terminated().await;
    eprintln!("stopping...");
    let _ = tokio::time::timeout(Duration::from_secs(10), running.shutdown()).await;
    drop(replica);
    drop(cluster);
    Ok(())
}

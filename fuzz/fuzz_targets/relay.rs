//! The relay between a client and a server, with the transaction-mode hooks
//! (unterminate, ps, eqp) and a recording, over real sockets: whatever
//! bytes the two peers send, in whatever order they arrive, it ends (both
//! peers close after sending) and never panics.
//!
//! Input: two bytes of split point, then the client's bytes and the
//! server's.
#![no_main]
#![forbid(unsafe_code)]

use std::time::Duration;

use fed::middleware::eqp::{ClientStatements, Eqp, Known, ServerStatements};
use fed::middleware::ps::{ClientSettings, Params, Ps, ServerSettings};
use fed::middleware::unterminate::Unterminate;
use fed::{Conn, Mode, Pipeline, Recording, Relay};
use libfuzzer_sys::fuzz_target;
use pggat_fuzz::runtime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Sends `bytes`, closes its sending side, and reads whatever comes back.
async fn peer(mut s: UnixStream, bytes: Vec<u8>) {
    let (mut r, mut w) = s.split();
    let send = async {
        let _ = w.write_all(&bytes).await;
        let _ = w.shutdown().await;
    };
    let drain = async {
        let mut sink = [0u8; 8192];
        while matches!(r.read(&mut sink).await, Ok(n) if n > 0) {}
    };
    tokio::join!(send, drain);
}

fuzz_target!(|data: &[u8]| {
    let Some((split, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let at = (u16::from_be_bytes(*split) as usize).min(rest.len());
    let (client_bytes, server_bytes) = rest.split_at(at);
    let (client_bytes, server_bytes) = (client_bytes.to_vec(), server_bytes.to_vec());
    runtime().block_on(async move {
        let (c, cp) = UnixStream::pair().unwrap();
        let (s, sp) = UnixStream::pair().unwrap();
        let mut client = Conn::new(c.into());
        let mut server = Conn::new(s.into());
        let peers = tokio::spawn(async move {
            tokio::join!(peer(cp, client_bytes), peer(sp, server_bytes));
        });
        let mut pipeline = Pipeline::new();
        let mut settings = ClientSettings::new(Params::default());
        let mut server_settings = ServerSettings::default();
        let mut server_params = Params::default();
        let mut statements = ClientStatements::default();
        let mut server_statements = ServerStatements::default();
        let known = Known::default();
        let tracked = vec!["search_path".to_owned(), "application_name".to_owned()];
        let mut recording = Recording::new().catching_lag();
        let mw = (
            Unterminate,
            Ps::new(
                &mut settings,
                &mut server_settings,
                &mut server_params,
                &tracked,
                true,
                "fuzz",
            ),
            Eqp::new(&mut statements, &mut server_statements, &known),
        );
        let relay = Relay::new(
            &mut client,
            &mut server,
            &mut pipeline,
            mw,
            Mode::Transaction,
        )
        .recording(&mut recording);
        tokio::time::timeout(Duration::from_secs(10), relay)
            .await
            .expect("the relay hung with both peers closed");
        drop((client, server));
        peers.await.unwrap();
    });
});

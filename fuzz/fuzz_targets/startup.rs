//! The client's startup phase as pggat reads it: the length-prefixed
//! packets (SSLRequest, GSSENCRequest, CancelRequest, StartupMessage),
//! parameters and the `options` switches. Any bytes end in a startup, a
//! cancel or an error, never a panic or a hang.
#![no_main]
#![forbid(unsafe_code)]

use std::time::Duration;

use fed::Conn;
use libfuzzer_sys::fuzz_target;
use pggat_fuzz::runtime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

fuzz_target!(|data: &[u8]| {
    let bytes = data.to_vec();
    runtime().block_on(async move {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let client = tokio::spawn(async move {
            let _ = theirs.write_all(&bytes).await;
            let _ = theirs.shutdown().await;
            let mut sink = Vec::new();
            let _ = theirs.read_to_end(&mut sink).await;
        });
        let mut conn = Conn::new(ours.into());
        let negotiated = pggat::client::startup::negotiate(&mut conn, false);
        let _ = tokio::time::timeout(Duration::from_secs(10), negotiated)
            .await
            .expect("startup hung on a closed connection");
        drop(conn);
        client.await.unwrap();
    });
});

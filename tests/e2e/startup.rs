//! Malformed and unusual startup packets get an error and a closed socket,
//! never a panic; pggat keeps serving.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;

async fn send_raw(addr: std::net::SocketAddr, bytes: &[u8]) -> (Option<(u8, Vec<u8>)>, bool) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    // Half-close: whatever was sent is all there is.
    let _ = s.shutdown().await;
    let first = read_message(&mut s).await;
    let mut rest = [0u8; 16];
    let closed = matches!(
        tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut rest)).await,
        Ok(Ok(0)) | Ok(Err(_))
    );
    (first, closed)
}

fn packet(code: i32, payload: &[u8]) -> Vec<u8> {
    let mut p = ((payload.len() + 8) as i32).to_be_bytes().to_vec();
    p.extend_from_slice(&code.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

#[tokio::test]
async fn bad_startup_packets_get_errors_and_a_closed_socket() {
    let g = Pggat::start(&session_pool(cluster(), "startupdb", SCRAM, 2)).await;

    // Protocol 2.0.
    let (m, closed) = send_raw(g.addr, &packet(2 << 16, b"user\0x\0\0")).await;
    let (tag, body) = m.expect("an error");
    assert_eq!((tag, error_code(&body).as_str()), (b'E', "0A000"));
    assert!(String::from_utf8_lossy(&body).contains("unsupported frontend protocol 2.0"));
    assert!(closed);

    // Oversized length, announced before any body.
    let (m, closed) = send_raw(g.addr, &1_000_000i32.to_be_bytes()).await;
    assert_eq!(error_code(&m.expect("an error").1), "08P01");
    assert!(closed);

    // Too short to hold a code.
    let (m, closed) = send_raw(g.addr, &4i32.to_be_bytes()).await;
    assert_eq!(error_code(&m.expect("an error").1), "08P01");
    assert!(closed);

    // Unknown request code.
    let (m, closed) = send_raw(g.addr, &packet(1234, b"")).await;
    assert_eq!(error_code(&m.expect("an error").1), "0A000");
    assert!(closed);

    // No user.
    let (m, closed) = send_raw(g.addr, &packet(196608, b"database\0x\0\0")).await;
    assert_eq!(error_code(&m.expect("an error").1), "28000");
    assert!(closed);

    // Parameters not NUL-terminated.
    let (m, closed) = send_raw(g.addr, &packet(196608, b"user\0abc")).await;
    assert_eq!(error_code(&m.expect("an error").1), "08P01");
    assert!(closed);

    // Garbage, then EOF halfway through a packet.
    let (m, closed) = send_raw(g.addr, &[0, 0, 0, 50, 1, 2]).await;
    assert!(m.is_none() || m.unwrap().0 == b'E');
    assert!(closed);

    // A cancel for a key nobody holds: closed silently.
    let mut cancel = 80877102i32.to_be_bytes().to_vec();
    cancel.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
    let mut p = 16i32.to_be_bytes().to_vec();
    p.extend_from_slice(&cancel);
    let (m, closed) = send_raw(g.addr, &p).await;
    assert!(m.is_none());
    assert!(closed);

    // Still serving.
    let c = g
        .connect(SCRAM.name, SCRAM.password, "startupdb")
        .await
        .unwrap();
    c.simple_query("SELECT 1").await.unwrap();
    g.shutdown().await;
}

#[tokio::test]
async fn ssl_request_is_declined_and_the_client_continues_in_plain_text() {
    let g = Pggat::start(&session_pool(cluster(), "ssldecline", SCRAM, 2)).await;
    let mut s = tokio::net::TcpStream::connect(g.addr).await.unwrap();
    s.write_all(&packet(80877103, b"")).await.unwrap();
    let mut answer = [0u8; 1];
    s.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"N");
    // libpq with sslmode=prefer does exactly this, then continues.
    let out = g
        .psql(
            SCRAM.name,
            SCRAM.password,
            "ssldecline",
            &["-c", "SELECT 'plain'"],
        )
        .await;
    assert_success(&out);
    g.shutdown().await;
}

#[tokio::test]
async fn protocol_minor_version_and_pq_options_are_negotiated_down() {
    let g = Pggat::start(&session_pool(cluster(), "negotiate", SCRAM, 2)).await;
    let mut s = tokio::net::TcpStream::connect(g.addr).await.unwrap();
    s.write_all(&packet(
        (3 << 16) | 2,
        b"user\0pggat_scram\0database\0negotiate\0_pq_.fancy\0on\0\0",
    ))
    .await
    .unwrap();
    let (tag, body) = read_message(&mut s).await.unwrap();
    assert_eq!(tag, b'v', "NegotiateProtocolVersion first");
    assert_eq!(&body[..8], &[0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(&body[8..], b"_pq_.fancy\0");
    let (tag, _) = read_message(&mut s).await.unwrap();
    assert_eq!(tag, b'R', "then authentication as usual");
    g.shutdown().await;
}

#[tokio::test]
async fn a_listener_past_max_connections_refuses_with_53300() {
    let gatfile = PoolFile::session(cluster(), "capped", SCRAM, 5)
        .server_line("max_connections 2")
        .text();
    let g = Pggat::start(&gatfile).await;
    let a = g
        .connect(SCRAM.name, SCRAM.password, "capped")
        .await
        .unwrap();
    let b = g
        .connect(SCRAM.name, SCRAM.password, "capped")
        .await
        .unwrap();
    let err = g
        .connect(SCRAM.name, SCRAM.password, "capped")
        .await
        .expect_err("a third client must be refused");
    assert_eq!(sqlstate(&err).as_deref(), Some("53300"), "{err}");
    assert!(
        message(&err).contains("max_connections 2"),
        "{}",
        message(&err)
    );
    // One leaves: room for the next.
    drop(a);
    assert!(
        eventually(std::time::Duration::from_secs(5), async || g
            .connect(SCRAM.name, SCRAM.password, "capped")
            .await
            .is_ok())
        .await
    );
    b.simple_query("SELECT 1").await.unwrap();
    g.shutdown().await;
}

#[tokio::test]
async fn the_local_address_matcher_tells_listeners_apart() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join(".s.PGSQL.6545");
    let gatfile = PoolFile::session(cluster(), "either", SCRAM, 2)
        .listen_also(&sock.display().to_string())
        .server_line(&format!(
            "@tcp not local_address {}/*",
            dir.path().display()
        ))
        .server_line("error @tcp \"use the unix socket\"")
        .text();
    let g = Pggat::start(&gatfile).await;
    let err = g
        .connect(SCRAM.name, SCRAM.password, "either")
        .await
        .expect_err("TCP clients are refused");
    assert!(
        message(&err).contains("use the unix socket"),
        "{}",
        message(&err)
    );
    let unix = connect(&format!(
        "host={} port=6545 user={} password='{}' dbname=either",
        dir.path().display(),
        SCRAM.name,
        SCRAM.password
    ))
    .await
    .expect("the unix listener serves");
    unix.simple_query("SELECT 1").await.unwrap();
    drop(unix);
    g.shutdown().await;
}

/// Reads messages until an ErrorResponse (its SQLSTATE) or the end; panics
/// on AuthenticationOk: the client must never get in.
async fn refusal(s: &mut tokio::net::TcpStream) -> Option<String> {
    loop {
        let (tag, body) = tokio::time::timeout(std::time::Duration::from_secs(2), read_message(s))
            .await
            .expect("answered at once, not at a timeout")?;
        match tag {
            b'E' => return Some(error_code(&body)),
            b'R' => assert_ne!(body[..4], [0, 0, 0, 0], "authenticated"),
            _ => {}
        }
    }
}

/// A second StartupMessage where the SCRAM exchange expects its first
/// message (CVE-2026-107350's class), perhaps for another user: refused at
/// once with 08P01, never a login as either user; and a password message
/// too long to be one, refused from its header, before pggat holds it.
#[tokio::test]
async fn a_second_startup_message_or_a_huge_password_packet_is_refused_at_once() {
    let g = Pggat::start(&session_pool(cluster(), "restart", SCRAM, 2)).await;
    let startup = |user: &str| {
        packet(
            196608,
            format!("user\0{user}\0database\0restart\0\0").as_bytes(),
        )
    };
    for second in [
        startup(MD5.name),
        startup(SCRAM.name),
        packet(80877103, b""), // SSLRequest
        // A password message announcing 100,000 bytes: past what any
        // authentication message may be.
        b"p\0\x01\x86\xa4".to_vec(),
        b"p\xff\xff\xff\xff".to_vec(),
    ] {
        let mut s = tokio::net::TcpStream::connect(g.addr).await.unwrap();
        s.write_all(&startup(SCRAM.name)).await.unwrap();
        let (tag, body) = read_message(&mut s).await.expect("a reply");
        assert_eq!((tag, &body[..4]), (b'R', &10i32.to_be_bytes()[..]), "SASL");
        s.write_all(&second).await.unwrap();
        assert_eq!(
            refusal(&mut s).await.as_deref(),
            Some("08P01"),
            "{second:?}"
        );
        assert!(read_message(&mut s).await.is_none(), "the socket is closed");
    }
    // Still serving.
    let c = g
        .connect(SCRAM.name, SCRAM.password, "restart")
        .await
        .unwrap();
    c.simple_query("SELECT 1").await.unwrap();
    g.shutdown().await;
}

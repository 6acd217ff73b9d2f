use super::*;
use crate::secret::tests::PENCIL_VERIFIER;
use crate::server::tests::{
    RFC_CLIENT_FINAL, RFC_CLIENT_FIRST, RFC_CLIENT_NONCE, RFC_SERVER_FINAL, RFC_SERVER_FIRST,
};

const SCRAM: &[&[u8]] = &[b"SCRAM-SHA-256-PLUS", b"SCRAM-SHA-256"];

fn credentials(secret: &str) -> ClientCredentials {
    ClientCredentials::new("user", Secret::parse(secret).unwrap())
}

fn pencil_verifier() -> ScramSecret {
    match Secret::parse(PENCIL_VERIFIER) {
        Ok(Secret::Scram(v)) => v,
        _ => unreachable!(),
    }
}

fn pencil_client_key() -> ClientKey {
    let v = pencil_verifier();
    let salted = scram::salted_password(b"pencil", &v.salt, v.iterations);
    ClientKey(scram::client_and_server_keys(&salted).0)
}

/// Runs the RFC 7677 exchange and checks every byte the client sends.
fn rfc_exchange(credentials: &ClientCredentials) {
    let mut client = ClientAuth::with_nonce(credentials, RFC_CLIENT_NONCE, "user");
    assert_eq!(
        client.on_request(ServerRequest::Sasl { mechanisms: SCRAM }),
        Ok(Some(Response::SaslInitial {
            mechanism: "SCRAM-SHA-256",
            data: RFC_CLIENT_FIRST.to_vec()
        }))
    );
    assert_eq!(
        client.on_request(ServerRequest::SaslContinue(RFC_SERVER_FIRST)),
        Ok(Some(Response::SaslResponse(RFC_CLIENT_FINAL.to_vec())))
    );
    assert_eq!(
        client.on_request(ServerRequest::SaslFinal(RFC_SERVER_FINAL)),
        Ok(None)
    );
    assert_eq!(client.on_request(ServerRequest::Ok), Ok(None));
    assert_eq!(
        client.on_request(ServerRequest::Ok),
        Err(Error::UnexpectedMessage {
            expected: "nothing (authentication is over)"
        })
    );
}

#[test]
fn rfc7677_exchange_with_password() {
    rfc_exchange(&credentials("pencil"));
}

#[test]
fn rfc7677_exchange_with_verifier_and_client_key() {
    let creds = credentials(PENCIL_VERIFIER);
    assert!(!creds.supports(Method::ScramSha256));
    creds.set_client_key(&pencil_client_key()).unwrap();
    assert!(creds.supports(Method::ScramSha256));
    rfc_exchange(&creds);
}

/// The client as a libpq-like peer: empty SASL user, random 24-character nonce.
#[test]
fn client_first_is_libpq_shaped() {
    let creds = credentials("pencil");
    let mut client = ClientAuth::new(&creds);
    let Ok(Some(Response::SaslInitial { data, .. })) =
        client.on_request(ServerRequest::Sasl { mechanisms: SCRAM })
    else {
        panic!()
    };
    assert!(data.starts_with(b"n,,n=,r="));
    assert_eq!(data.len(), b"n,,n=,r=".len() + 24);
    assert!(scram::is_valid_nonce(&data[8..]));
}

#[test]
fn md5_known_value() {
    // From Python's hashlib, see the secret tests.
    let answer = b"md568be9ed08db75f318087ab337aaea044".to_vec();
    for secret in [
        Secret::Plain("postgres".into()),
        Secret::parse("md53175bce1d3201d16594cebf9d7eb3f9d").unwrap(),
    ] {
        let creds = ClientCredentials::new("postgres", secret);
        let mut client = ClientAuth::new(&creds);
        assert_eq!(
            client.on_request(ServerRequest::Md5 { salt: [1, 2, 3, 4] }),
            Ok(Some(Response::Password(answer.clone())))
        );
        assert_eq!(client.on_request(ServerRequest::Ok), Ok(None));
    }
}

#[test]
fn cleartext_sends_the_password() {
    let creds = credentials("pencil");
    let mut client = ClientAuth::new(&creds);
    assert_eq!(
        client.on_request(ServerRequest::Cleartext),
        Ok(Some(Response::Password(b"pencil".to_vec())))
    );
    assert_eq!(
        client.on_request(ServerRequest::Cleartext),
        Err(Error::UnexpectedMessage {
            expected: "AuthenticationOk"
        })
    );
}

#[test]
fn trust_needs_nothing() {
    let creds = credentials(PENCIL_VERIFIER);
    assert_eq!(
        ClientAuth::new(&creds).on_request(ServerRequest::Ok),
        Ok(None)
    );
}

#[test]
fn methods_the_credentials_cannot_answer() {
    let md5 = credentials("md53175bce1d3201d16594cebf9d7eb3f9d");
    let verifier = credentials(PENCIL_VERIFIER);
    let cannot = |requested, have: &'static str| {
        Err(Error::CannotAnswer {
            requested,
            have,
            user: "user".into(),
        })
    };
    let no_key = "a SCRAM verifier (and no client has logged in through SCRAM pass-through yet)";
    let cases = [
        (
            &md5,
            ServerRequest::Cleartext,
            cannot(Method::Cleartext, "an MD5 hash"),
        ),
        (
            &md5,
            ServerRequest::Sasl { mechanisms: SCRAM },
            cannot(Method::ScramSha256, "an MD5 hash"),
        ),
        (
            &verifier,
            ServerRequest::Cleartext,
            cannot(Method::Cleartext, no_key),
        ),
        (
            &verifier,
            ServerRequest::Md5 { salt: [0; 4] },
            cannot(Method::Md5, no_key),
        ),
        (
            &verifier,
            ServerRequest::Sasl { mechanisms: SCRAM },
            cannot(Method::ScramSha256, no_key),
        ),
    ];
    for (creds, request, expected) in cases {
        assert_eq!(
            ClientAuth::new(creds).on_request(request),
            expected,
            "{request:?}"
        );
    }
    verifier.set_client_key(&pencil_client_key()).unwrap();
    let err = ClientAuth::new(&verifier)
        .on_request(ServerRequest::Md5 { salt: [0; 4] })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "server requested MD5 authentication but only a SCRAM verifier is configured for user \"user\"; \
         configure the plain password"
    );
}

#[test]
fn unsupported_methods_are_named() {
    let creds = credentials("pencil");
    for (code, name) in [
        (2, "Kerberos V5"),
        (6, "SCM credentials"),
        (7, "GSSAPI"),
        (8, "GSSAPI"),
        (9, "SSPI"),
        (99, "an unknown method"),
    ] {
        assert_eq!(
            ClientAuth::new(&creds).on_request(ServerRequest::Other(code)),
            Err(Error::UnsupportedAuthMethod { name, code })
        );
    }
    assert!(
        Error::UnsupportedAuthMethod {
            name: "GSSAPI",
            code: 7
        }
        .to_string()
        .starts_with(
            "server requested GSSAPI authentication (code 7), which pggat does not support"
        )
    );
    for mechanisms in [&[][..], &[&b"SCRAM-SHA-256-PLUS"[..]], &[b"SCRAM-SHA-1"]] {
        assert_eq!(
            ClientAuth::new(&creds).on_request(ServerRequest::Sasl { mechanisms }),
            Err(Error::NoCommonMechanism)
        );
    }
}

/// A client that has sent client-first with the RFC's nonce.
fn rfc_client(creds: &ClientCredentials) -> ClientAuth<'_> {
    let mut client = ClientAuth::with_nonce(creds, RFC_CLIENT_NONCE, "user");
    client
        .on_request(ServerRequest::Sasl { mechanisms: SCRAM })
        .unwrap();
    client
}

#[test]
fn server_first_errors() {
    let creds = credentials("pencil");
    let cases: &[(&[u8], Error)] = &[
        (b"", Error::MissingAttribute { expected: 'r' }),
        (
            b"m=ext,r=rOprNGfwEbeRWgbNEkqOx,s=QQ==,i=1",
            Error::UnsupportedExtension,
        ),
        (
            b"s=QQ==,r=rOprNGfwEbeRWgbNEkqOx,i=1",
            Error::MissingAttribute { expected: 'r' },
        ),
        (b"r=,s=QQ==,i=1", Error::BadNonce),
        (b"r=rOprNGfwEbeRWgbNEkqO x,s=QQ==,i=1", Error::BadNonce),
        (b"r=rOprNGfwEbeRWgbNEkqO,s=QQ==,i=1", Error::NonceMismatch),
        (b"r=xOprNGfwEbeRWgbNEkqOx,s=QQ==,i=1", Error::NonceMismatch),
        (b"r=rOprNG,s=QQ==,i=1", Error::NonceMismatch),
        (
            b"r=rOprNGfwEbeRWgbNEkqOx",
            Error::MissingAttribute { expected: 's' },
        ),
        (
            b"r=rOprNGfwEbeRWgbNEkqOx,s=Q!==,i=1",
            Error::BadBase64 { attribute: 's' },
        ),
        (
            b"r=rOprNGfwEbeRWgbNEkqOx,s=QQ==",
            Error::MissingAttribute { expected: 'i' },
        ),
        (b"r=rOprNGfwEbeRWgbNEkqOx,s=QQ==,i=0", Error::BadIterations),
        // A server naming billions of iterations (CVE-2025-6669's class):
        // refused before any PBKDF2 runs, or this test would hang.
        (
            b"r=rOprNGfwEbeRWgbNEkqOx,s=QQ==,i=4294967295",
            Error::TooManyIterations {
                count: u32::MAX,
                max: 1 << 20,
            },
        ),
        (
            b"r=rOprNGfwEbeRWgbNEkqOx,s=QQ==,i=2000000000",
            Error::TooManyIterations {
                count: 2_000_000_000,
                max: 1 << 20,
            },
        ),
        (b"r=rOprNGfwEbeRWgbNEkqOx,s=QQ==,i=-1", Error::BadIterations),
        (
            b"r=rOprNGfwEbeRWgbNEkqOx,s=QQ==,i=99999999999",
            Error::BadIterations,
        ),
        (
            b"r=rOprNGfwEbeRWgbNEkqOx,s=QQ==,i=1,",
            Error::MalformedAttribute,
        ),
    ];
    for (data, expected) in cases {
        let mut client = rfc_client(&creds);
        assert_eq!(
            client
                .on_request(ServerRequest::SaslContinue(data))
                .as_ref(),
            Err(expected),
            "{}",
            String::from_utf8_lossy(data)
        );
    }
    // Extensions after the iteration count are allowed by RFC 5802.
    let mut client = rfc_client(&creds);
    assert!(
        client
            .on_request(ServerRequest::SaslContinue(
                b"r=rOprNGfwEbeRWgbNEkqOx,s=QQ==,i=1,x=ext"
            ))
            .is_ok()
    );
}

/// A client that has sent the RFC's client-final and expects its server-final.
fn rfc_client_final(creds: &ClientCredentials) -> ClientAuth<'_> {
    let mut client = rfc_client(creds);
    client
        .on_request(ServerRequest::SaslContinue(RFC_SERVER_FIRST))
        .unwrap();
    client
}

#[test]
fn server_final_errors() {
    let creds = credentials("pencil");
    let wrong = format!("v={}", scram::encode64(&[0; 32]));
    let cases: &[(&[u8], Error)] = &[
        (wrong.as_bytes(), Error::ServerSignatureMismatch),
        (
            b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4",
            Error::BadBase64 { attribute: 'v' },
        ),
        (b"v=QQ==", Error::ServerSignatureMismatch),
        (b"", Error::MissingAttribute { expected: 'v' }),
        (
            b"e=invalid-proof",
            Error::ServerSaslError {
                error: "invalid-proof".into(),
            },
        ),
        (
            b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=,junk",
            Error::MalformedAttribute,
        ),
    ];
    for (data, expected) in cases {
        let mut client = rfc_client_final(&creds);
        assert_eq!(
            client.on_request(ServerRequest::SaslFinal(data)).as_ref(),
            Err(expected),
            "{}",
            String::from_utf8_lossy(data)
        );
    }
}

#[test]
fn authentication_ok_before_the_server_proved_itself_is_refused() {
    let creds = credentials("pencil");
    assert_eq!(
        rfc_client(&creds).on_request(ServerRequest::Ok),
        Err(Error::IncompleteExchange)
    );
    assert_eq!(
        rfc_client_final(&creds).on_request(ServerRequest::Ok),
        Err(Error::IncompleteExchange)
    );
}

#[test]
fn messages_out_of_order() {
    let creds = credentials("pencil");
    let cases: [(ServerRequest<'_>, &str); 3] = [
        (
            ServerRequest::SaslContinue(RFC_SERVER_FIRST),
            "an authentication request",
        ),
        (
            ServerRequest::SaslFinal(RFC_SERVER_FINAL),
            "an authentication request",
        ),
        (ServerRequest::Cleartext, "an authentication request"),
    ];
    for (i, (request, expected)) in cases.into_iter().enumerate() {
        let mut client = ClientAuth::new(&creds);
        if i == 2 {
            client
                .on_request(ServerRequest::Md5 { salt: [0; 4] })
                .unwrap();
            assert_eq!(
                client.on_request(request),
                Err(Error::UnexpectedMessage {
                    expected: "AuthenticationOk"
                })
            );
        } else {
            assert_eq!(
                client.on_request(request),
                Err(Error::UnexpectedMessage { expected })
            );
        }
    }
    let mut client = rfc_client(&creds);
    assert_eq!(
        client.on_request(ServerRequest::SaslFinal(RFC_SERVER_FINAL)),
        Err(Error::UnexpectedMessage {
            expected: "AuthenticationSASLContinue"
        })
    );
    let mut client = rfc_client_final(&creds);
    assert_eq!(
        client.on_request(ServerRequest::SaslContinue(RFC_SERVER_FIRST)),
        Err(Error::UnexpectedMessage {
            expected: "AuthenticationSASLFinal"
        })
    );
}

#[test]
fn scram_keys_are_cached_per_salt() {
    let creds = credentials("pencil");
    rfc_exchange(&creds);
    let cached = creds.lock_keys()[0].clone();
    assert_eq!(
        (cached.salt, cached.iterations),
        (pencil_verifier().salt, 4096)
    );

    // Plant a bogus key for the same salt: the next login must use it (no PBKDF2), so its proof changes.
    creds.lock_keys()[0].client_key = [1; 32];
    let mut client = rfc_client(&creds);
    assert_ne!(
        client.on_request(ServerRequest::SaslContinue(RFC_SERVER_FIRST)),
        Ok(Some(Response::SaslResponse(RFC_CLIENT_FINAL.to_vec())))
    );

    // Servers with other salts add entries, most recent first, up to CACHED_SALTS.
    for salt in ["QUJD", "REVG", "R0hJ", "SktM", "TU5P"] {
        let mut client = rfc_client(&creds);
        let first = format!("r=rOprNGfwEbeRWgbNEkqOx,s={salt},i=16");
        client
            .on_request(ServerRequest::SaslContinue(first.as_bytes()))
            .unwrap();
    }
    let cached: Vec<Vec<u8>> = creds.lock_keys().iter().map(|k| k.salt.clone()).collect();
    assert_eq!(cached, [&b"MNO"[..], b"JKL", b"GHI", b"DEF"]);
}

#[test]
fn pass_through_needs_the_same_verifier() {
    let creds = credentials(PENCIL_VERIFIER);
    creds.set_client_key(&pencil_client_key()).unwrap();
    let mut client = rfc_client(&creds);
    assert_eq!(
        client.on_request(ServerRequest::SaslContinue(
            b"r=rOprNGfwEbeRWgbNEkqOx,s=QUJD,i=4096"
        )),
        Err(Error::VerifierMismatch {
            user: "user".into()
        })
    );
    let mut client = rfc_client(&creds);
    assert_eq!(
        client.on_request(ServerRequest::SaslContinue(
            b"r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4097"
        )),
        Err(Error::VerifierMismatch {
            user: "user".into()
        })
    );
}

#[test]
fn set_client_key_checks_the_key() {
    let key = pencil_client_key();
    assert_eq!(
        credentials(PENCIL_VERIFIER).set_client_key(&ClientKey([0; 32])),
        Err(Error::ClientKeyMismatch)
    );
    assert_eq!(
        credentials("md53175bce1d3201d16594cebf9d7eb3f9d").set_client_key(&key),
        Err(Error::ClientKeyMismatch)
    );
    // Not needed with a password, so ignored.
    let plain = credentials("pencil");
    assert_eq!(plain.set_client_key(&ClientKey([0; 32])), Ok(()));
    assert!(plain.lock_keys().is_empty());
}

#[test]
fn debug_shows_no_secret() {
    let creds = credentials("hunter2");
    let mut client = ClientAuth::new(&creds);
    let response = client
        .on_request(ServerRequest::Cleartext)
        .unwrap()
        .unwrap();
    let printed = format!("{creds:?} {client:?} {response:?}");
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(printed.contains("Password(<redacted>)"));
}

use rand::SeedableRng as _;

use super::*;
use crate::Secret;
use crate::secret::tests::{PENCIL_VERIFIER, rng};

// RFC 7677 §3.
pub(crate) const RFC_CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
pub(crate) const RFC_SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
pub(crate) const RFC_CLIENT_FIRST: &[u8] = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
pub(crate) const RFC_SERVER_FIRST: &[u8] =
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
pub(crate) const RFC_CLIENT_FINAL: &[u8] =
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
    p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
pub(crate) const RFC_SERVER_FINAL: &[u8] = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
const RFC_NONCE: &[u8] = b"rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";

fn prepared(secret: &str) -> PreparedSecret {
    PreparedSecret::new("user", Secret::parse(secret).unwrap(), &mut rng())
}

fn initial(data: &[u8]) -> ClientMessage<'_> {
    ClientMessage::SaslInitial {
        mechanism: b"SCRAM-SHA-256",
        data,
    }
}

/// A server past the RFC's client-first, waiting for client-final.
fn rfc_server(secret: &PreparedSecret) -> ServerAuth<'_> {
    let (mut server, _) =
        ServerAuth::start_with(Method::ScramSha256, secret, [0; 4], RFC_SERVER_NONCE.into())
            .unwrap();
    server.step(initial(RFC_CLIENT_FIRST)).unwrap();
    server
}

#[test]
fn rfc7677_exchange_byte_for_byte() {
    let secret = prepared(PENCIL_VERIFIER);
    let (mut server, request) = ServerAuth::start_with(
        Method::ScramSha256,
        &secret,
        [0; 4],
        RFC_SERVER_NONCE.into(),
    )
    .unwrap();
    assert_eq!(
        request,
        Request::Sasl {
            mechanisms: &["SCRAM-SHA-256"]
        }
    );
    assert_eq!(
        server.step(initial(RFC_CLIENT_FIRST)),
        Ok(Step::Continue(Request::SaslContinue(
            RFC_SERVER_FIRST.to_vec()
        )))
    );
    let Ok(Step::Done(outcome)) = server.step(ClientMessage::SaslResponse(RFC_CLIENT_FINAL)) else {
        panic!("not done")
    };
    assert_eq!(outcome.sasl_final.as_deref(), Some(RFC_SERVER_FINAL));
    let Some(Secret::Scram(verifier)) = Secret::parse(PENCIL_VERIFIER).ok() else {
        unreachable!()
    };
    assert!(outcome.client_key.unwrap().matches(&verifier));
    // Single use.
    assert_eq!(
        server.step(ClientMessage::SaslResponse(RFC_CLIENT_FINAL)),
        Err(Error::UnexpectedMessage {
            expected: "nothing (authentication is over)"
        })
    );
}

#[test]
fn random_server_nonce_is_18_bytes_of_base64() {
    let secret = prepared(PENCIL_VERIFIER);
    let (mut server, _) = ServerAuth::start(Method::ScramSha256, &secret, &mut rng()).unwrap();
    let Ok(Step::Continue(Request::SaslContinue(first))) = server.step(initial(RFC_CLIENT_FIRST))
    else {
        panic!()
    };
    let nonce = first.split(|&b| b == b',').next().unwrap();
    assert_eq!(nonce.len(), 2 + RFC_CLIENT_NONCE.len() + 24);
    assert!(nonce.starts_with(b"r=rOprNGfwEbeRWgbNEkqO"));
}

#[test]
fn md5_known_value() {
    // md5 + md5(hex(md5("postgres" || "postgres")) || 01020304), from Python's hashlib.
    let answer = b"md568be9ed08db75f318087ab337aaea044";
    let rng = &mut rng();
    for secret in ["postgres", "md53175bce1d3201d16594cebf9d7eb3f9d"] {
        let secret = PreparedSecret::new("postgres", Secret::parse(secret).unwrap(), rng);
        let (mut server, request) =
            ServerAuth::start_with(Method::Md5, &secret, [1, 2, 3, 4], String::new()).unwrap();
        assert_eq!(request, Request::Md5 { salt: [1, 2, 3, 4] });
        assert_eq!(
            server.step(ClientMessage::Password(answer)),
            Ok(Step::Done(Outcome::default()))
        );

        for wrong in [
            &b"md568be9ed08db75f318087ab337aaea045"[..],
            b"md568be9ed08db75f318087ab337aaea04",
            b"postgres",
            b"",
        ] {
            let (mut server, _) =
                ServerAuth::start_with(Method::Md5, &secret, [1, 2, 3, 4], String::new()).unwrap();
            assert_eq!(
                server.step(ClientMessage::Password(wrong)),
                Err(Error::WrongPassword)
            );
        }
        // Another salt, another answer: a recorded one cannot be replayed.
        let (mut server, _) =
            ServerAuth::start_with(Method::Md5, &secret, [4, 3, 2, 1], String::new()).unwrap();
        assert_eq!(
            server.step(ClientMessage::Password(answer)),
            Err(Error::WrongPassword)
        );
    }
}

#[test]
fn md5_salt_comes_from_rng() {
    let secret = prepared("pw");
    let (_, a) = ServerAuth::start(Method::Md5, &secret, &mut rng()).unwrap();
    let (_, b) = ServerAuth::start(
        Method::Md5,
        &secret,
        &mut rand::rngs::StdRng::from_seed([9; 32]),
    )
    .unwrap();
    assert_ne!(a, b);
}

#[test]
fn cleartext_against_every_form() {
    for secret in [
        "pencil",
        PENCIL_VERIFIER,
        &crate::Md5Secret::derive("pencil", "user").to_string(),
    ] {
        let secret = prepared(secret);
        let (mut server, request) =
            ServerAuth::start(Method::Cleartext, &secret, &mut rng()).unwrap();
        assert_eq!(request, Request::Cleartext);
        assert_eq!(
            server.step(ClientMessage::Password(b"pencil")),
            Ok(Step::Done(Outcome::default()))
        );
        for wrong in [&b"pencil2"[..], b"Pencil", b""] {
            let (mut server, _) =
                ServerAuth::start(Method::Cleartext, &secret, &mut rng()).unwrap();
            assert_eq!(
                server.step(ClientMessage::Password(wrong)),
                Err(Error::WrongPassword)
            );
        }
    }
}

#[test]
fn choose_method_follows_design() {
    use Method::*;
    let plain = prepared("pw");
    let md5 = prepared("md53175bce1d3201d16594cebf9d7eb3f9d");
    let scram = prepared(PENCIL_VERIFIER);
    let cannot = |method, have| {
        Err(Error::CannotCheck {
            method,
            user: "user".into(),
            have,
        })
    };
    let cases = [
        (&plain, None, Ok(ScramSha256)),
        (&md5, None, Ok(Md5)),
        (&scram, None, Ok(ScramSha256)),
        (&plain, Some(Md5), Ok(Md5)),
        (&md5, Some(Md5), Ok(Md5)),
        (&scram, Some(Md5), Ok(ScramSha256)), // as PostgreSQL and PgBouncer do
        (&plain, Some(ScramSha256), Ok(ScramSha256)),
        (&md5, Some(ScramSha256), cannot(ScramSha256, "an MD5 hash")),
        (&scram, Some(ScramSha256), Ok(ScramSha256)),
        (&plain, Some(Cleartext), Ok(Cleartext)),
        (&md5, Some(Cleartext), Ok(Cleartext)),
        (&scram, Some(Cleartext), Ok(Cleartext)),
    ];
    for (secret, configured, expected) in cases {
        assert_eq!(
            choose_method(secret, configured),
            expected,
            "{secret:?} {configured:?}"
        );
    }
}

#[test]
fn start_refuses_what_the_secret_cannot_check() {
    let md5 = prepared("md53175bce1d3201d16594cebf9d7eb3f9d");
    let err = ServerAuth::start(Method::ScramSha256, &md5, &mut rng()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot check user \"user\" with SCRAM-SHA-256: only an MD5 hash is configured"
    );
    let scram = prepared(PENCIL_VERIFIER);
    assert!(matches!(
        ServerAuth::start(Method::Md5, &scram, &mut rng()),
        Err(Error::CannotCheck {
            method: Method::Md5,
            have: "a SCRAM verifier",
            ..
        })
    ));
}

#[test]
fn y_flag_is_accepted_and_must_be_repeated() {
    let secret = prepared(PENCIL_VERIFIER);
    let start = || {
        ServerAuth::start_with(
            Method::ScramSha256,
            &secret,
            [0; 4],
            RFC_SERVER_NONCE.into(),
        )
        .unwrap()
        .0
    };
    let mut server = start();
    assert!(
        server
            .step(initial(b"y,,n=user,r=rOprNGfwEbeRWgbNEkqO"))
            .is_ok()
    );
    // The RFC's client-final says c=biws ("n,,"), which does not match "y,,": a downgrade.
    assert_eq!(
        server.step(ClientMessage::SaslResponse(RFC_CLIENT_FINAL)),
        Err(Error::ChannelBindingMismatch)
    );
}

#[test]
fn client_first_errors() {
    let secret = prepared(PENCIL_VERIFIER);
    let cases: &[(&[u8], Error)] = &[
        (b"", Error::BadGs2Header),
        (b"n", Error::BadGs2Header),
        (b"n,", Error::BadGs2Header),
        (b"x,,n=,r=abc", Error::BadGs2Header),
        (b"n,x,n=,r=abc", Error::BadGs2Header),
        (
            b"p=tls-server-end-point,,n=,r=abc",
            Error::ChannelBindingUnsupported,
        ),
        (b"n,a=admin,n=,r=abc", Error::AuthzidUnsupported),
        (b"n,,m=ext,n=,r=abc", Error::UnsupportedExtension),
        (b"n,,", Error::MissingAttribute { expected: 'n' }),
        (b"n,,r=abc", Error::MissingAttribute { expected: 'n' }),
        (b"n,,n=", Error::MissingAttribute { expected: 'r' }),
        (b"n,,n=,x=abc", Error::MissingAttribute { expected: 'r' }),
        (b"n,,n=,r=", Error::BadNonce),
        (b"n,,n=,r=a b", Error::BadNonce),
        (b"n,,n=,r=\xff", Error::BadNonce),
        (b"n,,n=,r=abc,garbage", Error::MalformedAttribute),
        (b"n,,n=,r=abc,", Error::MalformedAttribute),
    ];
    for (data, expected) in cases {
        let (mut server, _) = ServerAuth::start(Method::ScramSha256, &secret, &mut rng()).unwrap();
        assert_eq!(
            server.step(initial(data)).as_ref(),
            Err(expected),
            "{}",
            String::from_utf8_lossy(data)
        );
    }
    // Extensions after the nonce are ignored, as PostgreSQL does.
    let (mut server, _) = ServerAuth::start(Method::ScramSha256, &secret, &mut rng()).unwrap();
    assert!(server.step(initial(b"n,,n=,r=abc,x=ext")).is_ok());

    for mechanism in [&b"SCRAM-SHA-256-PLUS"[..], b"PLAIN", b""] {
        let (mut server, _) = ServerAuth::start(Method::ScramSha256, &secret, &mut rng()).unwrap();
        assert_eq!(
            server.step(ClientMessage::SaslInitial {
                mechanism,
                data: RFC_CLIENT_FIRST
            }),
            Err(Error::UnsupportedMechanism {
                mechanism: String::from_utf8_lossy(mechanism).into_owned()
            })
        );
    }
}

#[test]
fn client_final_errors() {
    let secret = prepared(PENCIL_VERIFIER);
    let r = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    let p = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    let cases: Vec<(String, Error)> = vec![
        (String::new(), Error::MissingAttribute { expected: 'c' }),
        ("c=biws".into(), Error::MissingAttribute { expected: 'r' }),
        // No nonce at all (CVE-2025-19888's class), or one after the proof,
        // or an empty one: never accepted on the proof alone.
        (
            format!("c=biws,{p}"),
            Error::MissingAttribute { expected: 'r' },
        ),
        (
            format!("c=biws,{p},{r}"),
            Error::MissingAttribute { expected: 'r' },
        ),
        (format!("c=biws,r=,{p}"), Error::NonceMismatch),
        (
            format!("{r},c=biws,{p}"),
            Error::MissingAttribute { expected: 'c' },
        ),
        (
            format!("c=bi!s,{r},{p}"),
            Error::BadBase64 { attribute: 'c' },
        ),
        (format!("c=eSws,{r},{p}"), Error::ChannelBindingMismatch),
        (
            format!("c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws,{r},{p}"),
            Error::ChannelBindingMismatch,
        ),
        (
            format!("c=biws,r=rOprNGfwEbeRWgbNEkqO,{p}"),
            Error::NonceMismatch,
        ),
        (format!("c=biws,{r}X,{p}"), Error::NonceMismatch),
        (
            format!("c=biws,{r}"),
            Error::MissingAttribute { expected: 'p' },
        ),
        (
            format!("c=biws,{r},x=ext"),
            Error::MissingAttribute { expected: 'p' },
        ),
        (
            format!("c=biws,{r},p=!!!!"),
            Error::BadBase64 { attribute: 'p' },
        ),
        (format!("c=biws,{r},p=QQ=="), Error::BadProof),
        (format!("c=biws,{r},p="), Error::BadProof),
        (format!("c=biws,{r},{p},x=y"), Error::TrailingData),
        (format!("c=biws,{r},{p},"), Error::TrailingData),
        (format!("c=biws,{r},garbage,{p}"), Error::MalformedAttribute),
        (
            format!("c=biws,{r},p={}", scram::encode64(&[0; 32])),
            Error::WrongPassword,
        ),
        // An extension changes the AuthMessage, so the RFC's proof no longer verifies.
        (format!("c=biws,{r},x=ext,{p}"), Error::WrongPassword),
    ];
    for (data, expected) in cases {
        let mut server = rfc_server(&secret);
        assert_eq!(
            server.step(ClientMessage::SaslResponse(data.as_bytes())),
            Err(expected),
            "{data}"
        );
    }
}

#[test]
fn extensions_before_the_proof_are_signed() {
    let secret = prepared(PENCIL_VERIFIER);
    let verifier = secret.scram().unwrap();
    let salted = scram::salted_password(b"pencil", &verifier.salt, verifier.iterations);
    let (client_key, _) = scram::client_and_server_keys(&salted);
    let without_proof = [b"c=biws,r=".as_slice(), RFC_NONCE, b",x=ext"].concat();
    let client_first_bare = &RFC_CLIENT_FIRST[3..];
    let auth_message: [&[u8]; 5] = [
        client_first_bare,
        b",",
        RFC_SERVER_FIRST,
        b",",
        &without_proof,
    ];
    let proof = scram::xor(
        &client_key,
        &scram::hmac(&verifier.stored_key, &auth_message),
    );
    let data = [
        without_proof.as_slice(),
        b",p=",
        scram::encode64(&proof).as_bytes(),
    ]
    .concat();
    let mut server = rfc_server(&secret);
    assert!(matches!(
        server.step(ClientMessage::SaslResponse(&data)),
        Ok(Step::Done(_))
    ));
}

#[test]
fn messages_out_of_order() {
    let secret = prepared("pw");
    let (mut server, _) = ServerAuth::start(Method::ScramSha256, &secret, &mut rng()).unwrap();
    assert_eq!(
        server.step(ClientMessage::Password(b"pw")),
        Err(Error::UnexpectedMessage {
            expected: "SASLInitialResponse"
        })
    );
    // An error ends the exchange.
    assert_eq!(
        server.step(initial(RFC_CLIENT_FIRST)),
        Err(Error::UnexpectedMessage {
            expected: "nothing (authentication is over)"
        })
    );

    let (mut server, _) = ServerAuth::start(Method::ScramSha256, &secret, &mut rng()).unwrap();
    server.step(initial(RFC_CLIENT_FIRST)).unwrap();
    assert_eq!(
        server.step(initial(RFC_CLIENT_FIRST)),
        Err(Error::UnexpectedMessage {
            expected: "SASLResponse"
        })
    );

    for method in [Method::Cleartext, Method::Md5] {
        let (mut server, _) = ServerAuth::start(method, &secret, &mut rng()).unwrap();
        assert_eq!(
            server.step(ClientMessage::SaslResponse(b"pw")),
            Err(Error::UnexpectedMessage {
                expected: "PasswordMessage"
            })
        );
    }
}

#[test]
fn every_truncation_of_a_valid_exchange_fails_cleanly() {
    let secret = prepared(PENCIL_VERIFIER);
    for cut in 0..RFC_CLIENT_FIRST.len() {
        let (mut server, _) = ServerAuth::start(Method::ScramSha256, &secret, &mut rng()).unwrap();
        // Cutting inside the nonce still leaves a valid (shorter) nonce; anything else must be refused.
        let _ = server.step(initial(&RFC_CLIENT_FIRST[..cut]));
    }
    for cut in 0..RFC_CLIENT_FINAL.len() {
        let mut server = rfc_server(&secret);
        assert!(
            server
                .step(ClientMessage::SaslResponse(&RFC_CLIENT_FINAL[..cut]))
                .is_err(),
            "{cut}"
        );
    }
}

#[test]
fn debug_shows_no_secret() {
    let secret = prepared("hunter2");
    let (server, _) = ServerAuth::start(Method::Cleartext, &secret, &mut rng()).unwrap();
    let printed = format!("{server:?}");
    assert!(!printed.contains("hunter2"));
    assert!(printed.contains("PasswordMessage"));
}

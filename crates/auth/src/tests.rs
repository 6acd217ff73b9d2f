//! The client and server machines pumped against each other in memory, and random input fed to every entry
//! point.

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use super::*;
use crate::server::tests::{
    RFC_CLIENT_FINAL, RFC_CLIENT_FIRST, RFC_CLIENT_NONCE, RFC_SERVER_FINAL, RFC_SERVER_FIRST,
};

const USER: &str = "alice";
const PASSWORD: &str = "s3cret";

/// Which side refused.
#[derive(Debug, Clone, PartialEq)]
enum Failure {
    Server(Error),
    Client(Error),
}

/// Runs one whole login: pggat's server side checking `creds` against `secret`, relaying every message as the
/// caller in the pooler would.
fn pump(
    secret: &PreparedSecret,
    method: Method,
    creds: &ClientCredentials,
) -> Result<Outcome, Failure> {
    let (mut server, mut request) =
        ServerAuth::start(method, secret, &mut rand::rng()).map_err(Failure::Server)?;
    let mut client = ClientAuth::new(creds);
    loop {
        let response = match &request {
            Request::Cleartext => client.on_request(ServerRequest::Cleartext),
            Request::Md5 { salt } => client.on_request(ServerRequest::Md5 { salt: *salt }),
            Request::Sasl { mechanisms } => {
                let names: Vec<&[u8]> = mechanisms.iter().map(|m| m.as_bytes()).collect();
                client.on_request(ServerRequest::Sasl { mechanisms: &names })
            }
            Request::SaslContinue(data) => client.on_request(ServerRequest::SaslContinue(data)),
        }
        .map_err(Failure::Client)?
        .expect("every request gets a response");
        let message = match &response {
            Response::Password(password) => ClientMessage::Password(password),
            Response::SaslInitial { mechanism, data } => ClientMessage::SaslInitial {
                mechanism: mechanism.as_bytes(),
                data,
            },
            Response::SaslResponse(data) => ClientMessage::SaslResponse(data),
        };
        match server.step(message).map_err(Failure::Server)? {
            Step::Continue(next) => request = next,
            Step::Done(outcome) => {
                if let Some(sasl_final) = &outcome.sasl_final {
                    let none = client.on_request(ServerRequest::SaslFinal(sasl_final));
                    assert_eq!(none.map_err(Failure::Client)?, None);
                }
                assert_eq!(
                    client
                        .on_request(ServerRequest::Ok)
                        .map_err(Failure::Client)?,
                    None
                );
                return Ok(outcome);
            }
        }
    }
}

struct ServerSide {
    name: &'static str,
    secret: PreparedSecret,
}

/// The three forms pggat may hold for checking `alice`. The bare verifier uses few iterations to keep tests
/// fast; the plain password's derived one uses the default 4096.
fn server_sides() -> Vec<ServerSide> {
    let rng = &mut StdRng::seed_from_u64(1);
    let verifier = ScramSecret::derive(PASSWORD, b"pump-salt", 64);
    [
        ("plain", Secret::Plain(PASSWORD.into())),
        ("md5", Secret::Md5(Md5Secret::derive(PASSWORD, USER))),
        ("scram", Secret::Scram(verifier)),
    ]
    .into_iter()
    .map(|(name, secret)| ServerSide {
        name,
        secret: PreparedSecret::new(USER, secret, rng),
    })
    .collect()
}

/// The three forms pggat may hold for logging in as `alice` with `password`. The verifier form is the server
/// side's verifier (same salt and iterations) re-derived for `password`, with the ClientKey a SCRAM login
/// against that server hands over; without a server verifier, one of its own.
fn client_sides(server: &ServerSide, password: &str) -> Vec<(&'static str, ClientCredentials)> {
    let base = server
        .secret
        .scram()
        .cloned()
        .unwrap_or_else(|| ScramSecret::derive(PASSWORD, b"other-salt", 64));
    let verifier = ScramSecret::derive(password, &base.salt, base.iterations);
    let pass_through = ClientCredentials::new(USER, Secret::Scram(verifier.clone()));
    let salted = scram::salted_password(password.as_bytes(), &verifier.salt, verifier.iterations);
    pass_through
        .set_client_key(&ClientKey(scram::client_and_server_keys(&salted).0))
        .unwrap();
    vec![
        (
            "plain",
            ClientCredentials::new(USER, Secret::Plain(password.into())),
        ),
        (
            "md5",
            ClientCredentials::new(USER, Secret::Md5(Md5Secret::derive(password, USER))),
        ),
        ("verifier+key", pass_through),
    ]
}

#[test]
fn every_method_and_secret_form_against_each_other() {
    let mut logins = 0;
    for server in server_sides() {
        for (password, right) in [(PASSWORD, true), ("wrong", false)] {
            for (client_name, creds) in client_sides(&server, password) {
                for method in [Method::Cleartext, Method::Md5, Method::ScramSha256] {
                    let result = pump(&server.secret, method, &creds);
                    let context = format!(
                        "server {} / client {client_name} / {method} / right={right}",
                        server.name
                    );
                    if !server.secret.supports(method) {
                        assert!(
                            matches!(result, Err(Failure::Server(Error::CannotCheck { .. }))),
                            "{context}: {result:?}"
                        );
                    } else if !creds.supports(method) {
                        assert!(
                            matches!(result, Err(Failure::Client(Error::CannotAnswer { .. }))),
                            "{context}: {result:?}"
                        );
                    } else if !right {
                        assert_eq!(
                            result,
                            Err(Failure::Server(Error::WrongPassword)),
                            "{context}"
                        );
                    } else {
                        let outcome = result.unwrap_or_else(|e| panic!("{context}: {e:?}"));
                        logins += 1;
                        let scram = method == Method::ScramSha256;
                        assert_eq!(outcome.sasl_final.is_some(), scram, "{context}");
                        assert_eq!(outcome.client_key.is_some(), scram, "{context}");
                    }
                }
            }
        }
    }
    // Per server form, logins by the plain + md5 + verifier+key clients: plain 3 + 1 + 1, md5 2 + 1 + 0,
    // scram 2 + 0 + 1.
    assert_eq!(logins, 11);
}

#[test]
fn default_method_logs_in_with_every_server_secret() {
    for server in server_sides() {
        let method = choose_method(&server.secret, None).unwrap();
        let creds = ClientCredentials::new(USER, Secret::Plain(PASSWORD.into()));
        assert!(
            pump(&server.secret, method, &creds).is_ok(),
            "{}",
            server.name
        );
    }
}

/// PgBouncer-style SCRAM pass-through: pggat holds only the verifier PostgreSQL has; a client's SCRAM login
/// to pggat yields the ClientKey that lets pggat log in to PostgreSQL as that user.
#[test]
fn recovered_client_key_logs_in_to_a_server_with_the_same_verifier() {
    for server in server_sides().into_iter().filter(|s| s.name != "md5") {
        let verifier = server.secret.scram().unwrap().clone();
        let backend = ClientCredentials::new(USER, Secret::Scram(verifier));
        let login = || pump(&server.secret, Method::ScramSha256, &backend);
        assert!(matches!(
            login(),
            Err(Failure::Client(Error::CannotAnswer { .. }))
        ));

        let client = ClientCredentials::new(USER, Secret::Plain(PASSWORD.into()));
        let outcome = pump(&server.secret, Method::ScramSha256, &client).unwrap();
        backend
            .set_client_key(&outcome.client_key.unwrap())
            .unwrap();
        assert!(login().is_ok(), "{}", server.name);
        assert!(login().is_ok(), "{}: again, from the cache", server.name);
    }
}

/// A server that stole StoredKey (enough to check proofs) but not ServerKey cannot fool the client.
#[test]
fn impostor_server_is_detected() {
    let mut verifier = ScramSecret::derive(PASSWORD, b"salt", 64);
    verifier.server_key[0] ^= 1;
    let impostor = PreparedSecret::new(USER, Secret::Scram(verifier), &mut rand::rng());
    let creds = ClientCredentials::new(USER, Secret::Plain(PASSWORD.into()));
    assert_eq!(
        pump(&impostor, Method::ScramSha256, &creds),
        Err(Failure::Client(Error::ServerSignatureMismatch))
    );
}

// ---- random input ----

/// Random bytes, half the time from SCRAM's alphabet so some inputs get past the first checks.
fn noise(rng: &mut StdRng) -> Vec<u8> {
    const ALPHABET: &[u8] = b"nypmacrsive=,biwsQ0123456789+/-";
    let len = rng.random_range(0..48);
    if rng.random_bool(0.5) {
        (0..len)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())])
            .collect()
    } else {
        (0..len).map(|_| rng.random()).collect()
    }
}

/// `valid` with one to three random edits (flip, insert, delete, truncate).
fn mutate(rng: &mut StdRng, valid: &[u8]) -> Vec<u8> {
    let mut out = valid.to_vec();
    for _ in 0..rng.random_range(1..=3) {
        let at = rng.random_range(0..=out.len());
        match rng.random_range(0..4) {
            0 if at < out.len() => out[at] ^= 1 << rng.random_range(0..8),
            1 => out.insert(at, rng.random()),
            2 if at < out.len() => {
                out.remove(at);
            }
            _ => out.truncate(at),
        }
    }
    out
}

fn random_client_message<'a>(rng: &mut StdRng, a: &'a [u8], b: &'a [u8]) -> ClientMessage<'a> {
    match rng.random_range(0..4) {
        0 => ClientMessage::Password(a),
        1 => ClientMessage::SaslInitial {
            mechanism: a,
            data: b,
        },
        2 => ClientMessage::SaslInitial {
            mechanism: b"SCRAM-SHA-256",
            data: a,
        },
        _ => ClientMessage::SaslResponse(a),
    }
}

#[test]
fn random_client_messages_never_panic_or_pass() {
    let rng = &mut StdRng::seed_from_u64(42);
    let secrets = server_sides();
    for _ in 0..3000 {
        let secret = &secrets[rng.random_range(0..secrets.len())].secret;
        let method = [Method::Cleartext, Method::Md5, Method::ScramSha256][rng.random_range(0..3)];
        let Ok((mut server, _)) = ServerAuth::start(method, secret, rng) else {
            continue;
        };
        if method == Method::ScramSha256 && rng.random_bool(0.5) {
            server
                .step(ClientMessage::SaslInitial {
                    mechanism: b"SCRAM-SHA-256",
                    data: b"n,,n=,r=abc",
                })
                .unwrap();
        }
        for _ in 0..rng.random_range(1..4) {
            let (a, b) = (noise(rng), noise(rng));
            let result = server.step(random_client_message(rng, &a, &b));
            assert!(
                !matches!(result, Ok(Step::Done(_))),
                "random bytes authenticated"
            );
        }
    }
}

#[test]
fn mutated_scram_messages_never_panic_or_pass() {
    let rng = &mut StdRng::seed_from_u64(43);
    let Ok(Secret::Scram(verifier)) = Secret::parse(crate::secret::tests::PENCIL_VERIFIER) else {
        unreachable!()
    };
    let secret = PreparedSecret::new("user", Secret::Scram(verifier), rng);
    for _ in 0..3000 {
        let (mut server, _) = ServerAuth::start_with(
            Method::ScramSha256,
            &secret,
            [0; 4],
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into(),
        )
        .unwrap();
        let first = mutate(rng, RFC_CLIENT_FIRST);
        let first_ok = server.step(ClientMessage::SaslInitial {
            mechanism: b"SCRAM-SHA-256",
            data: &first,
        });
        if first_ok.is_err() {
            continue;
        }
        let fin = mutate(rng, RFC_CLIENT_FINAL);
        let result = server.step(ClientMessage::SaslResponse(&fin));
        // Any change to what the proof covers, or to the proof, must be refused.
        if result.is_ok() {
            assert_eq!(
                (first.as_slice(), fin.as_slice()),
                (RFC_CLIENT_FIRST, RFC_CLIENT_FINAL)
            );
        }
    }
}

fn random_server_request<'a>(
    rng: &mut StdRng,
    a: &'a [u8],
    names: &'a [&'a [u8]],
) -> ServerRequest<'a> {
    match rng.random_range(0..7) {
        0 => ServerRequest::Ok,
        1 => ServerRequest::Cleartext,
        2 => ServerRequest::Md5 { salt: rng.random() },
        3 => ServerRequest::Sasl { mechanisms: names },
        4 => ServerRequest::SaslContinue(a),
        5 => ServerRequest::SaslFinal(a),
        _ => ServerRequest::Other(rng.random()),
    }
}

#[test]
fn random_server_requests_never_panic() {
    let rng = &mut StdRng::seed_from_u64(44);
    let server = &server_sides()[2];
    let creds = client_sides(server, PASSWORD);
    for _ in 0..3000 {
        let (_, creds) = &creds[rng.random_range(0..creds.len())];
        let mut client = ClientAuth::new(creds);
        if rng.random_bool(0.5) {
            let _ = client.on_request(ServerRequest::Sasl {
                mechanisms: &[b"SCRAM-SHA-256"],
            });
        }
        for _ in 0..rng.random_range(1..4) {
            let (a, name) = (noise(rng), noise(rng));
            let names: [&[u8]; 2] = [&name, b"SCRAM-SHA-256"];
            let names = &names[..rng.random_range(0..=2)];
            let _ = client.on_request(random_server_request(rng, &a, names));
        }
    }
}

#[test]
fn mutated_server_messages_never_panic_or_pass() {
    let rng = &mut StdRng::seed_from_u64(45);
    // A verifier + ClientKey never runs PBKDF2, so mutated iteration counts cost nothing.
    let Ok(Secret::Scram(verifier)) = Secret::parse(crate::secret::tests::PENCIL_VERIFIER) else {
        unreachable!()
    };
    let salted = scram::salted_password(b"pencil", &verifier.salt, verifier.iterations);
    let key = ClientKey(scram::client_and_server_keys(&salted).0);
    let creds = ClientCredentials::new("user", Secret::Scram(verifier));
    creds.set_client_key(&key).unwrap();
    let mut verified = 0;
    for _ in 0..3000 {
        let mut client = ClientAuth::with_nonce(&creds, RFC_CLIENT_NONCE, "user");
        client
            .on_request(ServerRequest::Sasl {
                mechanisms: &[b"SCRAM-SHA-256"],
            })
            .unwrap();
        let first = if rng.random_bool(0.3) {
            mutate(rng, RFC_SERVER_FIRST)
        } else {
            RFC_SERVER_FIRST.to_vec()
        };
        if client
            .on_request(ServerRequest::SaslContinue(&first))
            .is_err()
        {
            continue;
        }
        let fin = mutate(rng, RFC_SERVER_FINAL);
        if client.on_request(ServerRequest::SaslFinal(&fin)) == Ok(None) {
            // Only an unchanged signature (perhaps followed by an extension) can verify.
            assert_eq!(first, RFC_SERVER_FIRST);
            assert!(
                fin.starts_with(RFC_SERVER_FINAL),
                "{}",
                String::from_utf8_lossy(&fin)
            );
            assert!(fin.len() == RFC_SERVER_FINAL.len() || fin[RFC_SERVER_FINAL.len()] == b',');
            verified += 1;
        }
    }
    // Truncations past the end leave the message intact now and then; the check above must have run.
    assert!(verified > 0);
}

#[test]
fn random_secrets_never_panic() {
    let rng = &mut StdRng::seed_from_u64(46);
    let valid = crate::secret::tests::PENCIL_VERIFIER.as_bytes();
    for _ in 0..3000 {
        let bytes = if rng.random_bool(0.5) {
            mutate(rng, valid)
        } else {
            [b"SCRAM-SHA-256$".as_slice(), &noise(rng)].concat()
        };
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(Secret::Scram(v)) = Secret::parse(&text) {
            assert_eq!(Secret::parse(&v.to_string()), Ok(Secret::Scram(v)));
        }
    }
}

use rand::SeedableRng as _;
use rand::rngs::StdRng;

use super::*;

/// Produced by PostgreSQL 15 (`SET password_encryption = 'scram-sha-256'; CREATE ROLE ... PASSWORD
/// 'correct horse battery staple'`, then `SELECT rolpassword FROM pg_authid`).
const PG15_VERIFIER: &str = "SCRAM-SHA-256$4096:zdghL27ZjuniZRP9eEirfA==$\
    E2F6EVrHxcQUVClZiWN0bTVrrrqoByBazCg/fsDNCGQ=:zMIjR6QJTakUxL3hQry+n7sYvB/47RMhmfyCB5Ee9Q0=";
const PG15_PASSWORD: &str = "correct horse battery staple";

/// RFC 7677's user "user" / password "pencil", computed with Python's hashlib (pbkdf2_hmac, hmac, sha256).
pub(crate) const PENCIL_VERIFIER: &str = "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$\
    WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";

/// md5("postgres" || "postgres"), computed with Python's hashlib.
const POSTGRES_MD5: &str = "md53175bce1d3201d16594cebf9d7eb3f9d";

pub(crate) fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

fn scram(s: &str) -> ScramSecret {
    match Secret::parse(s) {
        Ok(Secret::Scram(v)) => v,
        other => panic!("not a verifier: {other:?}"),
    }
}

#[test]
fn postgresql_verifier_parses_round_trips_and_matches_its_password() {
    let v = scram(PG15_VERIFIER);
    assert_eq!(v.iterations, 4096);
    assert_eq!(v.salt.len(), 16);
    assert_eq!(v.to_string(), PG15_VERIFIER);
    let salt = v.salt.clone();
    assert_eq!(ScramSecret::derive(PG15_PASSWORD, &salt, 4096), v);
    assert_ne!(ScramSecret::derive("wrong", &salt, 4096), v);
}

#[test]
fn rfc7677_verifier_derives() {
    let v = scram(PENCIL_VERIFIER);
    assert_eq!(
        ScramSecret::derive("pencil", &v.salt, 4096).to_string(),
        PENCIL_VERIFIER
    );
}

#[test]
fn generate_uses_postgres_defaults() {
    let v = ScramSecret::generate("pw", &mut rng());
    assert_eq!(v.iterations, 4096);
    assert_eq!(v.salt.len(), 16);
    assert_eq!(ScramSecret::derive("pw", &v.salt, 4096), v);
    assert_eq!(scram(&v.to_string()), v);
    // A fresh salt each time, so two users with one password get unrelated verifiers.
    assert_ne!(
        ScramSecret::generate("pw", &mut rng()).salt,
        ScramSecret::generate("pw", &mut StdRng::seed_from_u64(8)).salt
    );
}

#[test]
fn md5_secret_parses_and_matches_postgresql() {
    let Ok(Secret::Md5(m)) = Secret::parse(POSTGRES_MD5) else {
        panic!("not md5")
    };
    assert_eq!(m, Md5Secret::derive("postgres", "postgres"));
    assert_eq!(m.to_string(), POSTGRES_MD5);
    // The salted answer for salt 01020304, computed with Python's hashlib.
    assert_eq!(
        &m.salted_response([1, 2, 3, 4]),
        b"md568be9ed08db75f318087ab337aaea044"
    );
}

#[test]
fn anything_else_is_plain() {
    for s in [
        "",
        "hunter2",
        "md5",
        "md53175bce1d3201d16594cebf9d7eb3f9",   // 31 digits
        "md53175bce1d3201d16594cebf9d7eb3f9d0", // 33 digits
        "md53175BCE1D3201D16594CEBF9D7EB3F9D",  // PostgreSQL only recognises lowercase
        "md53175bce1d3201d16594cebf9d7eb3f9g",
        "SCRAM-SHA-256",               // no '$': not a verifier
        "scram-sha-256$4096:QQ==$a:b", // case matters, as in PostgreSQL
    ] {
        assert_eq!(Secret::parse(s), Ok(Secret::Plain(s.to_owned())), "{s:?}");
    }
}

#[test]
fn malformed_verifiers_are_errors() {
    let key = "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=";
    let cases = [
        ("SCRAM-SHA-256$".to_owned(), "expected '$' before the keys"),
        (
            "SCRAM-SHA-256$4096:QQ==".to_owned(),
            "expected '$' before the keys",
        ),
        (
            format!("SCRAM-SHA-256$4096$QQ==${key}:{key}"),
            "expected <iterations>:<salt>",
        ),
        (
            format!("SCRAM-SHA-256$4096:QQ==${key}"),
            "expected <StoredKey>:<ServerKey>",
        ),
        (
            format!("SCRAM-SHA-256$0:QQ==${key}:{key}"),
            "iteration count is not a positive integer",
        ),
        (
            format!("SCRAM-SHA-256$-1:QQ==${key}:{key}"),
            "iteration count is not a positive integer",
        ),
        (
            format!("SCRAM-SHA-256$x:QQ==${key}:{key}"),
            "iteration count is not a positive integer",
        ),
        (
            format!("SCRAM-SHA-256$4096:Q!==${key}:{key}"),
            "salt is not base64",
        ),
        (
            format!("SCRAM-SHA-256$4096:QQ==$QQ==:{key}"),
            "StoredKey is not 32 bytes of base64",
        ),
        (
            format!("SCRAM-SHA-256$4096:QQ==${key}:{key}$"),
            "ServerKey is not 32 bytes of base64",
        ),
        (
            format!("SCRAM-SHA-256$4096:QQ==${key}:{key}:{key}"),
            "ServerKey is not 32 bytes of base64",
        ),
    ];
    for (s, reason) in cases {
        assert_eq!(
            Secret::parse(&s),
            Err(Error::BadScramSecret { reason }),
            "{s}"
        );
    }
}

#[test]
fn debug_never_prints_secrets() {
    let plain = Secret::parse("hunter2").unwrap();
    let md5 = Secret::parse(POSTGRES_MD5).unwrap();
    let verifier = Secret::parse(PENCIL_VERIFIER).unwrap();
    let prepared = PreparedSecret::new("postgres", plain.clone(), &mut rng());
    let key = ClientKey([7; 32]);
    let printed = format!("{plain:?} {md5:?} {verifier:?} {prepared:?} {key:?}");
    for leak in [
        "hunter2", "3175bce1", "W22ZaJ0S", "WG5d8oPm", "wfPLwcE6", "7, 7",
    ] {
        assert!(!printed.contains(leak), "{leak} in {printed}");
    }
    assert!(printed.contains("iterations: 4096"));
}

#[test]
fn prepared_secret_serves_what_each_form_allows() {
    let rng = &mut rng();
    let plain = PreparedSecret::new("postgres", Secret::parse("postgres").unwrap(), rng);
    let md5 = PreparedSecret::new("postgres", Secret::parse(POSTGRES_MD5).unwrap(), rng);
    let verifier = PreparedSecret::new("postgres", Secret::parse(PENCIL_VERIFIER).unwrap(), rng);
    use Method::*;
    for (secret, methods) in [
        (&plain, [true, true, true]),
        (&md5, [true, true, false]),
        (&verifier, [true, false, true]),
    ] {
        assert_eq!(
            [Cleartext, Md5, ScramSha256].map(|m| secret.supports(m)),
            methods,
            "{secret:?}"
        );
    }
    // The derived forms are those of the password.
    assert_eq!(
        plain.md5(),
        Some(&Md5Secret::derive("postgres", "postgres"))
    );
    let derived = plain.scram().unwrap();
    assert_eq!(
        &ScramSecret::derive("postgres", &derived.salt, derived.iterations),
        derived
    );
}

#[test]
fn cleartext_check_against_every_form() {
    let rng = &mut rng();
    let cases = [
        (Secret::parse("postgres").unwrap(), "postgres"),
        (Secret::parse(POSTGRES_MD5).unwrap(), "postgres"),
        (Secret::parse(PG15_VERIFIER).unwrap(), PG15_PASSWORD),
    ];
    for (secret, password) in cases {
        let prepared = PreparedSecret::new("postgres", secret, rng);
        assert!(
            prepared.check_cleartext(password.as_bytes()),
            "{prepared:?}"
        );
        assert!(!prepared.check_cleartext(b"wrong"), "{prepared:?}");
        assert!(!prepared.check_cleartext(b""), "{prepared:?}");
    }
    // The MD5 hash is salted with the user name.
    let other_user = PreparedSecret::new("alice", Secret::parse(POSTGRES_MD5).unwrap(), rng);
    assert!(!other_user.check_cleartext(b"postgres"));
}

#[test]
fn client_key_matches_its_verifier_only() {
    let v = scram(PENCIL_VERIFIER);
    let salted = scram::salted_password(b"pencil", &v.salt, v.iterations);
    let key = ClientKey(scram::client_and_server_keys(&salted).0);
    assert!(key.matches(&v));
    assert!(!ClientKey([0; 32]).matches(&v));
    assert!(!key.matches(&scram(PG15_VERIFIER)));
}

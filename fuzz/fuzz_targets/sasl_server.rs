//! pggat checking a client's password: the server side of cleartext, MD5
//! and SCRAM-SHA-256, fed any sequence of client messages. Never a panic,
//! and never a login without the password.
//!
//! Input: a method byte, then messages separated by 0xff (a byte no SCRAM
//! message contains); each message's first byte picks its kind.
#![no_main]
#![forbid(unsafe_code)]

use std::sync::OnceLock;

use auth::{ClientMessage, Method, PreparedSecret, Secret, ServerAuth, Step};
use libfuzzer_sys::fuzz_target;

/// The verifier of "pencil" (RFC 7677's example), and an MD5 secret.
fn secrets() -> &'static [PreparedSecret; 3] {
    static S: OnceLock<[PreparedSecret; 3]> = OnceLock::new();
    S.get_or_init(|| {
        let verifier = "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
        let mut rng = rand::rng();
        [
            PreparedSecret::new("user", Secret::parse(verifier).unwrap(), &mut rng),
            PreparedSecret::new("user", Secret::parse("md5a3556571e93b0d20722ba62be61e8c2d").unwrap(), &mut rng),
            PreparedSecret::new("user", Secret::Plain("pencil".into()), &mut rng),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let method = match pick % 3 {
        0 => Method::ScramSha256,
        1 => Method::Md5,
        _ => Method::Cleartext,
    };
    let secret = &secrets()[(pick / 3 % 3) as usize];
    let Ok((mut state, _request)) = ServerAuth::start(method, secret, &mut rand::rng()) else {
        return;
    };
    for message in rest.split(|&b| b == 0xff) {
        let Some((&kind, body)) = message.split_first() else {
            continue;
        };
        let msg = match kind % 3 {
            0 => ClientMessage::Password(body),
            1 => {
                let (mechanism, data) = body.split_at(body.len().min(13));
                ClientMessage::SaslInitial { mechanism, data }
            }
            _ => ClientMessage::SaslResponse(body),
        };
        match state.step(msg) {
            Ok(Step::Continue(_)) => {}
            Ok(Step::Done(_)) => {
                // In, by the right password only: the fuzzer cannot forge a
                // SCRAM proof or an MD5 answer with a random salt and
                // nonce, so a login here means the password itself.
                assert!(
                    message.windows(6).any(|w| w == b"pencil"),
                    "logged in without the password: {message:?}"
                );
                return;
            }
            Err(_) => return,
        }
    }
});

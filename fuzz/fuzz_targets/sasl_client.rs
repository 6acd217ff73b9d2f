//! pggat logging in to a server: the client side of cleartext, MD5 and
//! SCRAM-SHA-256, fed any sequence of server requests, including SCRAM
//! server-first messages with any iteration count (capped, so this stays
//! fast) and forged server signatures. Never a panic.
//!
//! Input: messages separated by 0xff; each message's first byte picks the
//! request.
#![no_main]
#![forbid(unsafe_code)]

use auth::{ClientAuth, ClientCredentials, Secret, ServerRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let credentials = ClientCredentials::new("user", Secret::Plain("pencil".into()));
    let mut login = ClientAuth::new(&credentials);
    let scram: &[&[u8]] = &[b"SCRAM-SHA-256"];
    for message in data.split(|&b| b == 0xff) {
        let Some((&kind, body)) = message.split_first() else {
            continue;
        };
        let request = match kind % 7 {
            0 => ServerRequest::Ok,
            1 => ServerRequest::Cleartext,
            2 => ServerRequest::Md5 {
                salt: body
                    .get(..4)
                    .and_then(|s| s.try_into().ok())
                    .unwrap_or_default(),
            },
            3 => ServerRequest::Sasl { mechanisms: scram },
            4 => ServerRequest::SaslContinue(body),
            5 => ServerRequest::SaslFinal(body),
            _ => ServerRequest::Other(i32::from(kind)),
        };
        if login.on_request(request).is_err() {
            return;
        }
    }
});

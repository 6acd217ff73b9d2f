//! The pipeline tracker must stay panic-free and bounded whatever sequence of
//! tags the two sides produce. Even bytes are client tags, odd ones server.
#![no_main]
#![forbid(unsafe_code)]

use fed::Pipeline;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut p = Pipeline::new();
    for pair in data.chunks(2) {
        match pair {
            [0, tag] => p.client_sent(*tag),
            [_, tag] => {
                p.server_sent(*tag, Some(b'I'));
            }
            _ => {}
        }
        let _ = (p.is_idle(), p.owed(), p.needs_sync());
    }
});

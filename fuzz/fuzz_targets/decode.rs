//! Every decoder must return an error, never panic, on any bytes a peer can
//! send. Run: `cargo fuzz run decode -s none` from this directory (see fuzz/README.md).
#![no_main]
#![forbid(unsafe_code)]

use fed::messages::{Backend, Frontend, Startup};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&tag, body)) = data.split_first() {
        let _ = Backend::decode(tag, body);
        let _ = Frontend::decode(tag, body);
        let _ = fed::frame::header(data, 1 << 20);
    }
    let _ = Startup::decode(data);
});

//! What the fuzz targets share.
#![forbid(unsafe_code)]

use std::sync::OnceLock;

/// One current-thread runtime for every input of a target that drives
/// pggat's async code over real sockets: building one per input would cost
/// more than the input.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

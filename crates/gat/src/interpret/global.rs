//! The global options block.

use super::{Line, Once, duration, duration_or_off, positive, unknown};
use crate::config::Global;
use crate::error::Result;
use crate::syntax::Block;

const KNOWN: &[&str] = &["admin", "shutdown_timeout", "stat_log_period", "threads"];

pub(super) fn global(block: &Block) -> Result<Global> {
    let mut global = Global::default();
    let mut once = Once::default();
    for d in &block.directives {
        let mut line = Line::new(d);
        match d.name.text.as_str() {
            "stat_log_period" => {
                once.check(d)?;
                global.stat_log_period =
                    duration_or_off(line.single("a duration, or off")?, "stat_log_period")?;
            }
            "admin" => {
                once.check(d)?;
                let token = line.single("an address such as 127.0.0.1:9930")?;
                super::addr::listen_tcp(token, "admin")?;
                global.admin = Some(token.text.clone());
            }
            "threads" => {
                once.check(d)?;
                let n = positive(line.single("a positive integer")?, "threads")?;
                global.threads = usize::try_from(n).ok();
            }
            "shutdown_timeout" => {
                once.check(d)?;
                global.shutdown_timeout = duration(line.single("a duration")?, "shutdown_timeout")?;
            }
            _ => return Err(unknown(d, "directive", KNOWN)),
        }
    }
    Ok(global)
}

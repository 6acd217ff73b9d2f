//! PgBouncer's files as pggat reads them: pgbouncer.ini (with %include),
//! the auth_file and the auth_hba_file, then the settings' interpretation.
//! Any text is a config or an error, never a panic.
//!
//! Input: the three files' texts, separated by 0xff bytes.
#![no_main]
#![forbid(unsafe_code)]

use std::io;
use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;

/// The ini at `pgbouncer.ini`; `auth_file` and `hba` name the others (any
/// other path reads the ini again, for %include).
struct Files {
    ini: String,
    users: String,
    hba: String,
}

impl gat::Environment for Files {
    fn var(&self, _name: &str) -> Option<String> {
        None
    }

    fn read(&self, path: &Path) -> io::Result<String> {
        Ok(match path.file_name().and_then(|n| n.to_str()) {
            Some("userlist.txt") => self.users.clone(),
            Some("hba.conf") => self.hba.clone(),
            _ => self.ini.clone(),
        })
    }

    fn list(&self, _dir: &Path) -> io::Result<Vec<PathBuf>> {
        Ok(Vec::new())
    }
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0xff).map(String::from_utf8_lossy);
    let ini = parts.next().unwrap_or_default().into_owned();
    let users = parts.next().unwrap_or_default().into_owned();
    let hba = parts.next().unwrap_or_default().into_owned();
    let files = Files { ini, users, hba };
    let _ = gat::pgbouncer::load_with(Path::new("/fuzz/pgbouncer.ini"), &files);
    let _ = gat::pgbouncer::hba::read(
        Path::new("/fuzz/hba.conf"),
        &files,
        &gat::Pos::file_only("pgbouncer.ini"),
    );
});

//! Tests of the Gatfile reader through the public API: a corpus of valid files with the typed config each
//! must produce, a corpus of mistakes with the exact message each must produce, the JSON round trip and
//! a fuzz-style loop. One integration binary (see STYLE.md), one module per concern.

mod docs;
mod fuzz;
mod invalid;
mod json;
mod valid;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use gat::{Environment, System};

/// Fixed environment variables, real files: tests must not depend on (or set) the process environment.
pub struct TestEnv {
    vars: HashMap<&'static str, &'static str>,
}

impl Default for TestEnv {
    fn default() -> TestEnv {
        TestEnv::new()
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv {
            vars: HashMap::from([
                ("PGGAT_TEST_PORT", "7432"),
                ("PGGAT_TEST_PASSWORD", "envpw"),
                ("PGGAT_TEST_HOST", "db.example"),
            ]),
        }
    }
}

impl Environment for TestEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).map(|v| (*v).to_owned())
    }

    fn read(&self, path: &Path) -> io::Result<String> {
        System.read(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        System.list(dir)
    }
}

/// The corpus files of a directory with the given extension, sorted, relative to the crate (cargo runs
/// integration tests from the crate directory).
pub fn corpus(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {dir}: {e}"))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "gatfile"))
        .collect();
    files.sort();
    files
}

pub fn load(path: &Path) -> gat::Result<gat::Config> {
    gat::load_with(path, &TestEnv::new())
}

/// Parses `text`, which must hold one server whose first route is a pool;
/// returns the config and that pool.
pub fn first_pool(text: &str) -> (gat::Config, gat::Pool) {
    let config =
        gat::parse_str_with("Gatfile", text, &TestEnv::new()).unwrap_or_else(|e| panic!("{e}"));
    let gat::Handler::Pool(pool) = &config.servers[0].routes[0].handler else {
        panic!("not a pool: {:?}", config.servers[0].routes[0].handler)
    };
    let pool = (**pool).clone();
    (config, pool)
}

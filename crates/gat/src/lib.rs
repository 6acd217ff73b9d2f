//! Configuration: Gatfile parser, JSON form, typed config, matchers, validation
#![forbid(unsafe_code)]

//! Cleartext, MD5 and SCRAM-SHA-256 authentication as sans-I/O state machines
#![forbid(unsafe_code)]

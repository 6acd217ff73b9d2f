//! Fair scheduler that hands server connections to waiting clients
#![forbid(unsafe_code)]

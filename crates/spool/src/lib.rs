//! Server pools: recipes, dialing, login, scaling, reaping, health
#![forbid(unsafe_code)]

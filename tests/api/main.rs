//! Black-box tests: each starts the real server on a random port with a
//! fresh database and talks HTTP to it.

#[allow(dead_code)]
mod helpers;
mod smoke;

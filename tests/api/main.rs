#![allow(unused_imports)]
//! Black-box tests: each starts the real server on a random port with a
//! fresh database and talks HTTP to it.

mod auth;
mod backends;
mod bodies;
#[allow(dead_code)]
mod helpers;
mod input;
mod instances;
mod lifecycle;
mod openapi;
mod ops;
mod policy;
mod proxies;
mod sharing;
mod smoke;
mod todos;
mod tokens;
mod users;
mod web;

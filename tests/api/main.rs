//! Black-box tests: each starts the real server on a random port with a
//! fresh database and talks HTTP to it.
mod auth;
mod backends;
mod backup;
mod bodies;
mod cli;
mod connections;
mod cors;
#[allow(dead_code)]
mod helpers;
mod input;
mod instances;
mod lifecycle;
mod load;
mod logs;
mod observability;
mod openapi;
mod outage;
mod policy;
mod process;
mod proxies;
mod sessions;
mod sharing;
mod smoke;
mod todos;
mod tokens;
mod two_step;
mod users;
mod web;

//! Registration, login and the checks every protected route relies on.

pub mod extract;
pub mod jwt;
pub mod limit;
pub mod password;
pub mod policy;
pub mod repository;
pub mod router;
pub mod schemas;
pub mod service;

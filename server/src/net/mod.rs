//! Networking: listening sockets and the per-connection driver.

pub mod budget;
pub mod connection;
pub mod limits;
pub mod listener;

//! Helpers shared by the client's integration tests.
#![allow(dead_code)]

pub mod runtimes;

//! Helpers for end-to-end tests: start and stop real ramjet processes.

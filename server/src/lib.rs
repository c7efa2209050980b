//! ramjet-server.

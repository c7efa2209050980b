//! ramjet-client.

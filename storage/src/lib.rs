//! ramjet-storage.

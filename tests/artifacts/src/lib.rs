//! Compiled guest components for the end-to-end tests

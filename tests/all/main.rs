//! End-to-end tests: the real `syncplane` binary, real compiled guest
//! components, a real SQLite file, over HTTP like a user.

mod admin;
mod bad_input;
mod demo;
mod engine;
mod hello_world;
mod hostile;
mod kafka;
mod util;
mod xproto;

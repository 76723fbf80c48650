//! End-to-end tests: the real `syncplane` binary, real compiled guest
//! components, a real SQLite file, over HTTP like a user.

mod admin;
mod auth;
mod bad_input;
mod capabilities;
mod cascade;
mod component_cache;
mod corpus;
mod demo;
mod engine;
mod faults;
mod grpc;
mod grpc_security;
mod gui;
mod hello_world;
mod hello_world_js;
mod hello_world_py;
mod hostile;
mod ingest;
mod integrity;
mod isolation;
mod kafka;
mod lifecycle;
mod marketplace;
mod pack;
mod package_files;
mod powerdns;
mod quotas;
mod rest_query;
mod security;
mod service_new;
mod service_test;
mod toolchains;
mod util;
mod xosapi;
mod xproto;

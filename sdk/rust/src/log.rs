//! Structured logging into the host's log.
//!
//! ```no_run
//! use syncplane_sdk::log;
//! # let (o, from, to) = ("HelloWorldService 1", "Jon", "Arya");
//! log::info!("HelloWorldService has been updated!"; object = o, hello_from = from);
//! log::info!("{} is saying hello to {}", from, to);
//! ```
//!
//! # Limits
//!
//! The host caps what one invocation may log (1 MiB in all, 4 KiB per
//! record; a longer record is truncated). Logging past the total stops the
//! invocation with the cause `output-limit`.

pub use crate::__private::syncplane::plugin::log::Level;

/// Sends one record to the host.
pub fn emit(level: Level, message: &str, fields: &[(&str, String)]) {
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    crate::__private::syncplane::plugin::log::log(level, message, &fields);
}

/// Logs at a level: `log!(Level::Info, "msg"; key = value, ...)` or with
/// `format!` arguments.
#[macro_export]
macro_rules! __log {
    ($level:expr, $msg:literal; $($key:ident = $value:expr),+ $(,)?) => {
        $crate::log::emit($level, $msg, &[$((stringify!($key), ::std::string::ToString::to_string(&$value))),+])
    };
    ($level:expr, $($arg:tt)+) => {
        $crate::log::emit($level, &::std::format!($($arg)+), &[])
    };
}

/// Logs at `trace`.
#[macro_export]
macro_rules! __trace { ($($t:tt)+) => { $crate::__log!($crate::log::Level::Trace, $($t)+) }; }
/// Logs at `debug`.
#[macro_export]
macro_rules! __debug { ($($t:tt)+) => { $crate::__log!($crate::log::Level::Debug, $($t)+) }; }
/// Logs at `info`.
#[macro_export]
macro_rules! __info { ($($t:tt)+) => { $crate::__log!($crate::log::Level::Info, $($t)+) }; }
/// Logs at `warn`.
#[macro_export]
macro_rules! __warn { ($($t:tt)+) => { $crate::__log!($crate::log::Level::Warn, $($t)+) }; }
/// Logs at `error`.
#[macro_export]
macro_rules! __error { ($($t:tt)+) => { $crate::__log!($crate::log::Level::Error, $($t)+) }; }

pub use crate::{
    __debug as debug, __error as error, __info as info, __log as log, __trace as trace,
    __warn as warn,
};

//! A small blocking HTTP client over `wasi:http/outgoing-handler`.
//!
//! ```no_run
//! use syncplane_sdk::http::Request;
//! use syncplane_sdk::prelude::*;
//!
//! # fn step() -> StepResult {
//! let api_url = syncplane_sdk::require_config("api_url")?;
//! let key = syncplane_sdk::secret("api_key")?;
//! let zones: serde_json::Value = Request::get(format!("{api_url}/api/v1/servers/localhost/zones"))
//!     .header("X-API-Key", &key)
//!     .send()?
//!     .error_for_status()?
//!     .json()?;
//! log::info!("{} zones", zones.as_array().map_or(0, Vec::len));
//! # Ok(()) }
//! ```
//!
//! # Grants
//!
//! The host answers only requests to origins the manifest grants:
//!
//! ```toml
//! [capabilities]
//! outbound_http = ["http://127.0.0.1:8081", "https://*.example.com:443"]
//! ```
//!
//! Any other request fails with [`HttpError::Denied`] before a connection
//! is opened. `?` turns every [`HttpError`] into [`StepError::Failed`]
//! (in a sync step) or a `String` (in a policy, pull or event step), so an
//! unhandled denial fails the object with the host's message.
//!
//! # Limits
//!
//! - The response body is read into memory up to [`DEFAULT_BODY_LIMIT`]
//!   (16 MiB) unless [`Request::body_limit`] says otherwise; a longer body
//!   is an [`HttpError::BodyTooLarge`]. [`Request::send_streaming`] reads
//!   it piece by piece instead.
//! - Redirects are **not** followed: a `3xx` answer is returned as it is.
//!   Following one means sending a new request to the `Location`, which
//!   the host checks against the grants like any other.
//! - Time spent waiting for the backend counts against the step's
//!   deadline; the host may also bound each request. [`Request::timeout`]
//!   sets a shorter bound.
//! - Only `http` and `https` URLs; no proxies, no cookies, no
//!   decompression.
//!
//! [`StepError::Failed`]: crate::StepError::Failed

mod error;
mod request;
mod response;
mod url;

pub use error::HttpError;
pub use request::{DEFAULT_BODY_LIMIT, Method, Request};
pub use response::{Response, StreamingResponse};

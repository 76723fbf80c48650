//! An offline HTTP backend: when a service's context has an
//! [`HttpResponder`], its outbound requests are answered by it instead of
//! the network. Tools that test steps offline (`syncplane service test`)
//! set one; a server never does.
//!
//! The grants are checked as always before the responder sees a request,
//! so a request to a host the service may not reach is denied exactly as in
//! production. The operator's network limits are not checked (no name is
//! resolved).

use std::fmt;

/// An outbound request, as the guest sent it, with its whole body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    /// The method, upper case: `GET`, `POST`, ...
    pub method: String,
    /// The full URL: `http://127.0.0.1:8081/api/v1/zones?x=1`.
    pub url: String,
    /// The headers in the order sent; names lower case.
    pub headers: Vec<(String, String)>,
    /// The body (empty when none was sent).
    pub body: Vec<u8>,
}

/// The answer an [`HttpResponder`] gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundResponse {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: Vec<(String, String)>,
    /// The body; longer than the service's response body limit, it fails
    /// to read as a real one would.
    pub body: Vec<u8>,
}

/// Answers a service's outbound requests in place of the network.
pub trait HttpResponder: Send + Sync + fmt::Debug {
    /// The response to `request`.
    ///
    /// # Errors
    ///
    /// A message for a request the responder has no answer for; the guest
    /// sees a failed request (`internal-error`) carrying it.
    fn respond(&self, request: OutboundRequest) -> Result<OutboundResponse, String>;
}

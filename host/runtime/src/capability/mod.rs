//! Capabilities: what a package declares (`[capabilities]`, [`Grants`]),
//! what the operator allows ([`OperatorPolicy`]), and what one installed
//! service may touch at run time ([`ServiceContext`]).
//!
//! Every guest access goes through a check here: model reads and writes
//! beyond the service's own models, config and secret names, and each
//! outbound HTTP request (origin against the grants before any socket
//! opens, resolved address against the operator's networks).

mod context;
mod grants;
mod origin;
pub(crate) mod outbound;
mod responder;

pub use context::{REDACTED, ServiceContext, truncate, without_nul};
pub use grants::{
    Allow, Grants, ModelGrants, ModelPattern, ModelPatternError, OperatorPolicy, OutboundPolicy,
};
pub use origin::{Origin, OriginError, Scheme};
pub use outbound::HttpLimits;
pub use responder::{HttpResponder, OutboundRequest, OutboundResponse};

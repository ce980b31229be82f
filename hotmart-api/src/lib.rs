//! Client for Hotmart's REST API: sales history, subscriptions, a subscription's charges
//! and products.
//!
//! - OAuth client credentials: one token, fetched on first use and cached until shortly
//!   before its `expires_in`; a 401 drops it and the call is made once more with a new one.
//! - 429 and 5xx are retried after the advertised `RateLimit-Reset` (bounded attempts).
//! - Calls are spaced under a budget per minute ([`Budget`]); workers add the server-side
//!   cap of their task queue, like the TalentLMS calls.
//! - Cursor paging: every list returns a [`Page`]; pass its `next()` back.
//! - Secrets never reach a log or a `Debug` output.

pub mod events;
mod model;
pub use model::*;

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "client")]
mod error;
#[cfg(feature = "client")]
pub use client::*;
#[cfg(feature = "client")]
pub use error::Error;

//! The starter: webhook ingress, the journal forwarder, the staff API, the revenue
//! dashboard, and the operator CLI.
//!
//! `startup` builds the service from the settings; `routes` holds the HTTP routes by
//! resource; `auth` and `error` are the one token check and the one error body they all
//! use; `links` is the one way links change (API and CLI); `cli` is the operator CLI.

pub mod auth;
pub mod cli;
pub mod error;
pub mod forwarder;
pub mod hotmart_ops;
pub mod journal;
pub mod links;
pub mod metrics;
pub mod ops;
pub mod pubsub;
pub mod reports;
pub mod revenue_ops;
pub mod routes;
pub mod session;
pub mod startup;

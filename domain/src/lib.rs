//! Tollgate's domain, as pure types and rules: the Hotmart event model and its parser,
//! exact money, the access rules, revenue rows and the dashboard's figures. No Temporal,
//! no I/O, no clocks: everything time-based takes `now` as an argument, so the workflow
//! (which reads time through the SDK), the store, the warehouse, the HTTP layer and the
//! fuzzer all share one definition.

pub mod access;
pub mod audit;
pub mod duration;
pub mod error;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod hotmart;
pub mod ingress;
pub mod ledger;
pub mod lifecycle;
pub mod metrics;
pub mod money;
pub mod revenue;
pub mod student;
pub mod sweep;

pub use access::{AccessPolicy, AccessState, CourseLink, Facts, Verdict};
pub use error::ParseError;
pub use hotmart::{HotmartEvent, ProductId, WorkflowKey};

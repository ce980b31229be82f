//! Tollgate's deterministic core: the Hotmart event model, the access rules, revenue
//! rows, and the `AccessWorkflow` that applies them. No I/O here: side effects are
//! activities, declared in [`acts`] and implemented in the `activities` crate.

pub mod access;
pub mod acts;
pub mod duration;
pub mod fixtures;
pub mod hotmart;
pub mod metrics;
pub mod money;
pub mod revenue;
pub mod revenue_flows;
pub mod workflow;

pub use access::{AccessPolicy, AccessState, CourseLink, Facts, Verdict};
pub use hotmart::{HotmartEvent, ProductId, WorkflowKey};
pub use revenue_flows::{ReconcileWorkflow, RollupWorkflow};
pub use workflow::{AccessInput, AccessWorkflow, RulesConfig, Status};

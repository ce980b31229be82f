//! Tollgate's Temporal workflows: `AccessWorkflow` (one durable run per subscription or
//! one-off purchase) and the revenue workflows, with the signatures of the activities
//! they call ([`acts`]). The rules they apply live in `tollgate-domain`; the side effects
//! are implemented in the `activities` crate.

pub mod acts;
pub mod hotmart_reconcile;
pub mod import;
pub mod revenue_flows;
pub mod talentlms_audit;
pub mod workflow;

pub use hotmart_reconcile::HotmartReconcileWorkflow;
pub use import::ImportWorkflow;
pub use revenue_flows::{ReconcileWorkflow, RollupWorkflow};
pub use talentlms_audit::AuditWorkflow;
pub use workflow::{AccessInput, AccessWorkflow, RulesConfig, Status};

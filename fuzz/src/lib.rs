//! The webhook parser, compiled on its own for fuzzing.
//!
//! These are the very source files of `tollgate-workflows` (not copies): they only need
//! serde, serde_json, thiserror, std and each other (`crate::hotmart` <-> `crate::money`),
//! so they are mounted at this crate's root under the same module names.

#[path = "../../workflows/src/hotmart.rs"]
pub mod hotmart;
#[path = "../../workflows/src/money.rs"]
pub mod money;

//! What operators read about a student: one record per purchase or subscription.

use serde::{Deserialize, Serialize};

/// One student's access through one workflow (a purchase or a subscription), as the
/// document store keeps it for the API and operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudentAccess {
    pub email: String,
    pub workflow_id: String,
    pub product_id: i64,
    pub talentlms_user_id: Option<String>,
    /// `AccessState` as text (`active`, `grace`, `revoked`, ...).
    pub state: String,
    pub entitled: bool,
    pub until: Option<i64>,
    pub courses: Vec<String>,
    pub reason: String,
    /// Workflow time of the decision, epoch ms.
    pub updated_at: i64,
}

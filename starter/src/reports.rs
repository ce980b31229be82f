//! Run reports kept in the document store (Hotmart reconciliation, TalentLMS audit):
//! runs started now from the CLI, and the latest ones for the CLI, the API and the console.

use serde::Serialize;
use serde::de::DeserializeOwned;
use temporalio_client::{Client, WorkflowStartOptions};
use tollgate_domain::audit::AuditReport;
use tollgate_store::DocStore;
use tollgate_workflows::AuditWorkflow;
use tollgate_workflows::talentlms_audit::AuditRequest;

/// The newest reports of `kind`, newest first.
pub async fn latest<T: DeserializeOwned>(
    docs: &DocStore,
    kind: &str,
    limit: usize,
) -> anyhow::Result<Vec<T>> {
    docs.latest_reports(kind, limit).await?.iter().map(|doc| Ok(serde_json::from_str(doc)?)).collect()
}

/// A report as the API and the CLI print it: its fields and its one-line summary.
pub fn with_summary(report: &impl Serialize, summary: String) -> serde_json::Value {
    let mut v = serde_json::to_value(report).unwrap_or_default();
    v["summary"] = summary.into();
    v
}

/// Runs one TalentLMS audit now (id `talentlms-audit-{ms}`) and waits for its report.
pub async fn audit_now(client: &Client, task_queue: &str, req: AuditRequest) -> anyhow::Result<AuditReport> {
    let id = format!("talentlms-audit-{}", tollgate_store::now_ms());
    let opts = WorkflowStartOptions::new(task_queue.to_string(), id).build();
    let handle = client.start_workflow(AuditWorkflow::run, req, opts).await?;
    Ok(handle.get_result(Default::default()).await?)
}

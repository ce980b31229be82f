//! A student's access status, from each workflow's `status` query (the CLI's `status`
//! and the API's student lookup).

use futures::StreamExt;
use temporalio_client::{Client, WorkflowListOptions, WorkflowQueryOptions};
use tollgate_domain::hotmart::Email;
use tollgate_workflows::revenue_flows::ReconcileOutcome;
use tollgate_workflows::{AccessWorkflow, ReconcileWorkflow, Status};

/// Access status of every workflow of a student.
pub async fn statuses_by_email(client: &Client, email: &str) -> anyhow::Result<Vec<Status>> {
    let email = Email::parse(email)?;
    let query = format!("BuyerEmail = {}", visibility_literal(email.as_str()));
    let mut stream = client.list_workflows(query, WorkflowListOptions::default());
    let mut out = Vec::new();
    while let Some(wf) = stream.next().await {
        out.push(status(client, wf?.id()).await?);
    }
    Ok(out)
}

pub async fn status(client: &Client, workflow_id: &str) -> anyhow::Result<Status> {
    let handle = client.get_workflow_handle::<AccessWorkflow>(workflow_id.to_string());
    Ok(handle.query(AccessWorkflow::status, (), WorkflowQueryOptions::default()).await?)
}

/// The latest completed reconciliation runs (scheduled or on demand), newest first, with
/// their reports.
pub async fn latest_reconciliations(
    client: &Client,
    n: usize,
) -> anyhow::Result<Vec<(String, ReconcileOutcome)>> {
    let query = format!(
        "WorkflowType = {} AND ExecutionStatus = 'Completed'",
        visibility_literal(tollgate_workflows::revenue_flows::RECONCILE_WORKFLOW_TYPE)
    );
    let opts = WorkflowListOptions::builder().limit(n).build();
    let mut stream = client.list_workflows(query, opts);
    let mut out = Vec::new();
    while let Some(wf) = stream.next().await {
        let id = wf?.id().to_string();
        let handle = client.get_workflow_handle::<ReconcileWorkflow>(id.clone());
        out.push((id, handle.get_result(Default::default()).await?));
    }
    Ok(out)
}

/// A string literal of Temporal's visibility query language: a quote (`o'brien@x.com` is a
/// valid address) or a backslash in the value is escaped, so it cannot end the literal.
pub fn visibility_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if matches!(c, '\'' | '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn visibility_literals_escape_quotes_and_backslashes() {
        assert_eq!(super::visibility_literal("ana@x.com"), "'ana@x.com'");
        assert_eq!(super::visibility_literal("o'brien@x.com"), r"'o\'brien@x.com'");
        assert_eq!(super::visibility_literal(r"a\' OR 'b"), r"'a\\\' OR \'b'");
    }
}

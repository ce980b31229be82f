//! A student's access status, from each workflow's `status` query (the CLI's `status`
//! and the API's student lookup).

use futures::StreamExt;
use temporalio_client::{Client, WorkflowListOptions, WorkflowQueryOptions};
use tollgate_domain::hotmart::Email;
use tollgate_workflows::{AccessWorkflow, Status};

/// Access status of every workflow of a student.
pub async fn statuses_by_email(client: &Client, email: &str) -> anyhow::Result<Vec<Status>> {
    let email = Email::parse(email)?;
    let query = format!("BuyerEmail = '{email}'");
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

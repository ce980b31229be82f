//! Operator commands: course links and a student's access status.

use futures::StreamExt;
use temporalio_client::{
    Client, WorkflowExecutionStatus, WorkflowIdConflictPolicy, WorkflowListOptions, WorkflowQueryOptions,
    WorkflowSignalOptions, WorkflowStartOptions,
};
use tollgate_activities::config::{Settings, temporal_client};
use tollgate_domain::hotmart::Email;
use tollgate_domain::{AccessPolicy, CourseLink, ProductId, WorkflowKey};
use tollgate_store::DocStore;
use tollgate_workflows::{AccessInput, AccessWorkflow, Status};

/// Saves a link, then wakes the running workflows of that product so purchases waiting
/// for it proceed at once (they also re-check on their own every `TOLLGATE_LINK_POLL`).
pub async fn add_link(docs: &DocStore, link: CourseLink) -> anyhow::Result<usize> {
    anyhow::ensure!(!link.courses.is_empty(), "a link needs at least one course");
    let product = link.product_id;
    docs.put_link(link).await?;
    wake_product(product).await
}

/// Signals the product's running workflows, if Temporal is reachable.
pub async fn wake_product(product: ProductId) -> anyhow::Result<usize> {
    match temporal_client().await {
        Ok(client) => notify_product(&client, product).await,
        Err(e) => {
            tracing::warn!(error = %e, "link saved; Temporal unreachable, waiting purchases will pick it up on their next poll");
            Ok(0)
        }
    }
}

/// Brings a link change to the product's students whose workflow has finished while
/// they keep access (settled lifetime purchases): each is resumed from its last result
/// with signal-with-start, reconciles TalentLMS against the new link, and ends again.
pub async fn resume_settled(
    docs: &DocStore,
    settings: &Settings,
    product: ProductId,
) -> anyhow::Result<usize> {
    let client = temporal_client().await?;
    let mut after = None;
    let mut resumed = 0;
    loop {
        let page = docs.access_by_product(product.0, after.clone(), 200).await?;
        let Some(last) = page.last() else { return Ok(resumed) };
        after = Some(last.workflow_id.clone());
        for a in page.iter().filter(|a| a.entitled) {
            let handle = client.get_workflow_handle::<AccessWorkflow>(a.workflow_id.clone());
            let desc = handle.describe(Default::default()).await?;
            if desc.status() != WorkflowExecutionStatus::Completed {
                continue;
            }
            let outcome = handle.get_result(Default::default()).await?;
            let key = outcome
                .carried
                .facts
                .approvals
                .keys()
                .next()
                .map(|t| WorkflowKey::Purchase { transaction: t.clone() });
            let Some(key) = key.filter(|k| k.workflow_id() == a.workflow_id) else { continue };
            let input = AccessInput { key, config: settings.rules.clone(), carried: Some(outcome.carried) };
            let opts = WorkflowStartOptions::new(settings.task_queue.clone(), a.workflow_id.clone())
                .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
                .build();
            client
                .signal_with_start_workflow(
                    AccessWorkflow::run,
                    input,
                    AccessWorkflow::on_link_changed,
                    (),
                    opts,
                )
                .await?;
            resumed += 1;
        }
    }
}

/// Signals `link_changed` to every running workflow of the product.
pub async fn notify_product(client: &Client, product: ProductId) -> anyhow::Result<usize> {
    let query = format!("ProductId = '{product}' AND ExecutionStatus = 'Running'");
    let mut stream = client.list_workflows(query, WorkflowListOptions::default());
    let mut n = 0;
    while let Some(wf) = stream.next().await {
        let wf = wf?;
        let handle = client.get_workflow_handle::<AccessWorkflow>(wf.id().to_string());
        handle.signal(AccessWorkflow::on_link_changed, (), WorkflowSignalOptions::default()).await?;
        n += 1;
    }
    Ok(n)
}

pub fn parse_policy(kind: &str, term: Option<&str>, grace: Option<&str>) -> anyhow::Result<AccessPolicy> {
    use tollgate_domain::duration::parse_secs;
    let dur = |v: Option<&str>, flag: &str| -> anyhow::Result<u64> {
        let v = v.ok_or_else(|| anyhow::anyhow!("--policy {kind} needs --{flag}"))?;
        parse_secs(v).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
    };
    Ok(match kind {
        "lifetime" => AccessPolicy::Lifetime,
        "fixed_term" | "fixed-term" => AccessPolicy::FixedTerm { term_secs: dur(term, "term")? },
        "subscription" => AccessPolicy::Subscription {
            grace_secs: grace.map(|g| dur(Some(g), "grace")).transpose()?.unwrap_or(3 * 86_400),
        },
        other => {
            anyhow::bail!("unknown policy {other:?}: use lifetime, fixed_term or subscription")
        }
    })
}

/// Access status of every workflow of a student, from each workflow's `status` query.
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

/// Every link, page by page.
pub async fn all_links(docs: &DocStore) -> anyhow::Result<Vec<CourseLink>> {
    let mut out: Vec<CourseLink> = Vec::new();
    loop {
        let page = docs.links_page(out.last().map(|l| l.product_id), 500).await?;
        if page.is_empty() {
            return Ok(out);
        }
        out.extend(page);
    }
}

//! Course links are changed here and only here: `POST/PUT/DELETE /api/links` and
//! `tollgate-starter links add|remove` call this service, so both follow one set of rules:
//! the same validation (course ids checked in TalentLMS when a key is configured), the
//! same confirmation before courses are removed, and the same fan-out to workflows.
//!
//! Link changes reach students through Temporal: the product's running workflows get a
//! `link_changed` signal and settled ones are resumed; they reconcile TalentLMS
//! themselves, this service never enrolls.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use temporalio_client::errors::WorkflowInteractionError;
use temporalio_client::{
    Client, WorkflowExecutionStatus, WorkflowIdConflictPolicy, WorkflowListOptions, WorkflowSignalOptions,
    WorkflowStartOptions,
};
use tollgate_domain::duration::parse_secs;
use tollgate_domain::{AccessPolicy, CourseLink, ProductId, WorkflowKey};
use tollgate_service::{Settings, Temporal};
use tollgate_store::{DocStore, StoreError};
use tollgate_workflows::{AccessInput, AccessWorkflow, RulesConfig};
use utoipa::ToSchema;

/// Grace after a missed renewal when a subscription link names none.
pub const DEFAULT_GRACE_SECS: u64 = 3 * 86_400;

/// Lookups of a course that TalentLMS answers with 429/5xx before giving up: enough that
/// an hour of 30% failures (the storm tests) rarely turns a link change away.
const VERIFY_ATTEMPTS: u32 = 5;

/// A course link as staff write it (API body, CLI flags).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct LinkInput {
    /// Hotmart product id (only on create; the path names it on update).
    #[serde(default)]
    pub product_id: Option<i64>,
    /// TalentLMS course ids the product unlocks.
    #[serde(default)]
    pub courses: Vec<String>,
    /// `lifetime`, `fixed_term` or `subscription`.
    #[serde(default)]
    pub policy: String,
    /// Access length for `fixed_term`, e.g. `365d`.
    #[serde(default)]
    pub term: Option<String>,
    /// Grace after a missed renewal for `subscription`, e.g. `3d` (default `3d`).
    #[serde(default)]
    pub grace: Option<String>,
}

#[derive(Debug)]
pub enum LinkError {
    /// A reason per invalid field.
    Invalid(BTreeMap<String, String>),
    NotFound(ProductId),
    Exists(ProductId),
    /// The change removes courses or shortens access: staff must confirm it.
    ConfirmationRequired(Impact),
    /// TalentLMS did not answer whether a course exists.
    TalentLmsUnavailable(String),
    Store(anyhow::Error),
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(fields) => {
                let all: Vec<String> = fields.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                write!(f, "invalid link: {}", all.join("; "))
            }
            Self::NotFound(p) => write!(f, "product {p} has no link"),
            Self::Exists(p) => write!(f, "product {p} already has a link"),
            Self::ConfirmationRequired(impact) => write!(f, "{impact}"),
            Self::TalentLmsUnavailable(e) => f.write_str(e),
            Self::Store(e) => write!(f, "{e:#}"),
        }
    }
}

impl std::error::Error for LinkError {}

impl From<anyhow::Error> for LinkError {
    fn from(e: anyhow::Error) -> Self {
        Self::Store(e)
    }
}

/// What a link change takes away, for the confirmation staff must give.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Impact {
    /// Courses the new link no longer unlocks.
    pub removed_courses: Vec<String>,
    /// `"lifetime -> fixed_term 30d"` when the new policy can end access sooner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shortened: Option<String>,
    /// Students with access through this product now (each purchase or subscription).
    pub students_affected: usize,
}

impl std::fmt::Display for Impact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut what = Vec::new();
        if !self.removed_courses.is_empty() {
            what.push(format!("removes courses {:?}", self.removed_courses));
        }
        if let Some(s) = &self.shortened {
            what.push(format!("shortens access ({s})"));
        }
        write!(
            f,
            "this change {} for {} student(s) with access now: they may be unenrolled",
            what.join(" and "),
            self.students_affected
        )
    }
}

/// What the fan-out reached. A failure is reported, not fatal: waiting runs re-check
/// the link on their own every `TOLLGATE_LINK_POLL`.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct FanOut {
    /// Running workflows of the product signalled `link_changed`.
    pub signalled: usize,
    /// Settled purchases resumed to apply the new link.
    pub resumed: usize,
    /// Workflows the change did not reach after retries (see the log for each).
    pub failed: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// Attempts per workflow before the fan-out reports it failed.
const FAN_OUT_ATTEMPTS: u32 = 3;

#[derive(Clone)]
pub struct LinkService {
    docs: DocStore,
    temporal: Temporal,
    /// Verifies course ids exist; `None` skips the check (no TalentLMS key configured).
    talentlms: Option<talentlms::Client>,
    task_queue: String,
    rules: RulesConfig,
}

impl LinkService {
    pub fn new(docs: DocStore, temporal: Temporal, settings: &Settings) -> anyhow::Result<Self> {
        let talentlms = match &settings.talentlms_api_key {
            Some(key) => Some(talentlms::Client::new(&settings.talentlms_url, key.expose().to_string())?),
            None => None,
        };
        Ok(Self {
            docs,
            temporal,
            talentlms,
            task_queue: settings.task_queue.clone(),
            rules: settings.rules.clone(),
        })
    }

    /// Creates a link; `Exists` if the product has one.
    pub async fn create(&self, input: LinkInput) -> Result<(CourseLink, FanOut), LinkError> {
        let link = self.validate(None, input).await?;
        match self.docs.create_link(link.clone()).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(LinkError::Exists(link.product_id)),
            Err(StoreError::Other(e)) => return Err(e.into()),
        }
        let fan_out = self.fan_out(link.product_id).await;
        Ok((link, fan_out))
    }

    /// Replaces an existing link. Removing courses or shortening access can unenroll
    /// students, so it needs `confirm`.
    pub async fn replace(
        &self,
        product: ProductId,
        input: LinkInput,
        confirm: bool,
    ) -> Result<(CourseLink, FanOut), LinkError> {
        let link = self.validate(Some(product.0), input).await?;
        let current = self.docs.link(product).await?.ok_or(LinkError::NotFound(product))?;
        let removed: Vec<String> =
            current.courses.iter().filter(|c| !link.courses.contains(c)).cloned().collect();
        let shortened = current
            .policy
            .shortened_by(&link.policy)
            .then(|| format!("{} -> {}", current.policy, link.policy));
        if (!removed.is_empty() || shortened.is_some()) && !confirm {
            let students_affected = self.entitled_students(product).await?;
            return Err(LinkError::ConfirmationRequired(Impact {
                removed_courses: removed,
                shortened,
                students_affected,
            }));
        }
        self.docs.put_link(link.clone()).await?;
        Ok((link, self.fan_out(product).await))
    }

    /// Creates the link, or replaces the product's current one (the CLI's `links add`).
    pub async fn create_or_replace(
        &self,
        input: LinkInput,
        confirm: bool,
    ) -> Result<(CourseLink, FanOut), LinkError> {
        match input.product_id.filter(|p| *p > 0).map(ProductId) {
            Some(product) if self.docs.link(product).await?.is_some() => {
                self.replace(product, input, confirm).await
            }
            _ => self.create(input).await,
        }
    }

    /// Deletes a link. Students already enrolled keep their access (their workflows keep
    /// the last link they saw); new purchases of the product wait for a link.
    pub async fn delete(&self, product: ProductId) -> Result<CourseLink, LinkError> {
        self.docs.delete_link(product).await?.ok_or(LinkError::NotFound(product))
    }

    /// The school's courses, for the console's picker (empty without a TalentLMS key).
    pub async fn courses(&self) -> Result<Vec<talentlms::Course>, LinkError> {
        match &self.talentlms {
            Some(client) => {
                client.courses().await.map_err(|e| LinkError::TalentLmsUnavailable(e.to_string()))
            }
            None => Ok(Vec::new()),
        }
    }

    /// Students of the product whose access is current (they would lose removed courses).
    pub async fn entitled_students(&self, product: ProductId) -> anyhow::Result<usize> {
        let mut n = 0;
        let mut after = None;
        loop {
            let page = self.docs.access_by_product(product.0, after, 500).await?;
            n += page.iter().filter(|a| a.entitled).count();
            match page.last() {
                Some(last) if page.len() == 500 => after = Some(last.workflow_id.clone()),
                _ => return Ok(n),
            }
        }
    }

    pub async fn get(&self, product: ProductId) -> Result<CourseLink, LinkError> {
        self.docs.link(product).await?.ok_or(LinkError::NotFound(product))
    }

    /// Up to `limit` links after `after`, by product id.
    pub async fn page(&self, after: Option<ProductId>, limit: usize) -> Result<Vec<CourseLink>, LinkError> {
        Ok(self.docs.links_page(after, limit).await?)
    }

    /// Every link, page by page.
    pub async fn all(&self) -> Result<Vec<CourseLink>, LinkError> {
        let mut out: Vec<CourseLink> = Vec::new();
        loop {
            let page = self.page(out.last().map(|l| l.product_id), 500).await?;
            if page.is_empty() {
                return Ok(out);
            }
            out.extend(page);
        }
    }

    async fn validate(&self, product: Option<i64>, input: LinkInput) -> Result<CourseLink, LinkError> {
        let link = parse(product, input).map_err(LinkError::Invalid)?;
        self.verify_courses(&link.courses).await?;
        Ok(link)
    }

    async fn verify_courses(&self, courses: &[String]) -> Result<(), LinkError> {
        let Some(client) = &self.talentlms else { return Ok(()) };
        let mut fields = BTreeMap::new();
        for c in courses {
            match course_exists(client, c).await {
                Ok(true) => {}
                Ok(false) => {
                    fields.insert("courses".into(), format!("course {c} does not exist in TalentLMS"));
                }
                Err(e) => {
                    return Err(LinkError::TalentLmsUnavailable(format!("cannot verify course {c}: {e}")));
                }
            }
        }
        if fields.is_empty() { Ok(()) } else { Err(LinkError::Invalid(fields)) }
    }

    /// Signals the product's running workflows and resumes its settled ones. One
    /// workflow that cannot be reached (it ended between the listing and the signal,
    /// Temporal blinked) is retried, then counted and logged; the others still get the
    /// change.
    async fn fan_out(&self, product: ProductId) -> FanOut {
        let client = match self.temporal.client().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "link saved; Temporal unreachable, waiting purchases will pick it up on their next poll");
                return FanOut {
                    warning: Some(format!("could not reach every workflow: {e}")),
                    ..FanOut::default()
                };
            }
        };
        let mut out = FanOut::default();
        let mut reached = std::collections::HashSet::new();
        let listed = notify_product(client, product, &mut out, &mut reached).await;
        let paged = self.resume_settled(client, product, &mut out, &reached).await;
        if let Some(e) = listed.err().or(paged.err()) {
            tracing::warn!(error = %e, %product, "link change did not reach every workflow");
            out.warning = Some(format!("could not list every workflow: {e}"));
        } else if out.failed > 0 {
            out.warning = Some(format!("{} workflow(s) did not get the change; see the log", out.failed));
        }
        out
    }

    /// Brings a link change to the product's students whose workflow has finished while
    /// they keep access (settled lifetime purchases): each is resumed with
    /// signal-with-start from its last result, or, when the namespace's retention purged
    /// that history, from the entitlement ledger; it reconciles TalentLMS against the new
    /// link and ends again.
    async fn resume_settled(
        &self,
        client: &Client,
        product: ProductId,
        out: &mut FanOut,
        reached: &std::collections::HashSet<String>,
    ) -> anyhow::Result<()> {
        let mut after = None;
        loop {
            let page = self.docs.access_by_product(product.0, after.clone(), 200).await?;
            let Some(last) = page.last() else { return Ok(()) };
            after = Some(last.workflow_id.clone());
            for a in page.iter().filter(|a| a.entitled && !reached.contains(&a.workflow_id)) {
                match retrying(|| self.resume(client, &a.workflow_id)).await {
                    Ok(Reached::Resumed) => out.resumed += 1,
                    // Running, but not yet in the visibility listing (it lags).
                    Ok(Reached::Signalled) => out.signalled += 1,
                    Ok(Reached::Skipped) => {}
                    Err(e) => {
                        tracing::warn!(workflow_id = %a.workflow_id, error = %e, "could not resume a settled purchase for a link change");
                        out.failed += 1;
                    }
                }
            }
        }
    }

    /// Resumes one settled run, or signals it when it is running (signal-with-start
    /// signals a running workflow).
    async fn resume(&self, client: &Client, workflow_id: &str) -> anyhow::Result<Reached> {
        let handle = client.get_workflow_handle::<AccessWorkflow>(workflow_id.to_string());
        let (carried, reached) = match handle.describe(Default::default()).await {
            Ok(desc) if desc.status() == WorkflowExecutionStatus::Running => (None, Reached::Signalled),
            Ok(desc) if desc.status() != WorkflowExecutionStatus::Completed => return Ok(Reached::Skipped),
            Ok(_) => (Some(handle.get_result(Default::default()).await?.carried), Reached::Resumed),
            // Purged by retention: the run starts from the ledger.
            Err(WorkflowInteractionError::NotFound(_)) => (None, Reached::Resumed),
            Err(e) => return Err(e.into()),
        };
        let Some(key) = WorkflowKey::from_workflow_id(workflow_id) else { return Ok(Reached::Skipped) };
        let input = AccessInput::new(key, self.rules.clone(), carried);
        let opts = WorkflowStartOptions::new(self.task_queue.clone(), workflow_id.to_string())
            .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
            .build();
        client
            .signal_with_start_workflow(AccessWorkflow::run, input, AccessWorkflow::on_link_changed, (), opts)
            .await?;
        Ok(reached)
    }
}

/// What the fan-out did to one workflow found through the student records.
enum Reached {
    Resumed,
    Signalled,
    Skipped,
}

/// Signals `link_changed` to every running workflow of the product.
async fn notify_product(
    client: &Client,
    product: ProductId,
    out: &mut FanOut,
    reached: &mut std::collections::HashSet<String>,
) -> anyhow::Result<()> {
    let query = format!("ProductId = '{product}' AND ExecutionStatus = 'Running'");
    let mut stream = client.list_workflows(query, WorkflowListOptions::default());
    while let Some(wf) = stream.next().await {
        let id = wf?.id().to_string();
        let handle = client.get_workflow_handle::<AccessWorkflow>(id.clone());
        let signal = || async {
            match handle.signal(AccessWorkflow::on_link_changed, (), WorkflowSignalOptions::default()).await {
                // Ended since the listing: a settled one is resumed below, others need nothing.
                Err(WorkflowInteractionError::NotFound(_)) => Ok(false),
                r => r.map(|_| true).map_err(anyhow::Error::from),
            }
        };
        match retrying(signal).await {
            Ok(true) => {
                out.signalled += 1;
                reached.insert(id);
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(workflow_id = %id, error = %e, "could not signal a link change");
                out.failed += 1;
            }
        }
    }
    Ok(())
}

/// Runs `f` up to [`FAN_OUT_ATTEMPTS`] times, pausing between attempts.
async fn retrying<T, F, Fut>(mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut attempt = 1;
    loop {
        match f().await {
            Err(e) if attempt < FAN_OUT_ATTEMPTS => {
                tracing::debug!(error = %e, attempt, "fan-out call failed; retrying");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                attempt += 1;
            }
            r => return r,
        }
    }
}

/// Asks TalentLMS, retrying its 429/5xx answers a few times after the advertised reset.
async fn course_exists(client: &talentlms::Client, id: &str) -> Result<bool, talentlms::Error> {
    let id = talentlms::CourseId(id.to_string());
    let mut attempt = 1;
    loop {
        match client.course(&id).await {
            Err(e) if e.is_retryable() && attempt < VERIFY_ATTEMPTS => {
                let pause = e.retry_after().unwrap_or(Duration::from_millis(200));
                tokio::time::sleep(pause.min(Duration::from_secs(2))).await;
                attempt += 1;
            }
            r => return r.map(|c| c.is_some()),
        }
    }
}

/// Parses and checks a link; every problem is reported per field. `product` (from the
/// API path) takes precedence over the input's `product_id`.
pub fn parse(product: Option<i64>, input: LinkInput) -> Result<CourseLink, BTreeMap<String, String>> {
    let mut fields = BTreeMap::new();
    let product = match product.or(input.product_id) {
        Some(p) if p > 0 => Some(ProductId(p)),
        Some(_) => {
            fields.insert("product_id".into(), "must be a positive Hotmart product id".into());
            None
        }
        None => {
            fields.insert("product_id".into(), "is required".into());
            None
        }
    };
    let mut courses: Vec<String> = input.courses.iter().map(|c| c.trim().to_string()).collect();
    courses.sort();
    courses.dedup();
    if courses.is_empty() {
        fields.insert("courses".into(), "at least one TalentLMS course id is required".into());
    } else if let Some(bad) =
        courses.iter().find(|c| c.is_empty() || !c.chars().all(|ch| ch.is_ascii_digit()))
    {
        fields.insert("courses".into(), format!("{bad:?} is not a TalentLMS course id"));
    }
    let mut duration = |v: &Option<String>, name: &str| match v.as_deref().map(parse_secs) {
        Some(Ok(0)) => {
            fields.insert(name.into(), "must be longer than zero".into());
            None
        }
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            fields.insert(name.into(), e);
            None
        }
        None => None,
    };
    let policy = match input.policy.as_str() {
        "lifetime" => Some(AccessPolicy::Lifetime),
        "fixed_term" | "fixed-term" => match duration(&input.term, "term") {
            Some(term_secs) => Some(AccessPolicy::FixedTerm { term_secs }),
            None => {
                fields
                    .entry("term".into())
                    .or_insert_with(|| "is required for fixed_term (e.g. 365d)".into());
                None
            }
        },
        "subscription" => match &input.grace {
            Some(_) => duration(&input.grace, "grace"),
            None => Some(DEFAULT_GRACE_SECS),
        }
        .map(|grace_secs| AccessPolicy::Subscription { grace_secs }),
        "" => {
            fields.insert("policy".into(), "is required: lifetime, fixed_term or subscription".into());
            None
        }
        other => {
            fields.insert("policy".into(), format!("{other:?} is not lifetime, fixed_term or subscription"));
            None
        }
    };
    match (product, policy) {
        (Some(product_id), Some(policy)) if fields.is_empty() => {
            Ok(CourseLink { product_id, courses, policy })
        }
        _ => Err(fields),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(product: i64, courses: &[&str], policy: &str) -> LinkInput {
        LinkInput {
            product_id: Some(product),
            courses: courses.iter().map(|c| c.to_string()).collect(),
            policy: policy.into(),
            ..Default::default()
        }
    }

    fn reasons(product: Option<i64>, i: LinkInput) -> BTreeMap<String, String> {
        parse(product, i).expect_err("should be invalid")
    }

    #[test]
    fn a_valid_link_is_normalised() {
        let link = parse(None, input(7, &[" 102", "101", "102"], "lifetime")).unwrap();
        assert_eq!(link.product_id, ProductId(7));
        assert_eq!(link.courses, ["101", "102"]);
        assert_eq!(link.policy, AccessPolicy::Lifetime);
    }

    #[test]
    fn policies_and_their_durations() {
        let sub = parse(None, input(7, &["101"], "subscription")).unwrap();
        assert_eq!(sub.policy, AccessPolicy::Subscription { grace_secs: DEFAULT_GRACE_SECS });
        let sub = parse(None, LinkInput { grace: Some("2h".into()), ..input(7, &["101"], "subscription") });
        assert_eq!(sub.unwrap().policy, AccessPolicy::Subscription { grace_secs: 7_200 });
        for kind in ["fixed_term", "fixed-term"] {
            let fixed = parse(None, LinkInput { term: Some("365d".into()), ..input(7, &["101"], kind) });
            assert_eq!(fixed.unwrap().policy, AccessPolicy::FixedTerm { term_secs: 365 * 86_400 });
        }
    }

    #[test]
    fn the_path_names_the_product() {
        assert_eq!(parse(Some(9), input(7, &["101"], "lifetime")).unwrap().product_id, ProductId(9));
        let no_id = LinkInput { product_id: None, ..input(0, &["101"], "lifetime") };
        assert_eq!(parse(Some(9), no_id).unwrap().product_id, ProductId(9));
    }

    #[test]
    fn every_problem_is_named_by_field() {
        let r = reasons(None, input(-1, &[], "forever"));
        assert_eq!(r.keys().collect::<Vec<_>>(), ["courses", "policy", "product_id"]);
        let r = reasons(None, LinkInput { product_id: None, ..input(0, &["abc"], "") });
        assert!(r["product_id"].contains("required") && r["courses"].contains("abc"), "{r:?}");
        assert!(r["policy"].contains("required"), "{r:?}");
        let r = reasons(None, input(7, &["101"], "fixed_term"));
        assert!(r["term"].contains("required"), "{r:?}");
        let r = reasons(None, LinkInput { term: Some("0d".into()), ..input(7, &["101"], "fixed_term") });
        assert!(r["term"].contains("longer than zero"), "{r:?}");
        let r = reasons(None, LinkInput { grace: Some("soon".into()), ..input(7, &["101"], "subscription") });
        assert_eq!(r.keys().collect::<Vec<_>>(), ["grace"]);
    }
}

#[cfg(test)]
mod service_tests {
    use super::*;
    use tollgate_service::settings::TemporalSettings;

    /// A service over a fresh SQLite file, no TalentLMS key, and a Temporal that refuses
    /// connections (the fan-out only warns).
    async fn service(dir: &tempfile::TempDir) -> LinkService {
        let db = dir.path().join("links.db").display().to_string();
        let mut temporal = TemporalSettings::load().unwrap();
        temporal.connection.target = "http://127.0.0.1:1".parse().unwrap();
        let settings =
            Settings::from_vars(|n| (n == "TOLLGATE_DB").then(|| db.clone()), temporal.clone()).unwrap();
        let docs = DocStore::open(&settings.store).await.unwrap();
        LinkService::new(docs, Temporal::new(temporal), &settings).unwrap()
    }

    fn input(product: i64, courses: &[&str]) -> LinkInput {
        LinkInput {
            product_id: Some(product),
            courses: courses.iter().map(|c| c.to_string()).collect(),
            policy: "lifetime".into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn removing_courses_needs_confirmation() {
        let dir = tempfile::tempdir().unwrap();
        let links = service(&dir).await;
        let (_, fan_out) = links.create(input(5, &["101", "102"])).await.unwrap();
        assert!(fan_out.warning.is_some(), "Temporal is down: reported, not fatal");
        assert!(matches!(links.create(input(5, &["101"])).await, Err(LinkError::Exists(_))));

        let refused = links.create_or_replace(input(5, &["102"]), false).await;
        assert!(
            matches!(&refused, Err(LinkError::ConfirmationRequired(i)) if i.removed_courses == ["101"] && i.shortened.is_none()),
            "{refused:?}"
        );
        assert_eq!(links.get(ProductId(5)).await.unwrap().courses, ["101", "102"], "unchanged");
        links.create_or_replace(input(5, &["102"]), true).await.unwrap();
        links
            .create_or_replace(input(5, &["102", "103"]), false)
            .await
            .expect("adding needs no confirmation");
        assert_eq!(links.get(ProductId(5)).await.unwrap().courses, ["102", "103"]);

        // Shortening access needs confirmation too (lifetime to a 30-day term ends access
        // for everyone who bought more than 30 days ago).
        let term =
            LinkInput { policy: "fixed_term".into(), term: Some("30d".into()), ..input(5, &["102", "103"]) };
        let refused = links.create_or_replace(term, false).await;
        assert!(
            matches!(&refused, Err(LinkError::ConfirmationRequired(i))
                if i.removed_courses.is_empty() && i.shortened.as_deref() == Some("lifetime -> fixed_term 30d")),
            "{refused:?}"
        );
        assert_eq!(links.get(ProductId(5)).await.unwrap().policy, AccessPolicy::Lifetime, "unchanged");
        let term =
            LinkInput { policy: "fixed_term".into(), term: Some("30d".into()), ..input(5, &["102", "103"]) };
        links.create_or_replace(term, true).await.unwrap();
        let longer =
            LinkInput { policy: "fixed_term".into(), term: Some("60d".into()), ..input(5, &["102", "103"]) };
        links.create_or_replace(longer, false).await.expect("lengthening needs no confirmation");

        links.create_or_replace(input(6, &["104"]), false).await.expect("a new product is created");
        assert_eq!(links.all().await.unwrap().len(), 2);
        assert!(matches!(
            links.replace(ProductId(7), input(7, &["101"]), true).await,
            Err(LinkError::NotFound(_))
        ));
        assert!(matches!(links.create(input(7, &["x"])).await, Err(LinkError::Invalid(_))));
        links.delete(ProductId(6)).await.unwrap();
        assert!(matches!(links.delete(ProductId(6)).await, Err(LinkError::NotFound(_))));
    }
}

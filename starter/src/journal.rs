//! The journal service: where a received body goes (its workflow, nowhere, or the
//! quarantine) and how quarantined entries are redriven. The webhook, the staff API and
//! the CLI all go through it, so a redrive routes exactly as a first delivery would.

use serde::Serialize;
use tollgate_domain::HotmartEvent;
use tollgate_domain::ingress::{self, PARSER_VERSION, Received};
use tollgate_store::{Appended, DocStore};
use utoipa::ToSchema;

/// What became of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journaled {
    pub key: String,
    pub appended: Appended,
    /// The workflow it is forwarded to (`None`: it concerns none, or it is quarantined).
    pub workflow_id: Option<String>,
    /// Why it is quarantined, if it is.
    pub quarantined: Option<String>,
}

/// The route of an understood event: `Ok(None)` concerns no workflow; `Err` is why it
/// cannot be routed yet (it is quarantined until a redrive finds its workflow).
pub async fn route(docs: &DocStore, event: &HotmartEvent) -> anyhow::Result<Result<Option<String>, String>> {
    if !event.affects_access() {
        return Ok(Ok(None));
    }
    if let Some(key) = event.workflow_key() {
        return Ok(Ok(Some(key.workflow_id())));
    }
    // A subscription event without its product (Hotmart's charge-date update can omit
    // it) reaches the workflow an earlier event of that subscriber opened.
    match (&event.subscriber_code, event.product_id) {
        (Some(code), None) => Ok(match docs.subscriber_workflow(code.clone()).await? {
            Some(wf) => Ok(Some(wf)),
            None => Err(format!(
                "event names subscriber {code} but no product, and no earlier event of that subscriber is \
                 known; redrive it once one is"
            )),
        }),
        _ => Ok(Ok(None)),
    }
}

/// Stores a received body: with its event and route when understood, else quarantined
/// with the reason and this parser's version. Returns only once it is durable.
pub async fn store(docs: &DocStore, r: Received) -> anyhow::Result<Journaled> {
    let routed = match r.event {
        Ok(event) => route(docs, &event).await?.map(|wf| (event, wf)),
        Err(e) => Err(e.to_string()),
    };
    match routed {
        Ok((event, workflow_id)) => {
            let appended = docs.append(event, workflow_id.clone(), r.stored).await?;
            Ok(Journaled { key: r.key, appended, workflow_id, quarantined: None })
        }
        Err(reason) => {
            let appended = docs
                .append_quarantined(r.key.clone(), r.event_name, r.stored, reason.clone(), PARSER_VERSION)
                .await?;
            Ok(Journaled { key: r.key, appended, workflow_id: None, quarantined: Some(reason) })
        }
    }
}

/// The outcome of a redrive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Redrive {
    /// Entries the current parser reads: they left the quarantine and are forwarded.
    pub released: Vec<String>,
    /// Entries still quarantined, with the current reason.
    pub still_quarantined: Vec<StillQuarantined>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StillQuarantined {
    pub key: String,
    pub reason: String,
}

/// Re-reads quarantined entries with the current parser: one (`Some(key)`) or all.
/// `Ok(None)`: that key is not quarantined.
pub async fn redrive(docs: &DocStore, only: Option<String>) -> anyhow::Result<Option<Redrive>> {
    let mut report = Redrive::default();
    let mut after: Option<String> = None;
    loop {
        let page = docs.quarantined(after.clone(), 200).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        // Pages go by key, so one id is found without reading the pages after it.
        let past = only.as_ref().is_some_and(|k| *k <= last.key);
        for q in page.into_iter().filter(|q| only.as_ref().is_none_or(|k| *k == q.key)) {
            // The stored copy is the body minus its token: reading it again gives the same event.
            let read = ingress::receive(q.body.as_bytes())
                .map_err(|e| e.to_string())
                .and_then(|r| r.event.map_err(|e| e.to_string()));
            let routed = match read {
                Ok(event) => route(docs, &event).await?.map(|wf| (event, wf)),
                Err(reason) => Err(reason),
            };
            match routed {
                Ok((event, workflow_id)) => {
                    if docs.release_quarantined(q.key.clone(), event, workflow_id).await? {
                        report.released.push(q.key);
                    }
                }
                Err(reason) => {
                    docs.requarantine(q.key.clone(), reason.clone(), PARSER_VERSION).await?;
                    report.still_quarantined.push(StillQuarantined { key: q.key, reason });
                }
            }
        }
        if past {
            break;
        }
    }
    let found = only.is_none() || !report.released.is_empty() || !report.still_quarantined.is_empty();
    Ok(found.then_some(report))
}

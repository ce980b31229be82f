//! The end-to-end suites that share one Temporal dev server, in one test binary (one link
//! of the whole stack instead of six). Chaos, outage and browser stay separate binaries:
//! they start their own dev server or need Chromium.

mod access;
mod api;
mod audit;
mod hotmart;
mod hotmart_reconcile;
mod ingress;
mod ledger;
mod operators;
mod replay;
mod revenue;
mod samples;
mod storms;

use std::time::Duration;

use tollgate_domain::fixtures::Sale;
use tollgate_tests::{Stack, now_ms, purchase_wf, unique, unique_product};

const WAIT: Duration = Duration::from_secs(25);

fn email(prefix: &str) -> String {
    format!("{}@example.com", unique(prefix))
}

/// A lifetime purchase of courses 101 and 102, enrolled, past its refund window: its
/// run has ended.
pub(crate) struct Settled {
    pub p: i64,
    pub sale: Sale,
    pub email: String,
    pub wf: String,
    pub t: i64,
}

pub(crate) async fn settled(stack: &Stack, name: &str) -> Settled {
    let p = unique_product();
    stack.link(p, &["101", "102"], &["--policy", "lifetime"]).await;
    let (txn, email) = (unique("HP"), email(name));
    let sale = Sale::one_off(p, &txn, &email);
    let t = now_ms();
    stack.post(&sale.event("PURCHASE_APPROVED", &unique("e"), t)).await;
    stack.post(&sale.event("PURCHASE_COMPLETE", &unique("e"), t + 1)).await;
    stack.wait_enrolled(&email, &["101", "102"], WAIT).await;
    let wf = purchase_wf(&txn);
    stack.run_result(&wf, WAIT).await;
    Settled { p, sale, email, wf, t }
}

//! The end-to-end suites that share one Temporal dev server, in one test binary (one link
//! of the whole stack instead of six). Chaos, outage and browser stay separate binaries:
//! they start their own dev server or need Chromium.

mod access;
mod api;
mod hotmart;
mod ingress;
mod ledger;
mod operators;
mod replay;
mod revenue;
mod samples;
mod storms;

use std::time::Duration;

use tollgate_tests::unique;

const WAIT: Duration = Duration::from_secs(25);

fn email(prefix: &str) -> String {
    format!("{}@example.com", unique(prefix))
}

//! The client against the Hotmart simulator: paging, the documented defaults, token
//! expiry, 429s and 5xx, and the call budget.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hotmart_api::{Budget, Client, Credentials, Endpoints, SalesQuery, SubscriptionQuery};
use tollgate_simulator::hotmart::{
    self, HotmartConfig, HotmartFaults, HotmartHandle, School, SchoolProducts,
};

const DAY: i64 = 86_400_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

async fn sim(customers: usize, config: HotmartConfig) -> HotmartHandle {
    let products = SchoolProducts { lifetime: 11, fixed_term: 12, subscription: 13 };
    let school = School::generate(customers, 3, now_ms(), products);
    hotmart::spawn(HotmartConfig { school, ..config }).await.unwrap()
}

fn client(sim: &HotmartHandle, per_minute: f64) -> Client {
    let creds = Credentials::new(sim.client_id(), sim.client_secret(), None).unwrap();
    Client::new(Endpoints::local(&sim.base_url()), creds, Arc::new(Budget::per_minute(per_minute))).unwrap()
}

async fn all_subscriptions(c: &Client, q: &SubscriptionQuery) -> Vec<hotmart_api::Subscription> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = c.subscriptions(q, token.as_deref()).await.unwrap();
        out.extend(page.items.iter().cloned());
        match page.next() {
            Some(t) => token = Some(t.to_string()),
            None => return out,
        }
    }
}

#[tokio::test]
async fn pages_through_everything_with_the_documented_defaults() {
    let sim = sim(300, HotmartConfig::default()).await;
    let c = client(&sim, 60_000.0);
    let school = sim.school();
    // Subscriptions: the default is the last 30 days of accession only.
    let recent = all_subscriptions(&c, &SubscriptionQuery::default()).await;
    let all = all_subscriptions(
        &c,
        &SubscriptionQuery {
            accession_date: Some(0),
            end_accession_date: Some(now_ms()),
            max_results: Some(17),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(all.len(), school.subscriptions.len());
    assert!(recent.len() < all.len());
    assert!(recent.iter().all(|s| s.accession_date >= now_ms() - 31 * DAY));
    // Sales: without a status filter only APPROVED and COMPLETE.
    let mut token: Option<String> = None;
    let mut approved = Vec::new();
    loop {
        let page = c
            .sales_history(&SalesQuery { max_results: Some(20), ..Default::default() }, token.as_deref())
            .await
            .unwrap();
        approved.extend(page.items.iter().map(|s| s.purchase.status.clone()));
        match page.next() {
            Some(t) => token = Some(t.into()),
            None => break,
        }
    }
    let want = school
        .sales
        .iter()
        .filter(|s| matches!(s["purchase"]["status"].as_str(), Some("APPROVED" | "COMPLETE")))
        .count();
    assert_eq!(approved.len(), want);
    assert!(approved.iter().all(|s| s == "APPROVED" || s == "COMPLETE"));
    let refunded = c
        .sales_history(
            &SalesQuery {
                transaction_status: Some("REFUNDED".into()),
                max_results: Some(500),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    assert!(!refunded.items.is_empty() && refunded.items.iter().all(|s| s.purchase.status == "REFUNDED"));
    let charges = c.subscription_purchases(&all[0].subscriber_code).await.unwrap();
    assert!(!charges.is_empty());
    assert_eq!(c.products(None).await.unwrap().items.len(), 3);
    // One token for all of it.
    assert_eq!(sim.state().token_fetches, 1);
}

#[tokio::test]
async fn token_expiry_429s_and_5xx_lose_nothing() {
    let sim = sim(200, HotmartConfig::default()).await;
    let c = client(&sim, 60_000.0);
    let q = SubscriptionQuery { accession_date: Some(0), max_results: Some(10), ..Default::default() };
    let clean = all_subscriptions(&c, &q).await;
    sim.expire_tokens();
    sim.set_faults(HotmartFaults { error_rate: 0.15, rate_limited_rate: 0.15, expired_token_rate: 0.05 });
    let faulty = all_subscriptions(&c, &q).await;
    assert_eq!(faulty, clean);
    let s = sim.state();
    assert!(s.injected_faults > 0, "{s:?}");
    assert!(s.token_fetches >= 2, "the expired token was replaced: {s:?}");
}

#[tokio::test]
async fn waits_for_the_reset_when_over_the_limit_and_spaces_calls_under_its_budget() {
    // The server allows 5 calls per 2 s; an unpaced client runs into it and waits.
    let sim =
        sim(50, HotmartConfig { rate_limit: 5, rate_window: Duration::from_secs(2), ..Default::default() })
            .await;
    let c = client(&sim, 60_000.0);
    for _ in 0..8 {
        c.products(None).await.unwrap();
    }
    assert!(sim.state().rate_limited_calls > 0);
    // A budget of 300/min spaces calls 200 ms apart.
    let sim = sim_plain().await;
    let c = client(&sim, 300.0);
    let started = Instant::now();
    for _ in 0..4 {
        c.products(None).await.unwrap();
    }
    assert!(started.elapsed() >= Duration::from_millis(600), "{:?}", started.elapsed());
    assert_eq!(sim.state().rate_limited_calls, 0);
}

async fn sim_plain() -> HotmartHandle {
    sim(10, HotmartConfig::default()).await
}

#[tokio::test]
async fn wrong_credentials_are_an_error_without_the_secret() {
    let sim = sim_plain().await;
    let creds = Credentials::new(sim.client_id(), "not-the-secret-xyz", None).unwrap();
    let c =
        Client::new(Endpoints::local(&sim.base_url()), creds, Arc::new(Budget::per_minute(1000.0))).unwrap();
    let e = c.products(None).await.unwrap_err();
    assert!(e.to_string().contains("401"), "{e}");
    assert!(!e.to_string().contains("not-the-secret-xyz"));
    assert!(!format!("{c:?}").contains("not-the-secret-xyz"));
}

#[tokio::test]
async fn subscriptions_due_since_a_date_whatever_their_accession() {
    let sim = sim(300, HotmartConfig::default()).await;
    let c = client(&sim, 60_000.0);
    let since = now_ms() - 10 * DAY;
    let q = SubscriptionQuery {
        accession_date: Some(0),
        end_accession_date: Some(now_ms()),
        date_next_charge: Some(since),
        max_results: Some(23),
        ..Default::default()
    };
    let due: Vec<String> = all_subscriptions(&c, &q).await.into_iter().map(|s| s.subscriber_code).collect();
    let want: Vec<String> = sim
        .school()
        .subscriptions
        .iter()
        .filter(|r| r.subscription["date_next_charge"].as_i64().unwrap() >= since)
        .map(|r| r.subscription["subscriber_code"].as_str().unwrap().to_string())
        .collect();
    assert!(!want.is_empty() && want.len() < sim.school().subscriptions.len());
    assert_eq!(due, want);
}

//! Posting webhooks: open-loop at a rate or all at once, and what came back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Semaphore;
use tollgate_tests::HOTTOK;

use crate::stats::{Dist, dist};
use crate::stream::Delivery;

/// What one POST got back: status (0 = no answer within the timeout or a connection
/// error), latency, and whether the starter called it a new event.
#[derive(Clone, Copy)]
pub struct Ack {
    pub status: u16,
    pub ms: f64,
    pub accepted: bool,
    pub done_at: Instant,
}

#[derive(Clone)]
pub struct Poster {
    pub http: reqwest::Client,
    pub url: String,
}

impl Poster {
    pub fn new(addr: &str, timeout_ms: u64) -> Poster {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(timeout_ms))
            .pool_max_idle_per_host(1024)
            .build()
            .unwrap();
        Poster { http, url: format!("http://{addr}/webhooks/hotmart") }
    }

    pub async fn post(&self, body: Arc<str>) -> Ack {
        let t = Instant::now();
        let r = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("X-HOTMART-HOTTOK", HOTTOK)
            .body(body.to_string())
            .send()
            .await;
        let (status, accepted) = match r {
            Ok(r) => {
                let status = r.status().as_u16();
                let v: Value = r.json().await.unwrap_or(Value::Null);
                (status, v["status"] == "accepted")
            }
            Err(_) => (0, false),
        };
        Ack { status, ms: t.elapsed().as_secs_f64() * 1000.0, accepted, done_at: Instant::now() }
    }
}

/// Sends the deliveries at `rate` per second (open loop: a slow answer never delays the
/// next request), or all at once with at most `conc` in flight when `rate` is None.
pub async fn send(
    poster: &Poster,
    deliveries: &[Delivery],
    rate: Option<f64>,
    conc: usize,
) -> (Vec<Ack>, f64) {
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(deliveries.len());
    let sem = Arc::new(Semaphore::new(conc));
    let mut tick = rate.map(|r| {
        let mut t = tokio::time::interval(Duration::from_secs_f64(1.0 / r));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    });
    for d in deliveries {
        let permit = match &mut tick {
            Some(t) => {
                t.tick().await;
                None
            }
            None => Some(sem.clone().acquire_owned().await.unwrap()),
        };
        let (poster, body) = (poster.clone(), d.body.clone());
        tasks.push(tokio::spawn(async move {
            let a = poster.post(body).await;
            drop(permit);
            a
        }));
    }
    let sent_for = start.elapsed().as_secs_f64();
    let mut acks = Vec::with_capacity(tasks.len());
    for t in tasks {
        acks.push(t.await.unwrap());
    }
    (acks, sent_for)
}

pub struct AckStats {
    pub lat: Dist,
    pub non2xx: usize,
    pub no_answer: usize,
    pub accepted: usize,
    pub last_ack: Instant,
}

pub fn ack_stats(acks: &[Ack]) -> AckStats {
    AckStats {
        lat: dist(acks.iter().filter(|a| a.status != 0).map(|a| a.ms).collect()),
        non2xx: acks.iter().filter(|a| a.status != 0 && !(200..300).contains(&a.status)).count(),
        no_answer: acks.iter().filter(|a| a.status == 0).count(),
        accepted: acks.iter().filter(|a| a.accepted).count(),
        last_ack: acks.iter().map(|a| a.done_at).max().unwrap_or_else(Instant::now),
    }
}

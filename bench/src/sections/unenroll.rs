//! Fixed-term purchases with a 5 s term: unenroll lateness after the deadline.

use std::collections::HashMap;
use std::time::Duration;

use tollgate_domain::fixtures::Sale;
use tollgate_tests::{now_ms, unique};

use super::{Run, watch};
use crate::args::Args;
use crate::process::Cpu;
use crate::stats::{Report, dist, ms, print_dist};
use crate::stream::{LIFETIME, TERM};

pub async fn unenroll_section(a: &Args, run: &Run, rep: &mut Report) {
    // New students cost two calls each (create, enroll): this wave alone fills the cap.
    let wave_rate = a.max_rps / 2.0;
    println!(
        "-- unenroll: {} fixed-term purchases with a 5 s term, while new purchases arrive at {wave_rate}/s (the cap)",
        a.expiries
    );
    let cpu = Cpu::start(&run.pids());
    let t0 = now_ms();
    let wave_until = t0 + a.expiries as i64 * 50 + 10_000;
    let wave = tokio::spawn({
        let poster = run.poster.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / wave_rate));
            let mut sent = 0;
            while now_ms() < wave_until {
                tick.tick().await;
                let e = format!("wave{sent}-{}@example.com", unique(""));
                let body = Sale::one_off(LIFETIME, &unique("HP"), &e).event(
                    "PURCHASE_APPROVED",
                    &unique("e"),
                    now_ms(),
                );
                let poster = poster.clone();
                tokio::spawn(async move { poster.post(body.to_string().into()).await });
                sent += 1;
            }
            sent
        }
    });
    let mut deadlines = HashMap::new();
    for i in 0..a.expiries {
        let e = format!("exp{i}-{}@example.com", unique(""));
        let approved = t0 + (i as i64 * 50);
        let sale = Sale { approved_date: Some(approved), ..Sale::one_off(TERM, &unique("HP"), &e) };
        run.poster.post(sale.event("PURCHASE_APPROVED", &unique("e"), approved).to_string().into()).await;
        deadlines.insert(e, approved + 5_000);
    }
    let want: HashMap<String, bool> = deadlines.keys().map(|e| (e.clone(), true)).collect();
    watch(&run.stack, &want, Duration::from_secs(30)).await;
    let want: HashMap<String, bool> = deadlines.keys().map(|e| (e.clone(), false)).collect();
    let gone = watch(&run.stack, &want, Duration::from_secs(60)).await;
    let d = dist(gone.iter().map(|(e, t)| (t - deadlines[e]) as f64).collect());
    print_dist("unenroll lateness after deadline", d);
    println!(
        "  never unenrolled {}; enrolment wave: {} purchases",
        a.expiries - gone.len(),
        wave.await.unwrap_or(0)
    );
    println!("  {}", cpu.line());
    rep.add("unenroll lateness p50", ms(d.p50), None);
    rep.add("unenroll lateness p99", ms(d.p99), Some(d.p99 <= 2000.0 && gone.len() == a.expiries));
}

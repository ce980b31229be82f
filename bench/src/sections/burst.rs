//! A realistic stream sent all at once: all acknowledged? how long until all is in Temporal?

use std::time::{Duration, Instant};

use tollgate_tests::rng::Rng;
use tollgate_tests::unique;

use super::Run;
use crate::args::Args;
use crate::process::Cpu;
use crate::send::{ack_stats, send};
use crate::stats::{Report, ms, print_dist};
use crate::stream::stream;

pub async fn burst_section(a: &Args, run: &Run, rep: &mut Report, rng: &mut Rng) {
    let (deliveries, mix) = stream(a.burst, a.dup, a.reorder, rng, &unique("b"));
    println!("-- burst: {} deliveries at once ({} in flight at most)", deliveries.len(), a.burst_conc);
    println!("  stream: {}", mix.line(deliveries.len()));
    let cpu = Cpu::start(&run.pids());
    let start = Instant::now();
    let (acks, sent_for) = send(&run.poster, &deliveries, None, a.burst_conc).await;
    let s = ack_stats(&acks);
    let acked_in = s.last_ack.duration_since(start).as_secs_f64();
    print_dist("burst ack latency", s.lat);
    println!(
        "  all answered {acked_in:.1} s after the first request (requests sent over {sent_for:.1} s); \
         non-2xx {}, no answer {}",
        s.non2xx, s.no_answer
    );
    let (drained, pending) = run.drained(Duration::from_secs(a.drain_timeout)).await;
    let done = drained.map(|d| d.max(s.last_ack).duration_since(start).as_secs_f64());
    let signals = if run.direct { acks.iter().filter(|a| a.status == 200).count() } else { s.accepted };
    match done {
        Some(t) => println!(
            "  all in Temporal {t:.1} s after the first request: {signals} signal-with-starts, {:.0}/s",
            signals as f64 / t
        ),
        None => println!("  {pending} still in the journal after {} s", a.drain_timeout),
    }
    println!("  {}", cpu.line());
    let lost = s.non2xx + s.no_answer;
    rep.add("burst: ack p99", ms(s.lat.p99), None);
    rep.add("burst: not acknowledged", lost.to_string(), Some(lost == 0));
    rep.add("burst: all answered after", format!("{acked_in:.1} s"), None);
    rep.add(
        "burst: all in Temporal after",
        done.map(|t| format!("{t:.1} s")).unwrap_or_else(|| format!("> {} s", a.drain_timeout)),
        None,
    );
    rep.add("burst: left undrained", pending.to_string(), Some(pending == 0));
    if let Some(t) = done {
        rep.add("burst: intake into Temporal", format!("{:.0} ev/s", signals as f64 / t), None);
    }
}

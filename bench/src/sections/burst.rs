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
    // The drain is compared with the server's own signal-with-starts, which run with no
    // worker: the worker is paused (SIGSTOP) until the journal is empty and through the
    // probe after it, so the server's CPU goes to intake only in both.
    let worker = run.pid("worker");
    signal(worker, "-STOP");
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
    let intake = done.map(|t| signals as f64 / t);
    // The same server, straight after, still without the worker: its own rate at the
    // forwarder's concurrency on a database as full as the drain left it.
    let mut ratio = None;
    if let Some(i) = intake {
        let n = (a.burst / 4).clamp(500, 2000);
        let (own, cpu) = super::signal_with_start_rate(&run.temporal.address(), n, 32).await;
        ratio = Some(i / own);
        println!("  the dev server's own rate right after, {n} events at 32 in flight: {own:.0}/s; {cpu}");
        println!("  drain {i:.0}/s / own {own:.0}/s = ratio {:.2}", i / own);
    }
    signal(worker, "-CONT");
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
    if let Some(i) = intake {
        rep.add("burst: drain into Temporal (worker paused)", format!("{i:.0} ev/s"), None);
    }
    if let Some(r) = ratio {
        rep.add("burst: drain / dev server ceiling", format!("{r:.2}"), Some(r >= 0.9));
    }
}

fn signal(pid: Option<u32>, sig: &str) {
    if let Some(pid) = pid {
        let _ = std::process::Command::new("kill").args([sig, &pid.to_string()]).status();
    }
}

//! A realistic stream at a fixed request rate: ack latency, errors, drain rate into Temporal.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tollgate_tests::rng::Rng;
use tollgate_tests::unique;

use super::Run;
use crate::args::Args;
use crate::disk::FsyncProbe;
use crate::process::Cpu;
use crate::send::{ack_stats, send};
use crate::stats::{Report, ms, print_dist};
use crate::stream::stream;

pub async fn ack_section(a: &Args, run: &Run, rep: &mut Report, rng: &mut Rng) {
    let n = (a.ack_rate * a.ack_secs as f64) as usize;
    let (mut deliveries, mix) = stream(n, a.dup, a.reorder, rng, &unique("a"));
    deliveries.truncate(n);
    println!("-- ack: {} deliveries at {}/s", deliveries.len(), a.ack_rate);
    println!("  stream: {}", mix.line(deliveries.len()));
    let before = run.stack.health().await["journal"]["entries"].as_i64().unwrap_or(0);
    let cpu = Cpu::start(&run.pids());
    // Beside the journal's file: what one fsync costs on that disk meanwhile.
    let probe = FsyncProbe::start(run.stack.dir.path()).ok();
    let start = Instant::now();
    let (acks, sent_for) = send(&run.poster, &deliveries, Some(a.ack_rate), usize::MAX >> 4).await;
    let fsync = probe.map(FsyncProbe::stop);
    let s = ack_stats(&acks);
    print_dist("webhook ack latency", s.lat);
    if let Some(f) = fsync {
        print_dist("fsync beside the journal (4 KiB/50 ms)", f);
        rep.add(
            "ack: the disk's fsync beside the journal p50 / p99",
            format!("{} / {}", ms(f.p50), ms(f.p99)),
            None,
        );
    }
    let codes: BTreeMap<u16, usize> = acks.iter().fold(BTreeMap::new(), |mut m, a| {
        *m.entry(a.status).or_default() += 1;
        m
    });
    println!(
        "  sent over {sent_for:.1} s ({:.0}/s achieved); answers by status (0 = none within {} ms): {codes:?}",
        deliveries.len() as f64 / sent_for,
        a.timeout_ms
    );
    let cpu_line = cpu.line();
    let busy = cpu.busy();
    let others = cpu.others();
    let (drained, pending) = run.drained(Duration::from_secs(a.drain_timeout)).await;
    let elapsed = drained.unwrap_or_else(Instant::now).max(s.last_ack).duration_since(start).as_secs_f64();
    let (signals, label) = if run.direct {
        (acks.iter().filter(|a| a.status == 200).count() as i64, "signal-with-starts answered")
    } else {
        let entries = run.stack.health().await["journal"]["entries"].as_i64().unwrap_or(0);
        (entries - before - pending, "journal entries forwarded")
    };
    let rate = signals as f64 / elapsed;
    println!(
        "  {signals} {label} {elapsed:.1} s after the first request ({rate:.0}/s){}",
        if pending > 0 { format!("; {pending} still pending at the timeout") } else { String::new() }
    );
    println!("  during the send: {cpu_line}");
    let errors = s.non2xx + s.no_answer;
    rep.add("ack p50", ms(s.lat.p50), None);
    rep.add("ack p99", ms(s.lat.p99), Some(s.lat.p99 <= 20.0 && s.no_answer == 0));
    rep.add("ack max", ms(s.lat.max), None);
    rep.add("ack errors (non-2xx + no answer)", format!("{} + {}", s.non2xx, s.no_answer), Some(errors == 0));
    rep.add("ack: achieved request rate", format!("{:.0}/s", deliveries.len() as f64 / sent_for), None);
    rep.add(
        "drain rate into Temporal (ev/s)",
        format!("{rate:.0}{}", if pending > 0 { " (timeout)" } else { "" }),
        None,
    );
    rep.add(
        "ack: all in Temporal after",
        if pending > 0 { format!("> {elapsed:.0} s") } else { format!("{elapsed:.1} s") },
        None,
    );
    rep.add("ack: machine CPU busy while sending", format!("{busy:.0}%"), None);
    rep.add("ack: of which not this stack (other jobs)", format!("{others:.0}%"), None);
}

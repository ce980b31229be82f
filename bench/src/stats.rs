//! Percentiles and the side-by-side table.

use std::collections::HashMap;

use crate::args::Args;

pub fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[derive(Clone, Copy, Default)]
pub struct Dist {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

pub fn dist(mut v: Vec<f64>) -> Dist {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Dist { n: v.len(), p50: pct(&v, 0.5), p99: pct(&v, 0.99), max: v.last().copied().unwrap_or(f64::NAN) }
}

pub fn ms(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v >= 10_000.0 {
        format!("{:.1} s", v / 1000.0)
    } else {
        format!("{v:.1} ms")
    }
}

pub fn print_dist(name: &str, d: Dist) {
    println!("  {name:<36} n={:<6} p50={:>9} p99={:>9} max={:>9}", d.n, ms(d.p50), ms(d.p99), ms(d.max));
}

/// One table row: the figure per ingress and whether it meets its target.
#[derive(Default)]
pub struct Report {
    pub rows: Vec<(String, String, Option<bool>)>,
}

impl Report {
    pub fn add(&mut self, label: &str, value: String, met: Option<bool>) {
        self.rows.push((label.to_string(), value, met));
    }
}

pub fn print_table(args: &Args, reports: &[(String, Report)]) {
    let targets: HashMap<&str, &str> = [
        ("ack p99", "<= 20 ms"),
        ("ack errors (non-2xx + no answer)", "0"),
        ("burst: not acknowledged", "0"),
        ("burst: left undrained", "0"),
        ("burst: drain / dev server ceiling", ">= 0.9"),
        ("purchase -> enrolled p50", "<= 150 ms"),
        ("purchase -> enrolled p99", "<= 1 s"),
        ("unenroll lateness p99", "<= 2 s"),
        ("TalentLMS peak calls in any 1 s", "<= cap"),
    ]
    .into();
    let mut labels: Vec<String> = Vec::new();
    for (_, r) in reports {
        for (l, _, _) in &r.rows {
            if !labels.contains(l) {
                labels.push(l.clone());
            }
        }
    }
    let w = 22;
    println!();
    println!(
        "== Tollgate benchmark: ingress side by side (ack {}/s x {} s, burst {}, {} purchases/s, TalentLMS cap {}/s)",
        args.ack_rate, args.ack_secs, args.burst, args.enroll_rate, args.max_rps
    );
    let mut head = format!("{:<40}", "figure");
    for (name, _) in reports {
        head.push_str(&format!(" {name:>w$}"));
    }
    head.push_str(&format!("  {:<10}", "target"));
    println!("{head}");
    println!("{}", "-".repeat(head.len()));
    for l in &labels {
        let mut line = format!("{l:<40}");
        for (_, r) in reports {
            let cell = match r.rows.iter().find(|(x, _, _)| x == l) {
                Some((_, v, Some(true))) => format!("{v} ok"),
                Some((_, v, Some(false))) => format!("{v} MISS"),
                Some((_, v, None)) => v.clone(),
                None => "-".into(),
            };
            line.push_str(&format!(" {cell:>w$}"));
        }
        line.push_str(&format!("  {}", targets.get(l.as_str()).copied().unwrap_or("")));
        println!("{line}");
    }
}

//! Processes: RSS and CPU from /proc.

use std::time::Instant;

pub fn proc_status_kb(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
}

pub fn mb(kb: Option<u64>) -> String {
    kb.map(|k| format!("{:.1} MB", k as f64 / 1024.0)).unwrap_or_else(|| "-".into())
}

/// utime + stime of one process (clock ticks).
pub fn proc_ticks(pid: u32) -> u64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0 };
    let rest = &s[s.rfind(')').map(|i| i + 2).unwrap_or(0)..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

/// (busy, total) clock ticks of the whole machine.
pub fn machine_ticks() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> =
        s.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Direct children of this process named `temporal` (the dev servers).
pub fn temporal_pids() -> Vec<u32> {
    let me = std::process::id();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let comm = stat.split('(').nth(1).and_then(|s| s.split(')').next()).unwrap_or("");
        let ppid: u32 = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if ppid == me && comm == "temporal" {
            out.push(pid);
        }
    }
    out
}

/// CPU use over a section: the machine's busy share and each process's share of it.
pub struct Cpu {
    pub at: Instant,
    pub machine: (u64, u64),
    pub procs: Vec<(&'static str, u32, u64)>,
}

impl Cpu {
    pub fn start(procs: &[(&'static str, Option<u32>)]) -> Cpu {
        let procs = procs.iter().filter_map(|(n, p)| p.map(|p| (*n, p, proc_ticks(p)))).collect();
        Cpu { at: Instant::now(), machine: machine_ticks(), procs }
    }

    /// The machine's busy share since `start`, in percent of all cores.
    pub fn busy(&self) -> f64 {
        let (busy, total) = machine_ticks();
        100.0 * (busy - self.machine.0) as f64 / (total - self.machine.1).max(1) as f64
    }

    /// The share of all cores used by processes not in the list (another build, ...).
    pub fn others(&self) -> f64 {
        let (busy, total) = machine_ticks();
        let ours: u64 = self.procs.iter().map(|(_, p, t0)| proc_ticks(*p).saturating_sub(*t0)).sum();
        100.0 * (busy - self.machine.0).saturating_sub(ours) as f64 / (total - self.machine.1).max(1) as f64
    }

    pub fn line(&self) -> String {
        let (busy, total) = machine_ticks();
        let (db, dt) = (busy - self.machine.0, (total - self.machine.1).max(1));
        let mut s = format!(
            "cpu over {:.0} s: machine {:.0}% busy (2 cores = 200%: {:.0}%)",
            self.at.elapsed().as_secs_f64(),
            100.0 * db as f64 / dt as f64,
            200.0 * db as f64 / dt as f64
        );
        let mut ours = 0;
        for (name, pid, t0) in &self.procs {
            let d = proc_ticks(*pid).saturating_sub(*t0);
            ours += d;
            s.push_str(&format!(", {name} {:.0}%", 200.0 * d as f64 / dt as f64));
        }
        s.push_str(&format!(", everything else {:.0}%", 200.0 * db.saturating_sub(ours) as f64 / dt as f64));
        s
    }
}

pub fn file_bytes(db: &std::path::Path) -> u64 {
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", db.display())).ok())
        .map(|m| m.len())
        .sum()
}

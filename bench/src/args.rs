//! Flags. Defaults are issue 5's targets; `--quick` shrinks every count for a ~5-minute
//! smoke run, and a count given explicitly wins over `--quick`.

use std::collections::HashSet;

use clap::Parser;

use crate::sections::Variant;

const SECTIONS: [&str; 8] = ["enroll", "unenroll", "burst", "ack", "ceiling", "scale", "import", "journals"];
/// `import` (minutes) and `journals` (needs the Firestore and Pub/Sub emulators): asked
/// for by name.
const DEFAULT_SECTIONS: [&str; 6] = ["enroll", "unenroll", "burst", "ack", "ceiling", "scale"];

#[derive(Parser)]
#[command(name = "tollgate-bench", about = "Tollgate's load generator and benchmark")]
struct Flags {
    /// Shrink every count for a ~5-minute smoke run.
    #[arg(long)]
    quick: bool,
    #[arg(long, value_delimiter = ',', default_values = DEFAULT_SECTIONS, value_parser = SECTIONS)]
    sections: Vec<String>,
    /// `direct` (one signal-with-start per request) is the old design, for comparison.
    #[arg(long, value_delimiter = ',', default_values = ["journal"], value_parser = ["journal", "direct"])]
    ingress: Vec<String>,
    /// New purchases per second in the enroll section.
    #[arg(long, default_value_t = 10.0)]
    enroll_rate: f64,
    #[arg(long, help = "Seconds of the enroll section [default: 20, --quick 5]")]
    enroll_secs: Option<u64>,
    #[arg(long, help = "Fixed-term purchases in the unenroll section [default: 50, --quick 10]")]
    expiries: Option<usize>,
    /// Unenroll runs: `during` (deadlines while the wave fills the cap; the target), `quiet`
    /// (no wave: the control) and `overload` (the wave and the expiring purchases together,
    /// above the cap).
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["during", "quiet", "overload"])]
    unenroll_variants: Vec<Variant>,
    #[arg(long, help = "Events sent at once in the burst section [default: 20000, --quick 500]")]
    burst: Option<usize>,
    /// Requests in flight at most during the burst.
    #[arg(long, default_value_t = 256)]
    burst_conc: usize,
    /// Purchases per backend and starter count in the journals section [default: 600, --quick 150].
    #[arg(long)]
    journal_events: Option<usize>,
    /// Requests per second in the journals section.
    #[arg(long, default_value_t = 100.0)]
    journal_rate: f64,
    /// Requests per second in the ack section.
    #[arg(long, default_value_t = 1000.0)]
    ack_rate: f64,
    #[arg(long, help = "Seconds of the ack section [default: 60, --quick 5]")]
    ack_secs: Option<u64>,
    /// Share of deliveries sent twice.
    #[arg(long, default_value_t = 0.1)]
    dup: f64,
    /// Share of deliveries moved ahead of their place.
    #[arg(long, default_value_t = 0.2)]
    reorder: f64,
    /// TalentLMS calls per second Tollgate may make (`TALENTLMS_MAX_RPS`).
    #[arg(long, default_value_t = 40.0)]
    max_rps: f64,
    #[arg(long, help = "Seconds to wait for the journal to drain [default: 300, --quick 60]")]
    drain_timeout: Option<u64>,
    /// Webhook request timeout.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    #[arg(long, help = "Subscriptions in the scale section [default: 10000, --quick 500]")]
    scale: Option<usize>,
    /// TalentLMS cap in the scale section.
    #[arg(long, default_value_t = 400.0)]
    scale_max_rps: f64,
    /// Seconds for the scale section to get them all enrolled.
    #[arg(long, default_value_t = 900)]
    scale_timeout: u64,
    #[arg(
        long,
        help = "Signal-with-starts per concurrency in the ceiling section [default: 2000, --quick 300]"
    )]
    ceiling: Option<usize>,
    #[arg(long, help = "Customers imported in the import section [default: 1000, --quick 200]")]
    import: Option<usize>,
    /// Hotmart's rate limit in the import section (calls per minute).
    #[arg(long, default_value_t = 500)]
    import_limit: u32,
    /// Tollgate's Hotmart budget in the import section (`HOTMART_MAX_PER_MINUTE`).
    #[arg(long, default_value_t = 450.0)]
    import_budget: f64,
    /// Seed of the Hotmart streams.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where the dev server keeps its SQLite file [default: /dev/shm when it exists, else
    /// the temp dir]. On a VM disk the dev server's own fsyncs set its pace (the ceiling
    /// section measures both), and they are not Tollgate's: production runs on a cluster.
    #[arg(long)]
    temporal_db_dir: Option<std::path::PathBuf>,
}

#[derive(Clone)]
pub struct Args {
    pub sections: HashSet<String>,
    pub ingress: Vec<String>,
    pub enroll_rate: f64,
    pub enroll_secs: u64,
    pub expiries: usize,
    pub unenroll_variants: Vec<Variant>,
    pub burst: usize,
    pub burst_conc: usize,
    pub ack_rate: f64,
    pub ack_secs: u64,
    pub dup: f64,
    pub reorder: f64,
    pub max_rps: f64,
    pub drain_timeout: u64,
    pub timeout_ms: u64,
    pub scale: usize,
    pub scale_max_rps: f64,
    pub scale_timeout: u64,
    pub ceiling: usize,
    pub import: usize,
    pub import_limit: u32,
    pub import_budget: f64,
    pub seed: u64,
    pub journal_events: usize,
    pub journal_rate: f64,
    pub temporal_db_dir: std::path::PathBuf,
}

impl Args {
    pub fn parse() -> Args {
        let f = Flags::parse();
        // (full run, --quick)
        let pick =
            |given: Option<u64>, full: u64, quick: u64| given.unwrap_or(if f.quick { quick } else { full });
        let count =
            |given: Option<usize>, full: u64, quick: u64| pick(given.map(|v| v as u64), full, quick) as usize;
        Args {
            sections: f.sections.iter().cloned().collect(),
            ingress: f.ingress.clone(),
            enroll_rate: f.enroll_rate,
            enroll_secs: pick(f.enroll_secs, 20, 5),
            expiries: count(f.expiries, 50, 10),
            unenroll_variants: f.unenroll_variants.clone(),
            burst: count(f.burst, 20_000, 500),
            burst_conc: f.burst_conc,
            ack_rate: f.ack_rate,
            ack_secs: pick(f.ack_secs, 60, 5),
            dup: f.dup,
            reorder: f.reorder,
            max_rps: f.max_rps,
            drain_timeout: pick(f.drain_timeout, 300, 60),
            timeout_ms: f.timeout_ms,
            scale: count(f.scale, 10_000, 500),
            scale_max_rps: f.scale_max_rps,
            scale_timeout: f.scale_timeout,
            ceiling: count(f.ceiling, 2000, 300),
            import: count(f.import, 1000, 200),
            import_limit: f.import_limit,
            import_budget: f.import_budget,
            seed: f.seed,
            journal_events: count(f.journal_events, 600, 150),
            journal_rate: f.journal_rate,
            temporal_db_dir: f.temporal_db_dir.clone().unwrap_or_else(default_temporal_db_dir),
        }
    }
}

fn default_temporal_db_dir() -> std::path::PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() }
}

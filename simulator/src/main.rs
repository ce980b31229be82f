use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use tollgate_simulator::{DEFAULT_API_KEY, FaultConfig, SimConfig};
use tracing_subscriber::EnvFilter;

/// Local stand-in for the TalentLMS v1 API (admin API under /_sim).
#[derive(Parser)]
#[command(name = "tollgate-simulator", version)]
struct Cli {
    #[arg(long, env = "SIMULATOR_ADDR", default_value = "127.0.0.1:8089")]
    addr: SocketAddr,
    /// Basic-auth user name clients must send (password empty).
    #[arg(long, env = "TALENTLMS_API_KEY", default_value = DEFAULT_API_KEY, hide_env_values = true, hide_default_value = true)]
    api_key: String,
    /// Calls allowed per window.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    rate_limit: u32,
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    rate_window_secs: u64,
    /// Fraction of calls answered 500/502/503 before any state change.
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    error_rate: f64,
    /// Fraction of calls answered 429 before any state change.
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    rate_limited_rate: f64,
    /// Fraction of successful calls whose change is kept but answered 500.
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    fail_after_commit_rate: f64,
    /// Latency added to every call.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Fraction of calls that get a further --slow-ms.
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    slow_rate: f64,
    #[arg(long, default_value_t = 0)]
    slow_ms: u64,
    /// Also serve the Hotmart API stand-in here (token, sales, subscriptions, products).
    #[arg(long, env = "HOTMART_SIM_ADDR")]
    hotmart_addr: Option<SocketAddr>,
    /// Seed the Hotmart stand-in from this JSON file ({products, sales, subscriptions}).
    #[arg(long, requires = "hotmart_addr", conflicts_with = "hotmart_customers")]
    hotmart_seed_file: Option<std::path::PathBuf>,
    /// Or generate this many customers (products 1001 lifetime, 1002 fixed-term, 1003 subscription).
    #[arg(long, requires = "hotmart_addr")]
    hotmart_customers: Option<usize>,
    #[arg(long, default_value_t = 1)]
    hotmart_seed: u64,
    /// Hotmart calls allowed per minute.
    #[arg(long, default_value_t = 500)]
    hotmart_rate_limit: u32,
}

fn rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{s:?} is not a fraction between 0 and 1")),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let faults = FaultConfig {
        error_rate: cli.error_rate,
        rate_limited_rate: cli.rate_limited_rate,
        fail_after_commit_rate: cli.fail_after_commit_rate,
        latency_ms: cli.latency_ms,
        slow_rate: cli.slow_rate,
        slow_ms: cli.slow_ms,
        // The rest are set at run time through `POST /_sim/faults`.
        ..FaultConfig::default()
    };
    let config = SimConfig {
        api_key: cli.api_key,
        rate_limit: cli.rate_limit,
        rate_window: Duration::from_secs(cli.rate_window_secs),
        faults,
    };
    if let Some(addr) = cli.hotmart_addr {
        use tollgate_simulator::hotmart::{self, HotmartConfig, School, SchoolProducts};
        let school = match (&cli.hotmart_seed_file, cli.hotmart_customers) {
            (Some(path), _) => School::load(path)?,
            (None, Some(n)) => {
                let products = SchoolProducts { lifetime: 1001, fixed_term: 1002, subscription: 1003 };
                School::generate(n, cli.hotmart_seed, chrono::Utc::now().timestamp_millis(), products)
            }
            (None, None) => School::default(),
        };
        let config = HotmartConfig { rate_limit: cli.hotmart_rate_limit, school, ..Default::default() };
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tracing::info!(addr = %listener.local_addr()?, ?config, "Hotmart simulator listening");
        tokio::spawn(hotmart::serve(listener, config, async {
            let _ = tokio::signal::ctrl_c().await;
        }));
    }
    let listener = tokio::net::TcpListener::bind(cli.addr).await?;
    tracing::info!(addr = %listener.local_addr()?, ?config, "TalentLMS simulator listening");
    tollgate_simulator::serve(listener, config, async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    })
    .await
}

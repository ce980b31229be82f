use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use tollgate_activities::config::{Settings, temporal_client};
use tollgate_domain::metrics::ReconcileRequest;
use tollgate_domain::{CourseLink, ProductId};
use tollgate_starter::revenue_ops::{self, ScheduleSettings};
use tollgate_starter::{ServeConfig, ops, serve};
use tollgate_store::DocStore;
use tollgate_warehouse::Warehouse;

/// Tollgate starter: Hotmart webhook ingress and operator commands.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the webhook (TOLLGATE_HTTP_ADDR) and forward journaled events to Temporal.
    Serve {
        #[arg(long, env = "TOLLGATE_HTTP_ADDR", default_value = "127.0.0.1:8088")]
        addr: SocketAddr,
    },
    /// Course links: which TalentLMS courses a Hotmart product unlocks.
    Links {
        #[command(subcommand)]
        cmd: LinksCmd,
    },
    /// Revenue: rows, rollups (backfill), reconciliation.
    Revenue {
        #[command(subcommand)]
        cmd: RevenueCmd,
    },
    /// Temporal Schedules of the revenue workflows.
    Schedules {
        #[command(subcommand)]
        cmd: SchedulesCmd,
    },
    /// Show a student's access (by email) or one workflow's, with the reasons.
    Status {
        #[arg(long, conflicts_with = "workflow_id")]
        email: Option<String>,
        #[arg(long)]
        workflow_id: Option<String>,
    },
}

#[derive(Subcommand)]
enum RevenueCmd {
    /// Print the revenue rows as JSON lines: all of them, or those with occurred_at in
    /// [--from, --to] (UTC days; --to defaults to --from).
    Rows {
        #[arg(long)]
        from: Option<String>,
        #[arg(long, requires = "from")]
        to: Option<String>,
    },
    /// Roll up each day from --from to --to (default: just --from), one workflow per day;
    /// re-running a day replaces its rollup. This is the backfill.
    Rollup {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: Option<String>,
    },
    /// Compare the revenue rows of [--from, --to] with the webhook journal now.
    Reconcile {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: Option<String>,
        /// Write missing rows and delete extra ones (default: report only).
        #[arg(long)]
        repair: bool,
        /// Leave journal entries younger than this to their workflow (e.g. 10m).
        #[arg(long, default_value = "10m")]
        settle: String,
    },
}

#[derive(Subcommand)]
enum SchedulesCmd {
    /// Create the daily rollup and the reconciliation schedules, or update them in place.
    Apply {
        #[arg(long, default_value = "15 0 * * *")]
        rollup_cron: String,
        #[arg(long, default_value = "40 * * * *")]
        reconcile_cron: String,
        #[arg(long, default_value_t = 2)]
        reconcile_lookback_days: u32,
    },
}

#[derive(Subcommand)]
enum LinksCmd {
    /// Create or replace a product's link.
    Add {
        #[arg(long)]
        product: i64,
        /// TalentLMS course id; repeat for several courses.
        #[arg(long = "course", required = true)]
        courses: Vec<String>,
        /// lifetime | fixed_term | subscription
        #[arg(long, default_value = "lifetime")]
        policy: String,
        /// Access length for fixed_term (e.g. 365d).
        #[arg(long)]
        term: Option<String>,
        /// Grace after a missed renewal for subscription (default 3d).
        #[arg(long)]
        grace: Option<String>,
    },
    List,
    Remove {
        #[arg(long)]
        product: i64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tollgate_activities::config::init_logging();
    let cli = Cli::parse();
    let settings = Settings::from_env()?;
    match cli.cmd {
        Cmd::Serve { addr } => {
            let hottok = std::env::var("TOLLGATE_HOTTOK").unwrap_or_default();
            anyhow::ensure!(
                !hottok.trim().is_empty(),
                "TOLLGATE_HOTTOK is not set: every webhook would be refused"
            );
            let api_token = std::env::var("TOLLGATE_API_TOKEN").ok().filter(|t| !t.trim().is_empty());
            if api_token.is_none() {
                tracing::warn!("TOLLGATE_API_TOKEN is not set: the staff API is off");
            }
            let dashboard_token =
                std::env::var("TOLLGATE_DASHBOARD_TOKEN").ok().filter(|t| !t.trim().is_empty());
            let running =
                serve(ServeConfig { addr, hottok, api_token, dashboard_token, settings, forward: true })
                    .await?;
            let signal = tollgate_activities::config::shutdown_signal().await?;
            tracing::info!(signal, "stopping: answering the requests in flight");
            running.stop().await?;
        }
        Cmd::Links { cmd } => {
            let docs = DocStore::open(&settings.store).await?;
            match cmd {
                LinksCmd::Add { product, courses, policy, term, grace } => {
                    let policy = ops::parse_policy(&policy, term.as_deref(), grace.as_deref())?;
                    let link = CourseLink { product_id: ProductId(product), courses, policy };
                    let woken = ops::add_link(&docs, link.clone()).await?;
                    println!("{}", serde_json::to_string(&link)?);
                    eprintln!("linked product {product}; woke {woken} running workflow(s)");
                }
                LinksCmd::List => {
                    for l in ops::all_links(&docs).await? {
                        println!("{}", serde_json::to_string(&l)?);
                    }
                }
                LinksCmd::Remove { product } => {
                    anyhow::ensure!(
                        docs.delete_link(ProductId(product)).await?.is_some(),
                        "product {product} has no link"
                    );
                    eprintln!("removed the link of product {product}");
                }
            }
        }
        Cmd::Revenue { cmd } => match cmd {
            RevenueCmd::Rows { from, to } => {
                let (start, end) = match from {
                    Some(from) => {
                        let range = revenue_ops::day_range(&from, to.as_deref())?;
                        (range.start_ms(), range.end_ms())
                    }
                    None => (i64::MIN, i64::MAX),
                };
                let w = Warehouse::open(&settings.warehouse).await?;
                for row in w.rows_between(start, end).await? {
                    println!("{}", serde_json::to_string(&row)?);
                }
            }
            RevenueCmd::Rollup { from, to } => {
                let range = revenue_ops::day_range(&from, to.as_deref())?;
                let client = temporal_client().await?;
                for r in revenue_ops::rollup_range(&client, &settings.task_queue, range).await? {
                    println!("{}", serde_json::to_string(&r)?);
                }
            }
            RevenueCmd::Reconcile { from, to, repair, settle } => {
                let range = revenue_ops::day_range(&from, to.as_deref())?;
                let settle_secs =
                    tollgate_domain::duration::parse_secs(&settle).map_err(anyhow::Error::msg)?;
                let req = ReconcileRequest { lookback_days: 0, range: Some(range), repair, settle_secs };
                let client = temporal_client().await?;
                let outcome = revenue_ops::reconcile_now(&client, &settings.task_queue, req).await?;
                eprintln!("{}", outcome.summary);
                println!("{}", serde_json::to_string_pretty(&outcome.report)?);
            }
        },
        Cmd::Schedules {
            cmd: SchedulesCmd::Apply { rollup_cron, reconcile_cron, reconcile_lookback_days },
        } => {
            let client = temporal_client().await?;
            let s = ScheduleSettings {
                rollup_cron,
                reconcile_cron,
                reconcile_lookback_days,
                ..Default::default()
            };
            for (id, what) in revenue_ops::apply_schedules(&client, &settings.task_queue, &s).await? {
                println!("{id}: {what}");
            }
        }
        Cmd::Status { email, workflow_id } => {
            let client = temporal_client().await?;
            let list = match (email, workflow_id) {
                (Some(e), _) => ops::statuses_by_email(&client, &e).await?,
                (None, Some(id)) => vec![ops::status(&client, &id).await?],
                (None, None) => anyhow::bail!("give --email or --workflow-id"),
            };
            for s in list {
                println!("{}", serde_json::to_string_pretty(&s)?);
            }
        }
    }
    Ok(())
}

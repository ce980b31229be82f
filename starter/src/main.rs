use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use tollgate_activities::config::{Settings, temporal_client};
use tollgate_starter::{ServeConfig, ops, serve};
use tollgate_store::{Db, DocStore, Warehouse};
use tollgate_workflows::{CourseLink, ProductId};

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
    /// Print the revenue rows as JSON lines.
    Revenue,
    /// Show a student's access (by email) or one workflow's, with the reasons.
    Status {
        #[arg(long, conflicts_with = "workflow_id")]
        email: Option<String>,
        #[arg(long)]
        workflow_id: Option<String>,
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
            let running = serve(ServeConfig { addr, hottok, api_token, settings, forward: true }).await?;
            tokio::signal::ctrl_c().await?;
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
        Cmd::Revenue => ops::print_revenue(&Warehouse::new(Db::open(&settings.db_path)?)).await?,
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

//! The operator CLI (`tollgate-starter …`): `serve` starts the service; the other
//! commands act on links, revenue, schedules and status, through the same code the
//! service uses.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use tollgate_domain::ProductId;
use tollgate_domain::audit::{AuditReport, REPORT_KIND as AUDIT_KIND};
use tollgate_domain::metrics::ReconcileRequest;
use tollgate_service::{Settings, Temporal};
use tollgate_store::DocStore;
use tollgate_warehouse::Warehouse;
use tollgate_workflows::hotmart_reconcile::HotmartReconcileRequest;
use tollgate_workflows::talentlms_audit::AuditRequest;

use crate::links::{LinkError, LinkInput, LinkService};
use crate::revenue_ops::{self, ScheduleSettings};
use crate::{hotmart_ops, journal, ops, reports, startup};

/// Tollgate starter: Hotmart webhook ingress and operator commands.
#[derive(Parser)]
#[command(version)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the webhook (TOLLGATE_HTTP_ADDR) and forward journaled events to Temporal.
    Serve {
        /// Listen here instead of TOLLGATE_HTTP_ADDR.
        #[arg(long)]
        addr: Option<SocketAddr>,
    },
    /// The forwarder role: drain the journal into Temporal without serving HTTP. With
    /// TOLLGATE_JOURNAL=pubsub this is the Pub/Sub consumer (and the dead-letter drain into
    /// the quarantine); with the store's journal it competes for the same lease as `serve`.
    Forward,
    /// The Pub/Sub journal's resources.
    Pubsub {
        #[command(subcommand)]
        cmd: PubsubCmd,
    },
    /// Course links: which TalentLMS courses a Hotmart product unlocks.
    Links {
        #[command(subcommand)]
        cmd: LinksCmd,
    },
    /// The webhook journal: deliveries the parser could not read, and their redrive.
    Journal {
        #[command(subcommand)]
        cmd: JournalCmd,
    },
    /// Revenue: rows, rollups (backfill), reconciliation.
    Revenue {
        #[command(subcommand)]
        cmd: RevenueCmd,
    },
    /// Temporal Schedules: revenue, the Hotmart reconciliation, the TalentLMS audit.
    Schedules {
        #[command(subcommand)]
        cmd: SchedulesCmd,
    },
    /// Hotmart's REST API: import the customers a school had before Tollgate; reconcile
    /// missed webhooks.
    Hotmart {
        #[command(subcommand)]
        cmd: HotmartCmd,
    },
    /// TalentLMS: audit the linked courses for drift from the entitlement ledger.
    Talentlms {
        #[command(subcommand)]
        cmd: TalentlmsCmd,
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
enum PubsubCmd {
    /// Create the topic, the subscription (ordered, with the dead-letter policy), the
    /// dead-letter topic and its subscription; what exists is left as it is.
    Setup,
}

#[derive(Subcommand)]
enum HotmartCmd {
    /// Read every subscription and sale from Hotmart and deliver what Tollgate would have
    /// received (a `HotmartImport` workflow; re-running it changes nothing twice).
    Import {
        /// Only subscriptions and sales that started on or after this UTC day (YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        /// Only this product.
        #[arg(long)]
        product: Option<i64>,
        /// Print what would change (students to enroll and unenroll, revenue rows); touch nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Compare Hotmart's sales and subscriptions of a window with what Tollgate knows and
    /// deliver what it missed (a `HotmartReconcile` workflow); prints its report.
    Reconcile {
        /// Window start (UTC day YYYY-MM-DD); default: the last 3 days.
        #[arg(long)]
        since: Option<String>,
        /// Report what Tollgate missed; deliver nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the latest reconciliation reports as JSON lines, newest first.
    Reports {
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
}

#[derive(Subcommand)]
enum TalentlmsCmd {
    /// Compare every linked course's users with the grants (a `TalentLmsAudit` workflow);
    /// prints its report. Courses no link names are never read or touched.
    Audit {
        /// Fix the differences through the ordinary enroll and unenroll (default: report only).
        #[arg(long)]
        repair: bool,
    },
    /// Print the latest audit reports as JSON lines, newest first.
    Reports {
        #[arg(long, default_value_t = 10)]
        limit: usize,
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
enum JournalCmd {
    /// Print quarantined deliveries as JSON lines (id, received_at, event, reason, parser
    /// version, body), by id.
    Quarantine {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Start after this id (the last one of the previous page).
        #[arg(long)]
        after: Option<String>,
    },
    /// Re-read quarantined deliveries with this version's parser; those it reads are
    /// forwarded to their workflows (by the running starter's forwarder).
    Redrive {
        /// Every quarantined delivery.
        #[arg(long, conflicts_with = "id", required_unless_present = "id")]
        all: bool,
        /// One delivery, by its id.
        #[arg(long)]
        id: Option<String>,
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
        /// The Hotmart reconciliation (installed when HOTMART_CLIENT_ID is set).
        #[arg(long, default_value = "20 * * * *")]
        hotmart_reconcile_cron: String,
        #[arg(long, default_value_t = tollgate_workflows::hotmart_reconcile::DEFAULT_LOOKBACK_DAYS)]
        hotmart_reconcile_lookback_days: u32,
        /// Also schedule the TalentLMS drift audit with this cron (e.g. "50 3 * * *").
        #[arg(long)]
        talentlms_audit_cron: Option<String>,
        /// Let the scheduled audit repair what it finds (default: report only).
        #[arg(long, requires = "talentlms_audit_cron")]
        talentlms_audit_repair: bool,
    },
}

#[derive(Subcommand)]
enum LinksCmd {
    /// Create or replace a product's link (same rules as the staff API: course ids are
    /// checked in TalentLMS, removing courses needs --confirm).
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
        /// Go ahead although the change removes courses (their students are unenrolled).
        #[arg(long)]
        confirm: bool,
    },
    List,
    /// Delete a product's link: current students keep access, new purchases wait.
    Remove {
        #[arg(long)]
        product: i64,
    },
}

impl Cli {
    pub async fn run(self, settings: Settings) -> anyhow::Result<()> {
        // One Temporal connection per process, made by the first command that needs it.
        let temporal = Temporal::new(settings.temporal.clone());
        match self.cmd {
            Cmd::Serve { addr } => {
                let addr = addr.unwrap_or(settings.http.addr);
                let running = startup::serve(settings, addr).await?;
                let signal = tollgate_service::shutdown_signal().await?;
                tracing::info!(signal, "stopping: answering the requests in flight");
                running.stop().await?;
            }
            Cmd::Forward => {
                let running = startup::forward(settings).await?;
                let signal = tollgate_service::shutdown_signal().await?;
                tracing::info!(signal, "stopping the forwarder");
                running.stop().await?;
            }
            Cmd::Pubsub { cmd: PubsubCmd::Setup } => {
                let tollgate_service::JournalBackend::PubSub(ps) = settings.journal.clone() else {
                    anyhow::bail!("TOLLGATE_JOURNAL is not pubsub");
                };
                let created = crate::pubsub::PubSub::new(ps)?.setup().await?;
                for name in &created {
                    println!("created {name}");
                }
                eprintln!("Pub/Sub resources ready ({} created)", created.len());
            }
            Cmd::Links { cmd } => {
                let docs = DocStore::open(&settings.store).await?;
                links_cmd(&LinkService::new(docs, temporal, &settings)?, cmd).await?;
            }
            Cmd::Journal { cmd } => {
                let docs = DocStore::open(&settings.store).await?;
                match cmd {
                    JournalCmd::Quarantine { limit, after } => {
                        for q in docs.quarantined(after, limit).await? {
                            println!("{}", serde_json::to_string(&q)?);
                        }
                    }
                    JournalCmd::Redrive { id, .. } => {
                        let report = journal::redrive(&docs, id.clone()).await?.ok_or_else(|| {
                            anyhow::anyhow!("{} is not quarantined", id.unwrap_or_default())
                        })?;
                        eprintln!(
                            "released {}, still quarantined {}",
                            report.released.len(),
                            report.still_quarantined.len()
                        );
                        println!("{}", serde_json::to_string_pretty(&report)?);
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
                    let client = temporal.client().await?;
                    for r in revenue_ops::rollup_range(client, &settings.task_queue, range).await? {
                        println!("{}", serde_json::to_string(&r)?);
                    }
                }
                RevenueCmd::Reconcile { from, to, repair, settle } => {
                    let range = revenue_ops::day_range(&from, to.as_deref())?;
                    let settle_secs =
                        tollgate_domain::duration::parse_secs(&settle).map_err(anyhow::Error::msg)?;
                    let req = ReconcileRequest { lookback_days: 0, range: Some(range), repair, settle_secs };
                    let client = temporal.client().await?;
                    let outcome = revenue_ops::reconcile_now(client, &settings.task_queue, req).await?;
                    eprintln!("{}", outcome.summary);
                    println!("{}", serde_json::to_string_pretty(&outcome.report)?);
                }
            },
            Cmd::Schedules {
                cmd:
                    SchedulesCmd::Apply {
                        rollup_cron,
                        reconcile_cron,
                        reconcile_lookback_days,
                        hotmart_reconcile_cron,
                        hotmart_reconcile_lookback_days,
                        talentlms_audit_cron,
                        talentlms_audit_repair,
                    },
            } => {
                let client = temporal.client().await?;
                // Without Hotmart credentials no worker reads its API: no schedule to fail.
                let hotmart = hotmart_api::HotmartEnv::from_env()?.map(|_| {
                    let mut req = HotmartReconcileRequest::new(hotmart_queue(&settings));
                    req.lookback_days = hotmart_reconcile_lookback_days;
                    (hotmart_reconcile_cron, req)
                });
                let s = ScheduleSettings {
                    rollup_cron,
                    reconcile_cron,
                    reconcile_lookback_days,
                    hotmart,
                    talentlms_audit: talentlms_audit_cron
                        .map(|cron| (cron, audit_request(&settings, talentlms_audit_repair))),
                    ..Default::default()
                };
                for (id, what) in revenue_ops::apply_schedules(client, &settings.task_queue, &s).await? {
                    println!("{id}: {what}");
                }
            }
            Cmd::Hotmart { cmd: HotmartCmd::Import { since, product, dry_run } } => {
                let since_ms = since.as_deref().map(day_start).transpose()?;
                if dry_run {
                    let env = hotmart_api::HotmartEnv::from_env()?.ok_or_else(|| {
                        anyhow::anyhow!(
                            "set HOTMART_CLIENT_ID and HOTMART_CLIENT_SECRET (and HOTMART_API_URL)"
                        )
                    })?;
                    let docs = DocStore::open(&settings.store).await?;
                    let now = tollgate_store::now_ms();
                    let report = hotmart_ops::dry_run(&docs, &env.client()?, since_ms, product, now).await?;
                    eprintln!(
                        "dry run: {} new of {} events; {} to enroll, {} to unenroll, {} revenue rows; nothing changed",
                        report.new_events,
                        report.events,
                        report.to_enroll.len(),
                        report.to_unenroll.len(),
                        report.revenue_rows.len()
                    );
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    let client = temporal.client().await?;
                    let req = hotmart_ops::request(since_ms, product, hotmart_queue(&settings));
                    let done = hotmart_ops::import(client, &settings.task_queue, req).await?;
                    println!("{}", serde_json::to_string_pretty(&done)?);
                }
            }
            Cmd::Hotmart { cmd: HotmartCmd::Reconcile { since, dry_run } } => {
                let mut req = HotmartReconcileRequest::new(hotmart_queue(&settings));
                req.since_ms = since.as_deref().map(day_start).transpose()?;
                req.dry_run = dry_run;
                let client = temporal.client().await?;
                let report = hotmart_ops::reconcile_now(client, &settings.task_queue, req).await?;
                eprintln!("{}", report.summary());
                println!("{}", serde_json::to_string_pretty(&hotmart_ops::report_json(&report))?);
            }
            Cmd::Hotmart { cmd: HotmartCmd::Reports { limit } } => {
                let docs = DocStore::open(&settings.store).await?;
                for r in hotmart_ops::latest_reports(&docs, limit).await? {
                    println!("{}", serde_json::to_string(&hotmart_ops::report_json(&r))?);
                }
            }
            Cmd::Talentlms { cmd: TalentlmsCmd::Audit { repair } } => {
                let client = temporal.client().await?;
                let report =
                    reports::audit_now(client, &settings.task_queue, audit_request(&settings, repair))
                        .await?;
                eprintln!("{}", report.summary());
                println!(
                    "{}",
                    serde_json::to_string_pretty(&reports::with_summary(&report, report.summary()))?
                );
            }
            Cmd::Talentlms { cmd: TalentlmsCmd::Reports { limit } } => {
                let docs = DocStore::open(&settings.store).await?;
                let list: Vec<AuditReport> = reports::latest(&docs, AUDIT_KIND, limit).await?;
                for r in list {
                    println!("{}", serde_json::to_string(&reports::with_summary(&r, r.summary()))?);
                }
            }
            Cmd::Status { email, workflow_id } => {
                let client = temporal.client().await?;
                let list = match (email, workflow_id) {
                    (Some(e), _) => ops::statuses_by_email(client, &e).await?,
                    (None, Some(id)) => vec![ops::status(client, &id).await?],
                    (None, None) => anyhow::bail!("give --email or --workflow-id"),
                };
                for s in list {
                    println!("{}", serde_json::to_string_pretty(&s)?);
                }
            }
        }
        Ok(())
    }
}

async fn links_cmd(links: &LinkService, cmd: LinksCmd) -> anyhow::Result<()> {
    match cmd {
        LinksCmd::Add { product, courses, policy, term, grace, confirm } => {
            let input = LinkInput { product_id: Some(product), courses, policy, term, grace };
            let (link, fan_out) = links.create_or_replace(input, confirm).await.map_err(cli_error)?;
            println!("{}", serde_json::to_string(&link)?);
            eprintln!(
                "linked product {product}; signalled {} running and resumed {} settled workflow(s)",
                fan_out.signalled, fan_out.resumed
            );
            if let Some(warning) = fan_out.warning {
                eprintln!("warning: {warning}");
            }
        }
        LinksCmd::List => {
            for l in links.all().await? {
                println!("{}", serde_json::to_string(&l)?);
            }
        }
        LinksCmd::Remove { product } => {
            links.delete(ProductId(product)).await.map_err(cli_error)?;
            eprintln!("removed the link of product {product}");
        }
    }
    Ok(())
}

/// The start (UTC) of a `YYYY-MM-DD` day.
fn day_start(day: &str) -> anyhow::Result<i64> {
    day.parse::<tollgate_domain::metrics::Day>().map(|d| d.start_ms()).map_err(anyhow::Error::msg)
}

fn audit_request(settings: &Settings, repair: bool) -> AuditRequest {
    AuditRequest { repair, talentlms_task_queue: settings.rules.talentlms_task_queue.clone() }
}

/// The Hotmart API activities' queue, as the worker computes it.
fn hotmart_queue(settings: &Settings) -> String {
    tollgate_workflows::import::hotmart_queue(
        &settings.task_queue,
        std::env::var("TOLLGATE_HOTMART_QUEUE").ok(),
    )
}

fn cli_error(e: LinkError) -> anyhow::Error {
    match e {
        LinkError::ConfirmationRequired(_) => anyhow::anyhow!("{e}; repeat with --confirm"),
        LinkError::Store(e) => e,
        e => e.into(),
    }
}

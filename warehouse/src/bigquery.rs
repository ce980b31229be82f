//! The BigQuery warehouse (`gcp-bigquery-client`, REST v2).
//!
//! `open` creates the dataset, the day-partitioned fact table, the rollup tables and the
//! reporting views when absent. Writes are idempotent by key with MERGE: BigQuery's
//! insertId dedup is best-effort (and the emulator has none), so a retried activity must
//! not rely on it. Timestamps cross the wire as epoch milliseconds (`UNIX_MILLIS` /
//! `TIMESTAMP_MILLIS`), since the REST encoding of TIMESTAMP differs between BigQuery and
//! its emulator.

use std::collections::BTreeMap;
use std::sync::Arc;

use gcp_bigquery_client::Client;
use gcp_bigquery_client::auth::Authenticator;
use gcp_bigquery_client::client_builder::ClientBuilder;
use gcp_bigquery_client::error::BQError;
use gcp_bigquery_client::model::get_query_results_parameters::GetQueryResultsParameters;
use gcp_bigquery_client::model::query_parameter::QueryParameter;
use gcp_bigquery_client::model::query_parameter_type::QueryParameterType;
use gcp_bigquery_client::model::query_parameter_value::QueryParameterValue;
use gcp_bigquery_client::model::query_request::QueryRequest;
use gcp_bigquery_client::model::table_row::TableRow;
use serde_json::Value;
use tollgate_domain::hotmart::Millis;
use tollgate_domain::metrics::{
    CourseDay, Currency, DAY_MS, Day, DayRange, DayRollup, KindTotal, SubscriptionDay, SubscriptionFact,
};
use tollgate_domain::money::Money;
use tollgate_domain::revenue::{RevenueKind, RevenueRow};

use crate::{RollupSlice, StoredRollup, SubscriptionWindow};

#[derive(Clone)]
pub struct BigQueryWarehouse {
    client: Arc<Client>,
    project: String,
    dataset: String,
}

/// The emulator accepts any bearer token.
#[derive(Clone)]
struct EmulatorToken;

#[async_trait::async_trait]
impl Authenticator for EmulatorToken {
    async fn access_token(&self) -> Result<String, BQError> {
        Ok("emulator".into())
    }
}

/// A typed query parameter.
pub enum P<'a> {
    Str(&'a str, String),
    OptStr(&'a str, Option<String>),
    Int(&'a str, i64),
    OptInt(&'a str, Option<i64>),
}

impl P<'_> {
    fn to_param(&self) -> QueryParameter {
        let (name, ty, value) = match self {
            P::Str(n, v) => (n, "STRING", Some(v.clone())),
            P::OptStr(n, v) => (n, "STRING", v.clone()),
            P::Int(n, v) => (n, "INT64", Some(v.to_string())),
            P::OptInt(n, v) => (n, "INT64", v.map(|v| v.to_string())),
        };
        QueryParameter {
            name: Some(name.to_string()),
            parameter_type: Some(QueryParameterType {
                array_type: None,
                struct_types: None,
                r#type: ty.into(),
            }),
            parameter_value: Some(QueryParameterValue { array_values: None, struct_values: None, value }),
        }
    }
}

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z, BigQuery's TIMESTAMP range in ms.
const BQ_MIN_MS: Millis = -62_135_596_800_000;
const BQ_MAX_MS: Millis = 253_402_300_799_999;

impl BigQueryWarehouse {
    pub async fn open(project: &str, dataset: &str, emulator_host: Option<&str>) -> anyhow::Result<Self> {
        let client = match emulator_host {
            Some(host) => {
                ClientBuilder::new()
                    .with_v2_base_url(format!("http://{host}/bigquery/v2"))
                    .build_from_authenticator(Arc::new(EmulatorToken))
                    .await?
            }
            None => match std::env::var("GOOGLE_APPLICATION_CREDENTIALS") {
                Ok(path) => ClientBuilder::new().build_from_service_account_key_file(&path).await?,
                Err(_) => ClientBuilder::new().build_from_application_default_credentials().await?,
            },
        };
        let w = Self { client: Arc::new(client), project: project.into(), dataset: dataset.into() };
        w.create_schema().await?;
        Ok(w)
    }

    /// (project, dataset).
    pub fn dataset_path(&self) -> (&str, &str) {
        (&self.project, &self.dataset)
    }

    fn t(&self, table: &str) -> String {
        format!("`{}.{}.{}`", self.project, self.dataset, table)
    }

    /// Runs one statement and returns every result row (following pages), failing on
    /// any error the response reports (a failed query can come back as 200 with `errors`).
    pub async fn query(&self, sql: &str, params: &[P<'_>]) -> anyhow::Result<(Vec<Vec<Value>>, i64)> {
        let mut req = QueryRequest::new(sql);
        req.use_legacy_sql = false;
        req.timeout_ms = Some(60_000);
        if !params.is_empty() {
            req.parameter_mode = Some("NAMED".into());
            req.query_parameters = Some(params.iter().map(P::to_param).collect());
        }
        let resp = self.client.job().query(&self.project, req).await?;
        if let Some(errors) = resp.errors.filter(|e| !e.is_empty()) {
            // The statement goes to the log, not into the error: errors can reach users.
            tracing::debug!(%sql, "failed BigQuery statement");
            anyhow::bail!("BigQuery error: {errors:?}");
        }
        let affected = resp.num_dml_affected_rows.as_deref().and_then(|n| n.parse().ok()).unwrap_or(0);
        let mut rows = cells(resp.rows);
        let mut complete = resp.job_complete.unwrap_or(true);
        let mut page_token = resp.page_token;
        let job = resp.job_reference.and_then(|j| j.job_id);
        while !complete || page_token.is_some() {
            let Some(job) = job.as_deref() else { anyhow::bail!("BigQuery answered without a job id") };
            let page = self
                .client
                .job()
                .get_query_results(
                    &self.project,
                    job,
                    GetQueryResultsParameters {
                        page_token: page_token.take(),
                        timeout_ms: Some(60_000),
                        ..Default::default()
                    },
                )
                .await?;
            if let Some(errors) = page.errors.filter(|e| !e.is_empty()) {
                anyhow::bail!("BigQuery error: {errors:?}");
            }
            complete = page.job_complete.unwrap_or(true);
            if complete {
                rows.extend(cells(page.rows));
                page_token = page.page_token;
            }
        }
        Ok((rows, affected))
    }

    /// Brings the dataset to this version's schema. Every process (starter, worker, each
    /// CLI run) opens the warehouse, and the dozen DDL statements take seconds each on
    /// BigQuery, so a digest of them is kept in `schema_digest`: when it matches, one
    /// query is all an open costs.
    async fn create_schema(&self) -> anyhow::Result<()> {
        let ddl = self.schema_ddl();
        let digest = fnv1a(ddl.concat().as_bytes()).to_string();
        let marker = self.t("schema_digest");
        let current = self.query(&format!("SELECT digest FROM {marker}"), &[]).await;
        if current.is_ok_and(|(rows, _)| rows.len() == 1 && s(&rows[0][0]).is_ok_and(|d| d == digest)) {
            return Ok(());
        }
        for statement in &ddl {
            self.query(statement, &[]).await?;
        }
        self.query(&format!("CREATE TABLE IF NOT EXISTS {marker} (digest STRING NOT NULL)"), &[]).await?;
        self.query(&format!("DELETE FROM {marker} WHERE TRUE"), &[]).await?;
        self.query(&format!("INSERT INTO {marker} (digest) VALUES (@digest)"), &[P::Str("digest", digest)])
            .await?;
        Ok(())
    }

    /// The schema's statements, in order; each is idempotent.
    fn schema_ddl(&self) -> Vec<String> {
        let (p, d) = (&self.project, &self.dataset);
        let facts = self.t("revenue_facts");
        let mut ddl = vec![format!("CREATE SCHEMA IF NOT EXISTS `{p}.{d}`")];
        ddl.extend([
            format!(
                "CREATE TABLE IF NOT EXISTS {facts} (
                    key STRING NOT NULL, kind STRING NOT NULL, txn STRING NOT NULL, event_id STRING NOT NULL,
                    product_id INT64 NOT NULL, buyer_email STRING NOT NULL, subscriber_code STRING,
                    recurrence INT64, gross_minor INT64 NOT NULL, net_minor INT64, currency STRING NOT NULL,
                    occurred_at TIMESTAMP NOT NULL, paid_until TIMESTAMP, recorded_at TIMESTAMP NOT NULL,
                    net_currency STRING)
                 PARTITION BY DATE(occurred_at) CLUSTER BY currency, product_id"
            ),
            // Tables from before it: their nets were in the gross currency (NULL reads so).
            format!("ALTER TABLE {facts} ADD COLUMN IF NOT EXISTS net_currency STRING"),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (
                    day DATE NOT NULL, product_id INT64 NOT NULL, currency STRING NOT NULL,
                    charges_minor INT64 NOT NULL, refunds_minor INT64 NOT NULL, chargebacks_minor INT64 NOT NULL,
                    total_minor INT64 NOT NULL, charge_count INT64 NOT NULL, refund_count INT64 NOT NULL,
                    chargeback_count INT64 NOT NULL)",
                self.t("rollup_course")
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (
                    day DATE NOT NULL, currency STRING NOT NULL, active INT64 NOT NULL, mrr_minor INT64 NOT NULL,
                    churned INT64 NOT NULL, started INT64 NOT NULL)",
                self.t("rollup_subscription")
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (day DATE NOT NULL, computed_at TIMESTAMP NOT NULL, basis INT64)",
                self.t("rollup_day")
            ),
            // Rollups from before change marks: kept, never served until recomputed.
            format!("ALTER TABLE {} ADD COLUMN IF NOT EXISTS basis INT64", self.t("rollup_day")),
            // One row per write that may have changed the facts of `day` (append-only: an
            // INSERT never conflicts with a concurrent one, unlike a counter's UPDATE).
            format!(
                "CREATE TABLE IF NOT EXISTS {} (day DATE NOT NULL, recorded_at TIMESTAMP NOT NULL)
                 PARTITION BY day",
                self.t("revenue_changes")
            ),
        ]);
        for (name, body) in views(&facts, &self.t("subscription_coverage")) {
            ddl.push(format!("CREATE OR REPLACE VIEW {} AS {body}", self.t(name)));
        }
        ddl
    }

    /// Inserts the row unless its key exists. A refund or chargeback also stays out when
    /// an earlier one of its transaction is stored, and first deletes a later one: one
    /// reversal per transaction, the first by (time, event id), as in SQLite.
    pub async fn record(&self, row: RevenueRow) -> anyhow::Result<bool> {
        let facts = self.t("revenue_facts");
        let reversal = row.kind.is_reversal();
        if reversal {
            let sql = format!(
                "DELETE FROM {facts} WHERE txn = @txn AND kind IN ('refund', 'chargeback')
                   AND (occurred_at > TIMESTAMP_MILLIS(@occurred_at)
                        OR (occurred_at = TIMESTAMP_MILLIS(@occurred_at) AND event_id > @event_id))"
            );
            let params = [
                P::Str("txn", row.transaction.clone()),
                P::Int("occurred_at", row.occurred_at),
                P::Str("event_id", row.event_id.clone()),
            ];
            self.query(&sql, &params).await?;
        }
        let also = if reversal { "OR (T.txn = @txn AND T.kind IN ('refund', 'chargeback'))" } else { "" };
        let sql = format!(
            "MERGE {facts} T
             USING (SELECT @key AS key) S ON T.key = S.key {also}
             WHEN NOT MATCHED THEN INSERT
               (key, kind, txn, event_id, product_id, buyer_email, subscriber_code, recurrence, gross_minor,
                net_minor, currency, occurred_at, paid_until, recorded_at, net_currency)
             VALUES (@key, @kind, @txn, @event_id, @product_id, @buyer_email, @subscriber_code, @recurrence,
                @gross_minor, @net_minor, @currency, TIMESTAMP_MILLIS(@occurred_at),
                TIMESTAMP_MILLIS(@paid_until), CURRENT_TIMESTAMP(), @net_currency)"
        );
        let (_, affected) = self
            .query(
                &sql,
                &[
                    P::Str("key", row.key.clone()),
                    P::Str("kind", row.kind.as_str().into()),
                    P::Str("txn", row.transaction.clone()),
                    P::Str("event_id", row.event_id.clone()),
                    P::Int("product_id", row.product_id),
                    P::Str("buyer_email", row.buyer_email.clone()),
                    P::OptStr("subscriber_code", row.subscriber_code.clone()),
                    P::OptInt("recurrence", row.recurrence.map(i64::from)),
                    P::Int("gross_minor", row.gross.minor),
                    P::OptInt("net_minor", row.producer_net.as_ref().map(|m| m.minor)),
                    P::Str("currency", row.gross.currency.clone()),
                    P::Int("occurred_at", row.occurred_at),
                    P::OptInt("paid_until", row.paid_until),
                    P::OptStr("net_currency", row.producer_net.as_ref().map(|m| m.currency.clone())),
                ],
            )
            .await?;
        // After the write, and on every call: a retry after a crash between the MERGE and
        // this line finds the row already there and still counts the change. A replaced
        // later reversal is dated on or after this row, so this day covers it.
        self.count_change(row.occurred_at).await?;
        Ok(affected == 1)
    }

    /// Moves the change marks of the day of `occurred_at` and every later day.
    async fn count_change(&self, occurred_at: Millis) -> anyhow::Result<()> {
        let sql = format!(
            "INSERT INTO {} (day, recorded_at) VALUES (DATE(TIMESTAMP_MILLIS(@at)), CURRENT_TIMESTAMP())",
            self.t("revenue_changes")
        );
        self.query(&sql, &[P::Int("at", occurred_at)]).await?;
        Ok(())
    }

    pub async fn rows_between(&self, from_ms: Millis, to_ms: Millis) -> anyhow::Result<Vec<RevenueRow>> {
        // BigQuery timestamps span years 1..=9999; an open end (i64::MIN/MAX) means "all".
        let clamp = |ms: Millis| ms.clamp(BQ_MIN_MS, BQ_MAX_MS);
        self.select_rows(
            "occurred_at >= TIMESTAMP_MILLIS(@from) AND occurred_at < TIMESTAMP_MILLIS(@to)",
            &[P::Int("from", clamp(from_ms)), P::Int("to", clamp(to_ms))],
        )
        .await
    }

    /// The rows of one buyer (email compared without case) in `products`: the products
    /// narrow the read to their clustered blocks instead of the whole table.
    pub async fn rows_of_buyer(&self, email: &str, products: &[i64]) -> anyhow::Result<Vec<RevenueRow>> {
        if products.is_empty() {
            return Ok(Vec::new());
        }
        // Integers only, so listing them in the SQL cannot inject anything.
        let list = products.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
        let filter = format!("product_id IN ({list}) AND LOWER(buyer_email) = LOWER(@email)");
        self.select_rows(&filter, &[P::Str("email", email.to_string())]).await
    }

    /// `revenue_facts` rows matching `filter`, oldest first (then by key).
    async fn select_rows(&self, filter: &str, params: &[P<'_>]) -> anyhow::Result<Vec<RevenueRow>> {
        let sql = format!(
            "SELECT key, kind, txn, event_id, product_id, buyer_email, subscriber_code, recurrence, gross_minor,
                    net_minor, currency, UNIX_MILLIS(occurred_at), UNIX_MILLIS(paid_until), net_currency
             FROM {} WHERE {filter} ORDER BY occurred_at, key",
            self.t("revenue_facts")
        );
        let (rows, _) = self.query(&sql, params).await?;
        rows.iter()
            .map(|r| {
                let currency = s(&r[10])?;
                Ok(RevenueRow {
                    key: s(&r[0])?,
                    kind: kind(&r[1])?,
                    transaction: s(&r[2])?,
                    event_id: s(&r[3])?,
                    product_id: i(&r[4])?,
                    buyer_email: s(&r[5])?,
                    subscriber_code: os(&r[6]),
                    recurrence: oi(&r[7])?.map(|n| n as u32),
                    gross: Money { minor: i(&r[8])?, currency: currency.clone() },
                    producer_net: oi(&r[9])?
                        .map(|minor| Money { minor, currency: os(&r[13]).unwrap_or(currency) }),
                    occurred_at: i(&r[11])?,
                    paid_until: oi(&r[12])?,
                })
            })
            .collect()
    }

    pub async fn delete_keys(&self, keys: Vec<String>) -> anyhow::Result<usize> {
        let facts = self.t("revenue_facts");
        let mut n = 0;
        for k in keys {
            let sql = format!("SELECT UNIX_MILLIS(occurred_at) FROM {facts} WHERE key = @key");
            let (rows, _) = self.query(&sql, &[P::Str("key", k.clone())]).await?;
            let Some(at) = rows.first().map(|r| i(&r[0])).transpose()? else { continue };
            // Counted before and after: no statement spans both tables, and a retry would
            // no longer find the row's day.
            self.count_change(at).await?;
            let sql = format!("DELETE FROM {facts} WHERE key = @key");
            n += self.query(&sql, &[P::Str("key", k)]).await?.1 as usize;
            self.count_change(at).await?;
        }
        Ok(n)
    }

    pub async fn currencies(&self) -> anyhow::Result<Vec<Currency>> {
        let sql = format!("SELECT DISTINCT currency FROM {} ORDER BY currency", self.t("revenue_facts"));
        let (rows, _) = self.query(&sql, &[]).await?;
        Ok(rows.iter().filter_map(|r| s(&r[0]).ok()?.parse().ok()).collect())
    }

    pub async fn kind_totals(&self, currency: &Currency, range: DayRange) -> anyhow::Result<Vec<KindTotal>> {
        let sql = format!(
            "SELECT DIV(UNIX_MILLIS(occurred_at), {DAY_MS}) AS d, product_id, kind, SUM(gross_minor), COUNT(*)
             FROM {} WHERE currency = @currency
               AND occurred_at >= TIMESTAMP_MILLIS(@from) AND occurred_at < TIMESTAMP_MILLIS(@to)
             GROUP BY d, product_id, kind",
            self.t("revenue_facts")
        );
        let (rows, _) = self
            .query(
                &sql,
                &[
                    P::Str("currency", currency.to_string()),
                    P::Int("from", range.start_ms()),
                    P::Int("to", range.end_ms()),
                ],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(KindTotal {
                    day_index: i(&r[0])?,
                    product_id: i(&r[1])?,
                    kind: kind(&r[2])?,
                    sum_minor: i(&r[3])?,
                    count: i(&r[4])?,
                })
            })
            .collect()
    }

    pub async fn subscription_facts(
        &self,
        currency: &Currency,
        w: SubscriptionWindow,
    ) -> anyhow::Result<Vec<SubscriptionFact>> {
        let facts = self.t("revenue_facts");
        let cols = "product_id, subscriber_code, txn, kind, gross_minor, UNIX_MILLIS(occurred_at) AS occurred_ms, \
                    UNIX_MILLIS(paid_until) AS paid_ms";
        let sql = format!(
            "WITH ch AS (
                SELECT {cols} FROM {facts}
                WHERE currency = @currency AND kind = 'charge' AND subscriber_code IS NOT NULL
                  AND occurred_at >= TIMESTAMP_MILLIS(@from) AND occurred_at < TIMESTAMP_MILLIS(@until)
                  AND COALESCE(paid_until, TIMESTAMP_ADD(occurred_at, INTERVAL 30 DAY)) > TIMESTAMP_MILLIS(@covers))
             SELECT * FROM ch
             UNION ALL
             SELECT {cols} FROM {facts}
             WHERE currency = @currency AND kind != 'charge' AND occurred_at < TIMESTAMP_MILLIS(@until)
               AND txn IN (SELECT txn FROM ch)"
        );
        let (rows, _) = self
            .query(
                &sql,
                &[
                    P::Str("currency", currency.to_string()),
                    P::Int("from", w.charges_from_ms),
                    P::Int("until", w.until_ms),
                    P::Int("covers", w.covers_from_ms),
                ],
            )
            .await?;
        rows.iter().map(|r| fact(r)).collect()
    }

    /// As in SQLite: the facts of every subscription whose status or MRR can change
    /// during `day`.
    pub async fn subscription_facts_changing(
        &self,
        currency: &Currency,
        day: Day,
    ) -> anyhow::Result<Vec<SubscriptionFact>> {
        let facts = self.t("revenue_facts");
        let w = SubscriptionWindow::for_range(DayRange::one(day));
        let cols = "product_id, subscriber_code, txn, kind, gross_minor, UNIX_MILLIS(occurred_at) AS occurred_ms, \
                    UNIX_MILLIS(paid_until) AS paid_ms";
        let within = |e: &str| format!("{e} >= TIMESTAMP_MILLIS(@from) AND {e} < TIMESTAMP_MILLIS(@until)");
        let sub = "CONCAT(CAST(product_id AS STRING), '/', subscriber_code)";
        let sql = format!(
            "WITH touched AS (
                SELECT {sub} AS s FROM {facts}
                WHERE currency = @currency AND kind = 'charge' AND subscriber_code IS NOT NULL
                  AND ({} OR {})
                UNION DISTINCT
                SELECT CONCAT(CAST(c.product_id AS STRING), '/', c.subscriber_code) FROM {facts} r
                JOIN {facts} c ON c.txn = r.txn
                WHERE r.currency = @currency AND r.kind IN ('refund', 'chargeback') AND {}
                  AND c.kind = 'charge' AND c.subscriber_code IS NOT NULL),
             ch AS (
                SELECT {cols} FROM {facts}
                WHERE currency = @currency AND kind = 'charge' AND subscriber_code IS NOT NULL
                  AND occurred_at >= TIMESTAMP_MILLIS(@charges_from) AND occurred_at < TIMESTAMP_MILLIS(@until)
                  AND COALESCE(paid_until, TIMESTAMP_ADD(occurred_at, INTERVAL 30 DAY)) > TIMESTAMP_MILLIS(@covers)
                  AND {sub} IN (SELECT s FROM touched))
             SELECT * FROM ch
             UNION ALL
             SELECT {cols} FROM {facts}
             WHERE currency = @currency AND kind != 'charge' AND occurred_at < TIMESTAMP_MILLIS(@until)
               AND txn IN (SELECT txn FROM ch)",
            within("occurred_at"),
            within("COALESCE(paid_until, TIMESTAMP_ADD(occurred_at, INTERVAL 30 DAY))"),
            within("r.occurred_at"),
        );
        let (rows, _) = self
            .query(
                &sql,
                &[
                    P::Str("currency", currency.to_string()),
                    P::Int("from", day.start_ms()),
                    P::Int("until", day.end_ms()),
                    P::Int("charges_from", w.charges_from_ms),
                    P::Int("covers", w.covers_from_ms),
                ],
            )
            .await?;
        rows.iter().map(|r| fact(r)).collect()
    }

    /// Delete-then-insert: `rollup_day` goes first and comes back last, so a reader
    /// never takes a half-written day for a stored one, and a crash in between leaves
    /// the days without a rollup (read live) until a retry or refresh writes them.
    pub async fn write_rollups(&self, rollups: &[(DayRollup, i64)]) -> anyhow::Result<()> {
        let days = rollups.iter().map(|(r, _)| format!("DATE '{}'", r.day)).collect::<Vec<_>>().join(", ");
        for table in ["rollup_day", "rollup_course", "rollup_subscription"] {
            self.query(&format!("DELETE FROM {} WHERE day IN ({days})", self.t(table)), &[]).await?;
        }
        let mut courses = Vec::new();
        let mut subscriptions = Vec::new();
        let mut marks = Vec::new();
        for (rollup, basis) in rollups {
            let day = rollup.day;
            for r in &rollup.courses {
                courses.push(format!(
                    "(DATE '{day}', {}, '{}', {}, {}, {}, {}, {}, {}, {})",
                    r.product_id,
                    Currency::try_from(r.currency.clone()).map_err(anyhow::Error::msg)?,
                    r.charges_minor,
                    r.refunds_minor,
                    r.chargebacks_minor,
                    r.total_minor,
                    r.charge_count,
                    r.refund_count,
                    r.chargeback_count
                ));
            }
            for s in &rollup.subscriptions {
                subscriptions.push(format!(
                    "(DATE '{day}', '{}', {}, {}, {}, {})",
                    Currency::try_from(s.currency.clone()).map_err(anyhow::Error::msg)?,
                    s.active,
                    s.mrr_minor,
                    s.churned,
                    s.started
                ));
            }
            marks.push(format!("(DATE '{day}', CURRENT_TIMESTAMP(), {basis})"));
        }
        for (table, values) in
            [("rollup_course", courses), ("rollup_subscription", subscriptions), ("rollup_day", marks)]
        {
            if !values.is_empty() {
                let sql = format!("INSERT INTO {} VALUES {}", self.t(table), values.join(", "));
                self.query(&sql, &[]).await?;
            }
        }
        Ok(())
    }

    /// No snapshot spans two BigQuery queries, so each rollup query carries the day's
    /// `rollup_day` rows (how many, and their basis): a day is taken only when it has
    /// exactly one, the same in both, and the marks are read first (a rollup written
    /// after that has a basis at or past them, and is fresh only if nothing changed).
    pub async fn rollup_slice(
        &self,
        range: DayRange,
        currency: Option<&Currency>,
    ) -> anyhow::Result<RollupSlice> {
        let bounds = || [P::Str("from", range.from.to_string()), P::Str("to", range.to.to_string())];
        let sql = format!(
            "SELECT UNIX_DATE(day), COUNT(*) FROM {} WHERE day <= DATE(@to) GROUP BY 1",
            self.t("revenue_changes")
        );
        let mut before = 0;
        let mut per_day = vec![0i64; range.len()];
        for r in self.query(&sql, &[P::Str("to", range.to.to_string())]).await?.0 {
            let (day, n) = (i(&r[0])?, i(&r[1])?);
            match usize::try_from(day - range.from.index()) {
                Ok(at) => per_day[at] += n,
                Err(_) => before += n,
            }
        }
        let marks = per_day
            .iter()
            .scan(before, |sum, n| {
                *sum += n;
                Some(*sum)
            })
            .collect();
        let one_day = |tables: &str, cols: &str, extra: &str| {
            format!(
                "WITH d AS (SELECT day, basis, COUNT(*) OVER (PARTITION BY day) AS n FROM {}
                            WHERE day >= DATE(@from) AND day <= DATE(@to))
                 SELECT CAST(d.day AS STRING), d.n, d.basis{cols} FROM d{tables}{extra}",
                self.t("rollup_day")
            )
        };
        let mut stored: BTreeMap<Day, StoredRollup> = BTreeMap::new();
        // Days this read can trust: one `rollup_day` row with a basis in every query.
        let mut seen: BTreeMap<Day, Option<i64>> = BTreeMap::new();
        let mut note = |r: &[Value]| -> anyhow::Result<Option<Day>> {
            let day: Day = s(&r[0])?.parse().map_err(anyhow::Error::msg)?;
            let basis = if i(&r[1])? == 1 { oi(&r[2])? } else { None };
            let agreed = seen.entry(day).or_insert(basis);
            if *agreed != basis {
                *agreed = None;
            }
            Ok(agreed.map(|_| day))
        };
        let Some(currency) = currency else {
            for r in self.query(&one_day("", "", ""), &bounds()).await?.0 {
                note(&r)?;
            }
            drop(note);
            for (day, basis) in seen {
                if let Some(basis) = basis {
                    stored.insert(day, StoredRollup { basis, courses: Vec::new(), subscription: None });
                }
            }
            return Ok(RollupSlice { range, marks, stored });
        };
        let with = |table: &str| {
            format!(" LEFT JOIN {} x ON x.day = d.day AND x.currency = @currency", self.t(table))
        };
        let p = || {
            let [a, b] = bounds();
            [a, b, P::Str("currency", currency.to_string())]
        };
        let course_sql = one_day(
            &with("rollup_course"),
            ", x.product_id, x.currency, x.charges_minor, x.refunds_minor, x.chargebacks_minor, x.total_minor, \
             x.charge_count, x.refund_count, x.chargeback_count",
            " ORDER BY 1, 4",
        );
        let mut courses: BTreeMap<Day, Vec<CourseDay>> = BTreeMap::new();
        for r in self.query(&course_sql, &p()).await?.0 {
            let Some(day) = note(&r)? else { continue };
            let list = courses.entry(day).or_default();
            if !r[3].is_null() {
                list.push(course(s(&r[0])?, &r[3..])?);
            }
        }
        let sub_sql = one_day(
            &with("rollup_subscription"),
            ", x.currency, x.active, x.mrr_minor, x.churned, x.started",
            "",
        );
        let mut subscriptions: BTreeMap<Day, SubscriptionDay> = BTreeMap::new();
        for r in self.query(&sub_sql, &p()).await?.0 {
            let Some(day) = note(&r)? else { continue };
            if !r[3].is_null() {
                subscriptions.insert(day, subscription(s(&r[0])?, &r[3..])?);
            }
        }
        drop(note);
        for (day, basis) in seen {
            if let Some(basis) = basis {
                let courses = courses.remove(&day).unwrap_or_default();
                stored.insert(day, StoredRollup { basis, courses, subscription: subscriptions.remove(&day) });
            }
        }
        Ok(RollupSlice { range, marks, stored })
    }

    pub async fn read_rollup(&self, day: Day) -> anyhow::Result<Option<DayRollup>> {
        let d = day.to_string();
        let p = || [P::Str("day", d.clone())];
        let sql = format!("SELECT COUNT(*) FROM {} WHERE day = DATE(@day)", self.t("rollup_day"));
        let (known, _) = self.query(&sql, &p()).await?;
        if known.first().map(|r| i(&r[0])).transpose()?.unwrap_or(0) == 0 {
            return Ok(None);
        }
        let sql = format!(
            "SELECT product_id, currency, charges_minor, refunds_minor, chargebacks_minor, total_minor,
                    charge_count, refund_count, chargeback_count
             FROM {} WHERE day = DATE(@day) ORDER BY product_id, currency",
            self.t("rollup_course")
        );
        let courses = self
            .query(&sql, &p())
            .await?
            .0
            .iter()
            .map(|r| course(d.clone(), r))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let sql = format!(
            "SELECT currency, active, mrr_minor, churned, started FROM {} WHERE day = DATE(@day) ORDER BY currency",
            self.t("rollup_subscription")
        );
        let subscriptions = self
            .query(&sql, &p())
            .await?
            .0
            .iter()
            .map(|r| subscription(d.clone(), r))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Some(DayRollup { day, courses, subscriptions }))
    }
}

/// The reporting views, for BI tools reading BigQuery directly. They state the same
/// definitions as [`tollgate_domain::metrics`] (a test compares them).
fn views(facts: &str, coverage: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "daily_revenue_by_course",
            format!(
                "SELECT DATE(occurred_at) AS day, product_id, currency,
                    SUM(IF(kind = 'charge', gross_minor, 0)) AS charges_minor,
                    SUM(IF(kind IN ('refund', 'partial_refund'), gross_minor, 0)) AS refunds_minor,
                    SUM(IF(kind = 'chargeback', gross_minor, 0)) AS chargebacks_minor,
                    SUM(gross_minor) AS total_minor,
                    COUNTIF(kind = 'charge') AS charge_count,
                    COUNTIF(kind IN ('refund', 'partial_refund')) AS refund_count,
                    COUNTIF(kind = 'chargeback') AS chargeback_count
                 FROM {facts} GROUP BY day, product_id, currency"
            ),
        ),
        (
            "refunds_and_chargebacks",
            format!(
                "SELECT DATE(occurred_at) AS day, product_id, currency, kind,
                    SUM(gross_minor) AS amount_minor, COUNT(*) AS count
                 FROM {facts} WHERE kind != 'charge' GROUP BY day, product_id, currency, kind"
            ),
        ),
        (
            // One row per day and subscription a paid, unreversed charge covers at the
            // day's last instant, with that subscription's monthly value.
            "subscription_coverage",
            format!(
                "WITH reversals AS (
                    SELECT txn, MIN(occurred_at) AS reversed_at FROM {facts}
                    WHERE kind IN ('refund', 'chargeback') GROUP BY txn),
                 charges AS (
                    SELECT c.product_id, c.subscriber_code, c.currency, c.occurred_at, c.gross_minor,
                        COALESCE(c.paid_until, TIMESTAMP_ADD(c.occurred_at, INTERVAL 30 DAY)) AS paid_until,
                        r.reversed_at
                    FROM {facts} c LEFT JOIN reversals r ON r.txn = c.txn
                    WHERE c.kind = 'charge' AND c.subscriber_code IS NOT NULL),
                 spans AS (
                    SELECT *, LEAST(paid_until, COALESCE(reversed_at, paid_until)) AS ends_at,
                        DIV(gross_minor, GREATEST(1, CAST(ROUND(
                            TIMESTAMP_DIFF(paid_until, occurred_at, MILLISECOND) / {DAY_MS} / 30.44) AS INT64)))
                          AS monthly_minor
                    FROM charges),
                 days AS (
                    SELECT s.*, d AS day,
                        TIMESTAMP_SUB(TIMESTAMP(DATE_ADD(d, INTERVAL 1 DAY)), INTERVAL 1 MILLISECOND) AS last_instant
                    FROM spans s, UNNEST(GENERATE_DATE_ARRAY(DATE(s.occurred_at), DATE(s.ends_at))) AS d),
                 covering AS (
                    SELECT * FROM days WHERE occurred_at <= last_instant AND last_instant < ends_at),
                 ranked AS (
                    SELECT day, product_id, subscriber_code, currency, monthly_minor,
                        ROW_NUMBER() OVER (PARTITION BY day, product_id, subscriber_code, currency
                                           ORDER BY occurred_at DESC) AS rn
                    FROM covering)
                 SELECT day, product_id, subscriber_code, currency, monthly_minor FROM ranked WHERE rn = 1"
            ),
        ),
        (
            "active_subscriptions",
            format!(
                "SELECT day, currency, COUNT(*) AS active, SUM(monthly_minor) AS mrr_minor
                 FROM {coverage} GROUP BY day, currency"
            ),
        ),
        (
            "monthly_recurring_revenue",
            format!("SELECT day, currency, SUM(monthly_minor) AS mrr_minor FROM {coverage} GROUP BY day, currency"),
        ),
        (
            "churn",
            format!(
                "SELECT DATE_ADD(a.day, INTERVAL 1 DAY) AS day, a.currency, COUNT(*) AS churned
                 FROM {coverage} a LEFT JOIN {coverage} b
                   ON b.day = DATE_ADD(a.day, INTERVAL 1 DAY) AND b.product_id = a.product_id
                  AND b.subscriber_code = a.subscriber_code AND b.currency = a.currency
                 WHERE b.day IS NULL GROUP BY 1, 2"
            ),
        ),
    ]
}

/// A subscription fact row: product, subscriber, txn, kind, gross, occurred, paid until.
fn fact(r: &[Value]) -> anyhow::Result<SubscriptionFact> {
    Ok(SubscriptionFact {
        product_id: i(&r[0])?,
        subscriber_code: os(&r[1]),
        transaction: s(&r[2])?,
        kind: kind(&r[3])?,
        gross_minor: i(&r[4])?,
        occurred_at: i(&r[5])?,
        paid_until: oi(&r[6])?,
    })
}

/// A `rollup_course` row: product, currency, then the sums and counts.
fn course(day: String, r: &[Value]) -> anyhow::Result<CourseDay> {
    Ok(CourseDay {
        day,
        product_id: i(&r[0])?,
        currency: s(&r[1])?,
        charges_minor: i(&r[2])?,
        refunds_minor: i(&r[3])?,
        chargebacks_minor: i(&r[4])?,
        total_minor: i(&r[5])?,
        charge_count: i(&r[6])?,
        refund_count: i(&r[7])?,
        chargeback_count: i(&r[8])?,
    })
}

/// A `rollup_subscription` row: currency, active, MRR, churned, started.
fn subscription(day: String, r: &[Value]) -> anyhow::Result<SubscriptionDay> {
    Ok(SubscriptionDay {
        day,
        currency: s(&r[0])?,
        active: i(&r[1])?,
        mrr_minor: i(&r[2])?,
        churned: i(&r[3])?,
        started: i(&r[4])?,
    })
}

fn cells(rows: Option<Vec<TableRow>>) -> Vec<Vec<Value>> {
    rows.unwrap_or_default()
        .into_iter()
        .map(|r| r.columns.unwrap_or_default().into_iter().map(|c| c.value.unwrap_or(Value::Null)).collect())
        .collect()
}

fn s(v: &Value) -> anyhow::Result<String> {
    v.as_str().map(str::to_string).ok_or_else(|| anyhow::anyhow!("expected a string, got {v}"))
}
fn os(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}
fn oi(v: &Value) -> anyhow::Result<Option<i64>> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => {
            n.as_i64().map(Some).ok_or_else(|| anyhow::anyhow!("expected an integer, got {v}"))
        }
        // INT64 arrives as a string; NUMERIC results of SUM may carry a fraction of zeros.
        Value::String(t) => {
            let t = t.split('.').next().unwrap_or(t);
            t.parse().map(Some).map_err(|_| anyhow::anyhow!("expected an integer, got {v}"))
        }
        _ => anyhow::bail!("expected an integer, got {v}"),
    }
}
fn i(v: &Value) -> anyhow::Result<i64> {
    oi(v)?.ok_or_else(|| anyhow::anyhow!("expected an integer, got null"))
}
fn kind(v: &Value) -> anyhow::Result<RevenueKind> {
    let k = s(v)?;
    RevenueKind::parse(&k).ok_or_else(|| anyhow::anyhow!("unknown revenue kind {k:?}"))
}

/// FNV-1a, 64 bits: a digest that stays the same across builds and Rust versions.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

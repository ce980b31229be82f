//! The staff console (`/console`): server-rendered pages over the same services as the
//! staff API (`links::LinkService`, `journal`, `ops`), so the rules are the API's rules.
//! Plain HTML forms, no JavaScript: nothing to build or vendor, and it works in any
//! browser and under a strict CSP. Signed in with the staff API token into a server-side
//! session (`session.rs`); every form that changes something carries the session's CSRF
//! token, checked before anything else.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tollgate_domain::ProductId;
use tollgate_domain::hotmart::Email;

use super::revenue::{html_escape as esc, signed_in};
use crate::links::{LinkError, LinkInput};
use crate::session::{Role, Session};
use crate::startup::AppState;
use crate::{journal, ops};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(home))
        .route("/console/login", post(login))
        .route("/console/logout", post(logout))
        .route("/console/links", get(links_page).post(save_link))
        .route("/console/links/{product}/delete", post(delete_link))
        .route("/console/students", get(students_page))
        .route("/console/journal", get(journal_page))
        .route("/console/journal/redrive", post(redrive))
}

/// A page answer: the HTML, with no caching (it shows live state and a CSRF token).
fn page(status: StatusCode, title: &str, session: Option<&Session>, body: &str) -> Response {
    let nav = match session {
        Some(s) => format!(
            r#"<nav><b>Tollgate</b> <a href="/console/links">Links</a> <a href="/console/students">Students</a>
<a href="/console/journal">Journal</a> <a href="/dashboard">Revenue</a>
<form method="post" action="/console/logout" class="inline"><input type="hidden" name="csrf" value="{}"><button>Sign out</button></form></nav>"#,
            esc(&s.csrf)
        ),
        None => "<nav><b>Tollgate</b></nav>".into(),
    };
    let html = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Tollgate · {}</title>
<style>body{{font:14px system-ui,sans-serif;margin:0;background:#f5f7fa;color:#1f2933}}
nav{{background:#1f2933;color:#fff;padding:10px 20px;display:flex;gap:16px;align-items:center}}
nav a{{color:#cbd2d9}} main{{padding:20px;max-width:1100px}} table{{border-collapse:collapse;width:100%;background:#fff}}
td,th{{border:1px solid #e4e7eb;padding:6px 8px;text-align:left;vertical-align:top}} .inline{{display:inline}}
section{{background:#fff;border:1px solid #e4e7eb;border-radius:8px;padding:14px;margin:14px 0}}
.error{{color:#c92a2a}} .ok{{color:#2b8a3e}} input,select,button{{font:inherit;padding:4px 8px}}
label{{margin-right:12px}} .muted{{color:#7b8794}}</style></head>
<body>{nav}<main><h1>{}</h1>{body}</main></body></html>"#,
        esc(title),
        esc(title)
    );
    (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

fn sign_in_page(message: &str) -> Response {
    let body = format!(
        r#"<section><form method="post" action="/console/login">
<label>Staff API token <input type="password" name="token" autofocus required></label>
<button>Sign in</button><p class="error">{}</p></form></section>"#,
        esc(message)
    );
    page(StatusCode::UNAUTHORIZED, "Staff console", None, &body)
}

/// The staff session of a request, or the sign-in page.
fn staff(s: &AppState, headers: &HeaderMap) -> Result<Session, Response> {
    match s.sessions.of(headers) {
        Some(session) if session.role == Role::Staff => Ok(session),
        _ => Err(sign_in_page("")),
    }
}

/// `application/x-www-form-urlencoded`, keeping repeated keys (the course picker).
fn form(body: &str) -> Vec<(String, String)> {
    let decode =
        |v: &str| percent_encoding::percent_decode_str(&v.replace('+', " ")).decode_utf8_lossy().into_owned();
    body.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn field<'a>(f: &'a [(String, String)], name: &str) -> Option<&'a str> {
    f.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.trim().is_empty())
}

/// The staff session, and the form if its CSRF token is the session's.
fn checked(
    s: &AppState,
    headers: &HeaderMap,
    body: &str,
) -> Result<(Session, Vec<(String, String)>), Response> {
    let session = staff(s, headers)?;
    let f = form(body);
    if !session.csrf_ok(field(&f, "csrf").unwrap_or("")) {
        return Err(page(
            StatusCode::FORBIDDEN,
            "Form expired",
            Some(&session),
            "<p class=\"error\">This form is not from your current session; reload the page and try again.</p>",
        ));
    }
    Ok((session, f))
}

fn csrf_input(s: &Session) -> String {
    format!(r#"<input type="hidden" name="csrf" value="{}">"#, esc(&s.csrf))
}

async fn home(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match staff(&s, &headers) {
        Ok(_) => Redirect::to("/console/links").into_response(),
        Err(sign_in) => sign_in,
    }
}

async fn login(State(s): State<AppState>, headers: HeaderMap, body: String) -> Response {
    let f = form(&body);
    match s.tokens.role(field(&f, "token").unwrap_or("").trim().as_bytes()) {
        Some(Role::Staff) => signed_in(&s, &headers, Role::Staff, "/console/links"),
        _ => sign_in_page("That is not the staff API token."),
    }
}

async fn logout(State(s): State<AppState>, headers: HeaderMap, body: String) -> Response {
    if let Err(r) = checked(&s, &headers, &body) {
        return r;
    }
    s.sessions.end(&headers);
    let https = crate::session::over_https(s.settings.http.https, &headers);
    let mut res = Redirect::to("/console").into_response();
    res.headers_mut().insert(header::SET_COOKIE, crate::session::set_cookie("", https));
    res
}

/// A server-side failure: a generic message and a request id (details in the log).
fn failed(session: &Session, what: &str, e: &dyn std::fmt::Display) -> Response {
    let id = crate::error::request_id();
    tracing::error!(request_id = %id, error = %e, "console: {what}");
    let body = format!(r#"<p class="error">{} failed; request id {id}.</p>"#, esc(what));
    page(StatusCode::SERVICE_UNAVAILABLE, "Something went wrong", Some(session), &body)
}

#[derive(serde::Deserialize)]
struct LinksQuery {
    q: Option<String>,
    edit: Option<i64>,
}

async fn links_page(State(s): State<AppState>, headers: HeaderMap, Query(q): Query<LinksQuery>) -> Response {
    let session = match staff(&s, &headers) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let links = match s.links.all().await {
        Ok(l) => l,
        Err(e) => return failed(&session, "reading the links", &e),
    };
    let search = q.q.clone().unwrap_or_default();
    let mut body = format!(
        r#"<form method="get"><input name="q" placeholder="product id" value="{}"> <button>Search</button></form>
<table><tr><th>Product</th><th>Courses</th><th>Policy</th><th></th></tr>"#,
        esc(&search)
    );
    for l in links.iter().filter(|l| l.product_id.0.to_string().contains(search.trim())) {
        let _ = write!(
            body,
            r#"<tr><td>{p}</td><td>{}</td><td>{}</td><td><a href="/console/links?edit={p}">Edit</a>
<form method="post" action="/console/links/{p}/delete" class="inline">{}<button>Delete</button></form></td></tr>"#,
            esc(&l.courses.join(", ")),
            esc(&l.policy.to_string()),
            csrf_input(&session),
            p = l.product_id.0
        );
    }
    body.push_str("</table>");
    let editing = q.edit.and_then(|p| links.iter().find(|l| l.product_id.0 == p));
    let courses = match s.links.courses().await {
        Ok(c) => c,
        Err(e) => return failed(&session, "listing the TalentLMS courses", &e),
    };
    let picked: Vec<String> = editing.map(|l| l.courses.clone()).unwrap_or_default();
    let mut picker = String::new();
    for c in &courses {
        let id = c.id.to_string();
        let _ = write!(
            picker,
            r#"<label><input type="checkbox" name="courses" value="{}"{}> {} <span class="muted">({})</span></label>"#,
            esc(&id),
            if picked.contains(&id) { " checked" } else { "" },
            esc(&c.name),
            esc(&id)
        );
    }
    let (product, policy) = match editing {
        Some(l) => (l.product_id.0.to_string(), l.policy.to_string()),
        None => (String::new(), String::new()),
    };
    let option = |v: &str| {
        let sel = if policy.starts_with(v) { " selected" } else { "" };
        format!(r#"<option value="{v}"{sel}>{v}</option>"#)
    };
    let _ = write!(
        body,
        r#"<section><h2>{}</h2><form method="post" action="/console/links">{}
<p><label>Product id <input name="product_id" value="{}" required></label></p>
<p>Courses (from TalentLMS): {picker}</p>
<p><label>Policy <select name="policy">{}{}{}</select></label>
<label>Term (fixed_term) <input name="term" placeholder="365d" size="6"></label>
<label>Grace (subscription) <input name="grace" placeholder="3d" size="6"></label></p>
<button>Save</button></form></section>"#,
        if editing.is_some() { "Edit link" } else { "New link" },
        csrf_input(&session),
        esc(&product),
        option("lifetime"),
        option("fixed_term"),
        option("subscription"),
    );
    page(StatusCode::OK, "Course links", Some(&session), &body)
}

async fn save_link(State(s): State<AppState>, headers: HeaderMap, body: String) -> Response {
    let (session, f) = match checked(&s, &headers, &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let product = field(&f, "product_id").map(|p| p.trim().parse::<i64>());
    let Some(Ok(product)) = product else {
        let body =
            r#"<p class="error">product_id: not a product id</p><p><a href="/console/links">Back</a></p>"#;
        return page(StatusCode::UNPROCESSABLE_ENTITY, "Not saved", Some(&session), body);
    };
    let input = || LinkInput {
        product_id: Some(product),
        courses: f.iter().filter(|(k, _)| k == "courses").map(|(_, v)| v.clone()).collect(),
        policy: field(&f, "policy").unwrap_or_default().to_string(),
        term: field(&f, "term").map(str::to_string),
        grace: field(&f, "grace").map(str::to_string),
    };
    let confirm = field(&f, "confirm") == Some("true");
    match s.links.create_or_replace(input(), confirm).await {
        Ok((link, fan_out)) => {
            let warning = fan_out.warning.as_deref().map(|w| format!(r#"<p class="error">{}</p>"#, esc(w)));
            let body = format!(
                r#"<p class="ok">Product {} now unlocks {} ({}).</p>
<p>Sent to the product's students: signalled {} running and resumed {} settled workflow(s).</p>{}
<p><a href="/console/links">Back to the links</a></p>"#,
                link.product_id.0,
                esc(&link.courses.join(", ")),
                esc(&link.policy.to_string()),
                fan_out.signalled,
                fan_out.resumed,
                warning.unwrap_or_default()
            );
            page(StatusCode::OK, "Link saved", Some(&session), &body)
        }
        Err(LinkError::ConfirmationRequired(impact)) => {
            // The same form again, every field kept, plus confirm=true.
            let mut hidden = String::new();
            for (k, v) in f.iter().filter(|(k, _)| k != "confirm") {
                let _ = write!(hidden, r#"<input type="hidden" name="{}" value="{}">"#, esc(k), esc(v));
            }
            let mut what = Vec::new();
            if !impact.removed_courses.is_empty() {
                what.push(format!("removes course(s) <b>{}</b>", esc(&impact.removed_courses.join(", "))));
            }
            if let Some(shortened) = &impact.shortened {
                what.push(format!("shortens access (<b>{}</b>)", esc(shortened)));
            }
            let body = format!(
                r#"<section><p>This change to product {product} {}.
<b id="affected">{}</b> student(s) with current access may be unenrolled.</p>
<form method="post" action="/console/links">{hidden}<input type="hidden" name="confirm" value="true">
<button id="confirm">Apply the change</button> <a href="/console/links">Cancel</a></form></section>"#,
                what.join(" and "),
                impact.students_affected
            );
            page(StatusCode::CONFLICT, "Confirm the change", Some(&session), &body)
        }
        Err(LinkError::Invalid(fields)) => invalid(&session, &fields),
        Err(LinkError::TalentLmsUnavailable(e)) => failed(&session, "checking the courses in TalentLMS", &e),
        Err(e) => failed(&session, "saving the link", &e),
    }
}

fn invalid(session: &Session, fields: &BTreeMap<String, String>) -> Response {
    let mut body = String::from("<ul class=\"error\">");
    for (k, v) in fields {
        let _ = write!(body, "<li>{}: {}</li>", esc(k), esc(v));
    }
    body.push_str(r#"</ul><p><a href="/console/links">Back</a></p>"#);
    page(StatusCode::UNPROCESSABLE_ENTITY, "Not saved", Some(session), &body)
}

async fn delete_link(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(product): Path<i64>,
    body: String,
) -> Response {
    let session = match checked(&s, &headers, &body) {
        Ok((session, _)) => session,
        Err(r) => return r,
    };
    match s.links.delete(ProductId(product)).await {
        Ok(_) => {
            let body = format!(
                r#"<p class="ok">Removed the link of product {product}. Current students keep their access; new purchases wait for a link.</p>
<p><a href="/console/links">Back to the links</a></p>"#
            );
            page(StatusCode::OK, "Link removed", Some(&session), &body)
        }
        Err(LinkError::NotFound(_)) => page(
            StatusCode::NOT_FOUND,
            "No such link",
            Some(&session),
            "<p><a href=\"/console/links\">Back</a></p>",
        ),
        Err(e) => failed(&session, "removing the link", &e),
    }
}

#[derive(serde::Deserialize)]
struct StudentQuery {
    email: Option<String>,
}

fn when(ms: Option<i64>) -> String {
    match ms.and_then(chrono::DateTime::from_timestamp_millis) {
        Some(t) if t.format("%Y").to_string() == "9999" => "lifetime".into(),
        Some(t) => t.format("%Y-%m-%d %H:%M UTC").to_string(),
        None => "-".into(),
    }
}

async fn students_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<StudentQuery>,
) -> Response {
    let session = match staff(&s, &headers) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let raw = q.email.unwrap_or_default();
    let mut body = format!(
        r#"<form method="get"><input name="email" type="email" placeholder="student email" value="{}" size="40"> <button>Find</button></form>"#,
        esc(&raw)
    );
    if raw.trim().is_empty() {
        return page(StatusCode::OK, "Students", Some(&session), &body);
    }
    let Ok(email) = Email::parse(&raw) else {
        body.push_str("<p class=\"error\">That is not an email address.</p>");
        return page(StatusCode::UNPROCESSABLE_ENTITY, "Students", Some(&session), &body);
    };
    let rows = match s.docs.access_by_email(email.as_str()).await {
        Ok(r) => r,
        Err(e) => return failed(&session, "reading the student's purchases", &e),
    };
    if rows.is_empty() {
        let _ = write!(body, "<p>No purchases for {}.</p>", esc(email.as_str()));
        return page(StatusCode::NOT_FOUND, "Students", Some(&session), &body);
    }
    let client = s.temporal.client().await.ok();
    // Only this buyer's rows, in the products of their purchases (never a full scan).
    let products: Vec<i64> = rows.iter().map(|r| r.product_id).collect();
    let revenue = match &s.warehouse {
        Some(w) => match w.rows_of_buyer(email.as_str(), &products).await {
            Ok(rows) => Some(rows),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "console: cannot read the student's revenue rows");
                None
            }
        },
        None => None,
    };
    let ns = s.settings.temporal.client.namespace.clone();
    for r in &rows {
        let live = match client {
            Some(c) => ops::status(c, &r.workflow_id).await.ok(),
            None => None,
        };
        let (state, until, courses, reason) = match &live {
            Some(st) => {
                (st.state.as_str().to_string(), st.until, st.enrolled_courses.clone(), st.reason.clone())
            }
            None => (r.state.clone(), r.until, r.courses.clone(), r.reason.clone()),
        };
        let ui = format!(
            "{}/namespaces/{}/workflows/{}",
            s.settings.temporal_ui_url,
            esc(&ns),
            percent_encoding::utf8_percent_encode(&r.workflow_id, percent_encoding::NON_ALPHANUMERIC)
        );
        let _ = write!(
            body,
            r#"<section class="access"><h2>{} · product {}</h2>
<p>State <b class="state">{}</b> · until {} · courses {} · {}</p><p>{}</p>
<p><a href="{ui}" target="_blank" rel="noopener">Open the run in the Temporal UI</a></p>"#,
            esc(&r.workflow_id),
            r.product_id,
            esc(&state),
            when(until),
            esc(&courses.join(", ")),
            if live.is_some() { "live from the running workflow" } else { "from the stored record" },
            esc(&reason)
        );
        if let Some(st) = &live {
            body.push_str("<h3>Decisions</h3><table class=\"timeline\"><tr><th>When</th><th>State</th><th>Until</th><th>Reason</th><th>TalentLMS</th></tr>");
            for d in &st.decisions {
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    when(Some(d.at)),
                    esc(d.state.as_str()),
                    when(d.until),
                    esc(&d.reason),
                    esc(&d.actions.join("; "))
                );
            }
            body.push_str("</table>");
        }
        if let Some(rev) = &revenue {
            body.push_str("<h3>Revenue rows</h3><table><tr><th>Key</th><th>When</th><th>Amount</th></tr>");
            for row in rev.iter().filter(|x| x.product_id == r.product_id) {
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&row.key),
                    when(Some(row.occurred_at)),
                    esc(&row.gross.to_string())
                );
            }
            body.push_str("</table>");
        }
        body.push_str("</section>");
    }
    page(StatusCode::OK, "Students", Some(&session), &body)
}

async fn journal_page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let session = match staff(&s, &headers) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let read = async {
        let counts = s.docs.journal_counts().await?;
        let oldest = crate::metrics::oldest_pending_age(&s.docs).await?;
        anyhow::Ok((counts, oldest, s.docs.quarantined(None, 100).await?))
    };
    let ((entries, pending), oldest, quarantined) = match read.await {
        Ok(x) => x,
        Err(e) => return failed(&session, "reading the journal", &e),
    };
    let mut body = format!(
        r#"<section><p>Entries <b>{entries}</b> · waiting for Temporal <b id="pending">{pending}</b> · oldest waiting <b id="oldest">{oldest}</b> s ·
quarantined <b id="quarantined">{}</b></p></section>
<section><h2>Quarantine</h2><form method="post" action="/console/journal/redrive">{}<button>Redrive all</button></form>
<table><tr><th>Id</th><th>Received</th><th>Event</th><th>Reason</th><th>Parser</th><th></th></tr>"#,
        quarantined.len(),
        csrf_input(&session)
    );
    for q in &quarantined {
        let _ = write!(
            body,
            r#"<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><form method="post" action="/console/journal/redrive">{}
<input type="hidden" name="id" value="{}"><button>Redrive</button></form></td></tr>"#,
            esc(&q.key),
            when(Some(q.received_at)),
            esc(q.event_name.as_deref().unwrap_or("-")),
            esc(&q.reason),
            q.parser_version.map_or("-".into(), |v| v.to_string()),
            csrf_input(&session),
            esc(&q.key)
        );
    }
    body.push_str("</table></section><section><h2>Latest revenue reconciliations</h2>");
    let reports = match s.temporal.client().await {
        Ok(c) => ops::latest_reconciliations(c, 5).await,
        Err(e) => Err(e),
    };
    match reports {
        Ok(reports) if reports.is_empty() => body.push_str(r#"<p class="muted">None has completed yet.</p>"#),
        Ok(reports) => {
            body.push_str(
                r#"<table class="reconciliations"><tr><th>Run</th><th>Window</th><th>Summary</th></tr>"#,
            );
            for (id, r) in &reports {
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td>{} to {}</td><td>{}</td></tr>",
                    esc(id),
                    when(Some(r.report.from_ms)),
                    when(Some(r.report.to_ms)),
                    esc(&r.summary)
                );
            }
            body.push_str("</table>");
        }
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "console: cannot list reconciliations");
            body.push_str(r#"<p class="error">Temporal did not answer; the reports are in its UI.</p>"#);
        }
    }
    body.push_str(r#"</section><section><h2>Latest Hotmart reconciliations</h2>"#);
    match crate::hotmart_ops::latest_reports(&s.docs, 5).await {
        Ok(reports) if reports.is_empty() => body.push_str(r#"<p class="muted">None has run yet.</p>"#),
        Ok(reports) => {
            body.push_str(
                r#"<table class="hotmart-reconciliations"><tr><th>Run</th><th>Window</th><th>Summary</th></tr>"#,
            );
            for r in &reports {
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td>{} to {}</td><td>{}</td></tr>",
                    esc(&r.id),
                    when(Some(r.from_ms)),
                    when(Some(r.to_ms)),
                    esc(&r.summary())
                );
            }
            body.push_str("</table>");
        }
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "console: cannot list Hotmart reconciliations");
            body.push_str(r#"<p class="error">The document store did not answer.</p>"#);
        }
    }
    body.push_str("</section>");
    page(StatusCode::OK, "Webhook journal", Some(&session), &body)
}

async fn redrive(State(s): State<AppState>, headers: HeaderMap, body: String) -> Response {
    let (session, f) = match checked(&s, &headers, &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let id = field(&f, "id").map(str::to_string);
    match journal::redrive(&s.docs, id.clone()).await {
        Ok(Some(report)) => {
            if !report.released.is_empty() {
                s.wake.notify_one();
            }
            let mut body = format!(
                "<p class=\"ok\">Released {} (forwarded to their workflows); still quarantined {}.</p><ul>",
                report.released.len(),
                report.still_quarantined.len()
            );
            for q in &report.still_quarantined {
                let _ = write!(body, "<li>{}: {}</li>", esc(&q.key), esc(&q.reason));
            }
            body.push_str(r#"</ul><p><a href="/console/journal">Back to the journal</a></p>"#);
            page(StatusCode::OK, "Redrive", Some(&session), &body)
        }
        Ok(None) => page(
            StatusCode::NOT_FOUND,
            "Redrive",
            Some(&session),
            &format!("<p>{} is not quarantined.</p>", esc(&id.unwrap_or_default())),
        ),
        Err(e) => failed(&session, "redriving", &e),
    }
}

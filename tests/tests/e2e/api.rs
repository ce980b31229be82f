//! The staff REST API: every route's success and error statuses, auth, pagination, the
//! OpenAPI document against the real routes, and the workflow effects of link changes.

use serde_json::{Value, json};
use tollgate_domain::fixtures::Sale;
use tollgate_tests::{Stack, StackOptions, now_ms, purchase_wf, unique, unique_product};

use crate::WAIT;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_crud_validation_auth_and_pagination() {
    let stack = Stack::spawn(StackOptions::default()).await;
    let p = unique_product();
    let body = json!({"product_id": p, "courses": ["101"], "policy": "lifetime"});

    // Auth.
    assert_eq!(stack.api_as("GET", "/api/links", None, None).await.0, 401);
    assert_eq!(stack.api_as("GET", "/api/links", None, Some("nope")).await.0, 401);

    // Create, conflict, read.
    let (code, b) = stack.api("POST", "/api/links", Some(body.clone())).await;
    assert_eq!(code, 201, "{b}");
    assert_eq!(b["policy"], "lifetime");
    assert_eq!(stack.api("POST", "/api/links", Some(body.clone())).await.0, 409);
    let (code, b) = stack.api("GET", &format!("/api/links/{p}"), None).await;
    assert_eq!((code, b["courses"].clone()), (200, json!(["101"])));
    assert_eq!(stack.api("GET", "/api/links/424242424242", None).await.0, 404);
    assert_eq!(stack.api("GET", "/api/links/abc", None).await.0, 422);

    // Validation: field-level reasons.
    let (code, b) = stack
        .api("POST", "/api/links", Some(json!({"product_id": -1, "courses": [], "policy": "forever"})))
        .await;
    assert_eq!(code, 422, "{b}");
    for f in ["product_id", "courses", "policy"] {
        assert!(b["fields"][f].is_string(), "no reason for {f}: {b}");
    }
    let (code, b) = stack
        .api(
            "POST",
            "/api/links",
            Some(json!({"product_id": unique_product(), "courses": ["101"], "policy": "fixed_term"})),
        )
        .await;
    assert_eq!((code, b["fields"]["term"].is_string()), (422, true), "{b}");
    let (code, b) = stack
        .api("POST", "/api/links", Some(json!({"product_id": unique_product(), "courses": ["101"], "policy": "subscription", "grace": "soon"})))
        .await;
    assert_eq!((code, b["fields"]["grace"].is_string()), (422, true), "{b}");
    // Course ids are checked against TalentLMS.
    let (code, b) = stack
        .api(
            "POST",
            "/api/links",
            Some(json!({"product_id": unique_product(), "courses": ["999"], "policy": "lifetime"})),
        )
        .await;
    assert_eq!(code, 422, "{b}");
    assert!(b["fields"]["courses"].as_str().unwrap().contains("999"), "{b}");

    // Pagination: three more links, pages of two.
    let base = unique_product() * 10;
    for i in 0..3 {
        let (code, _) = stack
            .api(
                "POST",
                "/api/links",
                Some(json!({"product_id": base + i, "courses": ["102"], "policy": "subscription"})),
            )
            .await;
        assert_eq!(code, 201);
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = Some((base - 1).to_string());
    loop {
        let path = match &after {
            Some(a) => format!("/api/links?limit=2&after={a}"),
            None => "/api/links?limit=2".into(),
        };
        let (code, b) = stack.api("GET", &path, None).await;
        assert_eq!(code, 200, "{b}");
        let items = b["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|i| i["product_id"].as_i64().unwrap()));
        after = b["next"].as_str().map(str::to_string);
        if after.is_none() {
            break;
        }
    }
    assert_eq!(seen, vec![base, base + 1, base + 2]);
    assert_eq!(stack.api("GET", "/api/links?limit=0", None).await.0, 422);

    // Update and delete.
    let (code, b) = stack
        .api(
            "PUT",
            &format!("/api/links/{p}"),
            Some(json!({"courses": ["101", "102"], "policy": "lifetime"})),
        )
        .await;
    assert_eq!((code, b["courses"].clone()), (200, json!(["101", "102"])), "{b}");
    assert_eq!(
        stack
            .api("PUT", "/api/links/424242424242", Some(json!({"courses": ["101"], "policy": "lifetime"})))
            .await
            .0,
        404
    );
    assert_eq!(stack.api("DELETE", &format!("/api/links/{p}"), None).await.0, 204);
    assert_eq!(stack.api("DELETE", &format!("/api/links/{p}"), None).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_changes_reach_students_through_their_workflows() {
    let stack = Stack::spawn(StackOptions::default()).await;
    let p = unique_product();
    let email = format!("{}@example.com", unique("api"));
    let txn = unique("HP");
    // A purchase before any link: it waits, then proceeds once the API creates the link.
    stack.post(&Sale::one_off(p, &txn, &email).event("PURCHASE_APPROVED", &unique("e"), now_ms())).await;
    let wf = purchase_wf(&txn);
    stack.wait_status(&wf, WAIT, |s| s.state == tollgate_domain::AccessState::AwaitingLink).await;
    let (code, b) = stack
        .api("POST", "/api/links", Some(json!({"product_id": p, "courses": ["101"], "policy": "lifetime"})))
        .await;
    assert_eq!(code, 201, "{b}");
    stack.wait_enrolled(&email, &["101"], WAIT).await;

    // Adding a course enrolls the product's active students in it.
    let (code, b) = stack
        .api(
            "PUT",
            &format!("/api/links/{p}"),
            Some(json!({"courses": ["101", "103"], "policy": "lifetime"})),
        )
        .await;
    assert_eq!(code, 200, "{b}");
    stack.wait_enrolled(&email, &["101", "103"], WAIT).await;

    // Removing one needs confirmation, then unenrolls.
    let (code, b) = stack
        .api("PUT", &format!("/api/links/{p}"), Some(json!({"courses": ["103"], "policy": "lifetime"})))
        .await;
    assert_eq!((code, b["error"].as_str()), (409, Some("confirmation_required")), "{b}");
    assert_eq!(b["details"]["removed_courses"], json!(["101"]));
    assert_eq!(stack.enrolled(&email), vec!["101", "103"], "nothing changed without confirmation");
    let (code, _) = stack
        .api(
            "PUT",
            &format!("/api/links/{p}?confirm=true"),
            Some(json!({"courses": ["103"], "policy": "lifetime"})),
        )
        .await;
    assert_eq!(code, 200);
    stack.wait_enrolled(&email, &["103"], WAIT).await;
    // The run records the unenroll once its activity returns (after TalentLMS answered).
    stack.wait_status(&wf, WAIT, |s| s.enrolled_courses == ["103"]).await;

    // Student lookup: live from the workflow.
    let (code, b) = stack.api("GET", &format!("/api/students?email={email}"), None).await;
    assert_eq!(code, 200, "{b}");
    let access = &b["access"][0];
    assert_eq!(
        (access["workflow_id"].as_str(), access["state"].as_str()),
        (Some(wf.as_str()), Some("active")),
        "{b}"
    );
    assert_eq!(access["courses"], json!(["103"]));
    assert_eq!(access["live"], true);
    assert!(b["talentlms_user_id"].is_string(), "{b}");
    assert_eq!(stack.api("GET", "/api/students?email=nobody@example.com", None).await.0, 404);
    assert_eq!(stack.api("GET", "/api/students?email=not-an-email", None).await.0, 422);

    // The product's subscriptions/purchases, from the stored records.
    let (code, b) = stack.api("GET", &format!("/api/products/{p}/subscriptions"), None).await;
    assert_eq!(code, 200, "{b}");
    assert_eq!(b["items"][0]["workflow_id"], wf.as_str(), "{b}");
    assert_eq!(b["items"][0]["state"], "active", "{b}");
    assert_eq!(stack.api("GET", &format!("/api/products/{p}/subscriptions?limit=500"), None).await.0, 422);
    assert_eq!(stack.api("GET", "/api/products/abc/subscriptions", None).await.0, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_matches_the_routes() {
    let stack = Stack::spawn(StackOptions::default()).await;
    let doc: Value = stack
        .http
        .get(format!("http://{}/openapi.json", stack.http_addr))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path.replace("{product_id}", "123").replace("{id}", "e1");
        for method in ["get", "post", "put", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            operations += 1;
            // Documented routes exist: unauthenticated calls are refused, not 404/405.
            let (code, b) = stack.api_as(&method.to_uppercase(), &concrete, Some(json!({})), None).await;
            assert_eq!(code, 401, "{method} {path}: {b}");
        }
    }
    // 10 before the run reports (issue 12) added two GET routes.
    assert_eq!(operations, 12, "{}", serde_json::to_string_pretty(&doc["paths"]).unwrap());
    for p in
        ["/api/links", "/api/links/{product_id}", "/api/products/{product_id}/subscriptions", "/api/students"]
            .into_iter()
            .chain(["/api/journal/quarantine", "/api/journal/redrive", "/api/journal/{id}/redrive"])
            .chain(["/api/hotmart/reconciliations", "/api/talentlms/audits"])
    {
        assert!(paths.contains_key(p), "{p} undocumented");
    }
    let docs = stack.http.get(format!("http://{}/docs", stack.http_addr)).send().await.unwrap();
    assert_eq!(docs.status().as_u16(), 200);
    assert!(docs.text().await.unwrap().contains("/openapi.json"));
}

/// A settled lifetime purchase has no running workflow; a new course must still reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_course_reaches_settled_lifetime_students() {
    let stack = Stack::spawn(StackOptions::default()).await;
    let p = unique_product();
    let (code, _) = stack
        .api("POST", "/api/links", Some(json!({"product_id": p, "courses": ["101"], "policy": "lifetime"})))
        .await;
    assert_eq!(code, 201);
    let (txn, email) = (unique("HP"), format!("{}@example.com", unique("settled")));
    let sale = Sale::one_off(p, &txn, &email);
    let t = now_ms();
    stack.post(&sale.event("PURCHASE_APPROVED", &unique("e"), t)).await;
    stack.post(&sale.event("PURCHASE_COMPLETE", &unique("e"), t + 1)).await;
    stack.wait_enrolled(&email, &["101"], WAIT).await;
    stack.run_result(&purchase_wf(&txn), WAIT).await;

    let (code, b) = stack
        .api(
            "PUT",
            &format!("/api/links/{p}"),
            Some(json!({"courses": ["101", "104"], "policy": "lifetime"})),
        )
        .await;
    assert_eq!(code, 200, "{b}");
    assert_eq!(b["workflows"]["resumed"], 1, "{b}");
    stack.wait_enrolled(&email, &["101", "104"], WAIT).await;
}

//! The real client against the in-process simulator.

use std::time::{Duration, Instant};

use talentlms::{Client, CourseId, EnrollOutcome, Error, NewUser, UnenrollOutcome, UserId};
use tollgate_simulator::{FaultConfig, SimConfig, SimHandle, spawn};

async fn sim_with(config: SimConfig) -> (SimHandle, Client) {
    let sim = spawn(config).await.expect("simulator starts");
    let client = Client::new(&sim.base_url(), sim.api_key()).expect("client");
    (sim, client)
}

async fn sim() -> (SimHandle, Client) {
    sim_with(SimConfig::default()).await
}

fn course(id: &str) -> CourseId {
    CourseId::from(id)
}

#[tokio::test]
async fn find_and_create_user() {
    let (sim, client) = sim().await;
    let email = "ana.silva+hotmart@example.com";
    assert_eq!(client.find_user_by_email(email).await.unwrap(), None);

    let created = client
        .create_user(&NewUser {
            first_name: "Ana".into(),
            last_name: "Silva".into(),
            email: email.into(),
            login: "ana.silva".into(),
            password: "Str0ng!pass".into(),
        })
        .await
        .unwrap();
    assert_eq!((created.email.as_str(), created.login.as_str()), (email, "ana.silva"));

    let found = client.find_user_by_email(email).await.unwrap().expect("found by email");
    assert_eq!(found.id, created.id);
    assert_eq!(client.user(&created.id).await.unwrap().expect("found by id").email, email);
    assert_eq!(client.user(&UserId::from("999")).await.unwrap(), None);
    assert_eq!(sim.users().len(), 1);
}

#[tokio::test]
async fn duplicate_email_is_a_conflict() {
    let (sim, client) = sim().await;
    let mut new = NewUser {
        first_name: "Ana".into(),
        last_name: "Silva".into(),
        email: "ana@example.com".into(),
        login: "ana".into(),
        password: "Str0ng!pass".into(),
    };
    client.create_user(&new).await.unwrap();
    new.login = "ana2".into();
    let err = client.create_user(&new).await.unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(err.message(), Some("A user with the same email address already exists"));
    assert_eq!(sim.users().len(), 1);
}

#[tokio::test]
async fn ensure_user_creates_once_then_finds() {
    let (sim, client) = sim().await;
    let a = client.ensure_user("Bruno@Example.com", "Bruno", "Costa").await.unwrap();
    let b = client.ensure_user("bruno@example.com", "Other", "Name").await.unwrap();
    assert_eq!(a.id, b.id);
    assert_eq!((b.first_name.as_str(), b.login.as_str()), ("Bruno", "bruno@example.com"));
    // Empty names still produce a valid signup.
    let c = client.ensure_user("noname@example.com", "", " ").await.unwrap();
    assert_eq!((c.first_name.as_str(), c.last_name.as_str()), ("noname", "-"));
    assert_eq!(sim.users().len(), 2);
}

#[tokio::test]
async fn ensure_user_when_login_is_taken_by_someone_else() {
    let (sim, client) = sim().await;
    client
        .create_user(&NewUser {
            first_name: "Squatter".into(),
            last_name: "X".into(),
            email: "other@example.com".into(),
            login: "carla@example.com".into(),
            password: "Str0ng!pass".into(),
        })
        .await
        .unwrap();
    let carla = client.ensure_user("carla@example.com", "Carla", "Souza").await.unwrap();
    assert_eq!(carla.email, "carla@example.com");
    assert!(carla.login.starts_with("carla@example.com-"), "{}", carla.login);
    assert_eq!(sim.users().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_ensure_race_ends_with_one_user() {
    // Latency makes every lookup miss before any create lands, forcing the conflict path.
    let faults = FaultConfig { latency_ms: 150, ..Default::default() };
    let (sim, client) = sim_with(SimConfig { faults, ..Default::default() }).await;
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.ensure_user("race@example.com", "Race", "Condition").await })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap().expect("every racer gets the user").id);
    }
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    let state = sim.state();
    assert_eq!(state.users.iter().filter(|u| u.email == "race@example.com").count(), 1);
    assert!(state.calls_by_endpoint["usersignup"] > 1, "race not exercised: {:?}", state.calls_by_endpoint);
}

#[tokio::test]
async fn enroll_twice_is_already_enrolled() {
    let (sim, client) = sim().await;
    let user = client.ensure_user("dora@example.com", "Dora", "Lima").await.unwrap();
    assert_eq!(client.enroll(&user.id, &course("101")).await.unwrap(), EnrollOutcome::Enrolled);
    assert_eq!(client.enroll(&user.id, &course("101")).await.unwrap(), EnrollOutcome::AlreadyEnrolled);
    assert_eq!(sim.enrollments(), vec![("dora@example.com".to_string(), "101".to_string())]);
    let fetched = client.user(&user.id).await.unwrap().unwrap();
    assert!(fetched.is_enrolled_in(&course("101")));
    assert!(!fetched.is_enrolled_in(&course("102")));
    assert_eq!(fetched.courses[0].name, "Onboarding Essentials");
}

#[tokio::test]
async fn unenroll_twice_is_not_enrolled() {
    let (sim, client) = sim().await;
    let user = client.ensure_user("eva@example.com", "Eva", "Rocha").await.unwrap();
    client.enroll(&user.id, &course("102")).await.unwrap();
    assert_eq!(client.unenroll(&user.id, &course("102")).await.unwrap(), UnenrollOutcome::Removed);
    assert_eq!(client.unenroll(&user.id, &course("102")).await.unwrap(), UnenrollOutcome::NotEnrolled);
    assert!(sim.enrollments().is_empty());
}

#[tokio::test]
async fn unknown_course_or_user_is_rejected_for_good() {
    let (sim, client) = sim().await;
    let user = client.ensure_user("fabio@example.com", "Fabio", "Nunes").await.unwrap();
    let err = client.enroll(&user.id, &course("999")).await.unwrap_err();
    assert!(matches!(&err, Error::Rejected { status: 404, .. }), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(
        err.to_string(),
        format!(
            "TalentLMS rejected enroll user {} in course 999: The requested course does not exist",
            user.id
        )
    );

    let err = client.enroll(&UserId::from("424242"), &course("101")).await.unwrap_err();
    assert!(err.to_string().contains("The requested user does not exist"), "{err}");
    assert!(!err.is_retryable());
    let err = client.unenroll(&user.id, &course("999")).await.unwrap_err();
    assert!(matches!(err, Error::Rejected { .. }), "{err:?}");
    assert!(sim.enrollments().is_empty());
}

#[tokio::test]
async fn courses_are_listed_and_looked_up() {
    let (sim, client) = sim().await;
    let ids: Vec<String> = client.courses().await.unwrap().into_iter().map(|c| c.id.0).collect();
    assert_eq!(ids, ["101", "102", "103", "104"]);
    let c = client.course(&course("103")).await.unwrap().expect("seeded");
    assert_eq!(c.name, "Advanced Excel for Business");
    assert_eq!(client.course(&course("999")).await.unwrap(), None);

    let new_id = sim.add_course("Rust for Marketers");
    assert_eq!(client.course(&course(&new_id)).await.unwrap().unwrap().name, "Rust for Marketers");
}

#[tokio::test]
async fn wrong_key_is_unauthorized_and_never_leaks() {
    let (sim, _) = sim().await;
    let client = Client::new(&sim.base_url(), "wrong-key-s3cr3t").unwrap();
    let err = client.find_user_by_email("gil@example.com").await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized { status: 401, .. }), "{err:?}");
    assert!(!err.is_retryable());
    assert!(!err.to_string().contains("wrong-key-s3cr3t"));
    assert!(!format!("{err:?}").contains("wrong-key-s3cr3t"));
    assert!(!format!("{client:?}").contains("wrong-key-s3cr3t"));
    assert!(!format!("{:?}", SimConfig::default()).contains(sim.api_key()));
}

#[tokio::test]
async fn rate_limit_gives_a_usable_retry_after() {
    let config = SimConfig { rate_limit: 3, rate_window: Duration::from_secs(3), ..Default::default() };
    let (sim, client) = sim_with(config).await;
    let rl = client.rate_limit().await.unwrap();
    assert_eq!((rl.limit, rl.remaining), (3, 2));
    client.courses().await.unwrap();
    client.courses().await.unwrap();

    let err = client.courses().await.unwrap_err();
    let wait = err.retry_after().expect("rate limited");
    assert!(matches!(err, Error::RateLimited { .. }) && err.is_retryable(), "{err:?}");
    assert!(wait >= Duration::from_secs(1) && wait <= Duration::from_secs(4), "{wait:?}");

    let started = Instant::now();
    tokio::time::sleep(wait).await;
    client.courses().await.expect("allowed again after retry_after");
    assert!(started.elapsed() < Duration::from_secs(5));
    let state = sim.state();
    assert_eq!(state.rate_limited_calls, 1);
    assert!(state.max_calls_per_second >= 3, "{}", state.max_calls_per_second);
}

#[tokio::test]
async fn injected_5xx_is_retryable_and_changes_nothing() {
    let (sim, client) = sim().await;
    let user = client.ensure_user("hugo@example.com", "Hugo", "Melo").await.unwrap();
    sim.set_faults(FaultConfig { error_rate: 1.0, ..Default::default() });

    let err = client.enroll(&user.id, &course("101")).await.unwrap_err();
    assert!(matches!(err, Error::Server { status: 500 | 502 | 503, .. }), "{err:?}");
    assert!(err.is_retryable());
    let err = client.ensure_user("ines@example.com", "Ines", "Paz").await.unwrap_err();
    assert!(err.is_retryable());
    assert!(sim.enrollments().is_empty());
    assert_eq!(sim.users().len(), 1);

    sim.clear_faults();
    assert_eq!(client.enroll(&user.id, &course("101")).await.unwrap(), EnrollOutcome::Enrolled);
    assert_eq!(sim.state().injected_faults, 2);
}

#[tokio::test]
async fn forced_429_is_rate_limited() {
    let (sim, client) = sim().await;
    sim.set_faults(FaultConfig { rate_limited_rate: 1.0, ..Default::default() });
    let err = client.courses().await.unwrap_err();
    let wait = err.retry_after().expect("rate limited");
    assert!(wait >= Duration::from_secs(1) && wait <= Duration::from_secs(2), "{wait:?}");
}

#[tokio::test]
async fn fail_after_commit_then_retry_is_idempotent() {
    let (sim, client) = sim().await;
    let commit_then_fail = FaultConfig { fail_after_commit_rate: 1.0, ..Default::default() };

    // Create committed but answered 500: the retry finds the user instead of duplicating.
    sim.set_faults(commit_then_fail.clone());
    let err = client.ensure_user("julia@example.com", "Julia", "Reis").await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    sim.clear_faults();
    let user = client.ensure_user("julia@example.com", "Julia", "Reis").await.unwrap();
    assert_eq!(sim.users().len(), 1);

    sim.set_faults(commit_then_fail.clone());
    assert!(client.enroll(&user.id, &course("104")).await.unwrap_err().is_retryable());
    assert_eq!(sim.enrollments().len(), 1, "state changed despite the 500");
    sim.clear_faults();
    assert_eq!(client.enroll(&user.id, &course("104")).await.unwrap(), EnrollOutcome::AlreadyEnrolled);

    sim.set_faults(commit_then_fail);
    assert!(client.unenroll(&user.id, &course("104")).await.unwrap_err().is_retryable());
    assert!(sim.enrollments().is_empty());
    sim.clear_faults();
    assert_eq!(client.unenroll(&user.id, &course("104")).await.unwrap(), UnenrollOutcome::NotEnrolled);
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_transport_errors() {
    let (sim, _) = sim().await;
    sim.set_faults(FaultConfig { latency_ms: 2_000, ..Default::default() });
    let client = Client::with_timeout(&sim.base_url(), sim.api_key(), Duration::from_millis(200)).unwrap();
    let err = client.courses().await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }) && err.is_retryable(), "{err:?}");

    let addr = sim.addr();
    sim.shutdown().await.unwrap();
    let client = Client::new(&format!("http://{addr}"), "k").unwrap();
    let err = client.courses().await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }) && err.is_retryable(), "{err:?}");
    assert!(err.to_string().starts_with("could not reach TalentLMS during list courses"), "{err}");
}

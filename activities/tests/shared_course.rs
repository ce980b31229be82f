//! Two purchases share a course for one student: one is refunded while the other
//! enrolls, at the same moment. Whatever the interleaving (randomised latencies at
//! TalentLMS), the course must end enrolled, because a grant still holds it, and exactly
//! one grant must remain. Runs the real enroll/unenroll code against the simulator and
//! the SQLite store.

use std::time::Duration;

use tollgate_activities::Pace;
use tollgate_activities::enrolment::{enroll, unenroll};
use tollgate_simulator::{FaultConfig, SimConfig};
use tollgate_store::{DocStore, Grant, SqliteDocs};
use tollgate_workflows::acts::Enrollment;

/// xorshift64*: reproducible trials without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shared_course_survives_a_concurrent_refund_and_enroll_in_100_trials() {
    let sim =
        tollgate_simulator::spawn(SimConfig { rate_limit: 1_000_000, ..Default::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let docs = DocStore::Sqlite(SqliteDocs::open(dir.path().join("t.db")).unwrap());
    let client = talentlms::Client::new(&sim.base_url(), sim.api_key()).unwrap();
    let pace = Pace::per_second(100_000.0);
    let seed = std::env::var("TOLLGATE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5EED_u64);
    let mut rng = Rng(seed | 1);
    // Half the calls wait 30 ms more, so requests of both sides overlap at TalentLMS.
    sim.set_faults(FaultConfig { slow_rate: 0.5, slow_ms: 30, ..Default::default() });
    for trial in 0..100 {
        let email = format!("shared{trial}@example.com");
        let user = client
            .create_user(&talentlms::NewUser::for_student(&email, "Ana", "Shared", false))
            .await
            .unwrap()
            .id
            .to_string();
        let course = sim.add_course(&format!("course {trial}"));
        let e =
            |w: &str| Enrollment { user_id: user.clone(), course_id: course.clone(), workflow_id: w.into() };
        let (a, b) = (e(&format!("purchase-A{trial}")), e(&format!("purchase-B{trial}")));
        enroll(&docs, &client, &pace, &a).await.unwrap();
        // A is refunded while B is bought, B starting 0-40 ms after A's release began.
        let delay = Duration::from_millis(rng.below(40));
        let (released, enrolled) = tokio::join!(unenroll(&docs, &client, &pace, &a), async {
            tokio::time::sleep(delay).await;
            enroll(&docs, &client, &pace, &b).await
        });
        let what = released.unwrap();
        enrolled.unwrap();
        assert!(
            sim.enrollments().contains(&(email.clone(), course.clone())),
            "trial {trial} (seed {seed}, B after {delay:?}): A's release ({what}) left the course unenrolled while B holds it"
        );
        assert!(docs.held_grants(&a.workflow_id).await.unwrap().is_empty(), "trial {trial}: A still holds");
        assert_eq!(
            docs.held_grants(&b.workflow_id).await.unwrap(),
            [Grant { user_id: user.clone(), course_id: course.clone() }]
        );
    }
}

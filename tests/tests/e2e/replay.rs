//! Histories recorded from the end-to-end scenarios (`TOLLGATE_RECORD_HISTORIES=1 cargo
//! test -p tollgate-tests --test e2e access::`) replayed against the current workflow code. A
//! change that would break running workflows fails here with a nondeterminism error.

use std::path::Path;

#[tokio::test]
async fn recorded_histories_replay_without_nondeterminism() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("histories");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/histories exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "expected the recorded scenarios, found {files:?}");
    for f in files {
        let json = std::fs::read(&f).unwrap();
        tollgate_tests::replay_json(&json).await.unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
}

/// The replayer must be able to fail: a history whose signal carries a different event
/// than the code expects is still deterministic, but one recorded by different workflow
/// code (here: an activity renamed) is not.
#[tokio::test]
async fn a_tampered_history_is_caught() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("histories");
    let json = std::fs::read_to_string(dir.join("refund.json")).unwrap();
    assert!(json.contains("\"enroll\""), "fixture has an enroll activity");
    let tampered = json.replace("\"enroll\"", "\"enroll_v0\"");
    let err = tollgate_tests::replay_json(tampered.as_bytes()).await.expect_err("tampered history replays");
    assert!(err.to_string().contains("nondetermin"), "{err}");
}

//! The shared suite every [`Store`] passes: each test runs against a real SQLite file and,
//! when `RULEBRIDGE_TEST_POSTGRES` names a server (`.ci/run` starts one), a fresh database on
//! a real PostgreSQL.

use std::sync::Arc;

use rulebridge::db::DbError;
use rulebridge::state::*;

fn scope() -> Scope {
    Scope {
        tenant: String::new(),
        flow: "leads".into(),
    }
}

fn target() -> Target {
    Target {
        tenant: String::new(),
        provider: "hubspot".into(),
        object: "contacts".into(),
    }
}

fn start(input: Option<&str>) -> RunStart {
    RunStart {
        tenant: String::new(),
        flow: "leads".into(),
        rules_hash: "h1".into(),
        input: input.map(String::from),
    }
}

async fn kill_run(store: &SqlStore, run_id: &str) {
    // What a process killed mid-run leaves: a running run whose heartbeat stops.
    sqlx::query("UPDATE rb_runs SET heartbeat_at = 0 WHERE run_id = $1")
        .bind(run_id)
        .execute(store.db().pool())
        .await
        .unwrap();
}

fn done(identity: &str, hash: &str, id: &str, outcome: &'static str) -> Settle {
    Settle {
        identity: identity.into(),
        record_key: Some(identity.into()),
        outcome,
        hash: Some(hash.into()),
        target_id: Some(id.into()),
        ids: vec![("email".into(), identity.into())],
    }
}

#[tokio::test]
async fn opens_twice_and_migrates_once() {
    for at in rulebridge::testing::store_backends("store").await.unwrap() {
        let (name, spec) = (at.backend, at.spec.clone());
        let a = SqlStore::open(&spec).await.unwrap();
        let b = SqlStore::open(&spec).await.unwrap();
        let run = a.begin_run(&start(None)).await.unwrap();
        assert_eq!(
            b.run(&run.id).await.unwrap().unwrap().flow,
            "leads",
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_opening_a_new_store_at_once_all_get_it_migrated() {
    // Two `rulebridge run`s started together on a new state file (or a run and `rulebridge
    // log`) both find it unmigrated: neither may fail.
    for round in 0..10 {
        for at in rulebridge::testing::store_backends(&format!("race{round}"))
            .await
            .unwrap()
        {
            let (name, spec) = (at.backend, at.spec.clone());
            let opens = (0..4).map(|_| {
                let spec = spec.clone();
                tokio::spawn(async move { SqlStore::open(&spec).await })
            });
            for open in futures::future::join_all(opens).await {
                let store = open.unwrap().unwrap_or_else(|e| panic!("{name}: {e}"));
                store.begin_run(&start(None)).await.unwrap();
            }
        }
    }
}

#[tokio::test]
async fn ledger_claims_settles_and_reads_back() {
    for at in rulebridge::testing::store_backends("store").await.unwrap() {
        let (name, spec) = (at.backend, at.spec.clone());
        let store = SqlStore::open(&spec).await.unwrap();
        let run = store.begin_run(&start(None)).await.unwrap();
        let ids = vec!["a@x".to_string(), "b@x".to_string()];
        assert_eq!(
            store.entries(&scope(), &ids).await.unwrap(),
            vec![None, None]
        );
        let claims: Vec<_> = ids
            .iter()
            .map(|i| Claiming {
                record_key: Some(i.clone()),
                ..Claiming::any(i.clone())
            })
            .collect();
        let got = store.claim(&scope(), &run.id, &claims).await.unwrap();
        assert!(
            got.iter().all(|c| matches!(
                c,
                Claim::Claimed {
                    was_pending: false,
                    target_id: None
                }
            )),
            "{name}: {got:?}"
        );
        let pending = store.entries(&scope(), &ids).await.unwrap();
        assert_eq!(pending[0].as_ref().unwrap().state, EntryState::Pending);
        store
            .settle(
                &scope(),
                &target(),
                &run.id,
                &[done("a@x", "h-a", "101", "created")],
            )
            .await
            .unwrap();
        let failed = Settle {
            hash: None,
            target_id: None,
            outcome: "failed",
            ..done("b@x", "", "", "failed")
        };
        store
            .settle(&scope(), &target(), &run.id, &[failed])
            .await
            .unwrap();
        let e = store.entries(&scope(), &ids).await.unwrap();
        let a = e[0].clone().unwrap();
        assert_eq!(
            (a.state, a.done_hash.as_deref(), a.target_id.as_deref()),
            (EntryState::Done, Some("h-a"), Some("101")),
            "{name}"
        );
        assert_eq!(a.outcome.as_deref(), Some("created"));
        assert_eq!(a.run_id.as_deref(), Some(run.id.as_str()));
        let b = e[1].clone().unwrap();
        assert_eq!((b.state, b.done_hash), (EntryState::Failed, None), "{name}");
        // A later failure keeps the last success's hash and id.
        let run2 = store.begin_run(&start(None)).await.unwrap();
        store.claim(&scope(), &run2.id, &claims[..1]).await.unwrap();
        let refail = Settle {
            hash: None,
            target_id: None,
            outcome: "failed",
            ..done("a@x", "", "", "failed")
        };
        store
            .settle(&scope(), &target(), &run2.id, &[refail])
            .await
            .unwrap();
        let a = store.entries(&scope(), &ids[..1]).await.unwrap()[0]
            .clone()
            .unwrap();
        assert_eq!(
            (a.done_hash.as_deref(), a.target_id.as_deref()),
            (Some("h-a"), Some("101")),
            "{name}"
        );
        // The id map.
        let t = target();
        let found = store
            .ids(&t, "email", &["a@x".into(), "zz".into()])
            .await
            .unwrap();
        assert_eq!(found, vec![Some("101".to_string()), None], "{name}");
        store.forget_ids(&t, &["101".into()]).await.unwrap();
        assert_eq!(
            store.ids(&t, "email", &["a@x".into()]).await.unwrap(),
            vec![None]
        );
    }
}

#[tokio::test]
async fn a_claim_with_the_payload_last_written_leaves_the_entry_alone() {
    for at in rulebridge::testing::store_backends("store").await.unwrap() {
        let (name, spec) = (at.backend, at.spec.clone());
        let store = SqlStore::open(&spec).await.unwrap();
        let run = store.begin_run(&start(None)).await.unwrap();
        let with = |id: &str, hash: &str| Claiming {
            hash: Some(hash.into()),
            ..Claiming::any(id)
        };
        // New: claimed, with no read of the ledger needed.
        let got = store
            .claim(&scope(), &run.id, &[with("a@x", "h1"), with("b@x", "h1")])
            .await
            .unwrap();
        assert!(
            got.iter().all(|c| matches!(c, Claim::Claimed { .. })),
            "{name}: {got:?}"
        );
        store
            .settle(
                &scope(),
                &target(),
                &run.id,
                &[
                    done("a@x", "h1", "1", "created"),
                    Settle {
                        hash: None,
                        target_id: None,
                        outcome: "failed",
                        ..done("b@x", "", "", "failed")
                    },
                ],
            )
            .await
            .unwrap();
        let run2 = store.begin_run(&start(None)).await.unwrap();
        let got = store
            .claim(
                &scope(),
                &run2.id,
                &[with("a@x", "h1"), with("b@x", "h1"), with("c@x", "h1")],
            )
            .await
            .unwrap();
        // The same payload as the last success: unchanged, with what that write was. A
        // failed one is claimed again, whatever its payload.
        match &got[0] {
            Claim::Unchanged(e) => assert_eq!(
                (e.target_id.as_deref(), e.outcome.as_deref()),
                (Some("1"), Some("created")),
                "{name}"
            ),
            other => panic!("{name}: {other:?}"),
        }
        assert!(matches!(got[1], Claim::Claimed { .. }), "{name}: {got:?}");
        assert!(matches!(got[2], Claim::Claimed { .. }), "{name}: {got:?}");
        // Unchanged means untouched: still done, not pending.
        let e = store.entries(&scope(), &["a@x".to_string()]).await.unwrap();
        assert_eq!(e[0].as_ref().unwrap().state, EntryState::Done, "{name}");
        // A changed payload, or a claim without a hash (`--full`), claims it.
        for claim in [with("a@x", "h2"), Claiming::any("a@x")] {
            let got = store.claim(&scope(), &run2.id, &[claim]).await.unwrap();
            assert!(
                matches!(got[0], Claim::Claimed { target_id: Some(ref t), .. } if t == "1"),
                "{name}: {got:?}"
            );
            store
                .settle(
                    &scope(),
                    &target(),
                    &run2.id,
                    &[done("a@x", "h1", "1", "updated")],
                )
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn a_live_run_holds_its_claims_and_a_dead_one_leaves_them_pending() {
    for at in rulebridge::testing::store_backends("store").await.unwrap() {
        let (name, spec) = (at.backend, at.spec.clone());
        let first = SqlStore::open(&spec).await.unwrap();
        let second = SqlStore::open(&spec).await.unwrap();
        let run_a = first.begin_run(&start(None)).await.unwrap();
        let run_b = second.begin_run(&start(None)).await.unwrap();
        let claim = vec![Claiming::any("x@x")];
        assert!(matches!(
            first.claim(&scope(), &run_a.id, &claim).await.unwrap()[0],
            Claim::Claimed {
                was_pending: false,
                ..
            }
        ));
        // Another process while the first is alive: busy.
        assert_eq!(
            second.claim(&scope(), &run_b.id, &claim).await.unwrap(),
            vec![Claim::Busy],
            "{name}"
        );
        // The holder claiming again (its own retry) is not a write of unknown result.
        assert!(matches!(
            first.claim(&scope(), &run_a.id, &claim).await.unwrap()[0],
            Claim::Claimed {
                was_pending: false,
                ..
            }
        ));
        // The first process dies: the entry is claimable, and known to be possibly written.
        kill_run(&first, &run_a.id).await;
        assert!(
            matches!(
                second.claim(&scope(), &run_b.id, &claim).await.unwrap()[0],
                Claim::Claimed {
                    was_pending: true,
                    ..
                }
            ),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_settle_another_process_journaled_is_seen_before_anything_is_claimed() {
    // Settles wait in the journal until folded. Another process must still see them: the
    // entry it meets pending under a live run is folded and claimed again, and a dead
    // run's pending entry is not taken for a write of unknown result while its settle waits.
    let claiming = |id: &str, hash: &str| Claiming {
        identity: id.into(),
        record_key: Some(id.into()),
        hash: Some(hash.into()),
    };
    for at in rulebridge::testing::store_backends("store").await.unwrap() {
        let (name, spec) = (at.backend, at.spec.clone());
        let first = SqlStore::open(&spec).await.unwrap();
        let second = SqlStore::open(&spec).await.unwrap();
        let run_a = first.begin_run(&start(None)).await.unwrap();
        let run_b = second.begin_run(&start(None)).await.unwrap();
        let claims = vec![claiming("x@x", "h1"), claiming("w@x", "h2")];
        let got = first.claim(&scope(), &run_a.id, &claims).await.unwrap();
        assert!(
            got.iter().all(|c| matches!(c, Claim::Claimed { .. })),
            "{name}"
        );
        let settled = vec![
            done("x@x", "h1", "id-x", "created"),
            done("w@x", "h2", "id-w", "created"),
        ];
        first
            .settle(&scope(), &target(), &run_a.id, &settled)
            .await
            .unwrap();

        // The same payload from the other process, the writer still alive: unchanged.
        match &second
            .claim(&scope(), &run_b.id, &[claiming("x@x", "h1")])
            .await
            .unwrap()[0]
        {
            Claim::Unchanged(e) => assert_eq!(e.target_id.as_deref(), Some("id-x"), "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        // The writer's own reads are right after another process folded its rows.
        assert!(
            matches!(
                first
                    .claim(&scope(), &run_a.id, &[claiming("x@x", "h1")])
                    .await
                    .unwrap()[0],
                Claim::Unchanged(_)
            ),
            "{name}"
        );
        let journaled = vec![claiming("v@x", "h4")];
        first.claim(&scope(), &run_a.id, &journaled).await.unwrap();
        first
            .settle(
                &scope(),
                &target(),
                &run_a.id,
                &[done("v@x", "h4", "id-v", "created")],
            )
            .await
            .unwrap();

        // The writer dies with that settle journaled: a changed payload is an update of the
        // known record, not a write that may have landed.
        kill_run(&first, &run_a.id).await;
        match &second
            .claim(&scope(), &run_b.id, &[claiming("v@x", "h5")])
            .await
            .unwrap()[0]
        {
            Claim::Claimed {
                was_pending,
                target_id,
            } => {
                assert!(!was_pending, "{name}");
                assert_eq!(target_id.as_deref(), Some("id-v"), "{name}");
            }
            other => panic!("{name}: {other:?}"),
        }
        // And the id map has what the journal held.
        assert_eq!(
            second
                .ids(
                    &target(),
                    "email",
                    &["w@x".into(), "v@x".into(), "u@x".into()]
                )
                .await
                .unwrap(),
            vec![Some("id-w".into()), Some("id-v".into()), None],
            "{name}"
        );
    }
}

#[tokio::test]
async fn concurrent_claims_give_each_identity_to_one_process() {
    for at in rulebridge::testing::store_backends("store").await.unwrap() {
        let (name, spec) = (at.backend, at.spec.clone());
        let a = Arc::new(SqlStore::open(&spec).await.unwrap());
        let b = Arc::new(SqlStore::open(&spec).await.unwrap());
        let run_a = a.begin_run(&start(None)).await.unwrap();
        let run_b = b.begin_run(&start(None)).await.unwrap();
        let claims: Vec<Claiming> = (0..300).map(|n| Claiming::any(format!("id-{n}"))).collect();
        let mut tasks = Vec::new();
        for (store, run) in [(a.clone(), run_a.id.clone()), (b.clone(), run_b.id.clone())] {
            let claims = claims.clone();
            tasks.push(tokio::spawn(async move {
                let mut won = Vec::new();
                // Small interleaved groups, as two pipelines would claim them.
                for part in claims.chunks(25) {
                    for (c, Claiming { identity: id, .. }) in store
                        .claim(&scope(), &run, part)
                        .await
                        .unwrap()
                        .into_iter()
                        .zip(part)
                    {
                        if matches!(c, Claim::Claimed { .. }) {
                            won.push(id.clone());
                        }
                    }
                }
                won
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all.sort();
        let n = all.len();
        all.dedup();
        assert_eq!(
            (n, all.len()),
            (300, 300),
            "{name}: every identity claimed exactly once"
        );
    }
}

#[tokio::test]
async fn an_interrupted_run_resumes_from_its_checkpoint() {
    for at in rulebridge::testing::store_backends("store").await.unwrap() {
        let (name, spec) = (at.backend, at.spec.clone());
        let store = SqlStore::open(&spec).await.unwrap();
        let run = store
            .begin_run(&start(Some("in.ndjson|10|1")))
            .await
            .unwrap();
        assert!(!run.resumed);
        let mut counters = Counters::default();
        counters.add("created");
        counters.add("failed");
        store
            .report(&Report {
                run_id: run.id.clone(),
                scope: scope(),
                checkpoint: 2,
                counters,
                ..Default::default()
            })
            .await
            .unwrap();
        kill_run(&store, &run.id).await;
        let again = SqlStore::open(&spec).await.unwrap();
        let resumed = again
            .begin_run(&start(Some("in.ndjson|10|1")))
            .await
            .unwrap();
        assert!(resumed.resumed, "{name}");
        assert_eq!(
            (resumed.id.as_str(), resumed.checkpoint, resumed.counters),
            (run.id.as_str(), 2, counters)
        );
        // Another input is another run; stdin is never resumed.
        assert_ne!(
            again.begin_run(&start(Some("other|1|1"))).await.unwrap().id,
            run.id
        );
        let s = again.begin_run(&start(None)).await.unwrap();
        assert!(!s.resumed);
        again.finish_run(&resumed.id, counters, 2).await.unwrap();
        let r = again.run(&resumed.id).await.unwrap().unwrap();
        assert_eq!(r.status, RunStatus::Done, "{name}");
        assert!(r.ended_at.is_some());
        let listed = again
            .runs(&RunFilter {
                flow: Some("leads".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(listed.len(), 3);
    }
}

fn change(run: &str, index: u64, action: &str, key: &str) -> Change {
    Change {
        run_id: run.into(),
        index,
        flow: "leads".into(),
        record_key: Some(key.into()),
        identity: Some(key.into()),
        action: action.into(),
        provider: "hubspot".into(),
        object: "contacts".into(),
        source_hash: Some(format!("src-{key}")),
        at: now_ms(),
        ..Default::default()
    }
}

#[tokio::test]
async fn changelog_and_dead_letters() {
    for at in rulebridge::testing::store_backends("store").await.unwrap() {
        let (name, spec) = (at.backend, at.spec.clone());
        let store = SqlStore::open(&spec).await.unwrap();
        let run = store.begin_run(&start(None)).await.unwrap();
        let mut failed = change(&run.id, 1, "failed", "b@x");
        failed.error_kind = Some("rejected".into());
        failed.error = Some("create failed: 400".into());
        failed.http_status = Some(400);
        let report = Report {
            run_id: run.id.clone(),
            scope: scope(),
            changes: vec![change(&run.id, 0, "created", "a@x"), failed.clone()],
            failures: vec![Failure {
                change: failed.clone(),
                rule_at: Some("flows/leads.yaml:3:5".into()),
                provider_message: Some("bad email".into()),
                input: br#"{"email":"b@x"}"#.to_vec(),
                input_form: rulebridge::state::InputForm::Plain,
            }],
            cleared: vec![],
            checkpoint: 2,
            counters: Counters::default(),
        };
        store.report(&report).await.unwrap();
        // Reported twice (a resumed run redoing a batch): still one row per record, one attempt.
        store.report(&report).await.unwrap();
        let all = store.changes(&ChangeFilter::default()).await.unwrap();
        assert_eq!(all.len(), 2, "{name}");
        let only_failed = store
            .changes(&ChangeFilter {
                action: Some("failed".into()),
                flow: Some("leads".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(only_failed.len(), 1);
        assert_eq!(only_failed[0].http_status, Some(400));
        let by_key = store
            .changes(&ChangeFilter {
                record_key: Some("a@x".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_key[0].action, "created");
        let later = store
            .changes(&ChangeFilter {
                since: Some(now_ms() + 60_000),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(later.is_empty());

        let dlq = store.dead_letters("", Some("leads")).await.unwrap();
        assert_eq!(dlq.len(), 1, "{name}");
        assert_eq!(
            (dlq[0].attempts, dlq[0].input.as_slice()),
            (1, br#"{"email":"b@x"}"#.as_slice())
        );
        assert_eq!(dlq[0].rule_at.as_deref(), Some("flows/leads.yaml:3:5"));
        // A later run fails it again: two attempts.
        let run2 = store.begin_run(&start(None)).await.unwrap();
        let mut again = report.clone();
        again.run_id = run2.id.clone();
        for c in &mut again.changes {
            c.run_id = run2.id.clone();
        }
        again.failures[0].change.run_id = run2.id.clone();
        store.report(&again).await.unwrap();
        assert_eq!(store.dead_letters("", None).await.unwrap()[0].attempts, 2);
        // Success clears it, by identity even when the input differs.
        let ok = Report {
            run_id: run2.id.clone(),
            scope: scope(),
            cleared: vec![("another-hash".into(), Some("b@x".into()))],
            ..Default::default()
        };
        store.report(&ok).await.unwrap();
        assert!(
            store.dead_letters("", None).await.unwrap().is_empty(),
            "{name}"
        );
        store.report(&report).await.unwrap();
        let id = store.dead_letters("", None).await.unwrap()[0].id.clone();
        assert!(store.drop_dead_letter("", "leads", &id).await.unwrap());
        assert!(!store.drop_dead_letter("", "leads", &id).await.unwrap());
    }
}

#[tokio::test]
async fn prune_removes_old_changelog_and_done_entries_only() {
    for at in rulebridge::testing::store_backends("store").await.unwrap() {
        let (name, spec) = (at.backend, at.spec.clone());
        let store = SqlStore::open(&spec).await.unwrap();
        let run = store.begin_run(&start(None)).await.unwrap();
        store
            .report(&Report {
                run_id: run.id.clone(),
                scope: scope(),
                changes: vec![change(&run.id, 0, "created", "a@x")],
                ..Default::default()
            })
            .await
            .unwrap();
        store
            .claim(
                &scope(),
                &run.id,
                &[Claiming::any("a@x"), Claiming::any("p@x")],
            )
            .await
            .unwrap();
        store
            .settle(
                &scope(),
                &target(),
                &run.id,
                &[done("a@x", "h", "1", "created")],
            )
            .await
            .unwrap();
        let keep = Retention {
            changelog_ms: Some(3_600_000),
            ledger_ms: Some(3_600_000),
        };
        assert_eq!(
            store.prune(&keep).await.unwrap(),
            Pruned::default(),
            "{name}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let all = Retention {
            changelog_ms: Some(0),
            ledger_ms: Some(0),
        };
        let pruned = store.prune(&all).await.unwrap();
        assert_eq!((pruned.changelog, pruned.ledger), (1, 1), "{name}");
        // The pending entry (a write of unknown result) stays.
        let left = store
            .entries(&scope(), &["a@x".into(), "p@x".into()])
            .await
            .unwrap();
        assert!(left[0].is_none());
        assert_eq!(left[1].as_ref().unwrap().state, EntryState::Pending);
    }
}

#[tokio::test]
async fn bad_state_files_are_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    // Not a database: refused, and left as it was.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"this is not a database at all, just text").unwrap();
    let e = SqlStore::open(junk.to_str().unwrap()).await.unwrap_err();
    assert!(
        matches!(e, StoreError::Db(DbError::NotADatabase { .. })),
        "{e}"
    );
    let text = e.to_string();
    assert!(
        text.contains("junk.db") && text.contains("move it aside"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(&junk).unwrap(),
        b"this is not a database at all, just text"
    );

    // A database damaged past its header.
    let torn = dir.path().join("torn.db");
    let store = SqlStore::open(torn.to_str().unwrap()).await.unwrap();
    store.begin_run(&start(None)).await.unwrap();
    store.db().close().await;
    let mut bytes = std::fs::read(&torn).unwrap();
    for b in bytes.iter_mut().skip(100) {
        *b = 0xA5;
    }
    std::fs::write(&torn, &bytes).unwrap();
    let _ = std::fs::remove_file(dir.path().join("torn.db-wal"));
    let e = SqlStore::open(torn.to_str().unwrap()).await.unwrap_err();
    assert!(
        matches!(e, StoreError::Db(DbError::NotADatabase { .. })),
        "{e}"
    );

    // Newer schema: refused, nothing changed.
    let newer = dir.path().join("newer.db");
    let store = SqlStore::open(newer.to_str().unwrap()).await.unwrap();
    sqlx::query("INSERT INTO rb_schema_migrations (version, description, success, checksum, execution_time) VALUES (99, 'future', TRUE, x'00', 0)")
        .execute(store.db().pool())
        .await
        .unwrap();
    store.db().close().await;
    let e = SqlStore::open(newer.to_str().unwrap()).await.unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Db(DbError::NewerSchema {
                found: 99,
                known: 7,
                ..
            })
        ),
        "{e}"
    );
    assert!(e.to_string().contains("upgrade rulebridge"));

    // Read-only.
    let ro = dir.path().join("ro.db");
    drop(SqlStore::open(ro.to_str().unwrap()).await.unwrap());
    let mut perms = std::fs::metadata(&ro).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&ro, perms).unwrap();
    let e = SqlStore::open(ro.to_str().unwrap()).await.unwrap_err();
    assert!(matches!(e, StoreError::Db(DbError::ReadOnly { .. })), "{e}");

    // A directory where the file should be.
    let e = SqlStore::open(dir.path().to_str().unwrap())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("directory"), "{e}");
}

#[tokio::test]
async fn a_locked_state_file_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked.db");
    let store = SqlStore::open_with_timeout(
        path.to_str().unwrap(),
        std::time::Duration::from_millis(200),
    )
    .await
    .unwrap();
    let run = store.begin_run(&start(None)).await.unwrap();
    // Another process holding the write lock.
    let holder = SqlStore::open(path.to_str().unwrap()).await.unwrap();
    let mut conn = holder.db().pool().acquire().await.unwrap();
    sqlx::raw_sql("BEGIN EXCLUSIVE")
        .execute(&mut *conn)
        .await
        .unwrap();
    let e = store.heartbeat(&run.id).await.unwrap_err();
    assert!(matches!(e, StoreError::Db(DbError::Locked { .. })), "{e}");
    assert!(e.to_string().contains("locked.db"));
    sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await.unwrap();
    store.heartbeat(&run.id).await.unwrap();
}

#[tokio::test]
async fn reports_without_changes_and_settles_at_once_do_not_meet_a_lock() {
    // A report of only counters reads before it writes; a write committed by another
    // connection in between must not fail it (SQLite answers such an upgrade `busy` at
    // once, without waiting).
    for at in rulebridge::testing::store_backends("store").await.unwrap() {
        let (name, spec) = (at.backend, at.spec.clone());
        let store = Arc::new(SqlStore::open(&spec).await.unwrap());
        let run = store.begin_run(&start(None)).await.unwrap();
        let settles = {
            let (store, run_id) = (store.clone(), run.id.clone());
            tokio::spawn(async move {
                for n in 0..300 {
                    let id = format!("s{n}@x");
                    store
                        .claim(&scope(), &run_id, &[Claiming::any(id.clone())])
                        .await?;
                    store
                        .settle(
                            &scope(),
                            &target(),
                            &run_id,
                            &[done(&id, "h", "1", "created")],
                        )
                        .await?;
                }
                Ok::<_, StoreError>(())
            })
        };
        let reports = {
            let (store, run_id) = (store.clone(), run.id.clone());
            tokio::spawn(async move {
                for n in 0..300 {
                    let mut report = Report {
                        run_id: run_id.clone(),
                        scope: scope(),
                        checkpoint: n,
                        ..Default::default()
                    };
                    report.counters.add("unchanged");
                    store.report(&report).await?;
                }
                Ok::<_, StoreError>(())
            })
        };
        settles
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        reports
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[tokio::test]
async fn an_id_mapping_is_rewritten_only_when_its_target_changes() {
    // An update re-settles a record whose target id is the one the map holds: the row is
    // left as it is (no page written for it), and its `updated_at` says when it last changed.
    for at in rulebridge::testing::store_backends("store").await.unwrap() {
        let (name, spec) = (at.backend, at.spec.clone());
        let store = SqlStore::open(&spec).await.unwrap();
        let run = store.begin_run(&start(None)).await.unwrap();
        let stamp = || async {
            store.fold_journal().await.unwrap();
            let row: (i64,) = sqlx::query_as(
                "SELECT updated_at FROM rb_idmap WHERE field = 'email' AND value = 'a@x'",
            )
            .fetch_one(store.db().pool())
            .await
            .unwrap();
            row.0
        };
        let settle = |hash: &'static str, id: &'static str, outcome: &'static str| {
            let store = &store;
            let run_id = run.id.clone();
            async move {
                store
                    .settle(
                        &scope(),
                        &target(),
                        &run_id,
                        &[done("a@x", hash, id, outcome)],
                    )
                    .await
                    .unwrap();
            }
        };
        let ids = || async {
            store
                .ids(&target(), "email", &["a@x".to_string()])
                .await
                .unwrap()
        };
        settle("h1", "101", "created").await;
        let first = stamp().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        settle("h2", "101", "updated").await;
        assert_eq!(stamp().await, first, "{name}");
        assert_eq!(ids().await, [Some("101".to_string())], "{name}");
        settle("h3", "202", "created").await;
        assert!(stamp().await > first, "{name}");
        assert_eq!(ids().await, [Some("202".to_string())], "{name}");
    }
}

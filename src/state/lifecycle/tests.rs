use super::*;

#[test]
fn move_into_never_replaces_and_skips_what_is_gone() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("h_1_usage.json");
    let b = d.path().join("h_1.UPLOAD.txt");
    std::fs::write(&a, "a").unwrap();
    std::fs::write(&b, "b").unwrap();
    std::fs::create_dir(d.path().join(SUPERSEDED_DIR)).unwrap();
    // Something else already has b's name there: b stays.
    std::fs::write(
        d.path().join(SUPERSEDED_DIR).join("h_1.UPLOAD.txt"),
        "other",
    )
    .unwrap();
    let gone = d.path().join("gone.json");
    let (moved, errors) = move_into(
        &[a.clone(), b.clone(), gone, PathBuf::from("relative.json")],
        SUPERSEDED_DIR,
    );
    assert_eq!(
        moved,
        [d.path().join(SUPERSEDED_DIR).join("h_1_usage.json")]
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(!a.exists() && b.exists());
    assert_eq!(
        std::fs::read_to_string(d.path().join(SUPERSEDED_DIR).join("h_1.UPLOAD.txt")).unwrap(),
        "other"
    );
    // Again: nothing to do.
    let (moved, errors) = move_into(&moved, SUPERSEDED_DIR);
    assert!(moved.is_empty() && errors.is_empty());
}

/// A `confirmed/` that is a symbolic link is not followed: nothing moves.
#[test]
fn move_into_refuses_a_linked_subdirectory() {
    let d = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), d.path().join(CONFIRMED_DIR)).unwrap();
    let a = d.path().join("h_1_usage.json");
    std::fs::write(&a, "a").unwrap();
    let (moved, errors) = move_into(std::slice::from_ref(&a), CONFIRMED_DIR);
    assert!(moved.is_empty());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("not a real directory"), "{errors:?}");
    assert!(a.exists());
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
}

fn accepted(m: &Manifest, created: &str, seq: u64, id: &str, sha: &str) -> Event {
    Event {
        bundle_sha256: HexDigest::parse(&sha.repeat(64)),
        bundle_id: BundleId::parse(&id.repeat(32)),
        signer: Some(m.sequence.key.clone()),
        sequence: Some(seq),
        host_name: m.source.host_name.clone(),
        server_id: m.source.server_id.clone(),
        created: Timestamp::parse(created),
        ..Event::new(
            Kind::Import,
            Outcome::Accepted,
            Timestamp::parse("2026-11-28T00:00:00Z").unwrap(),
        )
    }
}

#[test]
fn resume_is_refused_once_a_newer_bundle_was_accepted() {
    let d = tempfile::tempdir().unwrap();
    let mut l = Ledger::open(d.path()).unwrap();
    let m = crate::format::manifest::tests::sample();
    // The sample itself (created 2026-11-28, sequence 1) was accepted.
    let mut own = accepted(&m, &m.created.to_string(), 1, "a", "a");
    own.bundle_id = Some(m.bundle_id.clone());
    l.append(own).unwrap();
    {
        let tx = l.begin().unwrap();
        assert!(check_resume(&tx, &m).unwrap().is_none());
        let (o, e) = check_rules(&tx, &m, &Batch::new()).unwrap().unwrap();
        assert_eq!(
            (o, e.code),
            (Outcome::Rejected, Code::LedgerRollback),
            "a replay"
        );
    }
    // A newer one for the same instance: the resume is superseded.
    l.append(accepted(&m, "2026-11-29T00:00:00Z", 2, "b", "b"))
        .unwrap();
    let tx = l.begin().unwrap();
    let e = check_resume(&tx, &m).unwrap().unwrap();
    assert_eq!(e.code, Code::LedgerSuperseded);
    assert!(e.cause.contains(&"b".repeat(32)), "{e}");
    // Another instance's bundles do not count.
    drop(tx);
    let mut other = m.clone();
    other.source.host_name = Some("other.example.com".into());
    let tx = l.begin().unwrap();
    assert!(check_resume(&tx, &other).unwrap().is_none());
}

/// Older than a bundle accepted in the same batch: superseded; older
/// than one accepted in an earlier run: a rollback, whatever the batch.
#[test]
fn superseded_within_a_batch_rollback_across_runs() {
    let d = tempfile::tempdir().unwrap();
    let mut l = Ledger::open(d.path()).unwrap();
    let mut m = crate::format::manifest::tests::sample();
    m.sequence.number = 5;
    // This batch accepted a newer bundle (sequence 9) of the instance.
    l.append(accepted(&m, "2026-11-30T00:00:00Z", 9, "c", "c"))
        .unwrap();
    let mut batch = Batch::new();
    batch.accepted(HexDigest::parse(&"c".repeat(64)).unwrap());
    {
        let tx = l.begin().unwrap();
        let (o, e) = check_rules(&tx, &m, &batch).unwrap().unwrap();
        assert_eq!((o, e.code), (Outcome::Superseded, Code::LedgerSuperseded));
        // Outside the batch (a later run), the same bundle is a rollback.
        let (o, e) = check_rules(&tx, &m, &Batch::new()).unwrap().unwrap();
        assert_eq!((o, e.code), (Outcome::Rejected, Code::LedgerRollback));
    }
    // An earlier run had accepted sequence 7: a rollback even in a batch.
    l.append(accepted(&m, "2026-11-29T00:00:00Z", 7, "e", "e"))
        .unwrap();
    let tx = l.begin().unwrap();
    let (o, e) = check_rules(&tx, &m, &batch).unwrap().unwrap();
    assert_eq!((o, e.code), (Outcome::Rejected, Code::LedgerRollback));
}

/// A hand-over in flight in another live process holds its instance
/// (only its instance), until its end is recorded; a lease of this
/// process (a crash it resumes) does not.
#[test]
fn a_live_lease_holds_its_instance_until_the_hand_over_ends() {
    let d = tempfile::tempdir().unwrap();
    let mut l = Ledger::open(d.path()).unwrap();
    let m = crate::format::manifest::tests::sample();
    let now = SystemTime::now();
    let started = |pid: u32, sha: &str| Event {
        lease_pid: Some(pid),
        kind: Kind::Handover,
        outcome: Outcome::Started,
        at: Timestamp::from_system(now),
        ..accepted(&m, "2026-11-29T00:00:00Z", 2, sha, sha)
    };
    let mut other = m.clone();
    other.source.host_name = Some("other.example.com".into());
    l.append(accepted(&m, "2026-11-29T00:00:00Z", 2, "b", "b"))
        .unwrap();
    // PID 1 lives (and is not this process).
    l.append(started(1, "b")).unwrap();
    {
        let tx = l.begin().unwrap();
        assert_eq!(live_lease(&tx, &m, now).unwrap().map(|x| x.pid), Some(1));
        assert_eq!(live_lease(&tx, &other, now).unwrap(), None);
    }
    let mut done = started(1, "b");
    (done.outcome, done.lease_pid) = (Outcome::Done, None);
    l.append(done).unwrap();
    {
        let tx = l.begin().unwrap();
        assert_eq!(live_lease(&tx, &m, now).unwrap(), None);
    }
    l.append(started(std::process::id(), "c")).unwrap();
    let tx = l.begin().unwrap();
    assert_eq!(live_lease(&tx, &m, now).unwrap(), None);
}

#[test]
fn stages_follow_the_records() {
    let m = crate::format::manifest::tests::sample();
    let a = accepted(&m, "2026-11-29T00:00:00Z", 2, "b", "b");
    let sha = a.bundle_sha256.clone().unwrap();
    let mut evs = vec![a.clone()];
    assert_eq!(stage_of(&evs, &sha), Some(Stage::Accepted));
    let mut started = a.clone();
    started.kind = Kind::Handover;
    started.outcome = Outcome::Started;
    started.lease_pid = Some(1);
    evs.push(started);
    assert!(matches!(stage_of(&evs, &sha), Some(Stage::HandingOver(l)) if l.pid == 1));
    let mut failed = a.clone();
    failed.kind = Kind::Handover;
    failed.outcome = Outcome::Failed;
    evs.push(failed);
    assert_eq!(stage_of(&evs, &sha), Some(Stage::Accepted));
    let mut done = a.clone();
    done.kind = Kind::Handover;
    done.outcome = Outcome::Done;
    done.files = vec!["/o/f".into()];
    evs.push(done);
    assert_eq!(
        stage_of(&evs, &sha),
        Some(Stage::HandedOver(vec!["/o/f".into()]))
    );
    let mut c = a.clone();
    c.kind = Kind::Confirm;
    c.outcome = Outcome::Confirmed;
    evs.push(c);
    assert_eq!(stage_of(&evs, &sha), Some(Stage::Confirmed));
    assert_eq!(
        stage_of(&evs, &HexDigest::parse(&"f".repeat(64)).unwrap()),
        None
    );
    // A lease of a process that is gone, or too old, is not live.
    let now = SystemTime::now();
    let gone = Lease {
        pid: u32::MAX - 1,
        since: Timestamp::from_system(now),
    };
    assert!(!gone.is_live(now));
    let init = Lease {
        pid: 1,
        since: Timestamp::from_system(now),
    };
    assert!(init.is_live(now));
    assert!(!init.is_live(now + LEASE_MAX + Duration::from_secs(1)));
}

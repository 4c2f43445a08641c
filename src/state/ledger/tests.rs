use super::*;

/// The v1 table as v1 airlocks created it (for the migration's test).
const CREATE_EVENTS_V1: &str = "CREATE TABLE events (
    seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, at TEXT NOT NULL, outcome TEXT NOT NULL,
    bundle_sha256 TEXT, bundle_id TEXT, signer TEXT, principal TEXT, sequence INTEGER,
    host_name TEXT, server_id TEXT, created TEXT, expires TEXT, code TEXT, detail TEXT,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL)";

const SHA: &str = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";
const KEY: &str = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

fn ev(kind: Kind, outcome: Outcome) -> Event {
    Event::new(kind, outcome, t("2026-11-28T00:00:00Z"))
}

fn accepted(seq: u64, created: &str, sha: &str) -> Event {
    Event {
        signer: Fingerprint::parse(KEY),
        host_name: Some("h".into()),
        sequence: Some(seq),
        created: Some(t(created)),
        bundle_sha256: HexDigest::parse(sha),
        ..ev(Kind::Import, Outcome::Accepted)
    }
}

/// The stored text is an interface: ledgers on disk hold it, the hash
/// chain covers it and the schema's checks list it.
#[test]
fn stored_text_is_unchanged() {
    let kinds: Vec<&str> = Kind::ALL.iter().map(Kind::as_str).collect();
    assert_eq!(
        kinds,
        ["export", "import", "handover", "confirm", "cloud-sync"]
    );
    let outcomes: Vec<&str> = Outcome::FIXED.iter().map(Outcome::as_str).collect();
    assert_eq!(
        outcomes,
        [
            "reserved",
            "exported",
            "accepted",
            "rejected",
            "already-imported",
            "done",
            "failed",
            "superseded",
            "confirmed",
            "started"
        ]
    );
    for o in &outcomes {
        assert!(
            CREATE_EVENTS.contains(&format!("'{o}'")),
            "{o} not in the schema"
        );
    }
    for k in Kind::ALL {
        assert_eq!(Kind::from_stored(k.as_str()), Some(k));
        for o in Outcome::FIXED {
            let back = Outcome::from_stored(k, o.as_str()).unwrap();
            assert_eq!(back.as_str(), o.as_str());
        }
    }
    // GitHub's status is its own text, even when it reads like ours.
    assert_eq!(
        Outcome::from_stored(Kind::CloudSync, "failed"),
        Some(Outcome::GitHub("failed".into()))
    );
    assert_eq!(Kind::from_stored("later"), None);
    assert_eq!(format!("{:<8}|", Kind::Import), "import  |");
    let json = serde_json::to_string(&ev(Kind::CloudSync, Outcome::GitHub("success".into())));
    assert!(json
        .unwrap()
        .contains(r#""kind":"cloud-sync","at":"2026-11-28T00:00:00Z","outcome":"success""#));
}

/// A v1 record's hash, pinned: computed independently (SHA-256 over the
/// genesis hash, a newline and the compact JSON array of the 15 fields),
/// as every v1 ledger has it; GitHub's raw date is stored in `created`.
#[test]
fn v1_record_hash_is_unchanged() {
    let mut e = ev(Kind::CloudSync, Outcome::GitHub("success".into()));
    e.seq = 1;
    e.record_version = 1;
    e.host_name = Some("ghes.example.com".into());
    e.server_id = Some("6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d".into());
    e.github_date = Some("2026-11-27T00:00:00Z".into());
    e.sync_time = None;
    assert_eq!(
        e.to_row().compute_hash(GENESIS),
        "d6712921b1f60c96029d1c2e9d70c33330efc10116d9491a10b2074fafeac43b"
    );
    // A v2 record's hash covers the v2 fields too.
    e.record_version = 2;
    let h2 = e.to_row().compute_hash(GENESIS);
    e.lease_pid = Some(1);
    assert_ne!(e.to_row().compute_hash(GENESIS), h2);
}

/// A ledger written by a v2 airlock (before licence in) is migrated in
/// place: its rows and hashes kept, `record_version` 2 as it was; new
/// records are v3 and carry licence facts that read back typed.
#[test]
fn v2_ledgers_migrate_to_v3_and_licence_facts_round_trip() {
    let d = tempfile::tempdir().unwrap();
    let create_v2 = CREATE_EVENTS
        .replace("CHECK (record_version IN (1, 2, 3))", "CHECK (record_version IN (1, 2))")
        .replace(
            "    licence TEXT CHECK (licence IS NULL OR (record_version = 3 AND json_valid(licence)\n        AND json_type(licence) = 'object' AND json_type(licence, '$.reference') = 'text')),\n",
            "",
        );
    assert!(!create_v2.contains("licence"), "{create_v2}");
    let raw = Connection::open(d.path().join(LEDGER_FILE)).unwrap();
    raw.execute_batch(&format!(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             INSERT INTO meta VALUES ('schema_version', '2');
             {create_v2};"
    ))
    .unwrap();
    let mut e = ev(Kind::Handover, Outcome::Started);
    e.seq = 1;
    e.record_version = 2;
    e.lease_pid = Some(7);
    e.prev_hash = GENESIS.into();
    let mut row = e.to_row();
    row.hash = row.compute_hash(GENESIS);
    let v2_columns = COLUMNS.replace(" licence,", "");
    raw.execute(
        &format!("INSERT INTO events ({v2_columns}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23,?24,?25,?26)"),
        params![
            row.seq, row.kind, row.at, row.outcome, row.bundle_sha256, row.bundle_id,
            row.signer, row.principal, row.sequence, row.host_name, row.server_id,
            row.created, row.expires, row.code, row.detail, row.record_version, row.files,
            row.lease_pid, row.sync_time, row.file, row.file_size, row.read_offset,
            row.read_bytes, row.read_sha256, row.prev_hash, row.hash
        ],
    )
    .unwrap();
    drop(raw);
    let mut l = Ledger::open(d.path()).unwrap();
    assert_eq!(l.verify_chain().unwrap(), (1, row.hash.clone()));
    let evs = l.events().unwrap();
    assert_eq!((evs[0].record_version, evs[0].lease_pid), (2, Some(7)));
    let facts = LicenceFacts {
        reference: LicenceReference::parse("ABC123").unwrap(),
        seats: Some(500),
        expire_at: Timestamp::parse("2027-12-31T00:00:00Z"),
        overrides: vec!["allow-seat-decrease".into()],
        ..LicenceFacts::new(LicenceReference::parse("ABC123").unwrap())
    };
    let mut lic = ev(Kind::Import, Outcome::Accepted);
    lic.licence = Some(facts.clone());
    let appended = l.append(lic).unwrap();
    assert_eq!(appended.record_version, 3);
    assert_eq!(l.verify_chain().unwrap().0, 2);
    let evs = l.events().unwrap();
    assert_eq!(evs[1].licence.as_ref(), Some(&facts));
    // The licence column is covered by the hash.
    let mut changed = evs[1].clone();
    changed.licence.as_mut().unwrap().seats = Some(501);
    assert_ne!(
        changed.to_row().compute_hash(&evs[1].prev_hash),
        evs[1].hash
    );
    // And `log --json` shows it as an object.
    let json = serde_json::to_value(&evs[1]).unwrap();
    assert_eq!(json["licence"]["reference"], "ABC123");
    // A row with a licence column the schema refuses cannot be written.
    let raw = Connection::open(d.path().join(LEDGER_FILE)).unwrap();
    let bad = raw.execute("UPDATE events SET licence = '[1]' WHERE seq = 2", []);
    assert!(bad.is_err());
}

/// A ledger written by a v1 airlock is migrated in place: every row and
/// hash kept, the chain verifies, the records read typed (hand-over
/// files from `detail`, GitHub's date raw), the rules answer, and
/// records appended now continue the same chain.
#[test]
fn v1_ledgers_migrate_and_still_verify() {
    let d = tempfile::tempdir().unwrap();
    let raw = Connection::open(d.path().join(LEDGER_FILE)).unwrap();
    raw.execute_batch(&format!(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             INSERT INTO meta VALUES ('schema_version', '1');
             {CREATE_EVENTS_V1};"
    ))
    .unwrap();
    let mut prev = GENESIS.to_string();
    for (seq, kind, outcome, created, detail) in [
        (1, "import", "accepted", "2026-11-01T00:00:00Z", None),
        (
            2,
            "handover",
            "done",
            "2026-11-01T00:00:00Z",
            Some("/o/a.json; /o/a.UPLOAD.txt"),
        ),
        (3, "cloud-sync", "success", "Nov 2", None),
    ] {
        let row = Row {
            seq,
            kind: kind.into(),
            at: "2026-11-28T00:00:00Z".into(),
            outcome: outcome.into(),
            bundle_sha256: Some(SHA.into()),
            host_name: Some("h".into()),
            signer: Some(KEY.into()),
            sequence: Some(3),
            created: Some(created.into()),
            detail: detail.map(String::from),
            record_version: 1,
            ..Row::default()
        };
        let hash = row.compute_hash(&prev);
        raw.execute(
            "INSERT INTO events (seq, kind, at, outcome, bundle_sha256, host_name, signer, sequence, created, detail, prev_hash, hash) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 'h', ?6, 3, ?7, ?8, ?9, ?10)",
            params![seq, kind, row.at, outcome, SHA, KEY, created, detail, prev, hash],
        )
        .unwrap();
        prev = hash;
    }
    drop(raw);
    let mut l = Ledger::open(d.path()).unwrap();
    assert_eq!(l.verify_chain().unwrap(), (3, prev));
    let evs = l.events().unwrap();
    assert_eq!(evs[0].outcome, Outcome::Accepted);
    assert_eq!(evs[1].files, ["/o/a.json", "/o/a.UPLOAD.txt"]);
    assert_eq!(evs[2].github_date.as_deref(), Some("Nov 2"));
    assert!(evs.iter().all(|e| e.record_version == 1));
    let tx = l.begin().unwrap();
    let sha = HexDigest::parse(SHA).unwrap();
    assert_eq!(tx.bundle_state(&sha).unwrap(), (true, true));
    let key = Fingerprint::parse(KEY).unwrap();
    assert_eq!(tx.max_sequence(&key, "h", None, &[]).unwrap(), Some(3));
    drop(tx);
    l.append(ev(Kind::Export, Outcome::Reserved)).unwrap();
    assert_eq!(l.verify_chain().unwrap().0, 4);
    let raw = Connection::open(d.path().join(LEDGER_FILE)).unwrap();
    let v: String = raw
        .query_row(
            "SELECT value FROM meta WHERE key='schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(v, "3");
    // Reopening a migrated ledger changes nothing.
    drop(l);
    assert_eq!(Ledger::open(d.path()).unwrap().verify_chain().unwrap().0, 4);
}

/// A v1 row no airlock wrote stops the migration, which changes nothing.
#[test]
fn a_v1_row_the_checks_refuse_stops_the_migration() {
    let d = tempfile::tempdir().unwrap();
    let raw = Connection::open(d.path().join(LEDGER_FILE)).unwrap();
    raw.execute_batch(&format!(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             INSERT INTO meta VALUES ('schema_version', '1');
             {CREATE_EVENTS_V1};
             INSERT INTO events (seq, kind, at, outcome, prev_hash, hash)
               VALUES (1, 'import', 'yesterday', 'accepted', '', '');"
    ))
    .unwrap();
    let e = Ledger::open(d.path()).err().unwrap();
    assert_eq!(e.code, Code::LedgerTampered);
    let v: String = raw
        .query_row(
            "SELECT value FROM meta WHERE key='schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(v, "1");
}

/// The schema's checks hold values airlock does not write out of the
/// table, even when written with `sqlite3` by hand.
#[test]
fn the_schema_refuses_what_airlock_never_writes() {
    let d = tempfile::tempdir().unwrap();
    Ledger::open(d.path()).unwrap();
    let raw = Connection::open(d.path().join(LEDGER_FILE)).unwrap();
    for bad in [
        "'imported', '2026-11-28T00:00:00Z', 'accepted', NULL",
        "'import', '2026-11-28 00:00', 'accepted', NULL",
        "'import', '2026-11-28T00:00:00Z', 'maybe', NULL",
        "'import', '2026-11-28T00:00:00Z', 'accepted', 'ABC'",
    ] {
        let sql = format!(
            "INSERT INTO events (seq, kind, at, outcome, bundle_sha256, prev_hash, hash) VALUES (1, {bad}, '', '')"
        );
        assert!(raw.execute(&sql, []).is_err(), "{bad}");
    }
}

#[test]
fn chain_detects_edit_removal_and_reorder() {
    let d = tempfile::tempdir().unwrap();
    let mut l = Ledger::open(d.path()).unwrap();
    for i in 0..5 {
        let mut e = ev(Kind::Import, Outcome::Accepted);
        e.sequence = Some(i);
        e.files = vec![format!("/o/{i}")];
        l.append(e).unwrap();
    }
    assert_eq!(l.verify_chain().unwrap().0, 5);
    let raw = Connection::open(d.path().join(LEDGER_FILE)).unwrap();
    raw.execute("UPDATE events SET sequence=99 WHERE seq=3", [])
        .unwrap();
    assert_eq!(l.verify_chain().err().unwrap().code, Code::LedgerTampered);
    raw.execute("UPDATE events SET sequence=2 WHERE seq=3", [])
        .unwrap();
    l.verify_chain().unwrap();
    raw.execute("UPDATE events SET files='[\"/elsewhere\"]' WHERE seq=3", [])
        .unwrap();
    assert_eq!(l.verify_chain().err().unwrap().code, Code::LedgerTampered);
    raw.execute("UPDATE events SET files='[\"/o/2\"]' WHERE seq=3", [])
        .unwrap();
    l.verify_chain().unwrap();
    raw.execute("DELETE FROM events WHERE seq=2", []).unwrap();
    assert!(l.verify_chain().is_err());
}

#[test]
fn rules_queries_and_exceptions() {
    let d = tempfile::tempdir().unwrap();
    let mut l = Ledger::open(d.path()).unwrap();
    let other = "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0";
    l.append(accepted(7, "2026-11-01T00:00:00Z", SHA)).unwrap();
    l.append(accepted(9, "2026-11-03T00:00:00Z", other))
        .unwrap();
    let tx = l.begin().unwrap();
    let key = Fingerprint::parse(KEY).unwrap();
    assert_eq!(tx.max_sequence(&key, "h", None, &[]).unwrap(), Some(9));
    assert_eq!(tx.max_sequence(&key, "h", Some("x"), &[]).unwrap(), None);
    let except = [HexDigest::parse(other).unwrap()];
    assert_eq!(tx.max_sequence(&key, "h", None, &except).unwrap(), Some(7));
    assert_eq!(
        tx.newest_created("h", None, &[]).unwrap(),
        Some(t("2026-11-03T00:00:00Z"))
    );
    assert_eq!(
        tx.newest_created("h", None, &except).unwrap(),
        Some(t("2026-11-01T00:00:00Z"))
    );
    let sha = HexDigest::parse(SHA).unwrap();
    assert_eq!(tx.bundle_state(&sha).unwrap(), (true, false));
}

//! The licence rules and the hand-over's records, against an appliance
//! double in memory (the stand-ins over SSH and HTTPS run in tests/).

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::*;
use crate::appliance::Backup;
use crate::crypto::trust::TrustStore;
use crate::export::{write_bundle, BundleSpec, Input};
use crate::format::licence::LicenceInput;
use crate::format::manifest::LicenceReference;
use crate::verify::Clock;

const DAY: Duration = Duration::from_secs(86_400);

fn t0() -> SystemTime {
    humantime::parse_rfc3339("2026-12-01T00:00:00Z").unwrap()
}

fn info(reference: &str, seats: Option<u64>, expire: &str) -> LicenceInfo {
    LicenceInfo {
        reference: LicenceReference::parse(reference).unwrap(),
        seats,
        expire_at: Timestamp::parse(expire).unwrap(),
    }
}

/// An appliance in memory: the active file, what it reads from each file,
/// and switches for a busy appliance and a lying one.
struct Double {
    active: Vec<u8>,
    reads: HashMap<Vec<u8>, LicenceInfo>,
    busy: bool,
    lie: bool,
    applied: usize,
    used: Option<u64>,
    seats_fail: bool,
}

impl Double {
    fn read(&self, bytes: &[u8]) -> Result<LicenceInfo> {
        self.reads
            .get(bytes)
            .cloned()
            .ok_or_else(|| Error::new(Code::ApplianceRefused, "not a licence"))
    }
}

impl Appliance for Double {
    fn path(&self) -> crate::appliance::Path {
        crate::appliance::Path::Ssh
    }
    fn describe(&self) -> String {
        "double".into()
    }
    fn dry_run(&mut self, licence: &[u8]) -> Result<Option<LicenceInfo>> {
        self.read(licence).map(Some)
    }
    fn active(&mut self) -> Result<LicenceInfo> {
        self.read(&self.active)
    }
    fn backup(&mut self) -> Result<Backup> {
        Ok(Backup::File(self.active.clone()))
    }
    fn apply(&mut self, licence: &[u8]) -> Result<()> {
        if self.busy {
            return Err(Error::new(Code::ApplianceBusy, "config-apply is running"));
        }
        self.applied += 1;
        if !self.lie {
            self.active = licence.to_vec();
        }
        Ok(())
    }
    fn check(&mut self) -> Result<bool> {
        Ok(true)
    }
    fn active_sha256(&mut self) -> Result<Option<HexDigest>> {
        use sha2::Digest;
        Ok(HexDigest::parse(&hex::encode(sha2::Sha256::digest(
            &self.active,
        ))))
    }
    fn seats_used(&mut self) -> Result<Option<SeatsUsed>> {
        if self.seats_fail {
            return Err(Error::new(Code::ApplianceUnauthorized, "HTTP 401"));
        }
        Ok(self.used.map(|seats| SeatsUsed {
            seats,
            source: "double".into(),
        }))
    }
}

struct World {
    dir: tempfile::TempDir,
    trust: TrustStore,
    state: StateDir,
    appliance: Double,
    sequence: u64,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl World {
    /// The active licence OLD1: 100 seats until 2027-01-01.
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let k = root().join("keys");
        let trust = TrustStore::load(&k.join("licence_allowed_signers"), None).unwrap();
        let state = StateDir::open(&dir.path().join("state")).unwrap();
        let old = b"licence OLD1".to_vec();
        let mut reads = HashMap::new();
        reads.insert(old.clone(), info("OLD1", Some(100), "2027-01-01T00:00:00Z"));
        World {
            dir,
            trust,
            state,
            appliance: Double {
                active: old,
                reads,
                busy: false,
                lie: false,
                applied: 0,
                used: Some(90),
                seats_fail: false,
            },
            sequence: 0,
        }
    }

    /// A licence bundle signed by `key` for `reference`, whose file the
    /// appliance reads as `read`, made `age` after t0.
    fn bundle(&mut self, key: &str, reference: &str, read: LicenceInfo, age: Duration) -> Opened {
        let ghl = self
            .dir
            .path()
            .join(format!("github-enterprise-{reference}.ghl"));
        let bytes = format!("licence {reference} {:?}", read).into_bytes();
        fs::write(&ghl, &bytes).unwrap();
        self.appliance.reads.insert(bytes, read);
        // A fresh clone has the test keys 0644, which airlock refuses.
        let copy = self.dir.path().join(key);
        fs::copy(root().join("keys").join(key), &copy).unwrap();
        fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let signer = crate::crypto::keys::load_signer(&copy, &mut || {
            unreachable!("test keys have no passphrase")
        })
        .unwrap();
        let input = Input::licence(&ghl, LicenceInput::new(&ghl, "octo-corp", None).unwrap());
        let spec = BundleSpec {
            signer: &signer,
            recipients: &Default::default(),
            host_name: None,
            server_id: None,
            created: t0() + age,
            expires_in: 30 * DAY,
            tool: crate::tool_version(),
        };
        self.sequence += 1;
        let out = self
            .dir
            .path()
            .join(format!("{reference}-{}.airlock.zip", self.sequence));
        write_bundle(
            fs::File::create(&out).unwrap(),
            &[input],
            &spec,
            self.sequence,
        )
        .unwrap();
        Opened::open(&out).unwrap()
    }

    fn import(&mut self, b: Opened, seats: SeatDecrease) -> Result<LicenceReport> {
        let opts = LicenceImport {
            verify: VerifyOptions {
                progress: crate::base::progress::Progress::none(),
                trust: &self.trust,
                identities: None,
                require_signers: 1,
                now: Clock::Fixed(t0() + 2 * DAY),
                skew: crate::verify::DEFAULT_SKEW,
            },
            state: &self.state,
            seat_decrease: seats,
        };
        import_licence(b, &opts, &mut self.appliance)
    }

    fn records(&self) -> Vec<(Kind, Outcome, Option<String>)> {
        Ledger::open(self.state.path())
            .unwrap()
            .events()
            .unwrap()
            .into_iter()
            .map(|e| (e.kind, e.outcome, e.code))
            .collect()
    }
}

fn newer() -> LicenceInfo {
    info("NEW2", Some(120), "2028-01-01T00:00:00Z")
}

#[test]
fn a_newer_licence_is_backed_up_applied_confirmed_and_recorded() {
    let mut w = World::new();
    let b = w.bundle("connected_ed25519", "NEW2", newer(), DAY);
    let r = w.import(b, SeatDecrease::Refuse).unwrap();
    assert_eq!(w.appliance.applied, 1);
    assert_eq!(r.active_after.reference.as_str(), "NEW2");
    assert_eq!(r.file_matches, Some(true));
    // The outgoing licence, byte for byte, before the apply.
    assert_eq!(r.backup.len(), 1);
    assert_eq!(fs::read(&r.backup[0]).unwrap(), b"licence OLD1");
    let recs = w.records();
    let kinds: Vec<_> = recs.iter().map(|(k, o, _)| (*k, o.clone())).collect();
    assert_eq!(
        kinds,
        [
            (Kind::Import, Outcome::Accepted),
            (Kind::Handover, Outcome::Started),
            (Kind::Handover, Outcome::Done),
            (Kind::Confirm, Outcome::Confirmed),
        ]
    );
    let evs = Ledger::open(w.state.path()).unwrap().events().unwrap();
    let f = evs[3].licence.as_ref().unwrap();
    assert_eq!(f.active_before.as_ref().unwrap().reference.as_str(), "OLD1");
    assert_eq!(f.seats, Some(120));
    assert_eq!(evs[3].principal.as_deref(), Some("octo-corp"));
    // The same licence again: refused, nothing applied.
    let again = w.bundle("connected_ed25519", "NEW2", newer(), 2 * DAY);
    let e = w.import(again, SeatDecrease::Refuse).unwrap_err();
    assert_eq!(e.code, Code::LicenceApplied);
    assert_eq!(w.appliance.applied, 1);
}

#[test]
fn each_licence_rule_refuses_with_its_own_code_and_applies_nothing() {
    let cases = [
        (
            "EARLY",
            info("EARLY", Some(120), "2026-12-31T00:00:00Z"),
            Code::LicenceExpiryEarlier,
        ),
        (
            "FEW",
            info("FEW", Some(99), "2028-01-01T00:00:00Z"),
            Code::LicenceSeatsFewer,
        ),
        (
            "SIGNED",
            info("OTHER", Some(120), "2028-01-01T00:00:00Z"),
            Code::LicenceReference,
        ),
    ];
    for (reference, read, code) in cases {
        let mut w = World::new();
        let b = w.bundle("connected_ed25519", reference, read, DAY);
        let e = w.import(b, SeatDecrease::Refuse).unwrap_err();
        assert_eq!(e.code, code, "{reference}");
        assert_eq!(w.appliance.applied, 0, "{reference}");
        assert_eq!(
            w.records(),
            [(
                Kind::Import,
                Outcome::Rejected,
                Some(code.as_str().to_string())
            )],
            "{reference}"
        );
        assert!(
            !w.state.path().join("licence/backup").exists() || {
                fs::read_dir(w.state.path().join("licence/backup"))
                    .unwrap()
                    .count()
                    == 0
            }
        );
    }
}

#[test]
fn fewer_seats_apply_only_when_allowed_and_the_override_is_recorded() {
    let mut w = World::new();
    w.appliance.used = Some(110);
    let b = w.bundle(
        "connected_ed25519",
        "FEW",
        info("FEW", Some(99), "2028-01-01T00:00:00Z"),
        DAY,
    );
    let r = w.import(b, SeatDecrease::Allow).unwrap();
    assert_eq!(r.overrides, ["allow-seat-decrease"]);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(r.warnings[0].contains("110 are in use"));
    let evs = Ledger::open(w.state.path()).unwrap().events().unwrap();
    assert_eq!(
        evs[0].licence.as_ref().unwrap().overrides,
        ["allow-seat-decrease"]
    );
}

#[test]
fn the_wrong_signer_and_a_usage_bundle_are_refused_before_the_appliance() {
    let mut w = World::new();
    let b = w.bundle("exporter_ed25519", "NEW2", newer(), DAY);
    let e = w.import(b, SeatDecrease::Refuse).unwrap_err();
    assert_eq!(e.code.class(), crate::base::error::Class::Trust, "{e:?}");
    let usage =
        Opened::open(&root().join("fixtures/bundles/golden_clear_users.airlock.zip")).unwrap();
    let e = w.import(usage, SeatDecrease::Refuse).unwrap_err();
    assert_eq!(e.code, Code::NotALicence);
    assert_eq!(w.appliance.applied, 0);
}

#[test]
fn a_lying_appliance_is_an_error_naming_the_backup() {
    let mut w = World::new();
    w.appliance.lie = true;
    let b = w.bundle("connected_ed25519", "NEW2", newer(), DAY);
    let e = w.import(b, SeatDecrease::Refuse).unwrap_err();
    assert_eq!(e.code, Code::LicenceNotActive);
    assert!(e.hint().contains("licence/backup/"), "{}", e.hint());
    let last = w.records().pop().unwrap();
    assert_eq!((last.0, last.1), (Kind::Confirm, Outcome::Failed));
}

#[test]
fn a_busy_appliance_is_retried_by_the_next_run_which_resumes() {
    let mut w = World::new();
    w.appliance.busy = true;
    let b = w.bundle("connected_ed25519", "NEW2", newer(), DAY);
    let path = b.path().to_path_buf();
    let e = w.import(b, SeatDecrease::Refuse).unwrap_err();
    assert_eq!(e.code, Code::ApplianceBusy);
    w.appliance.busy = false;
    let r = w
        .import(Opened::open(&path).unwrap(), SeatDecrease::Refuse)
        .unwrap();
    assert!(r.resumed);
    assert_eq!(w.appliance.applied, 1);
    // The bundle that is older than one accepted is refused as older.
    let older = w.bundle(
        "connected_ed25519",
        "NEW3",
        info("NEW3", Some(200), "2029-01-01T00:00:00Z"),
        Duration::ZERO,
    );
    assert_eq!(
        w.import(older, SeatDecrease::Refuse).unwrap_err().code,
        Code::LedgerOlder
    );
}

#[test]
fn a_staged_licence_waits_and_the_person_s_import_applies_it() {
    let mut w = World::new();
    let b = w.bundle("connected_ed25519", "NEW2", newer(), DAY);
    let path = b.path().to_path_buf();
    let opts = LicenceImport {
        verify: VerifyOptions {
            progress: crate::base::progress::Progress::none(),
            trust: &w.trust,
            identities: None,
            require_signers: 1,
            now: Clock::Fixed(t0() + 2 * DAY),
            skew: crate::verify::DEFAULT_SKEW,
        },
        state: &w.state,
        seat_decrease: SeatDecrease::Refuse,
    };
    let s = stage_licence(b, &opts).unwrap();
    assert!(!s.already);
    assert_eq!(
        fs::read(&s.received).unwrap().len(),
        fs::metadata(&s.received).unwrap().len() as usize
    );
    // Staging again changes nothing; nothing reached the appliance.
    assert!(
        stage_licence(Opened::open(&path).unwrap(), &opts)
            .unwrap()
            .already
    );
    assert_eq!(w.appliance.applied, 0);
    assert_eq!(w.records().len(), 1);
    let r = w
        .import(Opened::open(&path).unwrap(), SeatDecrease::Refuse)
        .unwrap();
    assert!(r.resumed);
    assert_eq!(w.appliance.applied, 1);
}

/// Review finding 1: a staged (accepted) bundle imported after a newer
/// one was applied is refused, not applied over it.
#[test]
fn a_staged_bundle_overtaken_by_a_newer_one_is_not_applied() {
    let mut w = World::new();
    let old = w.bundle("connected_ed25519", "NEW2", newer(), DAY);
    let old_path = old.path().to_path_buf();
    let opts = LicenceImport {
        verify: VerifyOptions {
            progress: crate::base::progress::Progress::none(),
            trust: &w.trust,
            identities: None,
            require_signers: 1,
            now: Clock::Fixed(t0() + 2 * DAY),
            skew: crate::verify::DEFAULT_SKEW,
        },
        state: &w.state,
        seat_decrease: SeatDecrease::Refuse,
    };
    assert!(!stage_licence(old, &opts).unwrap().already);
    let new = w.bundle(
        "connected_ed25519",
        "NEW3",
        info("NEW3", Some(200), "2029-01-01T00:00:00Z"),
        DAY + Duration::from_secs(60),
    );
    w.import(new, SeatDecrease::Refuse).unwrap();
    assert_eq!(w.appliance.applied, 1);
    let e = w
        .import(Opened::open(&old_path).unwrap(), SeatDecrease::Refuse)
        .unwrap_err();
    assert_eq!(e.code, Code::LedgerSuperseded, "{e:?}");
    assert_eq!(
        w.appliance.applied, 1,
        "nothing applied over the newer licence"
    );
}

/// Review finding 3: seats in use that cannot be read are a warning; the
/// licence is still applied (an expired licence stops the API that counts
/// them).
#[test]
fn unreadable_seats_in_use_are_a_warning_not_a_refusal() {
    let mut w = World::new();
    w.appliance.seats_fail = true;
    let b = w.bundle("connected_ed25519", "NEW2", newer(), DAY);
    let r = w.import(b, SeatDecrease::Refuse).unwrap();
    assert_eq!(w.appliance.applied, 1);
    assert!(
        r.warnings
            .iter()
            .any(|x| x.contains("seats in use could not be read")),
        "{:?}",
        r.warnings
    );
}

/// Review finding 2: one licence in flight per enterprise, whatever the
/// bundle: a live lease on another licence bundle refuses this one for now.
#[test]
fn another_licence_being_applied_refuses_this_one_for_now() {
    let mut w = World::new();
    let first = w.bundle("connected_ed25519", "NEW2", newer(), DAY);
    let sha = {
        let mut l = Ledger::open(w.state.path()).unwrap();
        let mut e = Event::new(
            Kind::Handover,
            Outcome::Started,
            Timestamp::from_system(t0() + 2 * DAY),
        );
        let sha = HexDigest::parse(&"ab".repeat(32)).unwrap();
        e.bundle_sha256 = Some(sha.clone());
        e.principal = Some("octo-corp".into());
        // pid 1 is always running, and is not this process.
        e.lease_pid = Some(1);
        e.licence = Some(LicenceFacts::new(LicenceReference::parse("OTHER").unwrap()));
        l.append(e).unwrap();
        sha
    };
    let e = w.import(first, SeatDecrease::Refuse).unwrap_err();
    assert_eq!(e.code, Code::HandoverInFlight, "{e:?} (lease on {sha})");
    assert_eq!(w.appliance.applied, 0);
}

//! Export: payload files → canonical signed bundle, published atomically and
//! read back from the device before it is given its final name.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::bundle::container::{check_name_syntax, Writer};
use crate::bundle::manifest::{
    format_time, version_for, Encryption, Fingerprint, FormatName, Manifest, PayloadEntry,
    PayloadKind, Sequence, Source, Timestamp, MANIFEST_NAME, MAX_LIFETIME, MAX_PAYLOAD_MEMBERS,
};
use crate::bundle::rules::{bundle_id, derived_name, signature_member_name, CHUNK};
use crate::bundle::stage::{self, BundleHash};
use crate::bundle::verify::{verify_bundle, Clock, Destination, VerifyOptions};
use crate::crypt::Recipients;
use crate::error::{Code, Error, Result};
use crate::fsutil;
use crate::keys::Signer;
use crate::ledger::{Event, Kind, Ledger, Outcome};
use crate::state::StateDir;
use crate::trust::{AllowedSigner, TrustStore};
use crate::usage::{self, Sniff, UsageInfo};

/// Where a payload's bytes come from.
pub enum InputSource {
    Path(PathBuf),
    Stdin,
}

pub struct Input {
    /// File name inside the bundle (without `payload/`).
    pub name: String,
    pub source: InputSource,
    /// Refuse the input unless it is a GHES license usage file (what
    /// `export -` expects: a failed `ghe-license` must not become a signed
    /// bundle). Otherwise the content decides: a usage file is recognised,
    /// anything else travels as an opaque file.
    pub require_usage: bool,
}

impl Input {
    /// A file on disk, named in the bundle after its base name.
    pub fn path(p: &Path) -> Result<Input> {
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| {
                Error::new(
                    Code::Args,
                    format!("{} has no usable file name", p.display()),
                )
            })?
            .to_string();
        Ok(Input {
            name,
            source: InputSource::Path(p.to_path_buf()),
            require_usage: false,
        })
    }

    /// Standard input, named `name` in the bundle; it must be a GHES license
    /// usage file unless `any_kind`.
    pub fn stdin(name: &str, any_kind: bool) -> Input {
        Input {
            name: name.to_string(),
            source: InputSource::Stdin,
            require_usage: !any_kind,
        }
    }
}

/// How many bytes of an input are kept to describe it when it is not the
/// usage file that was expected.
const HEAD: usize = 256;

/// The error for an input that had to be a usage file and is not.
fn not_usage(label: &str, head: &[u8], size: u64, stdin: bool) -> Error {
    let text = String::from_utf8_lossy(head);
    let first = text.trim_start();
    let cause = if size == 0 {
        format!("{label} is empty: no GHES license usage file arrived")
    } else if first.is_empty() && size as usize <= HEAD {
        format!("{label} holds only blank space: no GHES license usage file arrived")
    } else if !(first.starts_with('{') || first.starts_with('[')) {
        let line: String = first
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(60)
            .collect();
        format!(
            "{label} is not a GHES license usage file: it is not JSON, it starts with \"{}\"",
            line.escape_debug()
        )
    } else {
        format!("{label} is JSON but not a GHES license usage file (it has no \"instance\" object)")
    };
    let hint = if stdin {
        "the command that produced it may have failed: check its error output (on the appliance, \
         `ghe-license usage -o -y`); to carry another kind of file from standard input, pass --kind file"
    } else {
        "export the usage file again from GHES (Enterprise settings -> License -> Export license usage); \
         to carry this file as it is, pass --kind file"
    };
    Error::new(Code::NotUsageFile, cause).with_hint(hint)
}

pub struct ExportOptions<'a> {
    pub inputs: Vec<Input>,
    pub signer: &'a Signer,
    pub host_name: Option<String>,
    pub server_id: Option<String>,
    /// The bundle's signed creation time.
    pub created: SystemTime,
    pub expires_in: Duration,
    /// The clock the ledger's records are dated by (the moment of the run,
    /// which `created` need not be).
    pub now: Clock,
    /// A file path, or a directory in which a name is derived.
    pub out: PathBuf,
    pub overwrite: bool,
    pub state: &'a StateDir,
    pub tool: String,
    /// Encrypt every payload member to these recipients (none: signed only).
    pub recipients: &'a Recipients,
    /// Read the bundle back from the device and verify it before publishing.
    /// Always on in normal use; off only to time the write path alone.
    pub read_back: bool,
}

/// What export produced.
#[derive(Debug)]
pub struct ExportReport {
    pub path: PathBuf,
    pub manifest: Manifest,
    pub bundle_size: u64,
    /// Usage files recognised, by member name.
    pub usage: Vec<(String, UsageInfo)>,
}

struct Staged {
    entry: PayloadEntry,
    usage: Option<UsageInfo>,
}

fn stream_member<W: Write + io::Seek + Send>(
    zw: &mut Writer<W>,
    input: &Input,
    out_path: &Path,
    recipients: &Recipients,
    bundle: Option<&mut BundleHash>,
) -> Result<Staged> {
    let encrypt = !recipients.is_empty();
    let member = if encrypt {
        format!("payload/{}.age", input.name)
    } else {
        format!("payload/{}", input.name)
    };
    check_name_syntax(&member).map_err(|e| {
        Error::new(Code::Args, e.cause).with_hint(
            "rename the file: payload names may use letters, digits, '.', '_' and '-', and must not start with a dot",
        )
    })?;
    // The file itself too, for the CRC pre-pass (positioned reads).
    let (mut reader, label, total, file): (Box<dyn Read>, String, u64, Option<File>) =
        match &input.source {
            InputSource::Path(p) => {
                let f = File::open(p).map_err(|e| Error::io_read(p, e))?;
                let total = f.metadata().map(|m| m.len()).unwrap_or(0);
                let pre = f.try_clone().ok();
                (Box::new(f), p.display().to_string(), total, pre)
            }
            InputSource::Stdin => (
                Box::new(io::stdin().lock()),
                "standard input".to_string(),
                0,
                None,
            ),
        };
    crate::progress::begin(&format!("export {}", input.name), total);
    let s = stage::stage(
        zw,
        &member,
        &mut reader,
        file.as_ref(),
        &label,
        out_path,
        recipients,
        bundle,
    )?;
    crate::progress::end();
    let (kind, usage) = match s.verdict {
        Sniff::Usage(u) => (PayloadKind::Usage, Some(u)),
        Sniff::Invalid(why) => return Err(usage::invalid(&label, &why)),
        Sniff::Other if input.require_usage => {
            let stdin = matches!(input.source, InputSource::Stdin);
            return Err(not_usage(&label, &s.head, s.read, stdin));
        }
        Sniff::Other => (PayloadKind::File, None),
    };
    Ok(Staged {
        entry: PayloadEntry {
            name: member,
            size: s.entry.size,
            sha256: s.sha256,
            kind,
            encryption: encrypt.then_some(Encryption::Age),
        },
        usage,
    })
}

/// Decide the source instance from the usage files and the flags.
fn resolve_source(
    staged: &[Staged],
    host_name: Option<String>,
    server_id: Option<String>,
) -> Result<Source> {
    let mut src: Option<Source> = None;
    for s in staged {
        if let Some(u) = &s.usage {
            let this = Source {
                host_name: u.host_name.clone(),
                server_id: Some(u.server_id.clone()),
            };
            match &src {
                None => src = Some(this),
                Some(prev) if *prev == this => {}
                Some(prev) => {
                    return Err(Error::new(
                        Code::SourceConflict,
                        format!(
                            "the usage files come from different instances ({} and {})",
                            prev.host_name, this.host_name
                        ),
                    )
                    .with_hint("export each instance's usage file in its own bundle"))
                }
            }
        }
    }
    match src {
        Some(s) => {
            if host_name.as_ref().is_some_and(|h| *h != s.host_name)
                || server_id
                    .as_ref()
                    .is_some_and(|i| Some(i) != s.server_id.as_ref())
            {
                return Err(Error::new(
                    Code::SourceConflict,
                    format!(
                        "the usage file is from {} ({}), not the instance given on the command line",
                        s.host_name,
                        s.server_id.as_deref().unwrap_or("-")
                    ),
                ));
            }
            Ok(s)
        }
        None => {
            let host_name = host_name.ok_or_else(|| {
                Error::new(
                    Code::SourceUnknown,
                    "no GHES license usage file among the inputs, and no --host-name",
                )
            })?;
            if !usage::is_host_name(&host_name) {
                return Err(Error::new(
                    Code::Args,
                    format!("--host-name {host_name:?} is not a host name"),
                ));
            }
            if let Some(id) = &server_id {
                if !usage::is_uuid(id) {
                    return Err(Error::new(
                        Code::Args,
                        format!("--server-id {id:?} is not a UUID"),
                    ));
                }
            }
            Ok(Source {
                host_name,
                server_id,
            })
        }
    }
}

/// Export a bundle.
pub fn export(opts: ExportOptions<'_>) -> Result<ExportReport> {
    if opts.inputs.is_empty() {
        return Err(Error::new(Code::Args, "nothing to export"));
    }
    if opts.inputs.len() > MAX_PAYLOAD_MEMBERS {
        return Err(Error::new(
            Code::Args,
            format!("at most {MAX_PAYLOAD_MEMBERS} files fit in one bundle"),
        ));
    }
    if opts.expires_in.is_zero() || opts.expires_in > MAX_LIFETIME {
        return Err(Error::new(
            Code::Args,
            "--expires-in must be between 1 second and 366 days",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for i in &opts.inputs {
        if !seen.insert(i.name.to_ascii_lowercase()) {
            return Err(Error::new(
                Code::Args,
                format!("two inputs are both named {}", i.name),
            ));
        }
    }
    if opts
        .inputs
        .iter()
        .filter(|i| matches!(i.source, InputSource::Stdin))
        .count()
        > 1
    {
        return Err(Error::new(
            Code::Args,
            "standard input can be read only once",
        ));
    }
    // A path ending in '/' names a directory (a mounted stick), existing or not.
    let names_dir = opts.out.as_os_str().as_encoded_bytes().ends_with(b"/");
    if names_dir || opts.out.is_dir() {
        fsutil::ensure_dir(&opts.out, "output directory")?;
    } else {
        fsutil::ensure_dir(&fsutil::parent_dir(&opts.out), "output directory")?;
    }
    let out_is_dir = opts.out.is_dir();
    let probe_target = if out_is_dir {
        opts.out.join("bundle")
    } else {
        opts.out.clone()
    };
    if !out_is_dir && !opts.overwrite && opts.out.exists() {
        return Err(Error::new(
            Code::OutputExists,
            format!("{} already exists", opts.out.display()),
        ));
    }

    let tmp = fsutil::temp_beside(&probe_target, 0o644)?;
    let file = tmp
        .as_file()
        .try_clone()
        .map_err(|e| Error::io_write(tmp.path(), e))?;
    let mut zw = Writer::new(BufWriter::with_capacity(
        CHUNK,
        fsutil::EarlyWriteback::new(file)?,
    ));
    // Without a read-back, the ledger's bundle hash is taken in the writing
    // pass when it can be (stage.rs), else after it.
    let mut bundle_hash = if opts.read_back {
        None
    } else {
        let f = tmp
            .as_file()
            .try_clone()
            .map_err(|e| Error::io_write(tmp.path(), e))?;
        Some(BundleHash::new(f))
    };
    let mut staged = Vec::new();
    for input in &opts.inputs {
        staged.push(stream_member(
            &mut zw,
            input,
            &probe_target,
            opts.recipients,
            bundle_hash.as_mut(),
        )?);
    }
    let source = resolve_source(&staged, opts.host_name.clone(), opts.server_id.clone())?;

    let signer = opts.signer;
    let fp = signer.fingerprint();
    let number = opts.state.next_sequence(&signer.public.id_hex())?;
    // The ledger records the reservation first, so a crash before publication
    // shows as a reserved number without an export.
    let mut ledger = Ledger::open(opts.state.path())?;
    let reserved = Event {
        signer: Some(fp.clone()),
        sequence: Some(number as i64),
        ..Event::new(Kind::Export, Outcome::Reserved, format_time(opts.now.now()))
    };
    ledger.append(reserved)?;
    fsutil::fault_point("export:reserved");
    let created = Timestamp::from_system(opts.created);
    let expires = created + opts.expires_in;
    let key = Fingerprint::parse(&fp)
        .ok_or_else(|| Error::new(Code::Internal, format!("fingerprint {fp:?}")))?;
    let payload: Vec<PayloadEntry> = staged.iter().map(|s| s.entry.clone()).collect();
    let manifest = Manifest {
        format: FormatName::AirlockBundle,
        version: version_for(&opts.recipients.listed),
        bundle_id: bundle_id(&key, number, created, &payload),
        created,
        expires,
        tool: opts.tool.clone(),
        source,
        sequence: Sequence { key, number },
        payload,
        recipients: opts.recipients.listed.clone(),
    };
    manifest.check()?;
    let manifest_bytes = manifest.to_bytes();
    let sig = signer.sign(crate::sshsig::BUNDLE_NAMESPACE, &manifest_bytes)?;
    zw.add_bytes(MANIFEST_NAME, &manifest_bytes)
        .map_err(|e| Error::io_write(&probe_target, e))?;
    zw.add_bytes(&signature_member_name(&sig), sig.to_armored().as_bytes())
        .map_err(|e| Error::io_write(&probe_target, e))?;
    let buffered = zw.finish().map_err(|e| Error::io_write(&probe_target, e))?;
    let file = buffered
        .into_inner()
        .map_err(|e| Error::io_write(&probe_target, e.into_error()))?
        .finish()
        .map_err(|e| Error::io_write(&probe_target, e))?;
    // The ledger records the bundle's SHA-256. With the read-back (the
    // default) it comes from the read-back's verifying pass over the device:
    // the hash of what is on the medium, from the read that was verified.
    // Without it, it was taken while the bundle was written, or else the
    // file is hashed on the second core from the page cache while fsync
    // waits for the device.
    let in_pass = bundle_hash.filter(BundleHash::usable);
    let side_hash = if opts.read_back || in_pass.is_some() {
        None
    } else {
        let hash_path = tmp.path().to_path_buf();
        Some(
            fsutil::helper_thread("bundle-sha256")?
                .spawn(move || fsutil::sha256_file(&hash_path))
                .map_err(|e| {
                    Error::new(
                        Code::Resources,
                        format!("cannot start the hashing thread: {e}"),
                    )
                })?,
        )
    };
    let synced = file.sync_all();
    let in_pass = in_pass.map(BundleHash::finish).transpose()?.flatten();
    drop(file);
    let side_hash = side_hash
        .map(|h| {
            h.join()
                .map_err(|_| Error::new(Code::Internal, "the hashing thread panicked"))?
                .map_err(|e| Error::io_read(tmp.path(), e))
        })
        .transpose()?;
    synced.map_err(|e| Error::io_write(&probe_target, e))?;

    fsutil::fault_point("export:written");
    // Read back from the device, not the page cache: removable media lie.
    let bundle_sha256 = match in_pass.or(side_hash) {
        Some(h) => h,
        None => readback(tmp.path(), signer, &manifest_bytes, opts.created)?,
    };

    let target = if out_is_dir {
        opts.out.join(derived_name(&manifest))
    } else {
        opts.out.clone()
    };
    let bundle_size = tmp
        .as_file()
        .metadata()
        .map_err(|e| Error::io_write(tmp.path(), e))?
        .len();
    // Synced above (beside the ledger hash); only the rename is left.
    fsutil::publish_synced(tmp, &target, opts.overwrite)?;
    fsutil::fault_point("export:published");
    ledger.append(Event {
        bundle_sha256: Some(bundle_sha256),
        bundle_id: Some(manifest.bundle_id.to_string()),
        signer: Some(fp.clone()),
        principal: None,
        sequence: Some(number as i64),
        host_name: Some(manifest.source.host_name.clone()),
        server_id: manifest.source.server_id.clone(),
        created: Some(manifest.created.to_string()),
        expires: Some(manifest.expires.to_string()),
        detail: Some(target.display().to_string()),
        ..Event::new(Kind::Export, Outcome::Exported, format_time(opts.now.now()))
    })?;
    Ok(ExportReport {
        path: target,
        manifest,
        bundle_size,
        usage: staged
            .into_iter()
            .filter_map(|s| s.usage.map(|u| (s.entry.name, u)))
            .collect(),
    })
}

/// Verify a freshly written bundle with the exporter's own key as the only
/// trusted key, after evicting it from the page cache, through the same core
/// as `verify`. Returns the SHA-256 of the bundle as that pass read it.
pub fn readback(
    path: &Path,
    signer: &Signer,
    manifest_bytes: &[u8],
    created: SystemTime,
) -> Result<String> {
    let file = crate::bundle::container::open_bundle(path)?;
    fsutil::evict_cache(&file);
    let trust = TrustStore {
        signers: vec![AllowedSigner {
            line: 0,
            principals: "*".into(),
            namespaces: None,
            valid_after: None,
            valid_before: None,
            key: signer.public.clone(),
        }],
        revoked: Default::default(),
        source: "the exporting key".into(),
    };
    let opts = VerifyOptions {
        trust: &trust,
        now: Clock::Fixed(created),
        skew: Duration::from_secs(0),
        identities: None,
        require_signers: 1,
    };
    let (v, _) = verify_bundle(file, &opts, &Destination::Discard, true).map_err(|e| {
        let code = if e.code == Code::BundleChanged {
            Code::BundleChanged
        } else {
            Code::Readback
        };
        Error::new(
            code,
            format!("the bundle read back from disk does not verify: {e}"),
        )
    })?;
    if v.manifest_bytes != manifest_bytes {
        return Err(Error::new(
            Code::Readback,
            "the manifest read back differs from the one written",
        ));
    }
    v.bundle_sha256
        .ok_or_else(|| Error::new(Code::Internal, "the read-back took no bundle hash"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::verify::{verify_file, Clock};
    use crate::sample::{usage_encrypted, SAMPLE_HOST, SAMPLE_SERVER_ID};

    struct Setup {
        dir: tempfile::TempDir,
        signer: Signer,
        state: StateDir,
        trust: TrustStore,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        let g = crate::keys::generate(&key, "test", None, false).unwrap();
        let signer = crate::keys::load_signer(&key, &mut || unreachable!()).unwrap();
        let state = StateDir::open(&dir.path().join("state")).unwrap();
        let trust = TrustStore {
            signers: vec![AllowedSigner {
                line: 1,
                principals: "*".into(),
                namespaces: None,
                valid_after: None,
                valid_before: None,
                key: g.public,
            }],
            revoked: Default::default(),
            source: "test".into(),
        };
        Setup {
            dir,
            signer,
            state,
            trust,
        }
    }

    fn opts<'a>(
        s: &'a Setup,
        input: &Path,
        read_back: bool,
        r: &'a Recipients,
    ) -> ExportOptions<'a> {
        ExportOptions {
            inputs: vec![Input::path(input).unwrap()],
            signer: &s.signer,
            host_name: None,
            server_id: None,
            created: SystemTime::now(),
            expires_in: Duration::from_secs(3600),
            now: Clock::System,
            out: s.dir.path().to_path_buf(),
            overwrite: false,
            state: &s.state,
            tool: "airlock test".into(),
            recipients: r,
            read_back,
        }
    }

    fn usage(s: &Setup) -> PathBuf {
        let p = s.dir.path().join("license-usage.json");
        std::fs::write(&p, usage_encrypted(SAMPLE_HOST, SAMPLE_SERVER_ID, 5000)).unwrap();
        p
    }

    fn ledger_hash(s: &Setup) -> String {
        let l = Ledger::open(s.state.path()).unwrap();
        l.events()
            .unwrap()
            .into_iter()
            .rev()
            .find(|e| e.outcome == Outcome::Exported)
            .and_then(|e| e.bundle_sha256)
            .unwrap()
    }

    /// The ledger's bundle hash is that of the published file, whether it
    /// comes from the read-back's pass or from the hashing thread.
    #[test]
    fn the_ledger_records_the_published_bundle_with_and_without_read_back() {
        let s = setup();
        let u = usage(&s);
        let none = Recipients::default();
        for read_back in [true, false] {
            let r = export(opts(&s, &u, read_back, &none)).unwrap();
            assert_eq!(ledger_hash(&s), fsutil::sha256_file(&r.path).unwrap());
            assert!(r
                .path
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(SAMPLE_HOST));
            let v = verify_file(
                &r.path,
                &VerifyOptions {
                    trust: &s.trust,
                    identities: None,
                    require_signers: 1,
                    now: Clock::System,
                    skew: Duration::from_secs(60),
                },
            )
            .unwrap();
            assert_eq!(v.manifest, r.manifest);
            assert_eq!(r.usage.len(), 1);
        }
        // Sequence numbers went up by one per export.
        let l = Ledger::open(s.state.path()).unwrap();
        let seqs: Vec<i64> = l
            .events()
            .unwrap()
            .iter()
            .filter(|e| e.outcome == Outcome::Exported)
            .filter_map(|e| e.sequence)
            .collect();
        assert_eq!(seqs, vec![1, 2]);
    }

    #[test]
    fn read_back_hands_back_the_hash_of_what_is_on_disk_and_refuses_other_bytes() {
        let s = setup();
        let u = usage(&s);
        let none = Recipients::default();
        let r = export(opts(&s, &u, true, &none)).unwrap();
        let bytes = std::fs::read(&r.path).unwrap();
        let mb = r.manifest.to_bytes();
        let h = readback(&r.path, &s.signer, &mb, SystemTime::now()).unwrap();
        assert_eq!(h, fsutil::sha256_file(&r.path).unwrap());
        // A manifest other than the one written: READBACK.
        let mut other = mb.clone();
        other.push(b' ');
        assert_eq!(
            readback(&r.path, &s.signer, &other, SystemTime::now())
                .err()
                .unwrap()
                .code,
            Code::Readback
        );
        // A flipped payload byte on the medium: READBACK.
        let mut bad = bytes.clone();
        bad[120] ^= 1;
        std::fs::write(&r.path, &bad).unwrap();
        assert_eq!(
            readback(&r.path, &s.signer, &mb, SystemTime::now())
                .err()
                .unwrap()
                .code,
            Code::Readback
        );
    }

    #[test]
    fn the_source_comes_from_the_usage_file_and_must_agree_with_the_flags() {
        let s = setup();
        let u = usage(&s);
        let none = Recipients::default();
        let mut o = opts(&s, &u, false, &none);
        o.host_name = Some("other.example.com".into());
        assert_eq!(export(o).err().unwrap().code, Code::SourceConflict);
        // An opaque file needs a host name.
        let f = s.dir.path().join("notes.txt");
        std::fs::write(&f, "hello").unwrap();
        let o = opts(&s, &f, false, &none);
        assert_eq!(export(o).err().unwrap().code, Code::SourceUnknown);
        let mut o = opts(&s, &f, false, &none);
        o.host_name = Some("not a host".into());
        assert_eq!(export(o).err().unwrap().code, Code::Args);
        // Nothing was left in the output directory by the failures.
        let left: Vec<_> = std::fs::read_dir(s.dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".airlock-"))
            .collect();
        assert!(left.is_empty());
    }
}

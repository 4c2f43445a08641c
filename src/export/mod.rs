//! Export: payload files → canonical signed bundle, published atomically and
//! read back from the device before it is given its final name.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::base::error::{Code, Error, Result};
use crate::base::progress::Progress;
use crate::crypto::crypt::Recipients;
use crate::crypto::keys::Signer;
use crate::crypto::trust::TrustStore;
use crate::format::container::{check_name_syntax, Writer, MAX_NAME_LEN};
use crate::format::licence::{LicenceInput, MAX_LICENCE_LEN};
use crate::format::manifest::{
    version_for_payload, Encryption, Fingerprint, FormatName, HexDigest, Manifest, PayloadEntry,
    PayloadKind, Sequence, Source, Timestamp, MANIFEST_NAME, MAX_LIFETIME, MAX_PAYLOAD_MEMBERS,
};
use crate::format::rules::{bundle_id, derived_name, signature_member_name};
use crate::format::usage::{self, Sniff, UsageInfo};
use crate::io::fsutil;
use crate::state::ledger::{Event, Kind, Ledger, Outcome};
use crate::state::StateDir;
use crate::verify::{verify_bundle, Ask, Clock, Destination, Hashing, Verified, VerifyOptions};

mod input;
mod licence;
mod readback;
pub mod sign;
pub(crate) mod stage;
pub use input::*;
use licence::*;
pub use readback::*;

/// Everything [`export`] needs.
pub struct ExportOptions<'a> {
    /// The payload files (1..=32).
    pub inputs: Vec<Input>,
    /// Who signs, who can decrypt, the source instance and the times.
    pub bundle: BundleSpec<'a>,
    /// The clock the ledger's records are dated by (the moment of the run,
    /// which `bundle.created` need not be).
    pub now: Clock,
    /// A file path, or a directory in which a name is derived.
    pub out: PathBuf,
    /// Replace an existing file at `out`.
    pub overwrite: bool,
    /// The exporter's state directory (sequence numbers, ledger).
    pub state: &'a StateDir,
    /// Read the bundle back from the device and verify it before publishing.
    /// Always on in normal use; off only to time the write path alone.
    pub read_back: bool,
    /// Where the inputs' reading progress goes.
    pub progress: Progress,
}

/// What export produced.
#[derive(Debug)]
pub struct ExportReport {
    /// The published bundle.
    pub path: PathBuf,
    /// Its manifest, as signed.
    pub manifest: Manifest,
    /// Its size in bytes.
    pub bundle_size: u64,
    /// Usage files recognised, by member name.
    pub usage: Vec<(String, UsageInfo)>,
    /// The SHA-256 of the bundle as the read-back found it on the device;
    /// `None` without a read-back (decision 67).
    pub bundle_sha256: Option<String>,
    /// Inputs whose file names were made payload names: (the file's name,
    /// escaped; its name in the bundle).
    pub renamed: Vec<(String, String)>,
}

/// One input as it went into the bundle: its entry, and what it was.
struct StagedInput {
    entry: PayloadEntry,
    usage: Option<UsageInfo>,
    /// The enterprise of a licence.
    licence: Option<LicenceInput>,
}

/// An input's reader, its name in messages, and its size when it has one.
fn open_input(source: &InputSource) -> Result<(Box<dyn Read>, String, Option<u64>)> {
    Ok(match source {
        InputSource::Path(p) => {
            let f = File::open(p).map_err(|e| Error::io_read(p, e))?;
            // A pipe or FIFO has no size to show progress against.
            let total = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
            (Box::new(f), p.display().to_string(), total)
        }
        InputSource::Stdin => (
            Box::new(io::stdin().lock()),
            "standard input".to_string(),
            None,
        ),
    })
}

fn stream_member<W: Write + io::Seek + Send>(
    zw: &mut Writer<W>,
    input: &Input,
    out_path: &Path,
    recipients: &Recipients,
    progress: &Progress,
) -> Result<StagedInput> {
    let encrypt = !recipients.is_empty();
    let member = if encrypt {
        format!("payload/{}.age", input.name)
    } else {
        format!("payload/{}", input.name)
    };
    check_name_syntax(&member).map_err(|e| {
        // What is left of the member name's bound for the file's own name.
        let max = MAX_NAME_LEN - (member.len() - input.name.len());
        e.recode(Code::Args).with_hint(format!(
            "rename the file: a payload name here is at most {max} bytes of letters, digits, '.', '_' and '-', not starting with a dot"
        ))
    })?;
    let (mut reader, label, total) = open_input(&input.source)?;
    // A licence's size is checked before it is read (when known) and after.
    if let (Some(_), Some(t)) = (&input.licence, total) {
        check_licence_size(&label, t)?;
    }
    progress.begin(&format!("export {}", input.name), total);
    let mut counted = progress.counting(&mut reader);
    let s = stage::stage(zw, &member, &mut counted, &label, out_path, recipients);
    progress.end();
    let s = s?;
    if let Some(l) = &input.licence {
        check_licence_size(&label, s.read)?;
        return licence_member(member, s, l, &label);
    }
    let (kind, usage) = match s.verdict {
        Sniff::Usage(u) => (PayloadKind::Usage, Some(u)),
        Sniff::Invalid(why) => return Err(usage::invalid(&label, &why)),
        Sniff::Other if input.require_usage => {
            let stdin = matches!(input.source, InputSource::Stdin);
            return Err(not_usage(&label, &s.head, s.read, stdin));
        }
        Sniff::Other => (PayloadKind::File, None),
    };
    Ok(StagedInput {
        entry: PayloadEntry {
            name: member,
            size: s.entry.size,
            sha256: s.sha256,
            kind,
            reference: None,
            encryption: encrypt.then_some(Encryption::Age),
        },
        usage,
        licence: None,
    })
}

/// Decide the source instance from the usage files and the flags.
fn resolve_source(
    staged: &[StagedInput],
    host_name: Option<String>,
    server_id: Option<String>,
) -> Result<Source> {
    let Some(s) = usage_source(staged)? else {
        return flag_source(host_name, server_id);
    };
    if host_name
        .as_ref()
        .is_some_and(|h| Some(h) != s.host_name.as_ref())
        || server_id
            .as_ref()
            .is_some_and(|i| Some(i) != s.server_id.as_ref())
    {
        return Err(Error::new(
            Code::SourceConflict,
            format!(
                "the usage file is from {} ({}), not the instance given on the command line",
                s.host(),
                s.server_id.as_deref().unwrap_or("-")
            ),
        ));
    }
    Ok(s)
}

/// The one instance the usage files come from (none without usage files).
fn usage_source(staged: &[StagedInput]) -> Result<Option<Source>> {
    let mut src: Option<Source> = None;
    for u in staged.iter().filter_map(|s| s.usage.as_ref()) {
        let this = Source::instance(u.host_name.clone(), Some(u.server_id.clone()));
        match &src {
            None => src = Some(this),
            Some(prev) if *prev == this => {}
            Some(prev) => {
                return Err(Error::new(
                    Code::SourceConflict,
                    format!(
                        "the usage files come from different instances ({} and {})",
                        prev.host(),
                        this.host()
                    ),
                )
                .with_hint("export each instance's usage file in its own bundle"))
            }
        }
    }
    Ok(src)
}

/// The source named by --host-name (and --server-id), without usage files.
fn flag_source(host_name: Option<String>, server_id: Option<String>) -> Result<Source> {
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
    Ok(Source::instance(host_name, server_id))
}

/// What makes a bundle besides its payload: who signs it, who can decrypt
/// it, where it comes from and when it was made.
pub struct BundleSpec<'a> {
    /// The signing key (a key file or ssh-agent).
    pub signer: &'a Signer,
    /// Encrypt every payload member to these recipients (none: signed only).
    pub recipients: &'a Recipients,
    /// The GHES instance's host name, when no usage file names it (or to
    /// check that it does).
    pub host_name: Option<String>,
    /// The GHES server id, likewise.
    pub server_id: Option<String>,
    /// The bundle's signed creation time.
    pub created: SystemTime,
    /// How long after `created` the bundle expires (1 s ..= 366 days).
    pub expires_in: Duration,
    /// The tool named in the manifest, `airlock X.Y.Z`.
    pub tool: String,
}

/// A bundle written by [`write_bundle`].
pub struct Written<W> {
    /// Where it was written, positioned at its end.
    pub out: W,
    /// Its manifest.
    pub manifest: Manifest,
    /// The exact bytes of `manifest.json`, as signed.
    pub manifest_bytes: Vec<u8>,
    /// Usage files recognised, by member name.
    pub usage: Vec<(String, UsageInfo)>,
}

/// Write a complete signed bundle of `inputs` to `out` (a file, or a
/// `Cursor<Vec<u8>>` in memory), with sequence number `sequence`. This is
/// export without the state directory, ledger, atomic publication and
/// read-back that [`export`] adds around it.
///
/// ```
/// use std::io::Cursor;
/// use std::time::{Duration, SystemTime};
/// use airlock::export::{write_bundle, BundleSpec, Input};
/// use airlock::verify::{verify, Clock, VerifyOptions, DEFAULT_SKEW};
/// use airlock::crypt::Recipients;
///
/// # fn main() -> airlock::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let usage = dir.path().join("license-usage.json");
/// std::fs::write(&usage, airlock::sample::usage_clear("ghes.example.com", airlock::sample::SAMPLE_SERVER_ID, 3)).unwrap();
/// let key = airlock::keys::generate(&dir.path().join("id_ed25519"), "doc", None, true)?;
/// let signer = airlock::keys::load_signer(&dir.path().join("id_ed25519"), &mut || unreachable!())?;
///
/// // Export into memory.
/// let spec = BundleSpec {
///     signer: &signer,
///     recipients: &Recipients::default(),
///     host_name: None,
///     server_id: None,
///     created: SystemTime::now(),
///     expires_in: Duration::from_secs(7 * 24 * 3600),
///     tool: airlock::tool_version(),
/// };
/// let written = write_bundle(Cursor::new(Vec::new()), &[Input::path(&usage)?], &spec, 1)?;
///
/// // Verify it from memory, trusting that key for the instance.
/// let trust_file = dir.path().join("allowed_signers");
/// std::fs::write(&trust_file, format!("ghes.example.com namespaces=\"airlock-bundle\" {}\n", key.public_line)).unwrap();
/// let trust = airlock::trust::TrustStore::load(&trust_file, None)?;
/// let opts = VerifyOptions {
///     progress: airlock::progress::Progress::none(),
///     trust: &trust,
///     identities: None,
///     require_signers: 1,
///     now: Clock::System,
///     skew: DEFAULT_SKEW,
/// };
/// let v = verify(Cursor::new(written.out.into_inner()), &opts)?;
/// assert_eq!(v.manifest, written.manifest);
/// # Ok(())
/// # }
/// ```
pub fn write_bundle<W: Write + io::Seek + Send>(
    out: W,
    inputs: &[Input],
    spec: &BundleSpec<'_>,
    sequence: u64,
) -> Result<Written<W>> {
    check_inputs(inputs, spec.created, spec.expires_in)?;
    let mut zw = Writer::new(out);
    let staged = stage_all(
        &mut zw,
        inputs,
        spec,
        Path::new("the bundle"),
        &Progress::none(),
    )?;
    let (manifest, manifest_bytes) = sign_and_finish(
        &mut zw,
        staged.entries(),
        spec,
        sequence,
        Path::new("the bundle"),
    )?;
    Ok(Written {
        out: zw
            .finish()
            .map_err(|e| Error::io_write(Path::new("the bundle"), e))?,
        manifest,
        manifest_bytes,
        usage: staged.usage(),
    })
}

/// Export a bundle: [`write_bundle`] into a temporary file beside the
/// target, with the next sequence number of the state directory (reserved in
/// the exporter's ledger first), then sync, read back from the device and
/// verify, publish under its final name, and record the export.
pub fn export(opts: ExportOptions<'_>) -> Result<ExportReport> {
    let spec = &opts.bundle;
    check_inputs(&opts.inputs, spec.created, spec.expires_in)?;
    let renamed: Vec<(String, String)> = opts
        .inputs
        .iter()
        .filter_map(|i| i.original.clone().map(|o| (o, i.name.clone())))
        .collect();
    let place = OutputPlace::resolve(&opts.out, opts.overwrite)?;
    let tmp = fsutil::temp_beside(&place.probe, 0o644)?;
    let handle = tmp
        .as_file()
        .try_clone()
        .map_err(|e| Error::io_write(tmp.path(), e))?;
    // Past the page cache where the file system allows it (decision 68).
    let mut zw = Writer::new(crate::io::device::DeviceWriter::new(handle)?);
    let staged = stage_all(&mut zw, &opts.inputs, spec, &place.probe, &opts.progress)?;
    let (mut ledger, number) = reserve(&opts)?;
    let (manifest, manifest_bytes) =
        sign_and_finish(&mut zw, staged.entries(), spec, number, &place.probe)?;
    finish_file(zw, &place.probe)?;
    fsutil::fault_point(fsutil::Fault::ExportWritten);
    // Read back from the device, not the page cache: removable media lie.
    // The ledger records the SHA-256 of what that read found; without a
    // read-back there is no verified read of the file, and no hash
    // (decision 67).
    let bundle_sha256 = match opts.read_back {
        true => Some(readback(
            tmp.path(),
            spec.signer,
            &manifest_bytes,
            spec.created,
            &opts.progress,
        )?),
        false => None,
    };
    let target = place.target(&manifest);
    let bundle_size = tmp
        .as_file()
        .metadata()
        .map_err(|e| Error::io_write(tmp.path(), e))?
        .len();
    // Synced above; only the rename is left.
    fsutil::publish_synced(tmp, &target, opts.overwrite)?;
    fsutil::fault_point(fsutil::Fault::ExportPublished);
    let at = Timestamp::from_system(opts.now.now());
    let detail = export_detail(&target, &renamed);
    ledger.append(exported(&manifest, bundle_sha256.clone(), detail, at))?;
    Ok(ExportReport {
        path: target,
        manifest,
        bundle_size,
        usage: staged.usage(),
        bundle_sha256: bundle_sha256.as_ref().map(HexDigest::to_string),
        renamed,
    })
}

/// The finished zip, through the device writer, synced.
fn finish_file(zw: Writer<crate::io::device::DeviceWriter>, probe: &Path) -> Result<()> {
    let file = zw
        .finish()
        .and_then(crate::io::device::DeviceWriter::finish)
        .map_err(|e| Error::io_write(probe, e))?;
    file.sync_all().map_err(|e| Error::io_write(probe, e))
}

/// The exporter's ledger record of bundle `m`.
fn exported(m: &Manifest, sha: Option<HexDigest>, detail: String, at: Timestamp) -> Event {
    Event {
        bundle_sha256: sha,
        bundle_id: Some(m.bundle_id.clone()),
        signer: Some(m.sequence.key.clone()),
        // A licence bundle's source is the enterprise (decision 83: fleet
        // lists licence exports per enterprise).
        principal: m.licence().map(|(e, _)| e.to_string()),
        licence: m
            .licence()
            .map(|(_, r)| crate::state::ledger::LicenceFacts::new(r.clone())),
        sequence: Some(m.sequence.number),
        host_name: m.source.host_name.clone(),
        server_id: m.source.server_id.clone(),
        created: Some(m.created),
        expires: Some(m.expires),
        detail: Some(detail),
        ..Event::new(Kind::Export, Outcome::Exported, at)
    }
}

/// Where the bundle goes: a directory (its name derived from the manifest)
/// or a file path; `probe` is a path in the target directory that temporary
/// files and error messages use.
struct OutputPlace {
    out: PathBuf,
    is_dir: bool,
    probe: PathBuf,
}

impl OutputPlace {
    fn resolve(out: &Path, overwrite: bool) -> Result<OutputPlace> {
        // A path ending in '/' names a directory (a mounted stick), existing or not.
        let names_dir = out.as_os_str().as_encoded_bytes().ends_with(b"/");
        let dir = if names_dir || out.is_dir() {
            out.to_path_buf()
        } else {
            fsutil::parent_dir(out)
        };
        fsutil::ensure_dir(&dir, "output directory")?;
        // A missing path that does not look like a bundle file name is a
        // directory that is not there (`--out /media/stick`, stick not
        // mounted): writing a file of that name would claim success.
        let names_zip = out
            .file_name()
            .is_some_and(|n| n.as_encoded_bytes().ends_with(b".zip"));
        if !names_dir && !names_zip && std::fs::symlink_metadata(out).is_err() {
            return Err(Error::new(
                Code::OutputDir,
                format!(
                    "--out {} does not exist, and its name does not end in .zip",
                    out.display()
                ),
            )
            .with_hint(
                "is the stick mounted? to write into a directory, mount or create it first (a trailing / says you mean a directory); to name the bundle file, end the name in .airlock.zip",
            ));
        }
        fsutil::ensure_mounted_media(&dir, "output directory")?;
        let is_dir = out.is_dir();
        if !is_dir && !overwrite && out.exists() {
            return Err(Error::new(
                Code::OutputExists,
                format!("{} already exists", out.display()),
            ));
        }
        Ok(OutputPlace {
            out: out.to_path_buf(),
            is_dir,
            probe: if is_dir {
                out.join("bundle")
            } else {
                out.to_path_buf()
            },
        })
    }

    /// The final path of the bundle with this manifest.
    fn target(&self, m: &Manifest) -> PathBuf {
        if self.is_dir {
            self.out.join(derived_name(m))
        } else {
            self.out.clone()
        }
    }
}

/// The payload members as written, and the instance they come from.
struct StagedAll {
    members: Vec<StagedInput>,
    source: Source,
}

impl StagedAll {
    /// The manifest's payload list and source.
    fn entries(&self) -> (Vec<PayloadEntry>, Source) {
        let payload = self.members.iter().map(|s| s.entry.clone()).collect();
        (payload, self.source.clone())
    }

    fn usage(&self) -> Vec<(String, UsageInfo)> {
        self.members
            .iter()
            .filter_map(|s| s.usage.clone().map(|u| (s.entry.name.clone(), u)))
            .collect()
    }
}

/// Stream every input into the bundle as a payload member, and decide the
/// source instance from the usage files and the spec.
fn stage_all<W: Write + io::Seek + Send>(
    zw: &mut Writer<W>,
    inputs: &[Input],
    spec: &BundleSpec<'_>,
    out_path: &Path,
    progress: &Progress,
) -> Result<StagedAll> {
    check_licence_inputs(inputs, spec.recipients)?;
    let mut staged = Vec::new();
    for input in inputs {
        staged.push(stream_member(
            zw,
            input,
            out_path,
            spec.recipients,
            progress,
        )?);
    }
    let source = match licence_source(&staged, spec)? {
        Some(enterprise) => enterprise,
        None => resolve_source(&staged, spec.host_name.clone(), spec.server_id.clone())?,
    };
    Ok(StagedAll {
        members: staged,
        source,
    })
}

/// Two inputs with the same payload name (ASCII case folded: the format's
/// duplicate rule) are refused, naming both files as they are named: a
/// bundle's members are distinct, and neither may stand for the other.
fn check_distinct_names(inputs: &[Input]) -> Result<()> {
    for (i, a) in inputs.iter().enumerate() {
        if let Some(b) = inputs[..i]
            .iter()
            .find(|b| b.name.eq_ignore_ascii_case(&a.name))
        {
            let shown = |x: &Input| x.original.clone().unwrap_or_else(|| x.name.clone());
            return Err(Error::new(
                Code::Args,
                format!(
                    "two inputs are both named {} in the bundle: {} and {}",
                    a.name,
                    shown(b),
                    shown(a)
                ),
            )
            .with_hint(
                "rename one of the files (payload names use letters, digits, '.', '_' and '-')",
            ));
        }
    }
    Ok(())
}

/// The exporter's ledger record's detail: where the bundle went, and the
/// inputs renamed to payload names.
fn export_detail(target: &Path, renamed: &[(String, String)]) -> String {
    let mut d = crate::base::names::escape(target);
    for (from, to) in renamed {
        d.push_str(&format!("; {from} travels as {to}"));
    }
    d
}

/// The next sequence number for the signer, recorded in the exporter's
/// ledger before anything is published: a crash before publication shows as
/// a reserved number without an export.
fn reserve(opts: &ExportOptions<'_>) -> Result<(Ledger, u64)> {
    let number = opts
        .state
        .next_sequence(&opts.bundle.signer.public.id_hex())?;
    let mut ledger = Ledger::open(opts.state.path())?;
    ledger.append(Event {
        signer: Fingerprint::parse(&opts.bundle.signer.fingerprint()),
        sequence: Some(number),
        ..Event::new(
            Kind::Export,
            Outcome::Reserved,
            Timestamp::from_system(opts.now.now()),
        )
    })?;
    fsutil::fault_point(fsutil::Fault::ExportReserved);
    Ok((ledger, number))
}

/// Build and check the manifest for the staged payload, sign it, and write
/// it and its signature after the payload.
fn sign_and_finish<W: Write + io::Seek>(
    zw: &mut Writer<W>,
    (payload, source): (Vec<PayloadEntry>, Source),
    spec: &BundleSpec<'_>,
    number: u64,
    out_path: &Path,
) -> Result<(Manifest, Vec<u8>)> {
    let fp = spec.signer.fingerprint();
    let key = Fingerprint::parse(&fp)
        .ok_or_else(|| Error::new(Code::Internal, format!("fingerprint {fp:?}")))?;
    let created = Timestamp::from_system(spec.created);
    let manifest = Manifest {
        format: FormatName::AirlockBundle,
        version: version_for_payload(&payload, &spec.recipients.listed),
        bundle_id: bundle_id(&key, number, created, &payload),
        created,
        expires: created + spec.expires_in,
        tool: spec.tool.clone(),
        source,
        sequence: Sequence { key, number },
        payload,
        recipients: spec.recipients.listed.clone(),
    };
    manifest.check()?;
    let manifest_bytes = manifest.to_bytes();
    let sig = spec
        .signer
        .sign(crate::crypto::sshsig::BUNDLE_NAMESPACE, &manifest_bytes)?;
    zw.add_bytes(MANIFEST_NAME, &manifest_bytes)
        .map_err(|e| Error::io_write(out_path, e))?;
    zw.add_bytes(&signature_member_name(&sig), sig.to_armored().as_bytes())
        .map_err(|e| Error::io_write(out_path, e))?;
    Ok((manifest, manifest_bytes))
}

#[cfg(test)]
mod tests;

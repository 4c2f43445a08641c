//! Errors: every failure airlock can report, with a stable code, a one-line
//! cause, a hint and the exit code of its class.
//!
//! Codes are part of the interface: scripts match on them and `docs/errors.md`
//! documents each one. Never rename a code; add new ones.

use std::fmt;

/// Failure classes. Each has its own process exit code (see `docs/errors.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A bug in airlock.
    Internal,
    /// Bad arguments or configuration.
    Usage,
    /// A file could not be read or written.
    Io,
    /// A key file is unreadable, unprotected, of the wrong type, or locked.
    Key,
    /// The bundle is not a well-formed airlock container or its members do not match.
    Integrity,
    /// No acceptable signature: invalid, untrusted, revoked, out of window, wrong principal.
    Trust,
    /// The bundle is expired or dated in the future.
    Freshness,
    /// The payload itself is invalid or disagrees with the manifest.
    Payload,
    /// The payload could not be decrypted.
    Decrypt,
    /// The importer's ledger refuses the bundle: rollback or older than imported.
    Ledger,
    /// The very same bundle was already imported and handed over.
    AlreadyImported,
    /// The verified payload could not be handed over (outbox or endpoint).
    Handover,
    /// GitHub's API refused or failed.
    Cloud,
    /// The licence rules refuse the licence: an earlier expiry, fewer seats,
    /// or a reference the appliance reads differently (licence in).
    Licence,
    /// The appliance could not be reached, refused the licence, is busy,
    /// or reports another active licence after the apply (licence in).
    Appliance,
    /// Interrupted by a signal (SIGINT, SIGTERM, SIGHUP); temporary files
    /// were removed. The exit code is 128 + the signal's number.
    Interrupted,
}

impl Class {
    /// The process exit code of this class (docs/errors.md). For
    /// `Interrupted` it is SIGINT's 130; the binary exits with 128 + the
    /// number of the signal it actually got.
    pub fn exit_code(self) -> i32 {
        match self {
            Class::Internal => 1,
            Class::Usage => 2,
            Class::Io => 3,
            Class::Key => 4,
            Class::Integrity => 5,
            Class::Trust => 6,
            Class::Freshness => 7,
            Class::Payload => 8,
            Class::Decrypt => 9,
            Class::Ledger => 10,
            Class::AlreadyImported => 11,
            Class::Handover => 12,
            Class::Cloud => 13,
            Class::Licence => 14,
            Class::Appliance => 15,
            Class::Interrupted => 130,
        }
    }

    /// Every class, in exit-code order.
    pub const ALL: &'static [Class] = &[
        Class::Internal,
        Class::Usage,
        Class::Io,
        Class::Key,
        Class::Integrity,
        Class::Trust,
        Class::Freshness,
        Class::Payload,
        Class::Decrypt,
        Class::Ledger,
        Class::AlreadyImported,
        Class::Handover,
        Class::Cloud,
        Class::Licence,
        Class::Appliance,
        Class::Interrupted,
    ];

    /// What the exit code means (docs/errors.md's exit table, the man
    /// pages' EXIT STATUS).
    pub fn meaning(self) -> &'static str {
        match self {
            Class::Internal => "a bug in airlock",
            Class::Usage => "bad arguments or configuration; nothing was done",
            Class::Io => "a file could not be read or written",
            Class::Key => "a key file is unreadable, unprotected, of the wrong type, or locked",
            Class::Integrity => "not a well-formed airlock bundle, or members do not match the manifest",
            Class::Trust => "no acceptable signature: invalid, untrusted, revoked, out of window, wrong principal",
            Class::Freshness => "expired, or dated in the future",
            Class::Payload => "the payload is invalid, is not what was expected, or names another instance",
            Class::Decrypt => "the payload could not be decrypted",
            Class::Ledger => "the import ledger refuses the bundle: rollback, or older than what was imported",
            Class::AlreadyImported => "this exact bundle was imported and handed over before; nothing was done",
            Class::Handover => "the verified payload could not be delivered to the outbox or endpoint; re-run to retry",
            Class::Cloud => "GitHub's API refused the request or failed",
            Class::Licence => "the licence rules refuse the licence (earlier expiry, fewer seats, another reference); nothing was applied",
            Class::Appliance => "the appliance could not be reached, refused or is busy, or reports another licence than the one applied",
            Class::Interrupted => "interrupted by SIGINT (130), SIGTERM (143) or SIGHUP (129); its temporary files were removed",
        }
    }

    /// The class's stable kebab-case name (`--json`'s `class`, a quarantine
    /// reason's `class`).
    pub fn name(self) -> &'static str {
        match self {
            Class::Internal => "internal",
            Class::Usage => "usage",
            Class::Io => "io",
            Class::Key => "key",
            Class::Integrity => "integrity",
            Class::Trust => "trust",
            Class::Freshness => "freshness",
            Class::Payload => "payload",
            Class::Decrypt => "decrypt",
            Class::Ledger => "ledger",
            Class::AlreadyImported => "already-imported",
            Class::Handover => "handover",
            Class::Cloud => "cloud",
            Class::Licence => "licence",
            Class::Appliance => "appliance",
            Class::Interrupted => "interrupted",
        }
    }
}

macro_rules! codes {
    ($( $variant:ident => ($code:literal, $class:ident, $hint:literal), )*) => {
        /// Stable error codes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Code { $(
            #[doc = concat!("`", $code, "` (class ", stringify!($class), "); hint: ", $hint)]
            $variant,
        )* }

        impl Code {
            /// Every code, for documentation checks.
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )* ];

            /// The stable code, `AIRLOCK-E-…`: what scripts match on.
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $code, )* }
            }
            /// The class, which decides the exit code.
            pub fn class(self) -> Class {
                match self { $( Code::$variant => Class::$class, )* }
            }
            /// The default hint: what to do about it, one line.
            pub fn hint(self) -> &'static str {
                match self { $( Code::$variant => $hint, )* }
            }
        }
    };
}

codes! {
    Internal => ("AIRLOCK-E-INTERNAL", Internal,
        "this is a bug in airlock; please report it with the command you ran"),
    Args => ("AIRLOCK-E-ARGS", Usage,
        "run the command with --help to see its arguments"),
    OutputExists => ("AIRLOCK-E-OUTPUT-EXISTS", Usage,
        "choose another path, or pass --force to replace the file"),
    SourceUnknown => ("AIRLOCK-E-SOURCE-UNKNOWN", Usage,
        "include a GHES license usage file, or name the source with --host-name (and --server-id)"),
    SourceConflict => ("AIRLOCK-E-SOURCE-CONFLICT", Usage,
        "drop --host-name/--server-id, or export the usage file of the instance you named"),
    IoRead => ("AIRLOCK-E-IO-READ", Io,
        "check that the path exists and that you may read it"),
    IoWrite => ("AIRLOCK-E-IO-WRITE", Io,
        "check that the directory exists, is writable and has free space"),
    Resources => ("AIRLOCK-E-RESOURCES", Io,
        "the system refused a thread or memory; raise the limit (ulimit, cgroup) or free memory, then run again"),
    StateLock => ("AIRLOCK-E-STATE-LOCK", Io,
        "another airlock process holds the state directory; wait for it, or check --state-dir"),
    Readback => ("AIRLOCK-E-READBACK", Integrity,
        "the medium did not return what was written; use other media and export again"),
    KeyRead => ("AIRLOCK-E-KEY-READ", Key,
        "give an OpenSSH private key file, as written by `airlock keygen` or `ssh-keygen -t ed25519`"),
    KeyType => ("AIRLOCK-E-KEY-TYPE", Key,
        "airlock signs with Ed25519 keys only; make one with `airlock keygen` or `ssh-keygen -t ed25519`"),
    KeyPermissions => ("AIRLOCK-E-KEY-PERMISSIONS", Key,
        "the private key must be readable by its owner only: chmod 600 KEYFILE"),
    AgentFailed => ("AIRLOCK-E-AGENT", Key,
        "check that ssh-agent runs (SSH_AUTH_SOCK) and holds the key: `ssh-add -l`; touch the token if it asks"),
    KeyPassphrase => ("AIRLOCK-E-KEY-PASSPHRASE", Key,
        "the passphrase did not unlock the key; type it again, or check the file given to --key-passphrase-file"),
    TrustFile => ("AIRLOCK-E-TRUST-FILE", Trust,
        "fix the allowed_signers or revoked-keys file at the line shown (docs/format.md §6.1): allowed_signers is ssh-keygen(1) ALLOWED SIGNERS; revoked keys are bare public keys one per line, or a KRL made with ssh-keygen -k"),
    NotABundle => ("AIRLOCK-E-NOT-A-BUNDLE", Integrity,
        "the file is not an airlock bundle; check you picked the right file and that the copy is complete"),
    ZipStructure => ("AIRLOCK-E-ZIP-STRUCTURE", Integrity,
        "the container is not canonical airlock zip: it was altered or damaged; get a fresh copy from the exporter"),
    ZipName => ("AIRLOCK-E-ZIP-NAME", Integrity,
        "a member name is not allowed (path traversal, absolute, or odd characters); do not open this bundle with other tools"),
    ZipDuplicate => ("AIRLOCK-E-ZIP-DUPLICATE", Integrity,
        "two members share a name: someone tried to smuggle a second copy; reject the bundle"),
    ZipLimit => ("AIRLOCK-E-ZIP-LIMIT", Integrity,
        "the bundle exceeds a format limit (members, manifest or signature size); see docs/format.md"),
    ZipCrc => ("AIRLOCK-E-ZIP-CRC", Integrity,
        "member data does not match its CRC: the copy is damaged or altered; get a fresh copy"),
    ManifestInvalid => ("AIRLOCK-E-MANIFEST-INVALID", Integrity,
        "the signed manifest does not follow the bundle format (docs/format.md); the exporter's airlock may be broken or newer"),
    FormatVersion => ("AIRLOCK-E-FORMAT-VERSION", Integrity,
        "the bundle uses a format version this airlock does not know; upgrade airlock on this side"),
    MemberMissing => ("AIRLOCK-E-MEMBER-MISSING", Integrity,
        "a member named in the manifest is absent: the bundle was altered; get a fresh copy"),
    MemberUnlisted => ("AIRLOCK-E-MEMBER-UNLISTED", Integrity,
        "the bundle holds a member the manifest does not name: it was altered; reject it"),
    MemberDigest => ("AIRLOCK-E-MEMBER-DIGEST", Integrity,
        "a member's size or SHA-256 differs from the signed manifest: it was altered; reject it"),
    SigMissing => ("AIRLOCK-E-SIG-MISSING", Trust,
        "the bundle carries no signature; only signed bundles are accepted"),
    SigInvalid => ("AIRLOCK-E-SIG-INVALID", Trust,
        "a signature is malformed or does not match the manifest: the bundle was altered; reject it"),
    SigNamespace => ("AIRLOCK-E-SIG-NAMESPACE", Trust,
        "the signature was made for another purpose (SSHSIG namespace); airlock signs with namespace airlock-bundle"),
    SigUntrusted => ("AIRLOCK-E-SIG-UNTRUSTED", Trust,
        "the signing key is not in the allowed_signers file; confirm its fingerprint with the exporter before adding it"),
    SigRevoked => ("AIRLOCK-E-SIG-REVOKED", Trust,
        "the signing key is revoked; the bundle must be re-exported with a current key"),
    SigWindow => ("AIRLOCK-E-SIG-WINDOW", Trust,
        "the key was not valid when the bundle was made (valid-after/valid-before); re-export with a current key"),
    SigNoPresence => ("AIRLOCK-E-SIG-NO-PRESENCE", Trust,
        "the security key was not touched when signing; sign again and touch the token"),
    SigThreshold => ("AIRLOCK-E-SIG-THRESHOLD", Trust,
        "the policy needs more signatures from distinct trusted keys: have the bundle co-signed with `airlock sign`"),
    SigPrincipal => ("AIRLOCK-E-SIG-PRINCIPAL", Trust,
        "the key is trusted, but not for this source instance; check the principals in allowed_signers"),
    BundleExpired => ("AIRLOCK-E-BUNDLE-EXPIRED", Freshness,
        "the bundle is past its expiry; export a fresh one (an auditor may use --at to check old bundles)"),
    BundleFuture => ("AIRLOCK-E-BUNDLE-FUTURE", Freshness,
        "the bundle is dated in the future; check the clocks of both hosts"),
    UsageFileInvalid => ("AIRLOCK-E-USAGE-FILE-INVALID", Payload,
        "the file looks like a GHES license usage file but is not strict JSON or its envelope is invalid; export it again from GHES"),
    PayloadSource => ("AIRLOCK-E-PAYLOAD-SOURCE", Payload,
        "the usage file names another instance than the signed manifest; reject the bundle"),
    RecipientsMismatch => ("AIRLOCK-E-RECIPIENTS-MISMATCH", Integrity,
        "the encrypted payload was not made for the recipients the exporter signed; reject the bundle"),
    DecryptNoIdentity => ("AIRLOCK-E-DECRYPT-NO-IDENTITY", Decrypt,
        "none of your identities is a recipient; check `airlock inspect` for the recipients and pass the matching --identity"),
    DecryptFailed => ("AIRLOCK-E-DECRYPT-FAILED", Decrypt,
        "wrong passphrase, or the ciphertext is truncated or altered; check the passphrase, else get a fresh copy"),
    ConfigInvalid => ("AIRLOCK-E-CONFIG-INVALID", Usage,
        "fix the configuration file at the place shown; docs/operator-guide.md lists its keys"),
    LedgerIo => ("AIRLOCK-E-LEDGER-IO", Io,
        "the ledger database cannot be opened or written; check the state directory and free space"),
    LedgerTampered => ("AIRLOCK-E-LEDGER-TAMPERED", Integrity,
        "the ledger's hash chain is broken: a record was edited, removed or reordered; restore it from backup and investigate"),
    LedgerRollback => ("AIRLOCK-E-LEDGER-ROLLBACK", Ledger,
        "a bundle with this or a higher sequence number from this key was already imported; get the newest bundle from the exporter"),
    LedgerOlder => ("AIRLOCK-E-LEDGER-OLDER", Ledger,
        "a newer bundle from this instance was already imported; uploading an older one would corrupt seat counts"),
    AlreadyImported => ("AIRLOCK-E-ALREADY-IMPORTED", AlreadyImported,
        "nothing to do: this exact bundle was imported and handed over before (see `airlock log`)"),
    HandoverFailed => ("AIRLOCK-E-HANDOVER-FAILED", Handover,
        "the payload could not be delivered; fix the outbox or endpoint and run the same import again"),
    CloudToken => ("AIRLOCK-E-CLOUD-TOKEN", Usage,
        "set GH_TOKEN (a classic token with read:enterprise, or a fine-grained one with Enterprise administration: read) or pass --token-file"),
    CloudUnauthorized => ("AIRLOCK-E-CLOUD-UNAUTHORIZED", Cloud,
        "the token is invalid or expired; make a new one and set GH_TOKEN"),
    CloudForbidden => ("AIRLOCK-E-CLOUD-FORBIDDEN", Cloud,
        "give the token the scope named (read:enterprise), and use an enterprise owner's token"),
    CloudNotFound => ("AIRLOCK-E-CLOUD-NOT-FOUND", Cloud,
        "check the enterprise slug (the NAME in github.com/enterprises/NAME) and --api-url for GHE.com"),
    CloudRateLimited => ("AIRLOCK-E-CLOUD-RATE-LIMITED", Cloud,
        "GitHub's rate limit is exhausted; run again after the reset time shown"),
    CloudUnavailable => ("AIRLOCK-E-CLOUD-UNAVAILABLE", Cloud,
        "GitHub could not be reached or kept failing; check the network or proxy and try again later"),
    CloudResponse => ("AIRLOCK-E-CLOUD-RESPONSE", Cloud,
        "GitHub answered in an unexpected shape; report it with the command you ran"),
    HandoverRejected => ("AIRLOCK-E-HANDOVER-REJECTED", Handover,
        "the endpoint refused the payload (HTTP 4xx); check the URL and token, then run the same import again"),
    HandoverTimeout => ("AIRLOCK-E-HANDOVER-TIMEOUT", Handover,
        "the endpoint did not answer within the hand-over deadline; check it (or raise http_timeout / http_deadline) and run the same import again"),
    BundleChanged => ("AIRLOCK-E-BUNDLE-CHANGED", Integrity,
        "the bundle changed while airlock read it (rewritten meanwhile, or a medium that returns different bytes); copy it to local disk, check the medium, and run again"),
    NotAFile => ("AIRLOCK-E-NOT-A-FILE", Io,
        "give the path of a bundle file (*.airlock.zip); FIFOs, devices and directories are refused because a bundle is read as one stable file"),
    BundleIncomplete => ("AIRLOCK-E-BUNDLE-INCOMPLETE", Integrity,
        "the file stopped growing before its end (no zip trailer): the transfer is incomplete; send or copy it again"),
    LedgerSuperseded => ("AIRLOCK-E-LEDGER-SUPERSEDED", Ledger,
        "a newer bundle for this instance was imported in the same run, or after this one was accepted; it is not handed over (upload the newer one)"),
    TlsTrust => ("AIRLOCK-E-TLS-TRUST", Usage,
        "give a readable PEM file of CA certificates (convert DER with `openssl x509 -inform der -in CA.cer -out CA.pem`), or unset SSL_CERT_FILE / SSL_CERT_DIR"),
    CloudTls => ("AIRLOCK-E-CLOUD-TLS", Cloud,
        "the server's certificate does not chain to a CA airlock trusts; behind a TLS-inspecting proxy add the company CA: --ca-file FILE (or ca_file in airlock.toml), SSL_CERT_FILE / SSL_CERT_DIR, or the system store (update-ca-certificates)"),
    CloudOrigin => ("AIRLOCK-E-CLOUD-ORIGIN", Cloud,
        "GitHub's answer pointed to another origin (pagination link or redirect) and the token was not sent there; check --api-url / --host, and any proxy that rewrites responses"),
    NotUsageFile => ("AIRLOCK-E-NOT-USAGE-FILE", Payload,
        "the command that produced the input may have failed (check its error output); to carry another kind of file, pass --kind file"),
    OutputDir => ("AIRLOCK-E-OUTPUT-DIR", Io,
        "create the directory first, or check the path; under /media or /mnt, check that the stick is mounted"),
    Interrupted => ("AIRLOCK-E-INTERRUPTED", Interrupted,
        "its temporary files were removed; run the same command again (an interrupted export or import is safe to re-run)"),
    WatchLeft => ("AIRLOCK-E-WATCH-LEFT", Io,
        "the file was still being written; run `airlock watch --once` again once its transfer has finished"),
    HandoverInFlight => ("AIRLOCK-E-HANDOVER-IN-FLIGHT", Handover,
        "another airlock process is handing over a bundle of this instance; run the same import again once it has finished (`airlock log` shows its lease)"),
    ProxyInvalid => ("AIRLOCK-E-PROXY-INVALID", Usage,
        "fix or unset the variable named: HTTPS_PROXY / ALL_PROXY take http://[user:password@]host:port (or https://, socks5h://, socks5://); docs/operator-guide.md explains them and NO_PROXY"),
    NotALicence => ("AIRLOCK-E-NOT-A-LICENCE", Payload,
        "`airlock licence import` takes a licence bundle (one github-enterprise-REFERENCE.ghl, exported on the connected side); usage bundles go to the connected side's `airlock import`"),
    LicenceApplied => ("AIRLOCK-E-LICENCE-APPLIED", Ledger,
        "this licence (its reference number) was applied and confirmed before; nothing to do (`airlock licence status` shows the active licence)"),
    LicenceExpiryEarlier => ("AIRLOCK-E-LICENCE-EXPIRY-EARLIER", Licence,
        "the licence expires before the active one: it is an older licence (a rollback); get the newest licence from GitHub"),
    LicenceSeatsFewer => ("AIRLOCK-E-LICENCE-SEATS-FEWER", Licence,
        "the licence has fewer seats than the active one; if the decrease was bought, run again with --allow-seat-decrease (it is recorded)"),
    LicenceReference => ("AIRLOCK-E-LICENCE-REFERENCE", Licence,
        "the appliance reads another reference number from the file than the bundle signed: the file is not the licence it claims to be; do not apply it"),
    LicenceNotActive => ("AIRLOCK-E-LICENCE-NOT-ACTIVE", Appliance,
        "after the apply the appliance reports another active licence; check it (`airlock licence status`) and restore the backup named if needed (docs/licence-in.md)"),
    ApplianceBusy => ("AIRLOCK-E-APPLIANCE-BUSY", Appliance,
        "the appliance is running a configuration run (config-apply); run the same licence import again once it has finished"),
    ApplianceUnreachable => ("AIRLOCK-E-APPLIANCE-UNREACHABLE", Appliance,
        "the appliance could not be reached or did not answer in time; check the host, port and network, then run again"),
    ApplianceUnauthorized => ("AIRLOCK-E-APPLIANCE-UNAUTHORIZED", Appliance,
        "the appliance refused the credentials; check the SSH key authorised for admin, or the Management Console password (appliance_password_file)"),
    ApplianceHostKey => ("AIRLOCK-E-APPLIANCE-HOST-KEY", Appliance,
        "the appliance's SSH host key is not the one pinned in appliance_known_hosts; confirm its fingerprint on the appliance's console before changing the file"),
    ApplianceRefused => ("AIRLOCK-E-APPLIANCE-REFUSED", Appliance,
        "the appliance refused the request or the licence file; read its message, and check the licence on the appliance (`ghe-license check`)"),
    ApplianceResponse => ("AIRLOCK-E-APPLIANCE-RESPONSE", Appliance,
        "the appliance answered in an unexpected shape; check its GHES version (the Manage API needs 3.12 or later) and report it with the command you ran"),
    WrongDirection => ("AIRLOCK-E-WRONG-DIRECTION", Payload,
        "the bundle was carried the wrong way: a licence bundle goes into the appliance on the isolated side (`airlock licence import`), a usage bundle to the connected side (`airlock import`); take it to the other side (`airlock inspect` shows its kind)"),
}

/// What an error was caused by: an I/O, parser or library error, or the
/// airlock error it was re-coded from.
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An airlock failure: a stable code, a one-line cause and a hint, and
/// optionally the error that caused it (`std::error::Error::source`).
#[derive(Debug)]
pub struct Error {
    /// The stable code; its class gives the exit code.
    pub code: Code,
    /// What went wrong, one line, naming the file or value concerned.
    pub cause: String,
    /// A hint more specific than the code's default, if any (see `hint()`).
    pub hint: Option<String>,
    source: Option<Source>,
}

impl Error {
    /// An error with `code` and `cause`, the code's default hint and no
    /// source.
    pub fn new(code: Code, cause: impl Into<String>) -> Self {
        Error {
            code,
            cause: cause.into(),
            hint: None,
            source: None,
        }
    }

    /// Replace the code's default hint with a more specific one.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Keep the error that caused this one: `source()` returns it, `-v`
    /// prints it ("caused by:") and `--json` lists it (`caused_by`).
    pub fn with_source(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The same failure under another code (say a write error that made a
    /// hand-over fail): the cause stays, this error becomes the source, and
    /// its hint is kept, because the original code's hint names what
    /// actually went wrong (a full disk, an existing file) where the new
    /// code's default only names the step that failed. A caller that knows
    /// better replaces it with `with_hint`.
    pub fn recode(self, code: Code) -> Error {
        let hint = self.hint().to_string();
        Error {
            code,
            cause: self.cause.clone(),
            hint: Some(hint),
            source: Some(Box::new(self)),
        }
    }

    /// Put where it happened (`FILE`, `FILE:LINE`) before the cause,
    /// keeping code, hint and source.
    pub(crate) fn context(mut self, place: impl fmt::Display) -> Error {
        self.cause = format!("{place}: {}", self.cause);
        self
    }

    /// The hint to show: the specific one if set, else the code's default.
    pub fn hint(&self) -> &str {
        self.hint.as_deref().unwrap_or(self.code.hint())
    }

    /// The process exit code of the error's class.
    pub fn exit_code(&self) -> i32 {
        self.code.class().exit_code()
    }

    /// What caused this error, one entry per level, outermost first (empty
    /// when nothing is known beyond `cause`). An airlock error in the chain
    /// shows as `CODE: cause`.
    pub fn chain(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut next = std::error::Error::source(self);
        // Bounded: a chain is a few levels; a cycle is impossible with
        // owned boxes, but a foreign error's `source` is not ours to trust.
        while let Some(e) = next {
            if out.len() == 32 {
                break;
            }
            out.push(e.to_string());
            next = e.source();
        }
        out
    }

    /// `IO-READ`: `what` could not be read; `e` is kept as the source.
    pub fn io_read(what: &std::path::Path, e: std::io::Error) -> Self {
        Error::new(
            Code::IoRead,
            format!("cannot read {}: {}", crate::base::names::shown(what), e),
        )
        .with_source(e)
    }

    /// `IO-WRITE`: `what` could not be written; `e` is kept as the source.
    pub fn io_write(what: &std::path::Path, e: std::io::Error) -> Self {
        Error::new(
            Code::IoWrite,
            format!("cannot write {}: {}", crate::base::names::shown(what), e),
        )
        .with_source(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.cause)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A result whose error is an airlock [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "duplicate code {}", c.as_str());
            assert!(c.as_str().starts_with("AIRLOCK-E-"));
            assert!(c
                .as_str()
                .chars()
                .all(|ch| ch.is_ascii_uppercase() || ch == '-'));
            assert!(!c.hint().is_empty());
        }
    }

    #[test]
    fn sources_are_kept_and_recoding_keeps_the_original_hint() {
        let full = std::io::Error::from_raw_os_error(28);
        let e = Error::io_write(std::path::Path::new("/out/f"), full);
        let e = e.recode(Code::HandoverFailed);
        assert_eq!(e.code, Code::HandoverFailed);
        assert_eq!(e.hint(), Code::IoWrite.hint());
        let inner = std::error::Error::source(&e).unwrap();
        let inner = inner.downcast_ref::<Error>().unwrap();
        assert_eq!(inner.code, Code::IoWrite);
        let chain = e.chain();
        assert_eq!(chain.len(), 2, "{chain:?}");
        assert!(chain[0].starts_with("AIRLOCK-E-IO-WRITE: cannot write /out/f"));
        assert_eq!(chain[1], std::io::Error::from_raw_os_error(28).to_string());
        // An explicit hint travels too; a caller can still replace it.
        let e = Error::new(Code::Args, "x").with_hint("specific");
        assert_eq!(e.recode(Code::KeyPassphrase).hint(), "specific");
        let e = Error::new(Code::Args, "x").with_hint("specific");
        assert_eq!(
            e.recode(Code::Internal).with_hint("better").hint(),
            "better"
        );
        // Context keeps code, hint and source.
        let e = Error::io_read(
            std::path::Path::new("f"),
            std::io::Error::from_raw_os_error(2),
        )
        .with_hint("h")
        .context("here:3");
        assert_eq!((e.code, e.hint(), e.chain().len()), (Code::IoRead, "h", 1));
        assert!(e.cause.starts_with("here:3: cannot read f"));
        assert!(Error::new(Code::Args, "x").chain().is_empty());
    }

    #[test]
    fn exit_codes_are_distinct_per_class() {
        let mut seen = std::collections::HashSet::new();
        for &c in Class::ALL {
            assert!(seen.insert(c.exit_code()));
            assert_ne!(c.exit_code(), 0);
        }
    }
}

//! The licence member of an export: its size, its member, its source and its recipients.

use super::*;

/// A licence is at most [`MAX_LICENCE_LEN`] bytes and not empty (an empty
/// `.ghl` is a failed download): a bound, never a parse.
pub(super) fn check_licence_size(label: &str, size: u64) -> Result<()> {
    if size == 0 || size > MAX_LICENCE_LEN {
        return Err(Error::new(
            Code::Args,
            format!("{label} holds {size} bytes; a GHES licence file has 1 to {MAX_LICENCE_LEN}"),
        )
        .with_hint("download the licence file again from the enterprise's settings (Licensing)"));
    }
    Ok(())
}

/// The payload entry of a staged licence: kind `ghes-license`, its signed
/// reference; refused when the content is a usage file (or looks like one).
pub(super) fn licence_member(
    member: String,
    s: stage::StagedMember,
    l: &LicenceInput,
    label: &str,
) -> Result<StagedInput> {
    if !matches!(s.verdict, Sniff::Other) {
        return Err(Error::new(
            Code::Args,
            format!("{label} is named as a GHES licence (.ghl) but holds a license usage file"),
        )
        .with_hint("export usage files from the isolated side, under their own name"));
    }
    Ok(StagedInput {
        entry: PayloadEntry {
            name: member,
            size: s.entry.size,
            sha256: s.sha256,
            kind: PayloadKind::Licence,
            reference: Some(l.reference.clone()),
            encryption: None,
        },
        usage: None,
        licence: Some(l.clone()),
    })
}

/// The enterprise of a licence bundle (`None` for any other bundle): a
/// licence travels alone, in clear, with no instance named.
pub(super) fn licence_source(
    staged: &[StagedInput],
    spec: &BundleSpec<'_>,
) -> Result<Option<Source>> {
    let Some(l) = staged.iter().find_map(|s| s.licence.as_ref()) else {
        return Ok(None);
    };
    if staged.len() != 1 {
        return Err(Error::new(
            Code::Args,
            "a GHES licence (.ghl) travels alone: one licence file per bundle, nothing beside it",
        ));
    }
    if spec.host_name.is_some() || spec.server_id.is_some() {
        return Err(Error::new(
            Code::Args,
            "a licence bundle comes from the enterprise, not from an instance: drop --host-name and --server-id",
        ));
    }
    Ok(Some(Source::enterprise(l.enterprise.clone())))
}

/// A licence is not encrypted (decision 81): refused before any byte is
/// read.
pub(super) fn check_licence_inputs(inputs: &[Input], recipients: &Recipients) -> Result<()> {
    if inputs.iter().any(|i| i.licence.is_some()) && !recipients.is_empty() {
        return Err(Error::new(
            Code::Args,
            "a licence bundle is signed, not encrypted: its digest must be checkable by the \
             appliance's administrator without a key",
        )
        .with_hint("drop --recipient, --recipients-file and --passphrase for a .ghl file"));
    }
    Ok(())
}

/// The inputs make a bundle: 1..=32 of them, distinct names, standard input
/// at most once, and a lifetime within the format's limits.
pub(super) fn check_inputs(
    inputs: &[Input],
    created: SystemTime,
    expires_in: Duration,
) -> Result<()> {
    let args = |m: String| Err(Error::new(Code::Args, m));
    if inputs.is_empty() {
        return args("nothing to export".into());
    }
    if inputs.len() > MAX_PAYLOAD_MEMBERS {
        return args(format!(
            "at most {MAX_PAYLOAD_MEMBERS} files fit in one bundle"
        ));
    }
    if expires_in.is_zero() || expires_in > MAX_LIFETIME {
        return args("--expires-in must be between 1 second and 366 days".into());
    }
    if !(Timestamp::from_system(created) + expires_in).is_writable() {
        return Err(Error::new(
            Code::Args,
            "the bundle would expire after 9999-12-31T23:59:59Z, which the format cannot write",
        )
        .with_hint("pass a --created time in the years 1970 to 9999"));
    }
    check_distinct_names(inputs)?;
    let stdin = inputs
        .iter()
        .filter(|i| matches!(i.source, InputSource::Stdin))
        .count();
    if stdin > 1 {
        return args("standard input can be read only once".into());
    }
    Ok(())
}

//! What is exported: an input, where it comes from, and the check that it is a usage file.

use super::*;

/// Where a payload's bytes come from.
pub enum InputSource {
    /// A file, opened when its member is written.
    Path(PathBuf),
    /// This process's standard input, read once.
    Stdin,
}

/// One payload file of a bundle.
pub struct Input {
    /// File name inside the bundle (without `payload/`).
    pub name: String,
    /// The file's own name, escaped, when `name` had to differ from it
    /// (`rules::payload_name`): shown to the user and kept in the ledger.
    pub original: Option<String>,
    /// Where its bytes come from.
    pub source: InputSource,
    /// Refuse the input unless it is a GHES license usage file (what
    /// `export -` expects: a failed `ghe-license` must not become a signed
    /// bundle). Otherwise the content decides: a usage file is recognised,
    /// anything else travels as an opaque file.
    pub require_usage: bool,
    /// A GHES licence file, making a licence bundle (format version 3,
    /// decision 81): [`Input::licence`].
    pub licence: Option<LicenceInput>,
}

impl Input {
    /// A file on disk, named in the bundle after its base name, made a
    /// payload name when it has other characters (`rules::payload_name`:
    /// `license-usage (1).json` travels as `license-usage_1.json`).
    pub fn path(p: &Path) -> Result<Input> {
        use std::os::unix::ffi::OsStrExt;
        let base = p.file_name().unwrap_or_default();
        let name = crate::format::rules::payload_name(base.as_bytes()).ok_or_else(|| {
            Error::new(
                Code::Args,
                format!("{} has no usable file name", crate::base::names::escape(p)),
            )
            .with_hint("rename the file: payload names use letters, digits, '.', '_' and '-'")
        })?;
        let original =
            (name.as_bytes() != base.as_bytes()).then(|| crate::base::names::escape(base));
        Ok(Input {
            name,
            original,
            source: InputSource::Path(p.to_path_buf()),
            require_usage: false,
            licence: None,
        })
    }

    /// A GHES licence file on disk, for the enterprise `licence.enterprise`:
    /// named in the bundle `github-enterprise-<reference>.ghl`, after the
    /// reference the manifest binds.
    pub fn licence(p: &Path, licence: LicenceInput) -> Input {
        Input {
            name: licence.file_name(),
            original: None,
            source: InputSource::Path(p.to_path_buf()),
            require_usage: false,
            licence: Some(licence),
        }
    }

    /// Standard input, named `name` in the bundle; it must be a GHES license
    /// usage file unless `any_kind`.
    pub fn stdin(name: &str, any_kind: bool) -> Input {
        Input {
            name: name.to_string(),
            original: None,
            source: InputSource::Stdin,
            require_usage: !any_kind,
            licence: None,
        }
    }
}

/// How many bytes of an input are kept to describe it when it is not the
/// usage file that was expected.
const HEAD: usize = 256;

/// The error for an input that had to be a usage file and is not.
pub(super) fn not_usage(label: &str, head: &[u8], size: u64, stdin: bool) -> Error {
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

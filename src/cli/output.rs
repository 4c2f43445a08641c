//! Output as types (decision 89): each command returns a report that
//! serialises to its `--json` document (docs/json-output.md) and renders
//! its human form; [`emit`] is the one place that chooses between them.

use std::ffi::OsString;

use serde::ser::{Serialize, SerializeMap, Serializer};

use airlock::names;

/// What a command found, in both of its forms.
///
/// The `--json` document is the type's serialisation with `"ok": true`
/// added; it goes through `serde_json::Value`, whose objects keep their keys
/// sorted (serde_json without `preserve_order`), as every document always
/// has. The human form is printed with `outln!` (left out by `--quiet`) or
/// `raw_out` (what a check prints whatever `--quiet` says).
pub trait Report: Serialize {
    /// Print the human form on standard output.
    fn human(&self);

    /// The exit status of the command, 0 unless a check says otherwise.
    fn exit_status(&self) -> i32 {
        0
    }
}

/// A report's `--json` document: `"ok": true` and the report's fields.
#[derive(serde::Serialize)]
struct Success<'a, R> {
    ok: bool,
    #[serde(flatten)]
    report: &'a R,
}

/// Print `r` as `--json` asks, or in its human form; its exit status.
pub fn emit<R: Report>(r: &R) -> i32 {
    if super::json() {
        super::print_json(&Success {
            ok: true,
            report: r,
        });
    } else {
        r.human();
    }
    r.exit_status()
}

/// A file name field: `key` as a (lossy) string and, when the name is not
/// UTF-8, `key_bytes` with its exact bytes (docs/json-output.md, "File
/// names"). Used with `#[serde(flatten)]`.
#[derive(Debug, Clone)]
pub struct Name {
    key: &'static str,
    name: OsString,
}

impl Name {
    /// The field `key` naming `name`.
    pub fn new(key: &'static str, name: impl Into<OsString>) -> Name {
        Name {
            key,
            name: name.into(),
        }
    }

    /// The name.
    pub fn name(&self) -> &std::ffi::OsStr {
        &self.name
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(self.key, &names::lossy(&self.name))?;
        if let Some(b) = names::bytes_field(&self.name) {
            m.serialize_entry(&format!("{}_bytes", self.key), &b)?;
        }
        m.end()
    }
}

/// A file name field that may be absent: `key: null`, or as [`Name`].
/// Used with `#[serde(flatten)]`.
#[derive(Debug, Clone)]
pub struct OptName(&'static str, Option<Name>);

impl OptName {
    /// The field `key` naming `name`, or `null`.
    pub fn new(key: &'static str, name: Option<&std::ffi::OsStr>) -> OptName {
        OptName(key, name.map(|n| Name::new(key, n)))
    }
}

impl Serialize for OptName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.1 {
            Some(n) => n.serialize(s),
            None => {
                let mut m = s.serialize_map(None)?;
                m.serialize_entry(self.0, &())?;
                m.end()
            }
        }
    }
}

/// A list of file names: `key` as lossy strings and, when any is not
/// UTF-8, `key_bytes`, a list of the same length (`null` for a UTF-8 name).
/// Used with `#[serde(flatten)]`.
#[derive(Debug, Clone)]
pub struct Names {
    key: &'static str,
    names: Vec<OsString>,
}

impl Names {
    /// The field `key` listing `names`.
    pub fn new<T: Into<OsString>>(key: &'static str, names: impl IntoIterator<Item = T>) -> Names {
        Names {
            key,
            names: names.into_iter().map(Into::into).collect(),
        }
    }

    /// The names listed.
    pub fn iter(&self) -> impl Iterator<Item = &OsString> {
        self.names.iter()
    }
}

impl Serialize for Names {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        let lossy: Vec<String> = self.names.iter().map(names::lossy).collect();
        m.serialize_entry(self.key, &lossy)?;
        let bytes: Vec<Option<String>> = self.names.iter().map(names::bytes_field).collect();
        if bytes.iter().any(Option::is_some) {
            m.serialize_entry(&format!("{}_bytes", self.key), &bytes)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn a_name_that_is_not_utf8_gets_its_bytes_beside_it() {
        let bad = OsString::from_vec(b"caf\xe9".to_vec());
        let v = serde_json::to_value(Name::new("bundle", bad.clone())).unwrap();
        assert_eq!(v["bundle"], "caf\u{fffd}");
        assert_eq!(v["bundle_bytes"], "Y2Fm6Q==");
        let v = serde_json::to_value(Names::new("written", [OsString::from("a"), bad])).unwrap();
        assert_eq!(v["written_bytes"][0], serde_json::Value::Null);
        assert_eq!(v["written_bytes"][1], "Y2Fm6Q==");
        let v = serde_json::to_value(Name::new("bundle", "b.zip")).unwrap();
        assert!(v.get("bundle_bytes").is_none());
    }
}

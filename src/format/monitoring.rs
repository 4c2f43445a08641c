//! Output for monitoring systems, shared by every check airlock offers
//! (`fleet`, `cloud status` and `licence status`):
//!
//! - the Monitoring Plugins format (Nagios, Icinga, Naemon, Zabbix's and
//!   Sensu's plugin runners): exit status 0 OK, 1 WARNING, 2 CRITICAL,
//!   3 UNKNOWN; one line `SERVICE STATUS - text | perfdata`, with
//!   performance data as `'label'=value[UOM];[warn];[crit];[min];[max]`
//!   (<https://www.monitoring-plugins.org/doc/guidelines.html>);
//! - Prometheus' text exposition format, written atomically for
//!   node_exporter's textfile collector.
//!
//! Builders and renderers only: the caller decides what is measured.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::base::error::{Error, Result};

/// A plugin's verdict, ordered from best to worst: UNKNOWN ranks above
/// CRITICAL, so a check that could not run never passes for a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Everything is as it should be (exit 0).
    Ok,
    /// Something needs attention soon (exit 1).
    Warning,
    /// Something is wrong now (exit 2).
    Critical,
    /// The check could not decide: an error before or during it (exit 3).
    Unknown,
}

impl Status {
    /// The process exit status the guidelines give this verdict.
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }

    /// Its name in the status line.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }
}

/// In JSON, its name (`"WARNING"`).
impl serde::Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A performance value's unit of measure (the guidelines' UOM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A plain number (a count).
    None,
    /// Seconds (`s`).
    Seconds,
    /// A percentage (`%`).
    Percent,
    /// Bytes (`B`).
    Bytes,
    /// A continuous counter (`c`).
    Counter,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::None => "",
            Unit::Seconds => "s",
            Unit::Percent => "%",
            Unit::Bytes => "B",
            Unit::Counter => "c",
        }
    }
}

/// A threshold range in the guidelines' form: alert when the value lies
/// outside `start..=end` (or inside it, with `@`). `start: None` is minus
/// infinity (`~`), `end: None` plus infinity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// The lower bound (`None`: minus infinity).
    pub start: Option<f64>,
    /// The upper bound (`None`: plus infinity).
    pub end: Option<f64>,
    /// Alert when the value is inside the range instead (`@`).
    pub inside: bool,
}

impl Range {
    /// Alert above `max` (and below 0): the guidelines' `max`.
    pub fn at_most(max: f64) -> Range {
        Range {
            start: Some(0.0),
            end: Some(max),
            inside: false,
        }
    }

    /// Alert below `min`: the guidelines' `min:`.
    pub fn at_least(min: f64) -> Range {
        Range {
            start: Some(min),
            end: None,
            inside: false,
        }
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.inside {
            f.write_str("@")?;
        }
        match (self.start, self.end) {
            (Some(s), Some(e)) if s == 0.0 && !self.inside => write!(f, "{}", number(e)),
            (s, e) => write!(
                f,
                "{}:{}",
                s.map_or_else(|| "~".to_string(), number),
                e.map(number).unwrap_or_default()
            ),
        }
    }
}

/// A number as the guidelines (and Prometheus) read it: digits, a sign and
/// a point, never an exponent. Integers print without a fraction.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        // Rust's Display of a finite f64 has no exponent.
        format!("{v}")
    }
}

/// One performance value: `'label'=value[UOM];[warn];[crit];[min];[max]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Perf {
    /// What is measured; `'` and `=` are replaced when rendered (the
    /// guidelines forbid them), so any text is safe here.
    pub label: String,
    /// The value; `None` (or not finite) renders as `U`, undetermined.
    pub value: Option<f64>,
    /// Its unit.
    pub unit: Unit,
    /// The warning range, if the check uses one.
    pub warn: Option<Range>,
    /// The critical range, if the check uses one.
    pub crit: Option<Range>,
    /// The smallest possible value, if known.
    pub min: Option<f64>,
    /// The largest possible value, if known.
    pub max: Option<f64>,
}

impl Perf {
    /// A value without thresholds or bounds.
    pub fn new(label: impl Into<String>, value: Option<f64>, unit: Unit) -> Perf {
        Perf {
            label: label.into(),
            value,
            unit,
            warn: None,
            crit: None,
            min: None,
            max: None,
        }
    }

    /// With a warning range.
    pub fn warn(mut self, r: Range) -> Perf {
        self.warn = Some(r);
        self
    }

    /// With a critical range.
    pub fn crit(mut self, r: Range) -> Perf {
        self.crit = Some(r);
        self
    }

    /// With a lower bound.
    pub fn min(mut self, v: f64) -> Perf {
        self.min = Some(v);
        self
    }

    /// With an upper bound.
    pub fn max(mut self, v: f64) -> Perf {
        self.max = Some(v);
        self
    }
}

/// A label as the guidelines allow it: no `'`, no `=` and no control
/// characters (each becomes `_`), never empty; always quoted.
fn perf_label(label: &str) -> String {
    let clean: String = label
        .chars()
        .map(|c| match c {
            '\'' | '=' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    if clean.is_empty() {
        "'_'".into()
    } else {
        format!("'{clean}'")
    }
}

impl fmt::Display for Perf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = match self.value {
            Some(v) if v.is_finite() => format!("{}{}", number(v), self.unit.as_str()),
            _ => "U".into(),
        };
        let opt = |v: Option<f64>| v.filter(|v| v.is_finite()).map(number).unwrap_or_default();
        let range = |r: Option<Range>| r.map(|r| r.to_string()).unwrap_or_default();
        let fields = [
            range(self.warn),
            range(self.crit),
            opt(self.min),
            opt(self.max),
        ];
        // Trailing empty fields are dropped, as the guidelines allow.
        let n = fields
            .iter()
            .rposition(|s| !s.is_empty())
            .map_or(0, |i| i + 1);
        write!(f, "{}={value}", perf_label(&self.label))?;
        for s in &fields[..n] {
            write!(f, ";{s}")?;
        }
        Ok(())
    }
}

/// Text for the status line: control characters (line breaks, escape
/// sequences) become spaces and `|`, which starts the performance data,
/// becomes `/`, so the line stays one line and parses.
pub fn one_line(text: &str) -> String {
    let s: String = text
        .chars()
        .map(|c| match c {
            '|' => '/',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    s.trim().to_string()
}

/// The plugin's one line, `SERVICE STATUS - text | perfdata`, without a
/// line break. Labels that repeat get ` #2`, ` #3` … so each is unique.
pub fn plugin_line(service: &str, status: Status, text: &str, perf: &[Perf]) -> String {
    let mut line = format!("{} {status} - {}", one_line(service), one_line(text));
    if perf.is_empty() {
        return line;
    }
    line.push_str(" |");
    let mut seen = std::collections::HashSet::new();
    for p in perf {
        let mut p = p.clone();
        let base = p.label.clone();
        let mut n = 1;
        while !seen.insert(perf_label(&p.label)) {
            n += 1;
            p.label = format!("{base} #{n}");
        }
        line.push(' ');
        line.push_str(&p.to_string());
    }
    line
}

/// The kind of a Prometheus metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// A value that goes up and down.
    Gauge,
    /// A value that only goes up.
    Counter,
}

impl MetricType {
    fn as_str(self) -> &'static str {
        match self {
            MetricType::Gauge => "gauge",
            MetricType::Counter => "counter",
        }
    }
}

#[derive(Debug, Clone)]
struct Family {
    name: String,
    help: String,
    kind: MetricType,
    samples: Vec<(Vec<(String, String)>, f64)>,
}

/// Metric families in Prometheus' text exposition format, in the order
/// they were first added; each family's samples stay together.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    families: Vec<Family>,
}

/// A metric or label name as Prometheus accepts it
/// (`[a-zA-Z_:][a-zA-Z0-9_:]*`; labels without `:`): anything else
/// becomes `_`.
fn prom_name(name: &str, colon: bool) -> String {
    let mut s: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' => c,
            ':' if colon => c,
            _ => '_',
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// A label value escaped per the exposition format: `\`, `"`, line feed.
fn escape_label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// HELP text escaped per the exposition format: `\` and line feed.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value: Go's ParseFloat reads this, and so does Prometheus.
fn prom_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        number(v)
    }
}

impl Metrics {
    /// No families yet.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Add a sample of the family `name` (made with `help` and `kind` the
    /// first time; later calls keep the first help and kind). A sample
    /// whose labels repeat one already added replaces its value, since the
    /// exposition format forbids duplicates.
    pub fn add(
        &mut self,
        name: &str,
        help: &str,
        kind: MetricType,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        let name = prom_name(name, true);
        let idx = match self.families.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.families.push(Family {
                    name,
                    help: help.into(),
                    kind,
                    samples: Vec::new(),
                });
                self.families.len() - 1
            }
        };
        let fam = &mut self.families[idx];
        let labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (prom_name(k, false), (*v).to_string()))
            .collect();
        match fam.samples.iter_mut().find(|(l, _)| *l == labels) {
            Some(s) => s.1 = value,
            None => fam.samples.push((labels, value)),
        }
    }

    /// A gauge sample: [`Metrics::add`] with [`MetricType::Gauge`].
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.add(name, help, MetricType::Gauge, labels, value);
    }

    /// The text exposition format: `# HELP`, `# TYPE`, then the samples of
    /// each family; ends with a line feed.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.families {
            out.push_str(&format!("# HELP {} {}\n", f.name, escape_help(&f.help)));
            out.push_str(&format!("# TYPE {} {}\n", f.name, f.kind.as_str()));
            for (labels, v) in &f.samples {
                out.push_str(&f.name);
                if !labels.is_empty() {
                    let l: Vec<String> = labels
                        .iter()
                        .map(|(k, v)| format!("{k}=\"{}\"", escape_label_value(v)))
                        .collect();
                    out.push_str(&format!("{{{}}}", l.join(",")));
                }
                out.push_str(&format!(" {}\n", prom_value(*v)));
            }
        }
        out
    }

    /// Write the rendered text to `path` for node_exporter's textfile
    /// collector: a temporary file in the same directory, fsynced, renamed
    /// over `path`, so the collector never reads half a file. Mode 0644
    /// whatever the umask: the collector runs as another user.
    pub fn write_textfile(&self, path: &Path) -> Result<()> {
        let mut tmp = crate::io::fsutil::temp_beside(path, 0o644)?;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .and_then(|_| tmp.write_all(self.render().as_bytes()))
            .map_err(|e| Error::io_write(path, e))?;
        crate::io::fsutil::publish(tmp, path, true)
    }
}

/// The metrics every run writes, also one that could not check (UNKNOWN):
/// its status and time, labelled with the command that wrote them.
pub fn run_metrics(command: &str, status: Status, now: std::time::SystemTime) -> Metrics {
    let mut m = Metrics::new();
    let c = [("command", command)];
    m.gauge(
        "airlock_check_status",
        "The health check's Monitoring Plugins status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the check could not run; the other metrics are missing or as last committed).",
        &c,
        status.exit_code() as f64,
    );
    m.gauge(
        "airlock_check_timestamp_seconds",
        "When the check ran (Unix time).",
        &c,
        now.duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs() as f64),
    );
    m
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A number in the guidelines' class `[-0-9.]`: `-?D+(.D+)?`.
    fn num(s: &str) -> bool {
        let s = s.strip_prefix('-').unwrap_or(s);
        let (a, b) = s.split_once('.').unwrap_or((s, "0"));
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
        digits(a) && digits(b)
    }

    /// A threshold range: `@?` then `END`, `START:` or `START:END`, START
    /// a number or `~`.
    fn range(s: &str) -> bool {
        let s = s.strip_prefix('@').unwrap_or(s);
        match s.split_once(':') {
            None => num(s),
            Some((a, b)) => (a == "~" || num(a)) && (b.is_empty() || num(b)),
        }
    }

    /// Performance data split at the spaces outside quoted labels.
    pub(crate) fn split_perf(data: &str) -> Vec<String> {
        let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
        for c in data.chars() {
            match c {
                '\'' => quoted = !quoted,
                ' ' if !quoted => {
                    if !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                    }
                    continue;
                }
                _ => {}
            }
            cur.push(c);
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    }

    /// The guidelines' performance data, strictly: a quoted label without
    /// `'` or `=`, a value (or `U`) with a unit, then up to four fields.
    pub(crate) fn valid_perf(s: &str) -> bool {
        let Some(rest) = s.strip_prefix('\'') else {
            return false;
        };
        let Some((label, rest)) = rest.split_once("'=") else {
            return false;
        };
        if label.is_empty() || label.contains(['\'', '=']) {
            return false;
        }
        let f: Vec<&str> = rest.split(';').collect();
        if f.len() > 5 {
            return false;
        }
        let v = f[0];
        let unit_at = v
            .find(|c: char| !(c.is_ascii_digit() || c == '-' || c == '.'))
            .unwrap_or(v.len());
        let (n, unit) = v.split_at(unit_at);
        let value_ok = (v == "U")
            || (num(n)
                && ["", "s", "ms", "us", "%", "B", "KB", "MB", "GB", "TB", "c"].contains(&unit));
        let opt = |i: usize, ok: fn(&str) -> bool| f.get(i).is_none_or(|t| t.is_empty() || ok(t));
        value_ok && opt(1, range) && opt(2, range) && opt(3, num) && opt(4, num)
    }

    #[test]
    fn statuses_have_the_guidelines_codes_and_order() {
        let all = [
            Status::Ok,
            Status::Warning,
            Status::Critical,
            Status::Unknown,
        ];
        let codes: Vec<i32> = all.iter().map(|s| s.exit_code()).collect();
        assert_eq!(codes, [0, 1, 2, 3]);
        assert_eq!(Status::Warning.max(Status::Critical), Status::Critical);
        assert_eq!(Status::Critical.max(Status::Unknown), Status::Unknown);
    }

    #[test]
    fn perfdata_is_formatted_and_quoted() {
        let p = Perf::new(
            "ghes.example.com last_sync_age",
            Some(3600.0),
            Unit::Seconds,
        )
        .warn(Range::at_most(259200.0))
        .min(0.0);
        assert_eq!(
            p.to_string(),
            "'ghes.example.com last_sync_age'=3600s;259200;;0"
        );
        let p = Perf::new("it's=odd\n", None, Unit::None);
        assert_eq!(p.to_string(), "'it_s_odd_'=U");
        let p = Perf::new("days", Some(12.5), Unit::None)
            .warn(Range::at_least(30.0))
            .crit(Range::at_least(7.0));
        assert_eq!(p.to_string(), "'days'=12.5;30:;7:");
        let r = Range {
            start: None,
            end: Some(-1.0),
            inside: true,
        };
        assert_eq!(r.to_string(), "@~:-1");
        for p in [
            "'a b'=1s;2;3;0;4",
            "'a'=U",
            "'a'=0.5%;30:;7:",
            "'a'=-2;@~:-1",
            "'x'=1;;;0",
        ] {
            assert!(valid_perf(p), "{p}");
        }
        for p in [
            "a b=1",
            "'a'=1ss",
            "'a'=",
            "'a'=1;;;;;",
            "'a=b'=1",
            "'a'=1e5",
        ] {
            assert!(!valid_perf(p), "{p}");
        }
    }

    #[test]
    fn the_line_is_one_line_with_unique_labels() {
        let perf = [
            Perf::new("seats", Some(1.0), Unit::None),
            Perf::new("seats", Some(2.0), Unit::None),
            Perf::new("x", Some(f64::NAN), Unit::Seconds),
        ];
        let l = plugin_line(
            "AIRLOCK",
            Status::Critical,
            "bad | news\nsecond line\x1b[31m",
            &perf,
        );
        assert_eq!(
            l,
            "AIRLOCK CRITICAL - bad / news second line [31m | 'seats'=1 'seats #2'=2 'x'=U"
        );
        let (_, data) = l.split_once(" | ").unwrap();
        let items = split_perf(data);
        assert_eq!(items.len(), 3);
        assert!(items.iter().all(|p| valid_perf(p)), "{items:?}");
        assert!(!l.contains('\n'));
        assert_eq!(
            plugin_line("AIRLOCK", Status::Ok, "fine", &[]),
            "AIRLOCK OK - fine"
        );
    }

    #[test]
    fn prometheus_text_escapes_labels_and_help() {
        let mut m = Metrics::new();
        m.gauge(
            "airlock_x",
            "a \\ help\nline",
            &[("host_name", "a\"b\\c\nd"), ("server-id", "")],
            1.0,
        );
        m.gauge("airlock_x", "ignored", &[("host_name", "z")], f64::NAN);
        m.gauge("9bad name", "h", &[], f64::INFINITY);
        m.gauge("airlock_x", "ignored", &[("host_name", "z")], 2.5);
        assert_eq!(
            m.render(),
            "# HELP airlock_x a \\\\ help\\nline\n# TYPE airlock_x gauge\n\
             airlock_x{host_name=\"a\\\"b\\\\c\\nd\",server_id=\"\"} 1\n\
             airlock_x{host_name=\"z\"} 2.5\n\
             # HELP _9bad_name h\n# TYPE _9bad_name gauge\n_9bad_name +Inf\n"
        );
    }

    #[test]
    fn the_textfile_is_written_atomically_0644() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("airlock.prom");
        let mut m = Metrics::new();
        m.gauge("airlock_up", "up", &[], 1.0);
        m.write_textfile(&f).unwrap();
        m.gauge("airlock_up", "up", &[], 0.0);
        m.write_textfile(&f).unwrap();
        let meta = std::fs::metadata(&f).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o644);
        assert!(std::fs::read_to_string(&f)
            .unwrap()
            .ends_with("airlock_up 0\n"));
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from("airlock.prom")]);
        // A directory that is not there is an error, not a panic.
        assert!(m.write_textfile(&d.path().join("no/such.prom")).is_err());
    }
}

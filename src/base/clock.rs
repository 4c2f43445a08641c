//! Time as an input: the one type through which the library learns what
//! time it is. Only the binary chooses the system clock; tests, `--at` and
//! export's read-back pass a fixed moment.

use std::time::{Duration, SystemTime};

/// Where "now" comes from. The library never reads the clock by itself: the
/// caller says whether decisions are taken as of the system clock (read at
/// the moment of each decision) or as of a fixed moment (`--at`, tests,
/// export's read-back).
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// The system clock, read at each decision.
    System,
    /// A fixed moment.
    Fixed(SystemTime),
}

impl Clock {
    /// The moment a decision is taken as of.
    pub fn now(&self) -> SystemTime {
        match self {
            Clock::System => SystemTime::now(),
            Clock::Fixed(t) => *t,
        }
    }
}

/// An RFC 3339 time with a zone (`Z`, or an offset such as `-08:00`),
/// fractions kept, as the moment it names; `None` for anything else.
/// The zone is taken off first: humantime's weak parser ignores whatever
/// follows a fraction, an offset included (GitHub's and the appliance's
/// times both come with offsets).
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 20 || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (base, offset) = if let Some(x) = s.strip_suffix(['Z', 'z']) {
        (x, 0i64)
    } else {
        let n = b.len();
        let z = &b[n - 6..];
        let digits = |i: usize| z[i].is_ascii_digit();
        if !(matches!(z[0], b'+' | b'-') && z[3] == b':' && [1, 2, 4, 5].into_iter().all(digits)) {
            return None;
        }
        let num = |i: usize| i64::from(z[i] - b'0') * 10 + i64::from(z[i + 1] - b'0');
        let (h, m) = (num(1), num(4));
        if h > 23 || m > 59 {
            return None;
        }
        let sign = if z[0] == b'-' { -1 } else { 1 };
        (&s[..n - 6], sign * (h * 3600 + m * 60))
    };
    if base.ends_with(['+', '-']) || base.contains(['+', 'Z', 'z']) {
        return None;
    }
    let t = humantime::parse_rfc3339_weak(base).ok()?;
    // Local time minus the offset is UTC.
    if offset >= 0 {
        t.checked_sub(Duration::from_secs(offset as u64))
    } else {
        t.checked_add(Duration::from_secs((-offset) as u64))
    }
}

impl From<SystemTime> for Clock {
    fn from(t: SystemTime) -> Clock {
        Clock::Fixed(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a fraction made humantime drop the offset that followed
    /// it (`.5+01:00` read as UTC), in GitHub's sync dates too.
    #[test]
    fn offsets_after_fractions_are_kept() {
        let utc = |s| humantime::parse_rfc3339(s).unwrap();
        assert_eq!(
            parse_rfc3339("2026-01-01T00:00:00.5+01:00"),
            Some(utc("2025-12-31T23:00:00.5Z"))
        );
        assert_eq!(
            parse_rfc3339("2026-11-20T05:00:00-05:00"),
            Some(utc("2026-11-20T10:00:00Z"))
        );
        assert_eq!(
            parse_rfc3339("2026-11-20T10:00:00.123Z"),
            Some(utc("2026-11-20T10:00:00.123Z"))
        );
        for bad in [
            "yesterday",
            "2026-11-20T10:00:00",
            "2026-11-20T10:00:00+25:00",
            "2026-11-20T10:00:00Z+01:00",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}

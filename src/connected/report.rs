//! The HTML report: one self-contained page (inline CSS and SVG, no scripts,
//! no external assets) for licence managers and auditors.

use std::time::SystemTime;

use crate::connected::fleet::{
    EnterpriseLicences, Instance, Mark, MarkKind, MarkState, SeatReport,
};
use crate::format::manifest::{format_time, parse_time};
use crate::state::lifecycle::Standing;

/// Escape text for HTML element content and attribute values. Control
/// characters and bidirectional overrides are first made visible escapes
/// ([`crate::connected::cloud::sanitize`]): text from GitHub, or recorded from it
/// before airlock sanitised it, cannot reorder or hide what the page shows.
pub fn esc(s: &str) -> String {
    let s = crate::connected::cloud::sanitize(s);
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

fn opt<T: std::fmt::Display>(s: &Option<T>) -> String {
    s.as_ref()
        .map(|v| esc(&v.to_string()))
        .unwrap_or_else(|| "—".into())
}

fn secs(t: &str) -> Option<f64> {
    parse_time(t)
        .or_else(|| crate::connected::cloud::parse_sync_date(t))
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
}

/// Width of the timelines' coordinate system; the SVG scales to the page.
const W: f64 = 1000.0;
const LEFT: f64 = 16.0;
const RIGHT: f64 = 16.0;
const AXIS: f64 = 34.0;
const ROW: f64 = 82.0;
/// Marks of one kind closer than this (in the 1000-wide system) are one
/// group with a count.
const GROUP: f64 = 12.0;

const HOUR: f64 = 3600.0;
const DAY: f64 = 86400.0;

/// A tick step that gives at most about eight labelled ticks.
fn tick_step(span: f64) -> f64 {
    let steps = [
        HOUR,
        6.0 * HOUR,
        12.0 * HOUR,
        DAY,
        2.0 * DAY,
        7.0 * DAY,
        14.0 * DAY,
        30.0 * DAY,
        91.0 * DAY,
        182.0 * DAY,
        365.0 * DAY,
    ];
    steps
        .iter()
        .copied()
        .find(|s| span / s <= 8.0)
        .unwrap_or_else(|| (span / 8.0 / (365.0 * DAY)).ceil() * 365.0 * DAY)
}

fn tick_label(t: f64, step: f64) -> String {
    let s = format_time(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0.0) as u64));
    if step < DAY {
        // 2026-11-01T06:00:00Z -> 11-01 06:00
        format!(
            "{} {}",
            s.get(5..10).unwrap_or(""),
            s.get(11..16).unwrap_or("")
        )
    } else {
        s.get(..10).unwrap_or("").to_string()
    }
}

struct Point<'a> {
    m: &'a Mark,
    x: f64,
}

/// The state a group of marks shares (`None`: mixed).
fn state_of<'a>(ms: &[&Point<'a>]) -> Option<&'a MarkState> {
    let first = &ms[0].m.outcome;
    ms.iter().all(|p| &p.m.outcome == first).then_some(first)
}

/// A group's CSS class: letters, digits and dashes only.
fn class_of(st: Option<&MarkState>) -> String {
    st.map_or("mixed", MarkState::as_str)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// Superseded and outdated first, confirmed last (on top).
fn draw_order(outcome: &MarkState) -> u8 {
    match outcome {
        MarkState::Standing(Standing::Superseded | Standing::Outdated) => 0,
        MarkState::Standing(Standing::Pending) => 1,
        MarkState::Standing(Standing::Confirmed) => 3,
        _ => 2,
    }
}

/// A group's fill and stroke colours, and its lane around the track line
/// `y`: exports and refusals above, imports on it (superseded and outdated
/// ones just below), syncs under.
fn style(kind: MarkKind, st: Option<&MarkState>, y: f64) -> (&'static str, &'static str, f64) {
    use MarkState::{GitHub, Standing as At};
    let (fill, stroke) = match (kind, st) {
        (MarkKind::Export, _) => ("#1f6feb", "#1f6feb"),
        (MarkKind::Import, Some(At(Standing::Confirmed))) => ("#1a7f37", "#1a7f37"),
        (MarkKind::Import, Some(At(Standing::Pending))) => ("#bf8700", "#bf8700"),
        (MarkKind::Import, Some(At(Standing::Superseded))) => ("#ffffff", "#8c959f"),
        (MarkKind::Import, Some(At(Standing::Outdated))) => ("#ffffff", "#bf8700"),
        (MarkKind::Import, _) => ("#d0d7de", "#57606a"),
        (MarkKind::Sync, Some(GitHub(_, true))) => ("#8250df", "#8250df"),
        _ => ("#cf222e", "#cf222e"),
    };
    let lane = match (kind, st) {
        (MarkKind::Export | MarkKind::Refused, _) => y - 18.0,
        (MarkKind::Import, Some(At(Standing::Superseded | Standing::Outdated))) => y + 13.0,
        (MarkKind::Import, _) => y,
        (MarkKind::Sync, _) => y + 27.0,
    };
    (fill, stroke, lane)
}

/// A mark's shape at `x` in its `lane`: a circle for an export, a square
/// for an import, a triangle for a sync, a cross for a refusal.
fn shape(kind: MarkKind, x: f64, lane: f64, fill: &str, stroke: &str) -> String {
    match kind {
        MarkKind::Export => format!("<circle cx=\"{x:.1}\" cy=\"{lane:.1}\" r=\"5\" fill=\"{fill}\" stroke=\"{stroke}\"/>"),
        MarkKind::Import => format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"2\"/>",
            x - 5.0,
            lane - 5.0
        ),
        MarkKind::Sync => format!(
            "<polygon points=\"{:.1},{:.1} {x:.1},{:.1} {:.1},{:.1}\" fill=\"{fill}\"/>",
            x - 6.0,
            lane - 5.0,
            lane + 5.0,
            x + 6.0,
            lane - 5.0
        ),
        MarkKind::Refused => format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{fill}\" font-size=\"13\">✕</text>",
            x - 4.0,
            lane + 5.0
        ),
    }
}

/// One group of close marks of one kind: its shape, a count when more
/// than one, and a title listing every event exactly.
fn mark(kind: MarkKind, ms: &[&Point<'_>], y: f64) -> String {
    let x = ms.iter().map(|p| p.x).sum::<f64>() / ms.len() as f64;
    let st = state_of(ms);
    let class = class_of(st);
    let lines: Vec<String> = ms
        .iter()
        .map(|p| {
            format!(
                "{} {}{}: {}",
                p.m.kind.as_str(),
                p.m.time,
                p.m.bundle_id
                    .as_deref()
                    .map(|b| format!(" bundle {b}"))
                    .unwrap_or_default(),
                p.m.outcome.as_str()
            )
        })
        .collect();
    let title = format!("<title>{}</title>", esc(&lines.join("\n")));
    let (fill, stroke, lane) = style(kind, st, y);
    let shape = shape(kind, x, lane, fill, stroke);
    let sync_class = match (kind, st) {
        (MarkKind::Sync, Some(MarkState::GitHub(_, true))) => " confirmed",
        (MarkKind::Sync, _) => " failed",
        _ => "",
    };
    let count = if ms.len() > 1 {
        format!(
            "<text class=\"count\" x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#1f2328\">{}</text>",
            x + 8.0,
            lane + 4.0,
            ms.len()
        )
    } else {
        String::new()
    };
    format!(
        "<g class=\"ev {} {class}{sync_class}{}\" data-count=\"{}\">{title}{shape}{count}</g>",
        kind.as_str(),
        if ms.len() > 1 { " group" } else { "" },
        ms.len()
    )
}

/// Every instance's events on one shared time axis, with labelled date
/// ticks, scaled to the page's width.
fn timelines(fleet: &[Instance]) -> String {
    let all: Vec<f64> = fleet
        .iter()
        .flat_map(|i| i.timeline.iter().filter_map(|m| secs(&m.time)))
        .collect();
    let h = AXIS + ROW * fleet.len().max(1) as f64 + 8.0;
    let mut svg = format!(
        "<svg class=\"timelines\" role=\"img\" aria-label=\"timelines of every instance on one time axis\" width=\"100%\" viewBox=\"0 0 {W} {h}\" preserveAspectRatio=\"xMinYMin meet\" xmlns=\"http://www.w3.org/2000/svg\" font-family=\"system-ui,sans-serif\">"
    );
    if all.is_empty() {
        svg.push_str("<text x=\"16\" y=\"24\" font-size=\"13\">no events</text></svg>");
        return svg;
    }
    let axis = Axis::around(&all);
    ticks(&mut svg, &axis, h);
    for (n, i) in fleet.iter().enumerate() {
        timeline_row(&mut svg, n, i, &axis);
    }
    svg.push_str("</svg>");
    svg
}

/// The time axis: the instants (seconds since the Unix epoch) at its left
/// and right ends.
struct Axis {
    lo: f64,
    hi: f64,
}

impl Axis {
    /// An axis over the event times `all` (not empty): their span, widened
    /// by 12 hours each way if under an hour, plus 3 % on each side.
    fn around(all: &[f64]) -> Axis {
        let lo0 = all.iter().copied().fold(f64::INFINITY, f64::min);
        let hi0 = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (lo0, hi0) = if hi0 - lo0 < HOUR {
            (lo0 - 12.0 * HOUR, hi0 + 12.0 * HOUR)
        } else {
            (lo0, hi0)
        };
        let pad = (hi0 - lo0) * 0.03;
        Axis {
            lo: lo0 - pad,
            hi: hi0 + pad,
        }
    }

    /// The x coordinate of instant `s`.
    fn x(&self, s: f64) -> f64 {
        LEFT + (s - self.lo) / (self.hi - self.lo) * (W - LEFT - RIGHT)
    }
}

/// The date ticks: gridlines through every row (the drawing is `h` high),
/// labels on top.
fn ticks(svg: &mut String, axis: &Axis, h: f64) {
    let (lo, hi) = (axis.lo, axis.hi);
    let step = tick_step(hi - lo);
    let mut t = (lo / step).ceil() * step;
    while t <= hi {
        let tx = axis.x(t);
        svg.push_str(&format!(
            "<g class=\"tick\"><line x1=\"{tx:.1}\" y1=\"{:.1}\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"#d0d7de\"/><text x=\"{tx:.1}\" y=\"14\" font-size=\"11\" text-anchor=\"middle\" fill=\"#57606a\">{}</text></g>",
            AXIS - 14.0,
            h - 4.0,
            esc(&tick_label(t, step))
        ));
        t += step;
    }
}

/// Row `n`: instance `i`'s name, its line, and its events grouped by kind.
fn timeline_row(svg: &mut String, n: usize, i: &Instance, axis: &Axis) {
    let top = AXIS + ROW * n as f64;
    let y = top + 38.0;
    svg.push_str(&format!(
        "<g class=\"timeline\" data-host=\"{}\"><text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"12\" font-weight=\"600\">{}</text><line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#8c959f\"/>",
        esc(&i.host_name),
        top + 12.0,
        esc(&i.host_name),
        W - RIGHT
    ));
    for kind in [
        MarkKind::Export,
        MarkKind::Import,
        MarkKind::Sync,
        MarkKind::Refused,
    ] {
        let mut pts: Vec<Point<'_>> = i
            .timeline
            .iter()
            .filter(|m| m.kind == kind)
            .filter_map(|m| secs(&m.time).map(|s| Point { m, x: axis.x(s) }))
            .collect();
        // Groups hold one outcome each, so a confirmed hand-over is
        // never hidden in a group of superseded ones; drawn last, the
        // states that matter most are on top.
        pts.sort_by(|a, b| {
            (draw_order(&a.m.outcome), a.x)
                .partial_cmp(&(draw_order(&b.m.outcome), b.x))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let mut group: Vec<&Point<'_>> = Vec::new();
        for p in &pts {
            if group
                .first()
                .is_some_and(|g| p.x - g.x > GROUP || g.m.outcome != p.m.outcome)
            {
                svg.push_str(&mark(kind, &group, y));
                group.clear();
            }
            group.push(p);
        }
        if !group.is_empty() {
            svg.push_str(&mark(kind, &group, y));
        }
    }
    svg.push_str("</g>");
}

fn state_cell(s: Standing) -> String {
    format!("<span class=\"state {s}\">{s}</span>")
}

/// Render the whole page: the instances, then the enterprises' licence
/// bundles apart from them, then the seat leaks.
pub fn html(
    fleet: &[Instance],
    licences: &[EnterpriseLicences],
    seats: Option<&SeatReport>,
    now: SystemTime,
) -> String {
    let mut h = String::new();
    page_head(&mut h, now);
    fleet_table(&mut h, fleet);
    h.push_str("<h2>Timelines</h2><p class=\"legend\"><span style=\"color:#1f6feb\">● export created</span><span style=\"color:#1a7f37\">■ import confirmed</span><span style=\"color:#bf8700\">■ import to upload</span><span style=\"color:#8c959f\">□ import superseded</span><span style=\"color:#bf8700\">□ import outdated (do not upload)</span><span style=\"color:#8250df\">▼ successful sync</span><span style=\"color:#cf222e\">▼ failed sync · ✕ refused</span><span>n: events grouped (hover for each)</span></p>");
    h.push_str(&timelines(fleet));
    handovers_table(&mut h, fleet);
    licences_table(&mut h, licences);
    seats_section(&mut h, seats);
    h.push_str("</body></html>\n");
    h
}

/// The document head (title, inline style) and the page's heading with
/// the time it was made.
fn page_head(h: &mut String, now: SystemTime) {
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width\">");
    h.push_str("<title>airlock: GHES license usage fleet report</title><style>");
    h.push_str("body{font-family:system-ui,sans-serif;margin:2em;color:#1f2328}table{border-collapse:collapse;margin:1em 0}");
    h.push_str("th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;font-size:14px}th{background:#f6f8fa}");
    h.push_str(".warn{color:#9a6700}.ok{color:#1a7f37}.legend span{margin-right:1.5em}code{font-size:13px}");
    h.push_str("table{width:100%}td code{word-break:break-all}svg.timelines{display:block;width:100%;height:auto}.state{font-weight:600}.state.confirmed{color:#1a7f37}.state.superseded,.state.outdated{color:#57606a;text-decoration:line-through}.state.pending{color:#9a6700}");
    h.push_str("</style></head><body>");
    h.push_str(&format!(
        "<h1>GHES license usage: fleet report</h1><p>Generated {} by {} from the import ledger.</p>",
        esc(&format_time(now)),
        esc(&crate::tool_version())
    ));
}

/// The fleet table: one row per instance.
fn fleet_table(h: &mut String, fleet: &[Instance]) {
    h.push_str("<h2>Fleet</h2><table id=\"fleet\"><thead><tr><th>Host</th><th>Server id</th><th>Last export created</th><th>Last import</th><th>Confirmed bundle (by sync of)</th><th>To upload</th><th>Superseded</th><th>Last sync status</th><th>Warnings</th></tr></thead><tbody>");
    for i in fleet {
        let warn = if i.warnings.is_empty() {
            "<span class=\"ok\">none</span>".to_string()
        } else {
            i.warnings
                .iter()
                .map(|w| format!("<div class=\"warn\">{}</div>", esc(w)))
                .collect::<String>()
        };
        let confirmed = i
            .last_confirmed
            .as_ref()
            .map(|c| {
                format!(
                    "<code>{}</code> ({})",
                    esc(c.bundle_id.as_deref().unwrap_or("?")),
                    esc(c.sync_date.as_deref().unwrap_or("?"))
                )
            })
            .unwrap_or_else(|| "—".into());
        let upload = i
            .to_upload
            .as_ref()
            .map(|p| format!("<code>{}</code>", esc(&p.upload_files().join(", "))))
            .unwrap_or_else(|| "—".into());
        h.push_str(&format!(
            "<tr class=\"instance\"><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&i.host_name),
            opt(&i.server_id),
            opt(&i.last_export_created),
            opt(&i.last_import),
            confirmed,
            upload,
            i.superseded,
            opt(&i.last_sync_status),
            warn
        ));
    }
    h.push_str("</tbody></table>");
}

/// The hand-over table: every hand-over of every instance, newest first
/// within an instance.
fn handovers_table(h: &mut String, fleet: &[Instance]) {
    h.push_str("<h2>Hand-overs</h2><table id=\"handovers\"><thead><tr><th>Host</th><th>Bundle</th><th>Created</th><th>Handed over</th><th>State</th><th>Confirmed by sync of</th><th>File</th></tr></thead><tbody>");
    for i in fleet {
        for b in i.handovers.iter().rev() {
            h.push_str(&format!(
                "<tr class=\"handover {}\"><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                b.state,
                esc(&i.host_name),
                opt(&b.bundle_id),
                opt(&b.created),
                b.handed_over,
                state_cell(b.state),
                opt(&b.sync_date),
                esc(&b.upload_files().join(", "))
            ));
        }
    }
    h.push_str("</tbody></table>");
}

/// The licence bundles exported, per enterprise, newest first within one
/// (decision 85): not instances, so no health and no timeline.
fn licences_table(h: &mut String, licences: &[EnterpriseLicences]) {
    h.push_str("<h2>Licence bundles</h2>");
    if licences.is_empty() {
        h.push_str("<p id=\"licences\">None exported: a GHES licence file goes in with <code>airlock export github-enterprise-REF.ghl --enterprise SLUG</code>.</p>");
        return;
    }
    h.push_str("<table id=\"licences\"><thead><tr><th>Enterprise</th><th>Reference</th><th>Exported</th><th>Bundle expires</th><th>Sequence</th><th>Bundle</th><th>Bundle SHA-256</th></tr></thead><tbody>");
    for e in licences {
        for l in e.licences.iter().rev() {
            h.push_str(&format!(
                "<tr class=\"licence\"><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
                esc(&e.enterprise),
                esc(&l.reference),
                l.exported,
                opt(&l.expires),
                opt(&l.sequence),
                opt(&l.bundle_id),
                opt(&l.bundle_sha256)
            ));
        }
    }
    h.push_str("</tbody></table>");
}

/// The seat-leak section: the unmatched server users, or how to fetch them.
fn seats_section(h: &mut String, seats: Option<&SeatReport>) {
    h.push_str("<h2>Seat leaks</h2>");
    match seats {
        None => h.push_str("<p id=\"seats\">Not known: run <code>airlock cloud seats --enterprise SLUG</code>.</p>"),
        Some(s) => {
            h.push_str(&format!(
                "<p id=\"seats\">Enterprise <b>{}</b>, fetched {}: {} seats consumed of {} purchased. {} server user(s) match no GitHub Enterprise Cloud account and consume a separate seat: make their GHES primary email match their Cloud account (SAML/SCIM or a verified email).</p>",
                esc(&s.enterprise),
                esc(&s.fetched),
                s.total_seats_consumed,
                s.total_seats_purchased,
                s.unmatched.len()
            ));
            h.push_str("<table id=\"unmatched\"><thead><tr><th>Server user ids</th><th>Server emails</th><th>License type</th></tr></thead><tbody>");
            for u in &s.unmatched {
                h.push_str(&format!(
                    "<tr class=\"leak\"><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&u.server_user_ids.join(", ")),
                    esc(&u.server_emails.join(", ")),
                    opt(&u.license_type)
                ));
            }
            h.push_str("</tbody></table>");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_has_no_external_references() {
        let i = Instance {
            host_name: "<script>alert(1)</script>".into(),
            server_id: Some("x".into()),
            known: true,
            last_export_created: crate::format::manifest::Timestamp::parse("2026-11-01T00:00:00Z"),
            last_import: None,
            last_confirmed_sync: None,
            last_confirmed: None,
            to_upload: None,
            last_sync_status: None,
            last_sync_date: None,
            last_sync_error: None,
            imports: 0,
            confirmed: 0,
            superseded: 0,
            rollback_attempts: 0,
            handovers: vec![],
            problems: vec![],
            warnings: vec!["a & b".into()],
            timeline: vec![Mark {
                kind: MarkKind::Refused,
                time: "2026-11-01T00:00:00Z".into(),
                bundle_id: None,
                outcome: MarkState::Refused("<b>".into()),
            }],
        };
        let page = html(&[i], &[], None, SystemTime::UNIX_EPOCH);
        assert!(!page.contains("<script>"));
        // Regression (#28): no control characters or bidi overrides reach
        // the page, whatever the ledger holds.
        assert_eq!(
            esc("a\u{1b}[31m\u{202e}<b>\n"),
            "a\\u{1b}[31m\\u{202e}&lt;b&gt;\\n"
        );
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("src=") && !page.contains("href="));
    }

    #[test]
    fn licence_bundles_have_their_own_section_apart_from_the_fleet() {
        use crate::connected::fleet::LicenceExport;
        use crate::format::manifest::{HexDigest, LicenceReference, Timestamp};
        let t = |s: &str| Timestamp::parse(s).unwrap();
        let x = |r: &str, n: u64, at: &str| LicenceExport {
            reference: LicenceReference::parse(r).unwrap(),
            exported: t(at),
            created: Some(t(at)),
            expires: None,
            bundle_id: None,
            bundle_sha256: HexDigest::parse(&n.to_string().repeat(64)),
            sequence: Some(n),
            signer: None,
        };
        let ls = [EnterpriseLicences {
            enterprise: "octo-<corp>".into(),
            licences: vec![
                x("ABC123", 1, "2026-01-05T00:00:00Z"),
                x("ABC124", 2, "2026-11-03T00:00:00Z"),
            ],
        }];
        let page = html(&[], &ls, None, SystemTime::UNIX_EPOCH);
        let (_, section) = page.split_once("<h2>Licence bundles</h2>").unwrap();
        let (table, _) = section.split_once("</table>").unwrap();
        assert_eq!(table.matches("<tr class=\"licence\">").count(), 2);
        // Newest first, escaped, with the digest and the sequence.
        let a = table.find("ABC124").unwrap();
        assert!(a < table.find("ABC123").unwrap());
        assert!(table.contains("<td>octo-&lt;corp&gt;</td>"), "{table}");
        assert!(table.contains(&"2".repeat(64)));
        assert!(
            table.contains("<td>2026-11-03T00:00:00Z</td><td>—</td><td>2</td>"),
            "{table}"
        );
        // Not a row of the fleet table, nor a timeline.
        let (_, fleet) = page.split_once("<table id=\"fleet\">").unwrap();
        let (fleet, _) = fleet.split_once("</table>").unwrap();
        assert!(!fleet.contains("octo"), "{fleet}");
        assert!(!page.contains("data-host=\"octo"));
        let none = html(&[], &[], None, SystemTime::UNIX_EPOCH);
        assert!(none.contains("<p id=\"licences\">None exported"));
    }
}

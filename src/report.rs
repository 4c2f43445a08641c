//! The HTML report: one self-contained page (inline CSS and SVG, no scripts,
//! no external assets) for licence managers and auditors.

use std::time::SystemTime;

use crate::bundle::manifest::{format_time, parse_time};
use crate::fleet::{Instance, SeatReport};

/// Escape text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
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

fn opt(s: &Option<String>) -> String {
    s.as_deref().map(esc).unwrap_or_else(|| "—".into())
}

fn secs(t: &str) -> Option<f64> {
    parse_time(t)
        .or_else(|| crate::cloud::parse_github_time(t))
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
}

/// An inline SVG timeline of one instance's events.
fn timeline(i: &Instance) -> String {
    const W: f64 = 760.0;
    const PAD: f64 = 40.0;
    let pts: Vec<(&str, &str, f64)> = i
        .timeline
        .iter()
        .filter_map(|(k, t)| secs(t).map(|s| (k.as_str(), t.as_str(), s)))
        .collect();
    let mut svg = format!(
        "<svg class=\"timeline\" role=\"img\" aria-label=\"timeline of {}\" width=\"{W}\" height=\"110\" viewBox=\"0 0 {W} 110\" xmlns=\"http://www.w3.org/2000/svg\">",
        esc(&i.host_name)
    );
    svg.push_str(&format!(
        "<line x1=\"{PAD}\" y1=\"55\" x2=\"{}\" y2=\"55\" stroke=\"#888\"/>",
        W - PAD
    ));
    if pts.is_empty() {
        svg.push_str("<text x=\"40\" y=\"45\" font-size=\"12\">no events</text></svg>");
        return svg;
    }
    let lo = pts.iter().map(|p| p.2).fold(f64::INFINITY, f64::min);
    let hi = pts.iter().map(|p| p.2).fold(f64::NEG_INFINITY, f64::max);
    let span = if hi > lo { hi - lo } else { 1.0 };
    let x = |s: f64| PAD + (s - lo) / span * (W - 2.0 * PAD);
    for (k, t, s) in &pts {
        let cx = x(*s);
        let title = format!("<title>{} {}</title>", esc(k), esc(t));
        let mark = match *k {
            "export" => format!("<circle class=\"ev export\" cx=\"{cx:.1}\" cy=\"35\" r=\"6\" fill=\"#1f6feb\">{title}</circle>"),
            "import" => format!("<rect class=\"ev import\" x=\"{:.1}\" y=\"49\" width=\"12\" height=\"12\" fill=\"#2da44e\">{title}</rect>", cx - 6.0),
            "confirmed sync" => format!("<polygon class=\"ev confirmed\" points=\"{:.1},69 {:.1},81 {:.1},69\" fill=\"#8250df\">{title}</polygon>", cx - 7.0, cx, cx + 7.0),
            "failed sync" => format!("<polygon class=\"ev failed\" points=\"{:.1},69 {:.1},81 {:.1},69\" fill=\"#cf222e\">{title}</polygon>", cx - 7.0, cx, cx + 7.0),
            _ => format!("<text class=\"ev refused\" x=\"{:.1}\" y=\"40\" fill=\"#cf222e\" font-size=\"14\">✕{title}</text>", cx - 5.0),
        };
        svg.push_str(&mark);
    }
    svg.push_str(&format!(
        "<text x=\"{PAD}\" y=\"100\" font-size=\"11\">{}</text><text x=\"{}\" y=\"100\" font-size=\"11\" text-anchor=\"end\">{}</text></svg>",
        esc(pts.first().map(|p| p.1).unwrap_or("")),
        W - PAD,
        esc(pts.last().map(|p| p.1).unwrap_or(""))
    ));
    svg
}

/// Render the whole page.
pub fn html(fleet: &[Instance], seats: Option<&SeatReport>, now: SystemTime) -> String {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width\">");
    h.push_str("<title>airlock: GHES license usage fleet report</title><style>");
    h.push_str("body{font-family:system-ui,sans-serif;margin:2em;color:#1f2328}table{border-collapse:collapse;margin:1em 0}");
    h.push_str("th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;font-size:14px}th{background:#f6f8fa}");
    h.push_str(".warn{color:#9a6700}.ok{color:#1a7f37}.legend span{margin-right:1.5em}code{font-size:13px}");
    h.push_str("</style></head><body>");
    h.push_str(&format!(
        "<h1>GHES license usage: fleet report</h1><p>Generated {} by {} from the import ledger.</p>",
        esc(&format_time(now)),
        esc(&crate::tool_version())
    ));
    h.push_str("<h2>Fleet</h2><table id=\"fleet\"><thead><tr><th>Host</th><th>Server id</th><th>Last export created</th><th>Last import</th><th>Last confirmed sync</th><th>Last sync status</th><th>Warnings</th></tr></thead><tbody>");
    for i in fleet {
        let warn = if i.warnings.is_empty() {
            "<span class=\"ok\">none</span>".to_string()
        } else {
            i.warnings
                .iter()
                .map(|w| format!("<div class=\"warn\">{}</div>", esc(w)))
                .collect::<String>()
        };
        h.push_str(&format!(
            "<tr class=\"instance\"><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&i.host_name),
            opt(&i.server_id),
            opt(&i.last_export_created),
            opt(&i.last_import),
            opt(&i.last_confirmed_sync),
            opt(&i.last_sync_status),
            warn
        ));
    }
    h.push_str("</tbody></table>");
    h.push_str("<h2>Timelines</h2><p class=\"legend\"><span style=\"color:#1f6feb\">● export created</span><span style=\"color:#2da44e\">■ imported</span><span style=\"color:#8250df\">▼ confirmed sync</span><span style=\"color:#cf222e\">▼ failed sync · ✕ refused</span></p>");
    for i in fleet {
        h.push_str(&format!("<h3>{}</h3>{}", esc(&i.host_name), timeline(i)));
    }
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
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_has_no_external_references() {
        let i = Instance {
            host_name: "<script>alert(1)</script>".into(),
            server_id: Some("x".into()),
            last_export_created: Some("2026-11-01T00:00:00Z".into()),
            last_import: None,
            last_confirmed_sync: None,
            last_sync_status: None,
            last_sync_date: None,
            last_sync_error: None,
            imports: 0,
            rollback_attempts: 0,
            warnings: vec!["a & b".into()],
            timeline: vec![("export".into(), "2026-11-01T00:00:00Z".into())],
        };
        let page = html(&[i], None, SystemTime::UNIX_EPOCH);
        assert!(!page.contains("<script>"));
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("src=") && !page.contains("href="));
    }
}

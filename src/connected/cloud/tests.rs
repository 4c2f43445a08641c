use super::*;

#[test]
fn link_header() {
    let l = r#"<https://api.github.com/x?page=2>; rel="next", <https://api.github.com/x?page=5>; rel="last""#;
    assert_eq!(
        next_link(l).as_deref(),
        Some("https://api.github.com/x?page=2")
    );
    assert_eq!(next_link(r#"<https://a/x?page=1>; rel="prev""#), None);
}

#[test]
fn times() {
    let a = parse_github_time("2026-11-20T10:00:00Z").unwrap();
    assert_eq!(parse_github_time("2026-11-20T12:00:00+02:00").unwrap(), a);
    assert_eq!(parse_github_time("2026-11-20T05:00:00-05:00").unwrap(), a);
    assert!(parse_github_time("2026-11-20T10:00:00.123Z").is_some());
    assert!(parse_github_time("yesterday").is_none());
    // Regression: the offset after a fraction was dropped.
    assert_eq!(
        parse_github_time("2026-11-20T11:00:00.5+01:00").unwrap(),
        a + Duration::from_millis(500)
    );
}

#[test]
fn sync_dates() {
    let a = parse_sync_date("2026-11-28T10:58:40Z").unwrap();
    assert_eq!(parse_sync_date("2026-11-28 10:58:40 UTC"), Some(a));
    assert_eq!(parse_sync_date("2026-11-28 10:58:40 +0000"), Some(a));
    assert_eq!(parse_sync_date("2026-11-28 10:58:40Z"), Some(a));
    assert_eq!(parse_sync_date("2026-11-28T11:58:40+01:00"), Some(a));
    assert!(parse_sync_date("2026-11-28T10:58:40.5Z").is_some());
    // No zone: the time would depend on the reader's; reported instead.
    assert_eq!(parse_sync_date("2026-11-28T10:58:40"), None);
    for bad in [
        "",
        "28/11/2026",
        "1764327520",
        "2026-11-28",
        "Nov 28 2026 10:58",
        "2026-13-40T00:00:00Z",
    ] {
        assert_eq!(parse_sync_date(bad), None, "{bad}");
    }
}

#[test]
fn hosts_map_like_gh() {
    assert_eq!(
        api_url_for_host("github.com").unwrap(),
        "https://api.github.com"
    );
    assert_eq!(
        api_url_for_host("GitHub.com.").unwrap(),
        "https://api.github.com"
    );
    assert_eq!(
        api_url_for_host("octo.ghe.com").unwrap(),
        "https://api.octo.ghe.com"
    );
    assert_eq!(
        api_url_for_host("api.octo.ghe.com").unwrap(),
        "https://api.octo.ghe.com"
    );
    for bad in [
        "ghes.corp.example",
        "https://github.com",
        "a.b.ghe.com",
        ".ghe.com",
        "ghe.com",
        "x_y.ghe.com",
        "evil.com/.ghe.com",
    ] {
        assert_eq!(
            api_url_for_host(bad).err().unwrap().code,
            Code::Args,
            "{bad}"
        );
    }
}

/// The code a parse failure ends in (a JSON shape error is
/// `CLOUD-RESPONSE`, as `Client::judge` makes it).
fn code(e: ParseError) -> Code {
    match e {
        ParseError::Fatal(e) => e.code,
        ParseError::Json(_) => Code::CloudResponse,
    }
}

fn sync(s: &str) -> std::result::Result<SyncStatus, ParseError> {
    SyncStatus::read(&mut s.as_bytes())
}

fn consumed(s: &str) -> std::result::Result<(ConsumedPage, Vec<LicensedUser>), ParseError> {
    let mut sink = Collect::default();
    let p = ConsumedPage::read(&mut s.as_bytes(), 0, &mut sink, &mut Warnings::default())?;
    Ok((p, sink.users))
}

#[test]
fn sync_status_shapes() {
    for bad in [
        "{}",
        "[]",
        "null",
        r#"{"server_instances": null}"#,
        r#"{"server_instances": {"type": "array", "items": {}}}"#,
        r#"{"properties": {"server_instances": {"type": "array"}}}"#,
    ] {
        assert_eq!(code(sync(bad).err().unwrap()), Code::CloudResponse, "{bad}");
    }
    let s = sync(r#"{"server_instances": [
            {"server_id": "a", "hostname": null, "last_sync": null, "extra": 1},
            {"hostname": "nameless.example"},
            {"server_id": "", "hostname": "empty.example"},
            7,
            {"server_id": "b", "last_sync": {"date": "2026-11-28 10:58:40 UTC", "status": "success", "error": null}},
            {"server_id": "c", "last_sync": {"status": "failed", "error": "bad file"}},
            {"server_id": "a", "last_sync": {"status": "failed"}}
        ], "unknown": true}"#).ok().unwrap();
    let ids: Vec<&str> = s
        .server_instances
        .iter()
        .map(|i| i.server_id.as_str())
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(s.warnings.len(), 4, "{:?}", s.warnings);
    assert!(s.warnings[3].contains("repeats server_id a"));
    assert!(s.warnings[0].contains("nameless.example"));
    assert!(s.server_instances[0].last_sync.is_none());
    let b = s.server_instances[1].last_sync.as_ref().unwrap();
    assert_eq!(b.date.as_deref(), Some("2026-11-28 10:58:40 UTC"));
    assert_eq!(b.error, None);
    assert_eq!(s.server_instances[2].last_sync.as_ref().unwrap().date, None);
}

/// Regression (#28): GitHub's strings cannot drive a terminal.
#[test]
fn text_from_github_is_sanitised() {
    let s = sync(
        r#"{"server_instances": [{"server_id": "a", "hostname": "h\u202eexe.txt",
              "last_sync": {"status": "failed", "error": "\u001b[31mred\nline2\u0007\u009b\u2066"}}]}"#,
    )
    .ok()
    .unwrap();
    let i = &s.server_instances[0];
    assert_eq!(i.hostname.as_deref(), Some("h\\u{202e}exe.txt"));
    assert_eq!(
        i.last_sync.as_ref().unwrap().error.as_deref(),
        Some("\\u{1b}[31mred\\nline2\\u{7}\\u{9b}\\u{2066}")
    );
    assert_eq!(sanitize("plain é 😀"), "plain é 😀");
    assert_eq!(sanitize("tab\there\r"), "tab\\there\\r");
}

#[test]
fn tokens_lose_a_bom_and_line_ends_or_are_refused() {
    for ok in [
        &b"ghp_abc\n"[..],
        b"ghp_abc\r\n",
        b"\xEF\xBB\xBFghp_abc\r\n",
        b"  ghp_abc  \nsecond line",
        b"ghp_abc",
    ] {
        assert_eq!(clean_token(ok, "f").unwrap().as_str(), "ghp_abc", "{ok:?}");
    }
    for (bad, why) in [
        (&b"\xFF\xFEg\0h\0"[..], "UTF-16"),
        (b"ghp abc", "a space or tab"),
        (b"ghp\rabc", "a control character"),
        (b"ghp\xc3\xa9", "non-ASCII"),
        (b"\n\nghp_abc", "empty"),
        (b"\xEF\xBB\xBF", "empty"),
    ] {
        let e = clean_token(bad, "/x/token.txt").err().unwrap();
        assert_eq!(e.code, Code::CloudToken);
        assert!(
            e.cause.contains(why) && e.cause.contains("/x/token.txt"),
            "{}",
            e.cause
        );
        assert!(
            !e.cause.contains("ghp"),
            "the token is never shown: {}",
            e.cause
        );
    }
}

#[test]
fn link_headers_per_rfc_8288() {
    let n = |h: &str| next_link(h);
    assert_eq!(
        n("<https://a/x?page=2>; rel=next").as_deref(),
        Some("https://a/x?page=2")
    );
    assert_eq!(
        n("<https://a/x?page=2>;rel=\"next last\"").as_deref(),
        Some("https://a/x?page=2")
    );
    assert_eq!(
        n("<https://a/x?page=2> ; REL = \"Next\"").as_deref(),
        Some("https://a/x?page=2")
    );
    // Commas inside <…> and inside quoted parameters do not split.
    assert_eq!(
        n(r#"<https://a/x?a=1,2>; title="a, b; rel=next"; rel="prev", <https://a/y?b=3,4>; rel=next"#).as_deref(),
        Some("https://a/y?b=3,4")
    );
    // Only the first rel counts.
    assert_eq!(n("<https://a/x>; rel=prev; rel=next"), None);
    assert_eq!(n("<https://a/x>; rel=\"nextish\""), None);
    // A malformed value does not hide a good one.
    assert_eq!(
        n("garbage; rel=next, <https://a/z>; rel=next").as_deref(),
        Some("https://a/z")
    );
    assert_eq!(n(""), None);
}

#[test]
fn consumed_licenses_shapes() {
    for bad in [
        "{}",
        r#"{"total_seats_consumed": 1, "total_seats_purchased": 2}"#,
        r#"{"total_seats_consumed": 1, "users": []}"#,
        r#"{"total_seats_consumed": "1", "total_seats_purchased": 2, "users": []}"#,
        r#"{"total_seats_consumed": 1, "total_seats_purchased": 2, "users": {}}"#,
        r#"{"total_seats_consumed": 1, "total_seats_purchased": 2, "users": [], "users": []}"#,
        "[]",
    ] {
        assert_eq!(
            code(consumed(bad).err().unwrap()),
            Code::CloudResponse,
            "{bad}"
        );
    }
    let (p, users) = consumed(
        r#"{"users": [{}, 7, {"enterprise_server_user_ids": ["h:1"]}], "total_seats_consumed": 0, "total_seats_purchased": 0}"#,
    )
    .ok()
    .unwrap();
    assert_eq!((p.users, users.len()), (3, 2));
}

#[test]
fn unmatched_users() {
    let u = |s: &str| LicensedUser::from_loose(&serde_json::from_str(s).unwrap()).unwrap();
    assert!(u(r#"{"github_com_login":"","github_com_user":false,"enterprise_server_user":true,"enterprise_server_user_ids":["ghes.example.com:12"],"enterprise_server_emails":["a@corp.example"]}"#).is_unmatched_server_user());
    assert!(!u(
        r#"{"github_com_login":"mona","github_com_user":true,"enterprise_server_user":true}"#
    )
    .is_unmatched_server_user());
    // enterprise_server_user is nullable: the server ids still say so.
    assert!(u(r#"{"github_com_login":null,"github_com_user":null,"enterprise_server_user":null,"enterprise_server_user_ids":["h:1"]}"#).is_unmatched_server_user());
    // A Cloud-only user is no server user.
    assert!(!u(r#"{"github_com_login":"cloudonly","github_com_user":true,"enterprise_server_user":false,"enterprise_server_user_ids":[]}"#).is_unmatched_server_user());
    // Fields of unexpected types do not fail the user.
    let odd = u(
        r#"{"github_com_two_factor_auth":"","enterprise_server_user_ids":["h:2", 5, null],"total_user_accounts":"x"}"#,
    );
    assert_eq!(odd.enterprise_server_user_ids, ["h:2", "5"]);
    assert_eq!(odd.total_user_accounts, None);
}

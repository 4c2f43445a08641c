use super::*;
use airlock::sample::appliance_licence;

fn run(dir: &Path, cmd: &str, input: &[u8]) -> (i32, Vec<u8>, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let st = serve_command(dir, cmd, &mut &input[..], &mut out, &mut err);
    (st, out, String::from_utf8_lossy(&err).into_owned())
}

#[test]
fn ssh_commands_over_the_state_directory() {
    let d = tempfile::tempdir().unwrap();
    let old = appliance_licence("OLD1", Some(10), "2030-01-01T00:00:00Z");
    let new = appliance_licence("NEW2", None, "2031-01-01T00:00:00-08:00");
    std::fs::write(d.path().join(ACTIVE_FILE), &old).unwrap();
    let (st, out, _) = run(d.path(), "ghe-license info --pipe -j", &new);
    assert_eq!(st, 0);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["reference_number"], "NEW2");
    assert_eq!(v["unlimited_seating"], true);
    assert_eq!(
        run(d.path(), "cat /data/user/common/enterprise.ghl", b"").1,
        old
    );
    assert_eq!(run(d.path(), "ghe-license check", b"").0, 0);
    std::fs::write(d.path().join(BUSY), "").unwrap();
    let (st, _, err) = run(d.path(), "ghe-license import --pipe --apply", &new);
    assert_eq!(st, 1);
    assert!(airlock::appliance::says_busy(&err), "{err}");
    std::fs::remove_file(d.path().join(BUSY)).unwrap();
    assert_eq!(
        run(d.path(), "ghe-license import --pipe --apply", b"junk").0,
        1
    );
    assert_eq!(
        run(d.path(), "ghe-license import --pipe --apply", &new).0,
        0
    );
    assert_eq!(std::fs::read(d.path().join(ACTIVE_FILE)).unwrap(), new);
    assert_eq!(
        std::fs::read_to_string(d.path().join(APPLIED_LOG)).unwrap(),
        "NEW2\n"
    );
    assert_eq!(run(d.path(), "rm -rf /", b"").0, 127);
    std::fs::write(d.path().join(CHECK_INVALID), "").unwrap();
    assert_eq!(run(d.path(), "ghe-license check", b"").0, 1);
}

#[test]
fn multipart_fields() {
    let (body, ct) = airlock::appliance::manage::multipart(b"A\r\n--B\r\nZ");
    assert_eq!(
        multipart_field(&ct, &body, "license").unwrap(),
        b"A\r\n--B\r\nZ"
    );
    assert!(multipart_field(&ct, &body, "other").is_none());
    assert!(multipart_field("text/plain", &body, "license").is_none());
}

#[test]
fn only_stand_in_licences_are_read() {
    assert!(read_licence(&airlock::sample::licence("X1")).is_none());
    let l = read_licence(&appliance_licence("X1", Some(3), "2030-01-01T00:00:00Z")).unwrap();
    assert_eq!((l.reference.as_str(), l.seats), ("X1", Some(3)));
    assert!(!l.expired());
    assert!(l.days_left() > 300);
}

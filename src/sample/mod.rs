//! Synthetic GHES license usage files, shaped like the ones GHES 3.15 exports
//! (BRIEF §2), for the demo, the fixtures and the benchmarks. They contain no
//! real data; the same arguments always give the same bytes.

use sha2::{Digest, Sha256};

/// A host name for samples (an `example.com` name, never a real server).
pub const SAMPLE_HOST: &str = "ghes.example.com";
/// A server id for samples: a well-formed version 4 UUID, made up.
pub const SAMPLE_SERVER_ID: &str = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

fn instance(host: &str, server_id: &str) -> String {
    format!(
        concat!(
            "{{\"instance\":{{\"server_id\":\"{}\",\"host_name\":\"{}\",\"version\":\"3.15.2\",",
            "\"http_only\":false,\"license\":\"{}\",",
            "\"public_key\":\"-----BEGIN PUBLIC KEY-----\\nMCowBQYDK2VwAyEAsyntheticsyntheticsyntheticsynthetic00=\\n-----END PUBLIC KEY-----\\n\",",
            "\"features\":[{{\"name\":\"license_usage_sync\",\"enabled_at\":\"2025-01-10T08:00:00Z\"}},",
            "{{\"name\":\"dependabot\",\"enabled_at\":\"2025-02-03T12:30:00Z\"}}]}},"
        ),
        server_id,
        host,
        hex::encode(Sha256::digest(format!("license of {server_id}")))
    )
}

/// Deterministic bytes, base64-encoded, of about `len` characters.
fn blob(len: usize, seed: &str) -> String {
    use base64::Engine;
    let mut raw = Vec::with_capacity(len * 3 / 4 + 32);
    let mut h = Sha256::digest(seed.as_bytes());
    while raw.len() < len * 3 / 4 {
        raw.extend_from_slice(&h);
        h = Sha256::digest(h);
    }
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// An enterprise slug for samples (made up).
pub const SAMPLE_ENTERPRISE: &str = "octo-corp";
/// A licence reference number for samples (made up).
pub const SAMPLE_REFERENCE: &str = "TEST123";
/// Size of a sample licence: about that of a real GHES licence file.
pub const SAMPLE_LICENCE_LEN: usize = 32 * 1024;
/// The first line of every sample licence: it is a stand-in, never a licence.
pub const LICENCE_STANDIN_LABEL: &[u8] =
    b"AIRLOCK TEST STAND-IN: NOT A GHES LICENCE FILE; GHES refuses it.\n";

/// A stand-in for a GHES licence file (`github-enterprise-<reference>.ghl`):
/// [`SAMPLE_LICENCE_LEN`] opaque bytes, labelled as a stand-in on its first
/// line, then bytes derived from `reference` (so two references give two
/// files, and the same reference the same bytes). airlock never parses a
/// licence; the stand-in only has to be opaque binary of a realistic size.
pub fn licence(reference: &str) -> Vec<u8> {
    let mut out = LICENCE_STANDIN_LABEL.to_vec();
    let mut h = Sha256::digest(format!("airlock sample licence {reference}"));
    while out.len() < SAMPLE_LICENCE_LEN {
        out.extend_from_slice(&h);
        h = Sha256::digest(h);
    }
    out.truncate(SAMPLE_LICENCE_LEN);
    out
}

/// The first line of a licence the appliance stand-in reads
/// ([`appliance_licence`]): it is a stand-in, never a GHES licence.
pub const APPLIANCE_LICENCE_LABEL: &[u8] = b"AIRLOCK STAND-IN LICENCE - not a GHES licence\n";

/// A stand-in licence the appliance stand-in (`standin::appliance`) can
/// read, since it has no GHES key to read a real one: the label line, one
/// line of JSON `{"reference_number", "seats" (absent: unlimited),
/// "expire_at"}` as `ghe-license info -j` spells them, then opaque bytes up
/// to [`SAMPLE_LICENCE_LEN`]. airlock itself never parses a licence;
/// `expire_at` is written as given (any RFC 3339 offset).
pub fn appliance_licence(reference: &str, seats: Option<u64>, expire_at: &str) -> Vec<u8> {
    let mut out = APPLIANCE_LICENCE_LABEL.to_vec();
    let info = match seats {
        Some(n) => {
            serde_json::json!({"reference_number": reference, "seats": n, "expire_at": expire_at})
        }
        None => {
            serde_json::json!({"reference_number": reference, "unlimited_seating": true, "expire_at": expire_at})
        }
    };
    out.extend_from_slice(info.to_string().as_bytes());
    out.push(b'\n');
    let mut h = Sha256::digest(format!(
        "airlock stand-in licence {reference} {seats:?} {expire_at}"
    ));
    while out.len() < SAMPLE_LICENCE_LEN {
        out.extend_from_slice(&h);
        h = Sha256::digest(h);
    }
    out.truncate(SAMPLE_LICENCE_LEN);
    out
}

/// A usage file whose user list is encrypted to GitHub (the default form),
/// with a users blob of about `blob_len` characters.
pub fn usage_encrypted(host: &str, server_id: &str, blob_len: usize) -> Vec<u8> {
    let mut s = instance(host, server_id);
    s.push_str("\"users\":\"");
    s.push_str(&blob(blob_len, server_id));
    s.push_str("\"}\n");
    s.into_bytes()
}

/// A usage file with `n` users in clear.
pub fn usage_clear(host: &str, server_id: &str, n: usize) -> Vec<u8> {
    let mut s = instance(host, server_id);
    s.push_str("\"users\":[");
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            "{{\"user_id\":{id},\"login\":\"user{id}\",\"emails\":[{{\"email\":\"user{id}@corp.example\",\"primary\":true}},{{\"email\":\"u{id}@users.example\",\"primary\":false}}],\"advanced_security\":{ghas}}}",
            id = i + 1,
            ghas = i % 3 == 0
        ));
    }
    s.push_str("]}\n");
    s.into_bytes()
}

/// A `license-sync-status` body in the shape of GitHub's published example
/// (github/rest-api-description, `enterprise-admin/get-license-sync-status`),
/// for one instance whose last sync succeeded at `date` (RFC 3339).
pub fn github_sync_status(host: &str, server_id: &str, date: &str) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "server_instances": [{
            "server_id": server_id,
            "hostname": host,
            "last_sync": {"date": date, "status": "success", "error": ""}
        }]
    }))
    .unwrap_or_default()
}

/// A `consumed-licenses` body in the shape of GitHub's published example
/// (`enterprise-admin/get-consumed-licenses`), for users of `host`: one that
/// matches a Cloud account, and one whose GHES primary email matches none
/// (the case that costs a second seat).
pub fn github_consumed_licenses(host: &str) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "total_seats_consumed": 3,
        "total_seats_purchased": 10,
        "users": [
            {
                "github_com_login": "monalisa",
                "github_com_name": "Mona Lisa",
                "enterprise_server_user_ids": [format!("{host}:1")],
                "github_com_user": true,
                "enterprise_server_user": true,
                "visual_studio_subscription_user": false,
                "license_type": "enterprise",
                "github_com_profile": "https://github.com/monalisa",
                "github_com_member_roles": ["octo-org:Owner"],
                "github_com_enterprise_roles": ["owner"],
                "github_com_verified_domain_emails": ["monalisa@corp.example"],
                "github_com_saml_name_id": "monalisa",
                "github_com_orgs_with_pending_invites": [],
                "github_com_two_factor_auth": true,
                "enterprise_server_emails": ["monalisa@corp.example"],
                "visual_studio_license_status": "",
                "visual_studio_subscription_email": "",
                "total_user_accounts": 2
            },
            {
                "github_com_login": "",
                "github_com_name": "",
                "enterprise_server_user_ids": [format!("{host}:2")],
                "github_com_user": false,
                "enterprise_server_user": true,
                "visual_studio_subscription_user": false,
                "license_type": "enterprise",
                "github_com_profile": "",
                "github_com_member_roles": [],
                "github_com_enterprise_role": "",
                "github_com_enterprise_roles": [],
                "github_com_verified_domain_emails": [],
                "github_com_saml_name_id": "",
                "github_com_orgs_with_pending_invites": [],
                "github_com_two_factor_auth": "",
                "enterprise_server_emails": ["hubot@old-domain.example"],
                "visual_studio_license_status": "",
                "visual_studio_subscription_email": "",
                "total_user_accounts": 1
            }
        ]
    }))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::usage::{sniff, Sniff, Users};

    #[test]
    fn samples_are_recognised() {
        match sniff(&usage_encrypted(SAMPLE_HOST, SAMPLE_SERVER_ID, 1000)[..]) {
            Sniff::Usage(u) => assert_eq!(u.users, Users::Encrypted),
            s => panic!("{s:?}"),
        }
        match sniff(&usage_clear(SAMPLE_HOST, SAMPLE_SERVER_ID, 5)[..]) {
            Sniff::Usage(u) => assert_eq!(u.users, Users::Clear { count: 5 }),
            s => panic!("{s:?}"),
        }
    }

    #[test]
    fn licence_stand_ins_are_opaque_labelled_and_deterministic() {
        let l = licence(SAMPLE_REFERENCE);
        assert_eq!(l.len(), SAMPLE_LICENCE_LEN);
        assert!(l.starts_with(LICENCE_STANDIN_LABEL));
        assert_eq!(l, licence(SAMPLE_REFERENCE));
        assert_ne!(l, licence("OTHER1"));
        assert!(matches!(sniff(&l[..]), Sniff::Other));
    }

    #[test]
    fn appliance_licences_are_labelled_and_differ_by_content() {
        let a = appliance_licence("REF1", Some(100), "2027-01-01T00:00:00Z");
        assert_eq!(a.len(), SAMPLE_LICENCE_LEN);
        assert!(a.starts_with(APPLIANCE_LICENCE_LABEL));
        assert_eq!(
            a,
            appliance_licence("REF1", Some(100), "2027-01-01T00:00:00Z")
        );
        assert_ne!(
            a,
            appliance_licence("REF1", Some(101), "2027-01-01T00:00:00Z")
        );
        assert!(matches!(sniff(&a[..]), Sniff::Other));
    }
}

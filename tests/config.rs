//! `airlock.toml` is honoured by every command that takes one of its keys
//! (issue 15): one test per command, each with the keys set in the file
//! only (at the default location, `$XDG_CONFIG_HOME/airlock/airlock.toml`),
//! and the precedence flags > environment > file where a command used to
//! differ. And every key is documented wherever the docs say it is.

mod common;

use std::path::{Path, PathBuf};

use common::http::{Response, Server};
use common::*;

const AGE_RECIPIENT: &str = "age186t64m8enqsxhfgmrw8wr0ef2dykmuzpgzl7trdhrj8jzfvdmuvsqzevjc";
const ID: &str = airlock::sample::SAMPLE_SERVER_ID;

/// The exporter key trusted for the sample host, and the test age identity.
fn world() -> World {
    let w = World::trusting(airlock::sample::SAMPLE_HOST);
    key(w.path(), "age_identity.txt");
    w
}

impl World {
    fn identity(&self) -> PathBuf {
        self.p("age_identity.txt")
    }

    /// airlock with this world's configuration directory and home.
    fn airlock(&self) -> assert_cmd::Command {
        let mut c = airlock();
        c.env("XDG_CONFIG_HOME", self.p("xdg"))
            .env("XDG_STATE_HOME", self.p("default-state"))
            .env("HOME", self.dir.path());
        c
    }

    /// Write the configuration file at its default location.
    fn config(&self, text: &str) {
        std::fs::create_dir_all(self.p("xdg/airlock")).unwrap();
        std::fs::write(self.p("xdg/airlock/airlock.toml"), text).unwrap();
    }

    /// A bundle exported now (no configuration), encrypted to the test age
    /// identity when `encrypted`.
    fn bundle(&self, name: &str, encrypted: bool) -> PathBuf {
        let u = self.p("license-usage.json");
        std::fs::write(
            &u,
            airlock::sample::usage_clear(airlock::sample::SAMPLE_HOST, ID, 4),
        )
        .unwrap();
        let mut extra = vec![
            "--state-dir".to_string(),
            self.p("exporter").display().to_string(),
        ];
        if encrypted {
            extra.extend(["--recipient".to_string(), AGE_RECIPIENT.to_string()]);
        }
        let b = self.p(name);
        airlock()
            .arg("export")
            .arg(&u)
            .arg("--key")
            .arg(&self.key)
            .arg("--out")
            .arg(&b)
            .args(&extra)
            .assert()
            .success();
        b
    }

    fn json(&self, c: &mut assert_cmd::Command) -> (Option<i32>, serde_json::Value) {
        let o = c.arg("--json").output().unwrap();
        let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| {
            panic!(
                "not JSON: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        });
        (o.status.code(), v)
    }

    /// [`World::json`]: `c` exited with `exit`, reporting the error `code`.
    fn refused(&self, c: &mut assert_cmd::Command, exit: i32, code: &str) {
        let (got, v) = self.json(c);
        assert_eq!((got, v["error"]["code"].as_str()), (Some(exit), Some(code)));
    }
}

fn toml_path(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// The issue's case: with `trust` in airlock.toml, `airlock verify BUNDLE`
/// works. revoked, identities and require_signers come from the file too,
/// and the environment and flags still win over it.
#[test]
fn verify_takes_its_keys_from_the_file() {
    let w = world();
    let b = w.bundle("b.zip", true);
    let verify = || {
        let mut c = w.airlock();
        c.arg("verify").arg(&b);
        c
    };
    w.refused(&mut verify(), 2, "AIRLOCK-E-ARGS");

    w.config(&format!("trust = {}\n", toml_path(&w.allowed)));
    let (code, v) = w.json(&mut verify());
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["payload_decrypted"], false);

    w.config(&format!(
        "trust = {}\nidentities = [\"{}\"]\n",
        toml_path(&w.allowed),
        w.identity().file_name().unwrap().to_str().unwrap()
    ));
    // Relative paths are relative to the file: the identity is not there.
    let (code, v) = w.json(&mut verify());
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (Some(3), Some("AIRLOCK-E-IO-READ")),
        "{v}"
    );
    w.config(&format!(
        "trust = {}\nidentities = [{}]\n",
        toml_path(&w.allowed),
        toml_path(&w.identity())
    ));
    let (code, v) = w.json(&mut verify());
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["payload_decrypted"], true);

    let revoked = w.p("revoked_keys");
    std::fs::write(&revoked, read_pub(&w.p("exporter_ed25519.pub")) + "\n").unwrap();
    w.config(&format!(
        "trust = {}\nrevoked = {}\n",
        toml_path(&w.allowed),
        toml_path(&revoked)
    ));
    w.refused(&mut verify(), 6, "AIRLOCK-E-SIG-REVOKED");

    w.config(&format!(
        "trust = {}\nrequire_signers = 2\n",
        toml_path(&w.allowed)
    ));
    w.refused(&mut verify(), 6, "AIRLOCK-E-SIG-THRESHOLD");
    let (code, _) = w.json(verify().args(["--require-signers", "1"]));
    assert_eq!(code, Some(0), "the flag beats the file");

    // The environment beats the file, a flag beats the environment.
    w.config(&format!("trust = {}\n", toml_path(&w.allowed)));
    let other = w.p("other_signers");
    let outsider = common::key(w.dir.path(), "outsider_ed25519");
    std::fs::write(
        &other,
        format!(
            "{} {}\n",
            airlock::sample::SAMPLE_HOST,
            read_pub(&outsider.with_extension("pub"))
        ),
    )
    .unwrap();
    w.refused(
        verify().env("AIRLOCK_TRUST", &other),
        6,
        "AIRLOCK-E-SIG-UNTRUSTED",
    );
    let (code, _) = w.json(
        verify()
            .env("AIRLOCK_TRUST", &other)
            .arg("--trust")
            .arg(&w.allowed),
    );
    assert_eq!(code, Some(0));

    // require_signers out of range in the file is a configuration error.
    w.config(&format!(
        "trust = {}\nrequire_signers = 0\n",
        toml_path(&w.allowed)
    ));
    w.refused(&mut verify(), 2, "AIRLOCK-E-CONFIG-INVALID");
}

#[test]
fn extract_takes_trust_and_identities_from_the_file() {
    let w = world();
    let b = w.bundle("b.zip", true);
    w.config(&format!(
        "trust = {}\nidentities = [{}]\n",
        toml_path(&w.allowed),
        toml_path(&w.identity())
    ));
    let out = w.p("out");
    w.airlock()
        .arg("extract")
        .arg(&b)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    assert_eq!(
        std::fs::read(out.join("license-usage.json")).unwrap(),
        std::fs::read(w.p("license-usage.json")).unwrap()
    );
}

#[test]
fn import_takes_its_keys_from_the_file() {
    let w = world();
    let b = w.bundle("b.zip", true);
    w.config(&format!(
        "trust = {}\nidentities = [{}]\nstate_dir = \"state\"\noutbox = {}\nenterprise = \"octo-from-file\"\nrequire_signers = 2\n",
        toml_path(&w.allowed),
        toml_path(&w.identity()),
        toml_path(&w.p("outbox"))
    ));
    w.refused(
        w.airlock().arg("import").arg(&b),
        6,
        "AIRLOCK-E-SIG-THRESHOLD",
    );
    // state_dir is relative to the file's directory.
    assert!(w.p("xdg/airlock/state/ledger.sqlite").exists());
    let (code, v) = w.json(
        w.airlock()
            .arg("import")
            .arg(&b)
            .args(["--require-signers", "1"]),
    );
    assert_eq!(code, Some(0), "{v}");
    let upload = v["import"]["upload"][0].as_str().unwrap();
    assert!(
        upload.starts_with(w.p("outbox").to_str().unwrap()),
        "{upload}"
    );
    assert_eq!(
        std::fs::read(upload).unwrap(),
        std::fs::read(w.p("license-usage.json")).unwrap(),
        "decrypted with the file's identity"
    );
    let steps = std::fs::read_dir(w.p("outbox"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(".UPLOAD.txt"))
        .unwrap();
    let steps = std::fs::read_to_string(steps.path()).unwrap();
    assert!(steps.contains("/enterprises/octo-from-file/"), "{steps}");
}

#[test]
fn watch_takes_its_keys_from_the_file() {
    let w = world();
    let drop_dir = w.p("drop");
    std::fs::create_dir(&drop_dir).unwrap();
    let b = w.bundle("made.zip", false);
    std::fs::rename(&b, drop_dir.join("b.airlock.zip")).unwrap();
    w.config(&format!(
        "trust = {}\nstate_dir = {}\noutbox = {}\n",
        toml_path(&w.allowed),
        toml_path(&w.p("state")),
        toml_path(&w.p("outbox"))
    ));
    w.airlock()
        .arg("watch")
        .arg(&drop_dir)
        .args(["--once", "--settle", "0s"])
        // Without its trust file the watcher would retry for ever.
        .timeout(std::time::Duration::from_secs(120))
        .assert()
        .success();
    assert!(drop_dir.join("done/b.airlock.zip").exists());
    assert!(w.p("state/ledger.sqlite").exists());
    assert_eq!(listing(&w.p("outbox")).len(), 2);
}

/// export used to ignore the file's state_dir (only the flag and
/// AIRLOCK_STATE_DIR counted).
#[test]
fn export_takes_state_dir_from_the_file() {
    let w = world();
    let u = sample_usage(w.dir.path());
    w.config(&format!("state_dir = {}\n", toml_path(&w.p("from-file"))));
    let export = |out: &str| {
        let mut c = w.airlock();
        c.arg("export")
            .arg(&u)
            .arg("--key")
            .arg(&w.key)
            .arg("--out")
            .arg(w.p(out));
        c
    };
    export("a.zip").assert().success();
    assert!(w.p("from-file/ledger.sqlite").exists());
    assert!(w.p("from-file/sequence").is_dir());
    assert!(!w.p("default-state/airlock").exists(), "not the default");
    // The environment beats the file, a flag beats the environment.
    export("b.zip")
        .env("AIRLOCK_STATE_DIR", w.p("from-env"))
        .assert()
        .success();
    assert!(w.p("from-env/ledger.sqlite").exists());
    export("c.zip")
        .env("AIRLOCK_STATE_DIR", w.p("from-env"))
        .arg("--state-dir")
        .arg(w.p("from-flag"))
        .assert()
        .success();
    assert!(w.p("from-flag/ledger.sqlite").exists());
    // The file's ledger has the first export only.
    let (code, v) = w.json(w.airlock().arg("log"));
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["events"].as_array().unwrap().len(), 2, "{v}");
}

/// A ledger with one imported and handed-over bundle, in `state`.
fn imported(w: &World) -> PathBuf {
    let b = w.bundle("b.zip", false);
    let state = w.p("state");
    w.airlock()
        .arg("import")
        .arg(&b)
        .trust_state(&w.allowed, &state)
        .assert()
        .success();
    state
}

#[test]
fn log_takes_state_dir_from_the_file() {
    let w = world();
    let state = imported(&w);
    let (code, _) = w.json(w.airlock().arg("log"));
    assert_eq!(code, Some(3), "no ledger at the default place");
    w.config(&format!("state_dir = {}\n", toml_path(&state)));
    let (code, v) = w.json(w.airlock().arg("log").arg("--verify"));
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["chain_verified"], true);
    assert_eq!(v["events"][0]["kind"], "import");
}

#[test]
fn fleet_takes_state_dir_from_the_file() {
    let w = world();
    let state = imported(&w);
    w.config(&format!("state_dir = {}\n", toml_path(&state)));
    let (code, v) = w.json(w.airlock().arg("fleet"));
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["instances"][0]["host_name"], airlock::sample::SAMPLE_HOST);
}

#[test]
fn report_takes_state_dir_from_the_file() {
    let w = world();
    let state = imported(&w);
    w.config(&format!("state_dir = {}\n", toml_path(&state)));
    let (code, v) = w.json(w.airlock().arg("report").arg("--html").arg(w.p("r.html")));
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["instances"], 1);
    assert!(std::fs::read_to_string(w.p("r.html"))
        .unwrap()
        .contains(airlock::sample::SAMPLE_HOST));
}

/// cloud: enterprise, api_url, token_file, ca_file-less plain loopback,
/// state_dir, all from the file; GH_TOKEN (environment) beats token_file.
#[test]
fn cloud_takes_its_keys_from_the_file() {
    let w = world();
    let state = imported(&w);
    let body = format!(
        r#"{{"server_instances":[{{"server_id":"{ID}","hostname":"{}","last_sync":{{"date":"2026-01-01T00:00:00Z","status":"failed","error":"x"}}}}]}}"#,
        airlock::sample::SAMPLE_HOST
    );
    let server = Server::start(vec![Response::new(200, &body), Response::new(200, &body)]);
    let token = w.p("github-token");
    std::fs::write(&token, "token-from-file\n").unwrap();
    w.config(&format!(
        "state_dir = {}\nenterprise = \"octo-from-file\"\napi_url = \"{}\"\ntoken_file = {}\n",
        toml_path(&state),
        server.url,
        toml_path(&token)
    ));
    let (code, v) = w.json(w.airlock().args(["cloud", "status"]));
    assert_eq!(code, Some(0), "{v}");
    let reqs = server.requests();
    assert_eq!(
        reqs[0].path,
        "/enterprises/octo-from-file/license-sync-status"
    );
    assert_eq!(reqs[0].headers["authorization"], "Bearer token-from-file");
    let (_, log) = w.json(w.airlock().arg("log"));
    assert!(
        log["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "cloud-sync" && e["outcome"] == "failed"),
        "recorded in the file's state directory: {log}"
    );
    // The environment's token beats the file's token_file.
    let (code, v) = w.json(
        w.airlock()
            .args(["cloud", "status"])
            .env("GH_TOKEN", "token-from-env"),
    );
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(
        server.requests()[1].headers["authorization"],
        "Bearer token-from-env"
    );
    // Both api_url and host in the file: refused before anything is sent.
    w.config(&format!(
        "api_url = \"{}\"\nhost = \"octo.ghe.com\"\nenterprise = \"e\"\n",
        server.url
    ));
    w.refused(
        w.airlock().args(["cloud", "status"]).env("GH_TOKEN", "t"),
        2,
        "AIRLOCK-E-CONFIG-INVALID",
    );
    assert_eq!(server.requests().len(), 2);
}

/// Every key of airlock.toml is listed in docs/import.md's example (with
/// its environment variable), named in docs/operator-guide.md and the man
/// page, and annotated `[env: …; config: …]` in the `--help` of every
/// command that takes it.
#[test]
fn every_key_is_documented_everywhere() {
    let import_md = std::fs::read_to_string(root().join("docs/import.md")).unwrap();
    let guide = std::fs::read_to_string(root().join("docs/operator-guide.md")).unwrap();
    let man = airlock().arg("man").output().unwrap();
    let man = String::from_utf8_lossy(&man.stdout)
        .replace("\\-", "-")
        .replace("\\fB", "")
        .replace("\\fR", "");
    for k in airlock::config::KEYS {
        let line = import_md
            .lines()
            .find(|l| {
                let l = l.trim_start_matches("# ");
                l.starts_with(&format!("{} = ", k.name))
            })
            .unwrap_or_else(|| panic!("docs/import.md does not show `{} = …`", k.name));
        if let Some(env) = k.env {
            assert!(
                line.contains(env),
                "docs/import.md: {} without {env}",
                k.name
            );
        }
        assert!(
            guide.contains(&format!("`{}`", k.name)),
            "docs/operator-guide.md lacks `{}`",
            k.name
        );
        assert!(man.contains(k.name), "the man page lacks {}", k.name);
        for cmd in k.commands {
            let help = airlock()
                .args(cmd.split(' '))
                .arg("--help")
                .output()
                .unwrap();
            let help = String::from_utf8_lossy(&help.stdout)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            assert!(help.contains(k.flag), "{cmd} --help lacks {}", k.flag);
            assert!(
                help.contains(&format!("config: {}]", k.name)),
                "{cmd} --help does not annotate {} with config: {}",
                k.flag,
                k.name
            );
            if let Some(env) = k.env {
                assert!(
                    help.contains(&format!("[env: {env}")),
                    "{cmd} --help: {} without [env: {env}",
                    k.flag
                );
            }
        }
    }
}

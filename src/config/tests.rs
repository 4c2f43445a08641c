use super::*;

fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| {
        vars.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| OsString::from(v))
    }
}

fn layer(state_dir: &str) -> Config {
    Config {
        state_dir: Some(state_dir.into()),
        ..Config::default()
    }
}

#[test]
fn flags_then_environment_then_file() {
    let all = |flags: Config, env: &[(&str, &str)], file: Config| {
        Settings::resolve(
            flags,
            Config::from_env(&env_of(env)),
            file,
            None,
            None,
            false,
        )
        .unwrap()
    };
    let env = [("AIRLOCK_STATE_DIR", "/env")];
    let s = all(layer("/flag"), &env, layer("/file"));
    assert_eq!(s.state_dir().unwrap(), PathBuf::from("/flag"));
    let s = all(Config::default(), &env, layer("/file"));
    assert_eq!(s.state_dir().unwrap(), PathBuf::from("/env"));
    let s = all(Config::default(), &[], layer("/file"));
    assert_eq!(s.state_dir().unwrap(), PathBuf::from("/file"));
    // An empty variable counts as unset.
    let s = all(
        Config::default(),
        &[("AIRLOCK_STATE_DIR", "")],
        layer("/file"),
    );
    assert_eq!(s.state_dir().unwrap(), PathBuf::from("/file"));

    // Identities: the first layer that names any, not a union.
    let file = Config {
        identities: vec!["/file/id".into()],
        require_signers: Some(2),
        ..Config::default()
    };
    let s = all(
        Config::default(),
        &[("AIRLOCK_IDENTITY", "/a:/b")],
        file.clone(),
    );
    assert_eq!(
        s.identities(),
        vec![PathBuf::from("/a"), PathBuf::from("/b")]
    );
    let s = all(Config::default(), &[], file.clone());
    assert_eq!(s.identities(), vec![PathBuf::from("/file/id")]);
    assert_eq!(s.require_signers(), 2);
    assert_eq!(
        all(Config::default(), &[], Config::default()).require_signers(),
        1
    );
    assert_eq!(
        all(Config::default(), &[], Config::default())
            .trust()
            .unwrap_err()
            .code,
        Code::Args
    );
}

#[test]
fn every_key_with_a_variable_is_read_from_it() {
    for k in KEYS {
        let Some(var) = k.env else { continue };
        let value = if var == "GH_HOST" {
            "octo.ghe.com"
        } else {
            "/x"
        };
        let c = Config::from_env(&env_of(&[(var, value)]));
        let text = format!("{c:?}");
        assert!(
            text.contains(&format!("{}: Some(\"{value}\")", k.name))
                || text.contains(&format!("{}: [\"{value}\"]", k.name)),
            "{var} does not set {}: {text}",
            k.name
        );
    }
    // And every key is a key of the file.
    for k in KEYS {
        let v = match k.name {
            "require_signers" => "1".to_string(),
            "identities" => "[\"x\"]".to_string(),
            "http_timeout" | "http_deadline" => "\"30s\"".to_string(),
            "appliance_ssh_port" | "licence_warning_days" | "licence_critical_days" => {
                "1".to_string()
            }
            "licence_auto_apply" => "true".to_string(),
            _ => "\"x\"".to_string(),
        };
        toml::from_str::<Config>(&format!("{} = {v}\n", k.name))
            .unwrap_or_else(|e| panic!("{}: {e}", k.name));
    }
}

#[test]
fn tokens_and_the_api_follow_the_same_precedence() {
    let file = Config {
        token_file: Some("/file/token".into()),
        submit_token_file: Some("/file/submit".into()),
        host: Some("octo.ghe.com".into()),
        ..Config::default()
    };
    let s = |flags: Config, env: &[(&str, &str)]| {
        Settings::load_layers(flags, &env_of(env), file.clone(), None).unwrap()
    };
    let file_only = s(Config::default(), &[]);
    assert_eq!(
        file_only.github_token(),
        Some(TokenSource::File("/file/token".into()))
    );
    assert_eq!(
        file_only.submit_token(),
        Some(TokenSource::File("/file/submit".into()))
    );
    assert_eq!(file_only.api_url().unwrap(), "https://api.octo.ghe.com");
    let env = s(
        Config::default(),
        &[
            ("GH_TOKEN", " "),
            ("GITHUB_TOKEN", "t"),
            ("AIRLOCK_SUBMIT_TOKEN", "t"),
            ("GH_HOST", "github.com"),
        ],
    );
    assert_eq!(env.github_token(), Some(TokenSource::Env("GITHUB_TOKEN")));
    assert_eq!(
        env.submit_token(),
        Some(TokenSource::Env("AIRLOCK_SUBMIT_TOKEN"))
    );
    assert_eq!(env.api_url().unwrap(), "https://api.github.com");
    let flags = Config {
        token_file: Some("/flag/token".into()),
        submit_token_file: Some("/flag/submit".into()),
        api_url: Some("http://127.0.0.1:1".into()),
        ..Config::default()
    };
    let flag = s(flags, &[("GH_TOKEN", "t"), ("GH_HOST", "github.com")]);
    assert_eq!(
        flag.github_token(),
        Some(TokenSource::File("/flag/token".into()))
    );
    assert_eq!(
        flag.submit_token(),
        Some(TokenSource::File("/flag/submit".into()))
    );
    assert_eq!(flag.api_url().unwrap(), "http://127.0.0.1:1");
    // A GHES host in GH_HOST (set for gh) is a clear usage error.
    let e = s(Config::default(), &[("GH_HOST", "ghes.corp.example")])
        .api_url()
        .unwrap_err();
    assert_eq!(e.code, Code::Args);
    assert!(e.cause.starts_with("GH_HOST: "), "{}", e.cause);
    assert!(e.hint().contains("unset GH_HOST"));
}

#[test]
fn http_timing_has_defaults_and_refuses_zero_or_nonsense() {
    let t = |file: &str| {
        toml::from_str::<Config>(file).map(|c| {
            Settings::resolve(Config::default(), Config::default(), c, None, None, false)
                .unwrap()
                .http_timing()
        })
    };
    assert_eq!(
        t("").unwrap(),
        crate::connected::handover::HttpTiming::default()
    );
    let got = t("http_timeout = \"2s\"\nhttp_deadline = \"1min 30s\"\n").unwrap();
    assert_eq!(
        (got.timeout, got.deadline),
        (Duration::from_secs(2), Duration::from_secs(90))
    );
    for bad in [
        "http_timeout = \"0s\"",
        "http_deadline = \"soon\"",
        "http_timeout = 30",
    ] {
        assert!(t(bad).is_err(), "{bad}");
    }
    // A flag wins over the file.
    let s = Settings::resolve(
        Config {
            http_timeout: Some(Duration::from_secs(5)),
            ..Config::default()
        },
        Config::default(),
        toml::from_str("http_timeout = \"9s\"").unwrap(),
        None,
        None,
        false,
    )
    .unwrap();
    assert_eq!(s.http_timing().timeout, Duration::from_secs(5));
}

#[test]
fn file_values_that_cannot_work_are_refused() {
    for bad in [
        Config {
            require_signers: Some(0),
            ..Config::default()
        },
        Config {
            require_signers: Some(17),
            ..Config::default()
        },
        Config {
            api_url: Some("https://x".into()),
            host: Some("github.com".into()),
            ..Config::default()
        },
    ] {
        let e = Settings::resolve(Config::default(), Config::default(), bad, None, None, false)
            .unwrap_err();
        assert_eq!(e.code, Code::ConfigInvalid);
    }
}

#[test]
fn loads_and_resolves_relative_paths() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("airlock.toml");
    std::fs::write(&p, "trust = \"allowed_signers\"\nidentities = [\"/abs/id.txt\", \"id2.txt\"]\nenterprise = \"octo\"\n").unwrap();
    let (c, used) = Config::load_with(Some(&p), &|_| None).unwrap();
    assert_eq!(used.unwrap(), p);
    assert_eq!(c.trust.unwrap(), d.path().join("allowed_signers"));
    assert_eq!(c.identities[0], PathBuf::from("/abs/id.txt"));
    assert_eq!(c.identities[1], d.path().join("id2.txt"));
    std::fs::write(&p, "trusst = \"x\"\n").unwrap();
    assert_eq!(
        Config::load_with(Some(&p), &|_| None).err().unwrap().code,
        Code::ConfigInvalid
    );
    assert_eq!(
        Config::load_with(Some(&d.path().join("missing.toml")), &|_| None)
            .err()
            .unwrap()
            .code,
        Code::IoRead
    );
}

/// Regression (issue 28, first day 2): a typo showed "TOML parse error
/// at line 5, column 1" and nothing else without `-v`.
#[test]
fn a_typo_names_the_key_the_line_and_the_keys_allowed() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("airlock.toml");
    std::fs::write(&p, "# comment\ntrust = \"t\"\n\n\nenterprize = \"octo\"\n").unwrap();
    let e = Config::load_with(Some(&p), &|_| None).err().unwrap();
    assert_eq!(e.code, Code::ConfigInvalid);
    assert!(
        e.cause.contains("line 5 (enterprize = \"octo\")"),
        "{}",
        e.cause
    );
    assert!(
        e.cause.contains("unknown field `enterprize`"),
        "{}",
        e.cause
    );
    assert!(
        e.cause.contains("`enterprise`") && e.cause.contains("`trust`"),
        "{}",
        e.cause
    );
    let hint = e.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("did you mean `enterprise`?") && hint.contains("line 5"),
        "{hint}"
    );
    std::fs::write(&p, "trust = \"t\"\nrequire_signers = \"two\"\n").unwrap();
    let e = Config::load_with(Some(&p), &|_| None).err().unwrap();
    assert!(
        e.cause.contains("line 2 (require_signers = \"two\")"),
        "{}",
        e.cause
    );
    assert!(e.hint.unwrap_or_default().contains("fix line 2"));
}

/// The example the packages install (packaging/airlock.toml) is a valid
/// configuration as it stands, and, with every commented-out setting
/// enabled, still loads and names every key the format knows (the list
/// of keys comes from serde's own refusal of an unknown one, so a key
/// added to `Config` without an example line fails here).
#[test]
fn the_packaged_example_loads_and_names_every_key() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/airlock.toml");
    let (c, _) = Config::load_with(Some(&p), &|_| None).unwrap();
    assert_eq!(
        c.trust.unwrap(),
        PathBuf::from("/etc/airlock/allowed_signers")
    );
    assert_eq!(c.state_dir.unwrap(), PathBuf::from("/var/lib/airlock"));
    assert_eq!(
        c.outbox.unwrap(),
        PathBuf::from("/var/spool/airlock/outbox")
    );
    assert_eq!(c.enterprise.as_deref(), Some("octo-corp"));

    let text = std::fs::read_to_string(&p).unwrap();
    let mut all = String::new();
    let mut named = Vec::new();
    for line in text.lines() {
        let l = line.strip_prefix("# ").unwrap_or(line);
        if let Some((k, _)) = l.split_once(" = ").filter(|(k, _)| !k.contains(' ')) {
            all.push_str(l);
            all.push('\n');
            named.push(k.to_string());
        }
    }
    let d = tempfile::tempdir().unwrap();
    let q = d.path().join("airlock.toml");
    std::fs::write(&q, &all).unwrap();
    let (c, _) = Config::load_with(Some(&q), &|_| None).unwrap();
    assert_eq!(c.identities, [PathBuf::from("/etc/airlock/identity.txt")]);
    assert_eq!(c.require_signers, Some(2));
    assert!(c.submit_url.is_some() && c.submit_token_file.is_some());
    assert!(c.api_url.is_some() && c.host.is_some() && c.token_file.is_some());
    assert!(c.ca_file.is_some());
    assert_eq!(c.http_timeout, Some(Duration::from_secs(30)));
    assert_eq!(c.http_deadline, Some(Duration::from_secs(300)));

    let err = toml::from_str::<Config>("no_such_key = 1\n")
        .unwrap_err()
        .to_string();
    let expected = err
        .split_once("expected one of ")
        .unwrap_or_else(|| panic!("no list of keys in: {err}"))
        .1
        .lines()
        .next()
        .unwrap_or_default();
    let mut keys: Vec<String> = expected
        .split(", ")
        .map(|k| k.trim().trim_matches('`').to_string())
        .filter(|k| !k.is_empty())
        .collect();
    keys.sort();
    named.sort();
    named.dedup();
    assert!(keys.iter().any(|k| k == "trust") && keys.len() > 1, "{err}");
    assert_eq!(named, keys, "keys in packaging/airlock.toml vs Config");
}

#[test]
fn a_flags_help_names_the_variable_and_key_of_the_table() {
    assert_eq!(
        flag_help("trust", "Who may sign"),
        "Who may sign [env: AIRLOCK_TRUST; config: trust]"
    );
    assert_eq!(
        flag_help("token_file", "File holding the GitHub token"),
        "File holding the GitHub token [env: GH_TOKEN or GITHUB_TOKEN, the token itself; config: token_file]"
    );
    assert_eq!(
        flag_help("appliance_ssh_port", "Port"),
        "Port [config: appliance_ssh_port]"
    );
    assert_eq!(flag_help("no_such_key", "Lead"), "Lead");
}

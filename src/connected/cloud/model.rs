//! What the Cloud API answers, as types: sync status, licensed users, seat counts, and the warnings met reading them.

use super::*;

fn text(v: Option<&Loose>) -> Option<String> {
    v?.text()
}

fn flag(v: Option<&Loose>) -> Option<bool> {
    match v? {
        Loose::Flag(b) => Some(*b),
        _ => None,
    }
}

fn texts(v: Option<&Loose>) -> Vec<String> {
    match v {
        Some(Loose::Texts(t)) => t.clone(),
        _ => Vec::new(),
    }
}

/// Warnings about items skipped, at most [`MAX_WARNINGS`] kept (a page of a
/// million bad items must not become a million lines in memory); the rest
/// are counted.
#[derive(Debug, Clone, Default)]
pub struct Warnings {
    pub(super) kept: Vec<String>,
    pub(super) more: u64,
}

/// Warnings kept word for word; beyond them only a count.
const MAX_WARNINGS: usize = 100;

impl Warnings {
    pub(super) fn push(&mut self, w: String) {
        if self.kept.len() < MAX_WARNINGS {
            self.kept.push(w);
        } else {
            self.more += 1;
        }
    }

    /// The warnings, with one line for those not kept.
    pub fn lines(&self) -> Vec<String> {
        let mut v = self.kept.clone();
        if self.more > 0 {
            v.push(format!("… and {} more item(s) skipped likewise", self.more));
        }
        v
    }
}

/// One server instance's last sync, as GitHub reports it.
#[derive(Debug, Clone, Serialize)]
pub struct ServerInstance {
    /// The GHES server id (the usage file's `instance.server_id`), never
    /// blank.
    pub server_id: String,
    /// The host name GitHub has for the server; `None` when absent or empty.
    pub hostname: Option<String>,
    /// The last upload; `None` when GitHub reports none.
    pub last_sync: Option<LastSync>,
}

/// The last usage upload of a server, as GitHub reports it. Each field is
/// `None` when absent or empty.
#[derive(Debug, Clone, Serialize)]
pub struct LastSync {
    /// When, as GitHub wrote it (RFC 3339 or Ruby's `… UTC` form).
    pub date: Option<String>,
    /// GitHub's word for the outcome (`success`, …).
    pub status: Option<String>,
    /// GitHub's error message for a failed upload.
    pub error: Option<String>,
}

/// `license-sync-status`, read leniently: items without a `server_id` are
/// skipped (and named in `warnings`), unknown fields and nulls are fine.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncStatus {
    /// The usable items, in response order, server ids unique.
    pub server_instances: Vec<ServerInstance>,
    /// One line per item skipped, naming it and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

pub(super) fn shape_error(endpoint: &str, what: &str) -> Error {
    Error::new(
        Code::CloudResponse,
        format!("{endpoint}: {what}, so nothing can be concluded from it"),
    )
}

/// Server instances kept from `license-sync-status` at most: far more than
/// any enterprise has, few enough to hold.
const MAX_INSTANCES: usize = 100_000;

impl SyncStatus {
    /// Read a response body, one item at a time. The one key the endpoint
    /// always returns, `server_instances` (an array), must be there.
    pub(super) fn read(r: &mut dyn std::io::Read) -> std::result::Result<SyncStatus, ParseError> {
        const EP: &str = "license-sync-status";
        let mut out = SyncStatus::default();
        let mut seen = std::collections::HashSet::new();
        let mut warnings = Warnings::default();
        let mut each = |i: u64, item: Loose| -> std::result::Result<(), String> {
            if out.server_instances.len() >= MAX_INSTANCES {
                return Err(format!("more than {MAX_INSTANCES} server instances"));
            }
            out.add(i, &item, &mut seen, &mut warnings);
            Ok(())
        };
        let page = body::Page {
            list: "server_instances",
            scalars: &[],
            each: &mut each,
        };
        let read = body::parse(r, page).map_err(ParseError::Json)?;
        if read.items.is_none() {
            return Err(ParseError::Fatal(shape_error(
                EP,
                "the response has no \"server_instances\" array",
            )));
        }
        out.warnings = warnings.lines();
        Ok(out)
    }

    /// Add item `i` if usable, else say why not in `warnings`.
    fn add(
        &mut self,
        i: u64,
        item: &Loose,
        seen: &mut std::collections::HashSet<String>,
        warnings: &mut Warnings,
    ) {
        const EP: &str = "license-sync-status";
        if !matches!(item, Loose::Object(_)) {
            warnings.push(format!("{EP}: item {i} is not an object; skipped"));
            return;
        }
        let Some(id) = text(item.get("server_id")).filter(|s| !s.trim().is_empty()) else {
            warnings.push(format!(
                "{EP}: item {i} ({}) has no server_id; skipped",
                text(item.get("hostname")).unwrap_or_else(|| "no hostname".into())
            ));
            return;
        };
        if !seen.insert(id.clone()) {
            warnings.push(format!(
                "{EP}: item {i} repeats server_id {id}; only the first is used"
            ));
            return;
        }
        let last_sync = match item.get("last_sync") {
            Some(l @ Loose::Object(_)) => Some(LastSync {
                date: text(l.get("date")).filter(|s| !s.is_empty()),
                status: text(l.get("status")).filter(|s| !s.is_empty()),
                error: text(l.get("error")).filter(|s| !s.is_empty()),
            }),
            _ => None,
        };
        self.server_instances.push(ServerInstance {
            server_id: id,
            hostname: text(item.get("hostname")).filter(|s| !s.is_empty()),
            last_sync,
        });
    }
}

/// A user in `consumed-licenses`, read leniently (the schema declares no
/// required fields, several are nullable, and the official example has
/// fields of other types than the schema says).
#[derive(Debug, Clone, Default, Serialize)]
pub struct LicensedUser {
    /// The user's login on GitHub Enterprise Cloud, if matched to one.
    pub github_com_login: Option<String>,
    /// Whether the user has a Cloud account (`None`: absent, null or not a boolean).
    pub github_com_user: Option<bool>,
    /// Whether the user has a server account (`None`: absent, null or not a boolean).
    pub enterprise_server_user: Option<bool>,
    /// The server accounts, each `HOSTNAME:USER_ID`.
    pub enterprise_server_user_ids: Vec<String>,
    /// The emails of the server accounts (GHES primary emails).
    pub enterprise_server_emails: Vec<String>,
    /// The kind of license the user consumes (`enterprise`, …); `None`
    /// when absent or empty.
    pub license_type: Option<String>,
    /// How many accounts (Cloud and server) GitHub counts for the user.
    pub total_user_accounts: Option<u64>,
}

impl LicensedUser {
    /// Read one item of `users`; `None` if it is not a JSON object.
    pub(super) fn from_loose(v: &Loose) -> Option<LicensedUser> {
        if !matches!(v, Loose::Object(_)) {
            return None;
        }
        Some(LicensedUser {
            github_com_login: text(v.get("github_com_login")),
            github_com_user: flag(v.get("github_com_user")),
            enterprise_server_user: flag(v.get("enterprise_server_user")),
            enterprise_server_user_ids: texts(v.get("enterprise_server_user_ids")),
            enterprise_server_emails: texts(v.get("enterprise_server_emails")),
            license_type: text(v.get("license_type")).filter(|s| !s.is_empty()),
            total_user_accounts: match v.get("total_user_accounts") {
                Some(Loose::Count(n)) => Some(*n),
                _ => None,
            },
        })
    }

    /// Holds a server account: flagged so, or listed with server user ids
    /// (`enterprise_server_user` is nullable).
    fn is_server_user(&self) -> bool {
        self.enterprise_server_user == Some(true) || !self.enterprise_server_user_ids.is_empty()
    }

    /// Holds a Cloud account.
    fn is_cloud_user(&self) -> bool {
        self.github_com_user == Some(true)
            || self
                .github_com_login
                .as_deref()
                .is_some_and(|l| !l.trim().is_empty())
    }

    /// A server account that matched no Cloud account: it consumes a seat of
    /// its own (the primary-email mismatch).
    pub fn is_unmatched_server_user(&self) -> bool {
        self.is_server_user() && !self.is_cloud_user()
    }
}

/// `consumed-licenses`, every page read into memory: the seat counts of
/// the first page and the users of all pages. For small answers (the demo,
/// tests); `cloud seats` streams with [`Client::consumed_licenses_into`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConsumedLicenses {
    /// Seats in use, as GitHub counts them.
    pub total_seats_consumed: u64,
    /// Seats the enterprise bought.
    pub total_seats_purchased: u64,
    /// The users that hold a license, in response order.
    pub users: Vec<LicensedUser>,
    /// One line per item skipped, naming it and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Where the users of `consumed-licenses` go as they are read, page by
/// page. A page may be read again (a retry): what it gave since the last
/// [`UserSink::commit`] is then taken back with [`UserSink::rollback`].
pub trait UserSink {
    /// One user, in response order.
    fn user(&mut self, u: LicensedUser) -> Result<()>;
    /// The users given so far are final.
    fn commit(&mut self) -> Result<()>;
    /// Forget the users given since the last commit.
    fn rollback(&mut self) -> Result<()>;
}

/// The users kept in memory, for [`Client::consumed_licenses`].
#[derive(Default)]
pub(super) struct Collect {
    pub(super) users: Vec<LicensedUser>,
    pub(super) committed: usize,
}

impl UserSink for Collect {
    fn user(&mut self, u: LicensedUser) -> Result<()> {
        self.users.push(u);
        Ok(())
    }
    fn commit(&mut self) -> Result<()> {
        self.committed = self.users.len();
        Ok(())
    }
    fn rollback(&mut self) -> Result<()> {
        self.users.truncate(self.committed);
        Ok(())
    }
}

/// What `consumed-licenses` says besides its users: the seat counts (from
/// the first page), how many users were listed, and the items skipped.
#[derive(Debug, Clone, Default)]
pub struct SeatCounts {
    /// Seats in use, as GitHub counts them.
    pub total_seats_consumed: u64,
    /// Seats the enterprise bought.
    pub total_seats_purchased: u64,
    /// Users listed over all pages.
    pub users: u64,
    /// Items skipped, each named.
    pub warnings: Warnings,
}

/// One page of `consumed-licenses` read: its counts and how many users it
/// listed; the users went to the sink.
pub(super) struct ConsumedPage {
    pub(super) consumed: u64,
    pub(super) purchased: u64,
    pub(super) users: u64,
}

impl ConsumedPage {
    /// Read a page from `r`, handing each user (numbered from `first`) to
    /// `sink`. The keys the endpoint always returns (`total_seats_consumed`,
    /// `total_seats_purchased`, `users`) must be there with their types.
    pub(super) fn read(
        r: &mut dyn std::io::Read,
        first: u64,
        sink: &mut dyn UserSink,
        warnings: &mut Warnings,
    ) -> std::result::Result<ConsumedPage, ParseError> {
        const EP: &str = "consumed-licenses";
        let mut failed = None;
        let mut each = |i: u64, item: Loose| -> std::result::Result<(), String> {
            match LicensedUser::from_loose(&item) {
                Some(u) => sink.user(u).map_err(|e| {
                    let m = e.to_string();
                    failed = Some(e);
                    m
                }),
                None => {
                    warnings.push(format!(
                        "{EP}: user {} is not an object; skipped",
                        first + i
                    ));
                    Ok(())
                }
            }
        };
        let page = body::Page {
            list: "users",
            scalars: &["total_seats_consumed", "total_seats_purchased"],
            each: &mut each,
        };
        let read = match body::parse(r, page) {
            Ok(p) => p,
            Err(e) => return Err(failed.map_or(ParseError::Json(e), ParseError::Fatal)),
        };
        let count = |k: &str| -> std::result::Result<u64, ParseError> {
            match read.scalars.iter().find(|(have, _)| have == k) {
                Some((_, Loose::Count(n))) => Ok(*n),
                Some(_) => Err(ParseError::Fatal(shape_error(
                    EP,
                    &format!("\"{k}\" is not a count"),
                ))),
                None => Err(ParseError::Fatal(shape_error(
                    EP,
                    &format!("the response has no \"{k}\""),
                ))),
            }
        };
        let consumed = count("total_seats_consumed")?;
        let purchased = count("total_seats_purchased")?;
        let users = read.items.ok_or_else(|| {
            ParseError::Fatal(shape_error(EP, "the response has no \"users\" array"))
        })?;
        Ok(ConsumedPage {
            consumed,
            purchased,
            users,
        })
    }
}

//! Consortium policy as typed values: the harmonised definition of long-term migration, the
//! disclosure-control method, and the reconciliation rule. Config parsing produces these; the
//! aggregate, dataset and reconcile modules consume them. The consortium's members and
//! their signing keys live here too: `config` reads them from TOML. No I/O.

use super::measurement::{Estimates, Measurement};
use crate::domain::model::{Country, Cube};

/// What counts as long-term migration (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Definition {
    /// Events with a known duration below this many months are not counted in `flows`.
    pub min_duration_months: u32,
    pub unknown_duration: UnknownDuration,
}

impl Default for Definition {
    /// The UN definition: 12 months; unknown durations counted.
    fn default() -> Definition {
        Definition {
            min_duration_months: 12,
            unknown_duration: UnknownDuration::Count,
        }
    }
}

impl Definition {
    /// Whether an immigration or emigration event of this duration counts in `flows`.
    pub fn counts(&self, duration_months: Option<u32>) -> bool {
        match duration_months {
            Some(d) => d >= self.min_duration_months,
            None => self.unknown_duration == UnknownDuration::Count,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownDuration {
    Count,
    Exclude,
}

impl UnknownDuration {
    pub fn as_str(self) -> &'static str {
        match self {
            UnknownDuration::Count => "count",
            UnknownDuration::Exclude => "exclude",
        }
    }

    pub fn parse(text: &str) -> Option<UnknownDuration> {
        match text {
            "count" => Some(UnknownDuration::Count),
            "exclude" => Some(UnknownDuration::Exclude),
            _ => None,
        }
    }
}

/// Disclosure control applied before anything leaves the node (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Disclosure {
    /// Cells with 0 < count < k are published as confidential (flag `C`).
    Threshold { k: u32 },
    /// The ABS/ONS cell-key method; see `aggregate::disclosure::PerturbationTable`.
    CellKey {
        max_noise: u32,
        variance: f64,
        small_count: u32,
    },
    /// No protection: allowed only on a consortium marked `test_only`.
    None,
}

impl Default for Disclosure {
    fn default() -> Disclosure {
        Disclosure::Threshold { k: 5 }
    }
}

impl Disclosure {
    pub fn method(&self) -> &'static str {
        match self {
            Disclosure::Threshold { .. } => "threshold",
            Disclosure::CellKey { .. } => "cell-key",
            Disclosure::None => "none",
        }
    }
}

/// How the common view turns two mirror reports into one figure (SPEC §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rule {
    /// Prefer the receiving country's figure, fall back to the sender's.
    #[default]
    Receiving,
    /// Prefer the sending country's figure, fall back to the receiver's.
    Sending,
    /// The larger of the two published figures.
    Max,
    /// The mean of the two published figures (rounded half up), or the one that exists.
    Mean,
}

impl Rule {
    pub const ALL: [Rule; 4] = [Rule::Receiving, Rule::Sending, Rule::Max, Rule::Mean];

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Receiving => "receiving",
            Rule::Sending => "sending",
            Rule::Max => "max",
            Rule::Mean => "mean",
        }
    }

    pub fn parse(text: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// Reconciliation settings from `[reconcile]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reconcile {
    pub rule: Rule,
    /// Rows whose |asymmetry| exceeds this are flagged.
    pub asymmetry_flag: f64,
}

impl Default for Reconcile {
    fn default() -> Reconcile {
        Reconcile {
            rule: Rule::Receiving,
            asymmetry_flag: 0.2,
        }
    }
}

/// One signing key of a member, valid from `valid_from` (inclusive) until `valid_until`
/// (exclusive), Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub public_key: [u8; 32],
    pub valid_from: i64,
    pub valid_until: Option<i64>,
    /// A retired key names the last seq it signed (SPEC §11): an entry of a later seq under it
    /// is refused whatever its `created_at` says, so a leaked key cannot sign into the past.
    pub retired_after_seq: Option<u64>,
}

impl SigningKey {
    /// Whether the key was valid at `time` (Unix seconds).
    pub fn valid_at(&self, time: i64) -> bool {
        time >= self.valid_from && self.valid_until.is_none_or(|u| time < u)
    }

    /// Whether the key may sign the entry `seq` of its member's feed.
    pub fn signs_seq(&self, seq: u64) -> bool {
        self.retired_after_seq.is_none_or(|last| seq <= last)
    }
}

/// A consortium member and its signing keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub country: Country,
    pub keys: Vec<SigningKey>,
    /// `[members.measurement]` (SPEC §15).
    pub measurement: Measurement,
}

/// How many of a version's members must approve the next version (SPEC §11 `[governance]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Quorum {
    /// More than half.
    Majority,
    /// At least two thirds (rounded up).
    #[default]
    TwoThirds,
    /// Every member.
    All,
}

impl Quorum {
    pub const ALL: [Quorum; 3] = [Quorum::Majority, Quorum::TwoThirds, Quorum::All];

    pub fn as_str(self) -> &'static str {
        match self {
            Quorum::Majority => "majority",
            Quorum::TwoThirds => "two-thirds",
            Quorum::All => "all",
        }
    }

    pub fn parse(text: &str) -> Option<Quorum> {
        Quorum::ALL.into_iter().find(|q| q.as_str() == text)
    }

    /// Approvals needed among `members` members. Always more than half, so two documents
    /// can never both reach it for one version unless a member approves both.
    pub fn needed(self, members: usize) -> usize {
        match self {
            Quorum::Majority => members / 2 + 1,
            Quorum::TwoThirds => (2 * members).div_ceil(3).max(members / 2 + 1),
            Quorum::All => members,
        }
    }
}

/// Who receives a publisher's payloads when it names no narrower audience (SPEC §11 `[sharing]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SharingDefault {
    /// Every member (the behaviour before agreements).
    #[default]
    All,
    /// Only the parties of the agreements in force that include the publisher and cover the cube.
    Agreements,
}

impl SharingDefault {
    pub fn as_str(self) -> &'static str {
        match self {
            SharingDefault::All => "all",
            SharingDefault::Agreements => "agreements",
        }
    }

    pub fn parse(text: &str) -> Option<SharingDefault> {
        [SharingDefault::All, SharingDefault::Agreements]
            .into_iter()
            .find(|d| d.as_str() == text)
    }
}

/// A sharing agreement (bilateral, regional): its parties see each other's payloads of `cubes`
/// for entries created from `from` (inclusive) until `until` (exclusive), Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    pub name: String,
    /// Sorted, unique, at least two.
    pub parties: Vec<Country>,
    pub cubes: Vec<Cube>,
    pub from: i64,
    pub until: i64,
}

impl Agreement {
    /// Whether it lets `member` receive `publisher`'s `cube` for an entry created at `time`.
    pub fn shares(&self, publisher: Country, member: Country, cube: Cube, time: i64) -> bool {
        self.from <= time
            && time < self.until
            && self.cubes.contains(&cube)
            && self.parties.contains(&publisher)
            && self.parties.contains(&member)
    }
}

/// A validated `consortium.toml`: identical at every member.
#[derive(Debug, Clone, PartialEq)]
pub struct Consortium {
    pub name: String,
    pub test_only: bool,
    pub definition: Definition,
    pub disclosure: Disclosure,
    pub reconcile: Reconcile,
    /// Approvals a next version needs (`[governance] quorum`).
    pub quorum: Quorum,
    /// `[sharing] default`.
    pub sharing: SharingDefault,
    pub agreements: Vec<Agreement>,
    /// `[[forks]]`: for a publisher found equivocating, the branch the consortium keeps (SPEC
    /// §12); the other branch stays out of every view, and nodes holding it switch.
    pub forks: Vec<BranchKept>,
    /// `[estimates]` (SPEC §15).
    pub estimates: Estimates,
    pub members: Vec<Member>,
}

/// The branch of an equivocating publisher's feed the consortium keeps: from `seq` on, the
/// feed is the chain whose entry at `seq` has the header digest `keep`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BranchKept {
    pub publisher: Country,
    pub seq: u64,
    pub keep: [u8; 32],
}

impl Consortium {
    pub fn member(&self, code: Country) -> Option<&Member> {
        self.members.iter().find(|m| m.country == code)
    }

    /// The branch kept for `publisher`'s fork at `seq`, if the document names one.
    pub fn branch_kept(&self, publisher: Country, seq: u64) -> Option<[u8; 32]> {
        self.forks
            .iter()
            .find(|f| f.publisher == publisher && f.seq == seq)
            .map(|f| f.keep)
    }

    /// Whether the sharing rules let `member` receive the payload of `publisher`'s `cube` in an
    /// entry created at `time` (the entry's own audience is checked apart). A publisher always
    /// receives its own.
    pub fn shares(&self, publisher: Country, member: Country, cube: Cube, time: i64) -> bool {
        publisher == member
            || self.sharing == SharingDefault::All
            || self.agreements.iter().any(|a| a.shares(publisher, member, cube, time))
    }

    /// Under `default = "agreements"`, the members `publisher` may send `cube` to at `time`,
    /// itself excluded; `None` under `default = "all"` (every member).
    pub fn sharing_audience(&self, publisher: Country, cube: Cube, time: i64) -> Option<Vec<Country>> {
        if self.sharing == SharingDefault::All {
            return None;
        }
        let mut parties: Vec<Country> = self
            .agreements
            .iter()
            .filter(|a| a.shares(publisher, publisher, cube, time))
            .flat_map(|a| a.parties.iter().copied())
            .filter(|p| *p != publisher)
            .collect();
        parties.sort();
        parties.dedup();
        Some(parties)
    }
}

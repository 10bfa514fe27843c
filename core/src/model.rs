//! The domain model of PRODUCT.md: register, campaigns, field records and work orders.
//!
//! These types are what the documents hold (through autosurgeon's `Hydrate`/`Reconcile`) and what
//! the rules, the roll and the tally reason about. Areas are integers in 0.01 m², times are
//! milliseconds since the Unix epoch, record ids are client-made UUIDv7 strings.

use std::collections::BTreeMap;

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch (UTC). Phones stamp records with their own clock.
pub type Millis = i64;

/// A fresh client-made record id (UUIDv7: time-ordered, unique across offline phones).
pub fn new_record_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The current time in milliseconds since the Unix epoch.
pub fn now_millis() -> Millis {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// The voter key that all of the developer's unsold or undelivered units share (SPC art 9 (b)).
pub const DEVELOPER_VOTER_KEY: &str = "DEVELOPER";

// ---------------------------------------------------------------------------------------------
// Register (不动产登记): property area, buildings, entrances, units, ownerships, households.
// ---------------------------------------------------------------------------------------------

/// Which record an exclusive area comes from (登记 > 实测 > 合同), kept with the area.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    Hydrate,
    Reconcile,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
pub enum AreaSource {
    /// 不动产登记簿: the registered area, preferred.
    Registered,
    /// 实测面积: surveyed area, when nothing is registered.
    Surveyed,
    /// 合同面积: contract area, the last resort.
    Contract,
}

/// Whether a unit was sold; unsold or undelivered units all belong to the developer's voter key.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    Hydrate,
    Reconcile,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
pub enum SaleStatus {
    Sold,
    DeveloperUnsold,
    DeveloperUndelivered,
}

impl SaleStatus {
    /// True when the unit still counts under the developer's single voter key.
    pub fn is_developer(self) -> bool {
        !matches!(self, SaleStatus::Sold)
    }
}

/// An exclusive unit (专有部分) as the register states it. Admin-written only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hydrate, Reconcile)]
pub struct Unit {
    /// `building-entrance-room`, e.g. `3-2-0501`; unique within the property area.
    pub code: String,
    pub building: String,
    pub entrance: String,
    pub floor: i64,
    pub room: String,
    /// Exclusive area in 0.01 m².
    pub area: i64,
    pub area_source: AreaSource,
    pub sale_status: SaleStatus,
    /// Stable identity of the owner(s) as registered (stands in for an ID number).
    pub owner_key: String,
    /// Co-owners of one unit (共有人) are listed here and count as one.
    pub owner_names: Vec<String>,
}

impl Unit {
    /// The voter key this unit counts under (SPC art 9): developer units share one key,
    /// otherwise the registered owner key (co-owners already share it).
    pub fn voter_key(&self) -> String {
        if self.sale_status.is_developer() {
            DEVELOPER_VOTER_KEY.to_string()
        } else {
            self.owner_key.clone()
        }
    }
}

/// Whether anyone lives in a unit and who.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    Hydrate,
    Reconcile,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
pub enum Occupancy {
    Unknown,
    OwnerOccupied,
    Rented,
    Vacant,
}

/// The people living in a unit (住户): descriptive, editable by the assigned building head.
/// Last writer wins per field, concurrent edits of one field are flagged (see `conflicts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hydrate, Reconcile)]
pub struct Household {
    pub unit: String,
    pub contact_name: String,
    pub phone: String,
    pub occupancy: Occupancy,
    pub residents: i64,
    pub note: String,
}

/// A building (楼栋) with its entrances (单元).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hydrate, Reconcile)]
pub struct Building {
    /// Short id from the unit codes, e.g. `3`.
    pub id: String,
    /// Label as registered, e.g. `3号楼`.
    pub label: String,
    /// Entrance id (e.g. `3-2`) → label (e.g. `2单元`).
    pub entrances: BTreeMap<String, String>,
}

// ---------------------------------------------------------------------------------------------
// Campaigns (选举 / 表决 / 意见征集 / 听证).
// ---------------------------------------------------------------------------------------------

/// What a campaign is for.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    Hydrate,
    Reconcile,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
pub enum CampaignKind {
    /// 选举业主委员会: candidates and seats.
    Election,
    /// 业主大会表决: binding decisions on matters 1–9 of 民法典 art 278.
    Resolution,
    /// 意见征集: advisory counts and shares.
    Survey,
    /// 听证 (e.g. choosing an elevator supplier): advisory.
    Hearing,
}

/// The lifecycle, never backwards: draft → published → open → closed → tallied → publicised → archived.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    Hydrate,
    Reconcile,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    Draft,
    Published,
    Open,
    Closed,
    Tallied,
    Publicised,
    Archived,
}

impl CampaignStatus {
    /// Every status, in lifecycle order.
    pub const ALL: &'static [CampaignStatus] = <CampaignStatus as strum::VariantArray>::VARIANTS;

    /// The one status that may follow this one, if any.
    pub fn next(self) -> Option<CampaignStatus> {
        use CampaignStatus::*;
        match self {
            Draft => Some(Published),
            Published => Some(Open),
            Open => Some(Closed),
            Closed => Some(Tallied),
            Tallied => Some(Publicised),
            Publicised => Some(Archived),
            Archived => None,
        }
    }

    /// True once the roll and rules are frozen (published or later).
    pub fn is_frozen(self) -> bool {
        self >= CampaignStatus::Published
    }

    /// True when field work (visits, deliveries, ballots) is accepted without the grace rule.
    pub fn accepts_field_work(self) -> bool {
        matches!(self, CampaignStatus::Published | CampaignStatus::Open)
    }
}

/// What a campaign covers; totals and participation are computed within it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Hydrate, Reconcile)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Scope {
    /// 全体业主: the whole property area.
    Whole,
    /// One building (楼栋), by id.
    Building { building: String },
    /// One entrance (单元), by id such as `3-2` (e.g. adding an elevator).
    Entrance { entrance: String },
}

impl Scope {
    /// True when a unit in `building` / `entrance` lies inside this scope.
    pub fn contains(&self, building: &str, entrance: &str) -> bool {
        match self {
            Scope::Whole => true,
            Scope::Building { building: b } => b == building,
            Scope::Entrance { entrance: e } => e == entrance,
        }
    }
}

/// How owners who did not return a ballot are counted (议事规则), frozen at publication.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    Hydrate,
    Reconcile,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
pub enum SilencePolicy {
    /// Not returned = not participating (the default and the law's reading).
    Strict,
    /// A silent owner with a recorded delivery counts as participating and abstaining.
    DeliveredCountsAsAbstain,
    /// A silent owner with a recorded delivery counts as participating and joins the outcome the
    /// returned ballots reach on their own under the matter's threshold on both dimensions (yes
    /// when they pass it, otherwise no): silence never turns a failing matter into a passing one.
    FollowsMajority,
}

/// The frozen rules of one campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hydrate, Reconcile)]
pub struct Rules {
    pub silence: SilencePolicy,
    /// Ballots collected before the close (by the collector's record) that sync within this
    /// many milliseconds after the close are accepted and listed as late-synced.
    pub grace_period_ms: i64,
    /// True when the consequence of silence was announced to owners (required for non-strict).
    pub silence_announced: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            silence: SilencePolicy::Strict,
            grace_period_ms: 24 * 3600 * 1000,
            silence_announced: false,
        }
    }
}

/// 民法典 art 278 matter item 1–9; 6–8 need ≥ 3/4 of participating, the rest > 1/2.
pub type MatterItem = u8;

/// True for matters 6 (raising maintenance funds), 7 (rebuilding), 8 (changing common parts' use).
pub fn is_supermajority_matter(matter: MatterItem) -> bool {
    (6..=8).contains(&matter)
}

/// An election candidate (候选人).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hydrate, Reconcile)]
pub struct Candidate {
    pub id: String,
    pub name: String,
    pub order: i64,
}

/// A survey or hearing option.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hydrate, Reconcile)]
pub struct SurveyOption {
    pub id: String,
    pub label: String,
    pub order: i64,
}

/// What kind of answer a question takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hydrate, Reconcile)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum QuestionKind {
    /// A binding or advisory yes/no/abstain (同意/反对/弃权) decision on matter 1–9.
    Resolution { matter: MatterItem },
    /// Electing `seats` members (odd, 5–11) from candidates; each candidate needs > 1/2.
    Election {
        seats: i64,
        candidates: BTreeMap<String, Candidate>,
    },
    /// Choose options; counted as counts and shares.
    Survey {
        options: BTreeMap<String, SurveyOption>,
        max_choices: i64,
    },
}

/// One question on a ballot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hydrate, Reconcile)]
pub struct Question {
    pub id: String,
    pub order: i64,
    pub text: String,
    pub kind: QuestionKind,
}

/// A campaign definition (admin-written). Field work for it lives in per-building field documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hydrate, Reconcile)]
pub struct Campaign {
    pub id: String,
    pub community: String,
    pub title: String,
    pub kind: CampaignKind,
    /// Binding campaigns produce pass/fail; advisory ones only counts.
    pub binding: bool,
    pub scope: Scope,
    pub rules: Rules,
    pub questions: BTreeMap<String, Question>,
    pub status: CampaignStatus,
    /// Status → when it was entered (ms), so the close time is known for the grace rule.
    pub status_times: BTreeMap<String, Millis>,
    /// Set at publication: the roll's hash and totals (frozen from then on).
    pub roll_hash: Option<String>,
    pub rules_hash: Option<String>,
}

impl Campaign {
    /// When the campaign was closed, if it was.
    pub fn closed_at(&self) -> Option<Millis> {
        self.status_times.get("closed").copied()
    }
}

// ---------------------------------------------------------------------------------------------
// Field records: visits, deliveries, ballots, survey answers, adjudications.
// ---------------------------------------------------------------------------------------------

/// A door's outcome on a visit (a closed list).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    Hydrate,
    Reconcile,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
pub enum DoorOutcome {
    /// 无人应门
    NotHome,
    /// 拒绝
    Refused,
    /// 约改时间
    ComeBack,
    /// 空置
    Vacant,
    /// 已搬离
    Moved,
    /// 仅租户在家
    TenantOnly,
    /// 业主不在本地
    OwnerElsewhere,
    /// 已送达
    Delivered,
    /// 已回收
    Collected,
    /// language or health barrier
    Barrier,
    DoNotContact,
    Other,
}

impl DoorOutcome {
    /// Every outcome, in the order the app lists them.
    pub const ALL: &'static [DoorOutcome] = <DoorOutcome as strum::VariantArray>::VARIANTS;
}

/// One knock on one door (append-only fact).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hydrate, Reconcile)]
pub struct Visit {
    pub id: String,
    pub unit: String,
    pub outcome: DoorOutcome,
    pub note: String,
    pub at: Millis,
    /// Account id of the building head who knocked.
    pub by: String,
}

/// A ballot handed to an owner (append-only fact; gates the non-strict silence policies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hydrate, Reconcile)]
pub struct Delivery {
    pub id: String,
    pub voter_key: String,
    pub unit: String,
    pub at: Millis,
    pub by: String,
}

/// 同意 / 反对 / 弃权.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    Hydrate,
    Reconcile,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    Yes,
    No,
    Abstain,
}

/// The answer to one question on one ballot. Which part is used depends on the question kind:
/// `choice` for resolutions, `candidates` for elections, `options` for surveys.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, Hydrate, Reconcile)]
pub struct Answer {
    pub choice: Option<Choice>,
    /// Candidate id → choice (candidates left out count as not-yes).
    pub candidates: BTreeMap<String, Choice>,
    /// Chosen survey option ids.
    pub options: Vec<String>,
}

/// How a ballot came back (schema 2). Schema 1 recorded only ballots a building head collected
/// at the owner's door, so a ballot without a method (`None`) was collected at the door.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    Hydrate,
    Reconcile,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
pub enum CollectionMethod {
    /// 入户收取: the owner filled it in and signed at the door.
    Door,
    /// 委托代签: someone the owner authorised in writing signed it (the authorisation is kept
    /// with the paper ballot).
    Proxy,
    /// 现场投票: cast at the polling place (投票站).
    Station,
    /// 书面投回: returned to the ballot box or the office.
    Returned,
}

/// A returned ballot (表决票): a unique legal record per (campaign, voter key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hydrate, Reconcile)]
pub struct Ballot {
    pub id: String,
    pub voter_key: String,
    /// The unit at whose door it was collected.
    pub unit: String,
    pub answers: BTreeMap<String, Answer>,
    /// When the collector took it (phone clock); decides the grace rule after close.
    pub collected_at: Millis,
    pub by: String,
    /// A correction by the same owner names the ballot it replaces.
    pub supersedes: Option<String>,
    /// How it came back (schema 2). Ballots schema 1 wrote have no such key: they read as
    /// `None`, collected at the door (see [`Ballot::method`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[autosurgeon(missing = "Default::default")]
    pub method: Option<CollectionMethod>,
}

impl Ballot {
    /// How it came back, reading a schema-1 ballot (no method) as collected at the door.
    pub fn method(&self) -> CollectionMethod {
        self.method.unwrap_or(CollectionMethod::Door)
    }
}

/// A counting officer's (计票人) choice between competing ballots of one voter key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hydrate, Reconcile)]
pub struct Adjudication {
    pub id: String,
    pub voter_key: String,
    /// The competing ballot ids the officer saw.
    pub considered: Vec<String>,
    /// The ballot that counts, or `None` when all are void.
    pub chosen: Option<String>,
    pub reason: String,
    pub at: Millis,
    pub by: String,
}

/// One voter key's share of the frozen roll inside one building: the units it counts with.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hydrate, Reconcile,
)]
pub struct RollEntry {
    pub unit: String,
    pub building: String,
    pub entrance: String,
    pub voter_key: String,
    /// Area in 0.01 m².
    pub area: i64,
}

// ---------------------------------------------------------------------------------------------
// 微心愿 work orders.
// ---------------------------------------------------------------------------------------------

/// The lifecycle of a 微心愿 (居民点单、支部派单、楼长接单).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    Hydrate,
    Reconcile,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Submitted,
    UnderReview,
    Rejected,
    Merged,
    Published,
    Dispatched,
    Claimed,
    InProgress,
    Done,
    Confirmed,
    Disputed,
    Unreachable,
    Closed,
}

/// One step in a work order's history (append-only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hydrate, Reconcile)]
pub struct OrderEvent {
    pub id: String,
    pub to: OrderStatus,
    pub at: Millis,
    pub by: String,
    pub note: String,
}

/// A resident's small request and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hydrate, Reconcile)]
pub struct WorkOrder {
    pub id: String,
    pub unit: String,
    pub title: String,
    pub detail: String,
    pub created_at: Millis,
    pub created_by: String,
    pub assignee: Option<String>,
    /// Event id → event; the current status is the latest event's (by time, then id).
    pub events: BTreeMap<String, OrderEvent>,
}

impl WorkOrder {
    /// The current status: the target of the latest event, `Submitted` when there is none.
    pub fn status(&self) -> OrderStatus {
        self.events
            .values()
            .max_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)))
            .map(|e| e.to)
            .unwrap_or(OrderStatus::Submitted)
    }
}

// ---------------------------------------------------------------------------------------------
// Who is writing.
// ---------------------------------------------------------------------------------------------

/// The roles of PRODUCT.md.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 社区/居委会 staff, 筹备组: register, campaigns, assignments.
    Admin,
    /// 监票/计票: adjudicates conflicts.
    CountingOfficer,
    /// 派单: dispatches work orders.
    Dispatcher,
    /// 楼栋长: field work in assigned buildings.
    BuildingHead,
}

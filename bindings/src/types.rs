//! The records and enums apps see, mirroring core's model, with the conversions from core.
//!
//! Closed enums are core's own types exposed through `uniffi::remote`, so a variant added in core
//! fails to compile here until it is mirrored. Records that hold maps in core get a mirror with
//! lists or `HashMap`s, because uniffi has no ordered map; lists keep core's key order.

use std::collections::{BTreeMap, HashMap};

use doorstep_core::ballots::BallotConflict as CoreBallotConflict;
use doorstep_core::conflicts::FieldConflict;
use doorstep_core::model::{self, Household, Unit};
use doorstep_core::replica::{self, TimelineKind};

// ---------------------------------------------------------------------------------------------
// Closed enums: core's own types.
// ---------------------------------------------------------------------------------------------

pub use doorstep_core::model::{
    AreaSource, CampaignKind, CampaignStatus, Choice, CollectionMethod, DoorOutcome, Occupancy,
    OrderStatus, Role, SaleStatus, Scope, SilencePolicy,
};

/// Which record an exclusive area comes from (登记 > 实测 > 合同).
#[uniffi::remote(Enum)]
pub enum AreaSource {
    Registered,
    Surveyed,
    Contract,
}

/// Whether a unit was sold; unsold or undelivered units count under the developer's voter key.
#[uniffi::remote(Enum)]
pub enum SaleStatus {
    Sold,
    DeveloperUnsold,
    DeveloperUndelivered,
}

/// Whether anyone lives in a unit and who.
#[uniffi::remote(Enum)]
pub enum Occupancy {
    Unknown,
    OwnerOccupied,
    Rented,
    Vacant,
}

/// What a campaign is for: 选举, 表决, 意见征集, 听证.
#[uniffi::remote(Enum)]
pub enum CampaignKind {
    Election,
    Resolution,
    Survey,
    Hearing,
}

/// Where a campaign is in its lifecycle; field work is accepted while published or open.
#[uniffi::remote(Enum)]
pub enum CampaignStatus {
    Draft,
    Published,
    Open,
    Closed,
    Tallied,
    Publicised,
    Archived,
}

/// What a campaign covers: the whole property area, one building, or one entrance.
#[uniffi::remote(Enum)]
pub enum Scope {
    Whole,
    Building { building: String },
    Entrance { entrance: String },
}

/// How owners who did not return a ballot are counted, frozen at publication.
#[uniffi::remote(Enum)]
pub enum SilencePolicy {
    Strict,
    DeliveredCountsAsAbstain,
    FollowsMajority,
}

/// A door's outcome on a visit: 无人应门, 拒绝, 约改时间, 空置, 已搬离, 仅租户在家, 业主不在本地,
/// 已送达, 已回收, a language or health barrier, do not contact, other.
#[uniffi::remote(Enum)]
pub enum DoorOutcome {
    NotHome,
    Refused,
    ComeBack,
    Vacant,
    Moved,
    TenantOnly,
    OwnerElsewhere,
    Delivered,
    Collected,
    Barrier,
    DoNotContact,
    Other,
}

/// How a ballot came back: 入户收取 (at the door), 委托代签 (a proxy with the owner's written
/// authorisation signed), 现场投票 (at the polling place), 书面投回 (returned to the box).
#[uniffi::remote(Enum)]
pub enum CollectionMethod {
    Door,
    Proxy,
    Station,
    Returned,
}

/// 同意 / 反对 / 弃权.
#[uniffi::remote(Enum)]
pub enum Choice {
    Yes,
    No,
    Abstain,
}

/// The lifecycle of a 微心愿 work order (居民点单、支部派单、楼长接单).
#[uniffi::remote(Enum)]
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

/// The roles an account can hold: admin, counting officer (监票/计票), dispatcher (派单),
/// building head (楼栋长).
#[uniffi::remote(Enum)]
pub enum Role {
    Admin,
    CountingOfficer,
    Dispatcher,
    BuildingHead,
}

// ---------------------------------------------------------------------------------------------
// Who this install is.
// ---------------------------------------------------------------------------------------------

/// Who this install works for, as the server said at enrollment.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Identity {
    pub account: String,
    pub community: String,
    pub roles: Vec<Role>,
    /// Ids of the buildings assigned to this account, e.g. `3`.
    pub buildings: Vec<String>,
    /// The server-issued device id.
    pub device: String,
}

impl From<replica::Identity> for Identity {
    fn from(i: replica::Identity) -> Self {
        Identity {
            account: i.account,
            community: i.community,
            roles: i.roles,
            buildings: i.buildings.into_iter().collect(),
            device: i.device.to_string(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Register: buildings, units, households.
// ---------------------------------------------------------------------------------------------

/// An entrance (单元) of a building.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Entrance {
    /// e.g. `3-2`.
    pub id: String,
    /// e.g. `2单元`.
    pub label: String,
}

/// A building (楼栋) with its entrances in id order.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Building {
    /// e.g. `3`.
    pub id: String,
    /// e.g. `3号楼`.
    pub label: String,
    pub entrances: Vec<Entrance>,
}

impl From<model::Building> for Building {
    fn from(b: model::Building) -> Self {
        Building {
            id: b.id,
            label: b.label,
            entrances: b
                .entrances
                .into_iter()
                .map(|(id, label)| Entrance { id, label })
                .collect(),
        }
    }
}

/// An exclusive unit (专有部分) as the register states it. Named `RegisterUnit` because `Unit`
/// is a built-in type in Kotlin.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RegisterUnit {
    /// `building-entrance-room`, e.g. `3-2-0501`.
    pub code: String,
    pub building: String,
    pub entrance: String,
    pub floor: i64,
    pub room: String,
    /// Exclusive area in 0.01 m².
    pub area: i64,
    pub area_source: AreaSource,
    pub sale_status: SaleStatus,
    /// Stable identity of the registered owner(s).
    pub owner_key: String,
    /// Co-owners (共有人) are listed together and count as one.
    pub owner_names: Vec<String>,
    /// The voter key the unit counts under (one per owner; developer units share one), as the
    /// roll and the tally use it: an owner with several doors has one ballot.
    pub voter_key: String,
}

impl From<Unit> for RegisterUnit {
    fn from(u: Unit) -> Self {
        RegisterUnit {
            voter_key: u.voter_key(),
            code: u.code,
            building: u.building,
            entrance: u.entrance,
            floor: u.floor,
            room: u.room,
            area: u.area,
            area_source: u.area_source,
            sale_status: u.sale_status,
            owner_key: u.owner_key,
            owner_names: u.owner_names,
        }
    }
}

/// The people living in a unit (住户), editable by the assigned building head.
#[uniffi::remote(Record)]
pub struct Household {
    pub unit: String,
    pub contact_name: String,
    pub phone: String,
    pub occupancy: Occupancy,
    pub residents: i64,
    pub note: String,
}

/// A unit as the door-to-door list shows it, with its visit status for one campaign.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct UnitView {
    pub unit: RegisterUnit,
    pub household: Option<Household>,
    /// The latest door outcome for the campaign asked about, if any.
    pub last_outcome: Option<DoorOutcome>,
    /// How many visits are recorded for the campaign asked about.
    pub visits: u32,
    /// True when a ballot from this unit's owner is recorded for the campaign.
    pub ballot_recorded: bool,
}

impl From<replica::UnitView> for UnitView {
    fn from(v: replica::UnitView) -> Self {
        UnitView {
            unit: v.unit.into(),
            household: v.household,
            last_outcome: v.last_outcome,
            visits: saturating_u32(v.visits),
            ballot_recorded: v.ballot_recorded,
        }
    }
}

/// What a timeline entry records.
#[uniffi::remote(Enum)]
pub enum TimelineKind {
    Visit,
    Delivery,
    Ballot,
}

/// One record of a door's timeline (门户详情), oldest first; `synced` is false while the record
/// waits on this phone (⏳待同步) and true once the server has it (✓已同步).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TimelineEntry {
    pub kind: TimelineKind,
    pub id: String,
    /// ms since the epoch (phone clock).
    pub at: i64,
    pub outcome: Option<DoorOutcome>,
    pub note: String,
    pub by: String,
    pub supersedes: Option<String>,
    /// For a ballot: how it came back (入户收取 / 委托代签 / 现场投票 / 书面投回).
    pub method: Option<CollectionMethod>,
    pub synced: bool,
}

impl From<replica::TimelineEntry> for TimelineEntry {
    fn from(e: replica::TimelineEntry) -> Self {
        TimelineEntry {
            kind: e.kind,
            id: e.id,
            at: e.at,
            outcome: e.outcome,
            note: e.note,
            by: e.by,
            supersedes: e.supersedes,
            method: e.method,
            synced: e.synced,
        }
    }
}

/// An officer's decision on competing ballots in one of this phone's buildings (通知).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Notice {
    pub id: String,
    pub campaign: String,
    pub building: String,
    /// The owner's doors in this building.
    pub units: Vec<String>,
    /// The ballot that counts and its door; `None` when every competing ballot is void.
    pub counted_ballot: Option<String>,
    pub counted_unit: Option<String>,
    /// The account that collected the ballot that counts.
    pub counted_by: Option<String>,
    /// How many competing ballots the officer looked at.
    pub considered: u32,
    pub reason: String,
    /// ms since the epoch (the officer's clock).
    pub at: i64,
    /// The officer's account.
    pub by: String,
    pub unread: bool,
}

impl From<replica::Notice> for Notice {
    fn from(n: replica::Notice) -> Self {
        Notice {
            id: n.id,
            campaign: n.campaign,
            building: n.building,
            units: n.units,
            counted_ballot: n.counted_ballot,
            counted_unit: n.counted_unit,
            counted_by: n.counted_by,
            considered: u32::try_from(n.considered).unwrap_or(u32::MAX),
            reason: n.reason,
            at: n.at,
            by: n.by,
            unread: n.unread,
        }
    }
}

/// A correction of some household details; a field left `null`/`None` stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct HouseholdEdit {
    #[uniffi(default)]
    pub contact_name: Option<String>,
    #[uniffi(default)]
    pub phone: Option<String>,
    #[uniffi(default)]
    pub occupancy: Option<Occupancy>,
    #[uniffi(default)]
    pub residents: Option<i64>,
    #[uniffi(default)]
    pub note: Option<String>,
}

impl From<HouseholdEdit> for replica::HouseholdEdit {
    fn from(e: HouseholdEdit) -> Self {
        replica::HouseholdEdit {
            contact_name: e.contact_name,
            phone: e.phone,
            occupancy: e.occupancy,
            residents: e.residents,
            note: e.note,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Campaigns and their questions.
// ---------------------------------------------------------------------------------------------

/// An election candidate (候选人).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Candidate {
    pub id: String,
    pub name: String,
    /// Position on the ballot paper.
    pub order: i64,
}

/// A survey or hearing option.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SurveyOption {
    pub id: String,
    pub label: String,
    /// Position on the ballot paper.
    pub order: i64,
}

/// What kind of answer a question takes.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum QuestionKind {
    /// A yes/no/abstain decision on matter 1–9 of 民法典 art 278; answer with `Answer.choice`.
    Resolution { matter: u8 },
    /// Elect `seats` members; answer with `Answer.candidates` (candidate id → choice).
    Election {
        seats: i64,
        candidates: Vec<Candidate>,
    },
    /// Choose up to `max_choices` options; answer with `Answer.options`.
    Survey {
        options: Vec<SurveyOption>,
        max_choices: i64,
    },
}

impl From<model::QuestionKind> for QuestionKind {
    fn from(k: model::QuestionKind) -> Self {
        match k {
            model::QuestionKind::Resolution { matter } => QuestionKind::Resolution { matter },
            model::QuestionKind::Election { seats, candidates } => QuestionKind::Election {
                seats,
                candidates: candidates
                    .into_values()
                    .map(|c| Candidate {
                        id: c.id,
                        name: c.name,
                        order: c.order,
                    })
                    .collect(),
            },
            model::QuestionKind::Survey {
                options,
                max_choices,
            } => QuestionKind::Survey {
                options: options
                    .into_values()
                    .map(|o| SurveyOption {
                        id: o.id,
                        label: o.label,
                        order: o.order,
                    })
                    .collect(),
                max_choices,
            },
        }
    }
}

/// One question on a ballot.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Question {
    pub id: String,
    /// Position on the ballot paper; the list itself is in id order.
    pub order: i64,
    pub text: String,
    pub kind: QuestionKind,
}

/// What the app shows about a campaign: its definition and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CampaignSummary {
    pub id: String,
    pub title: String,
    pub kind: CampaignKind,
    /// Binding campaigns produce pass/fail; advisory ones only counts.
    pub binding: bool,
    pub scope: Scope,
    pub status: CampaignStatus,
    pub silence: SilencePolicy,
    /// When the campaign closed (ms since the epoch), if it did.
    pub closed_at: Option<i64>,
    pub questions: Vec<Question>,
}

impl From<model::Campaign> for CampaignSummary {
    fn from(c: model::Campaign) -> Self {
        CampaignSummary {
            closed_at: c.closed_at(),
            id: c.id,
            title: c.title,
            kind: c.kind,
            binding: c.binding,
            scope: c.scope,
            status: c.status,
            silence: c.rules.silence,
            questions: c
                .questions
                .into_values()
                .map(|q| Question {
                    id: q.id,
                    order: q.order,
                    text: q.text,
                    kind: q.kind.into(),
                })
                .collect(),
        }
    }
}

/// The answer to one question on one ballot: `choice` for resolutions, `candidates` for
/// elections, `options` for surveys.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct Answer {
    #[uniffi(default)]
    pub choice: Option<Choice>,
    /// Candidate id → choice; candidates left out count as not-yes.
    #[uniffi(default)]
    pub candidates: HashMap<String, Choice>,
    /// Chosen survey option ids.
    #[uniffi(default)]
    pub options: Vec<String>,
}

impl From<Answer> for model::Answer {
    fn from(a: Answer) -> Self {
        model::Answer {
            choice: a.choice,
            candidates: a.candidates.into_iter().collect(),
            options: a.options,
        }
    }
}

/// Question id → answer, in core's shape.
pub(crate) fn core_answers(answers: HashMap<String, Answer>) -> BTreeMap<String, model::Answer> {
    answers.into_iter().map(|(q, a)| (q, a.into())).collect()
}

/// Question id → chosen option ids, as ballot answers.
pub(crate) fn survey_answers(
    answers: HashMap<String, Vec<String>>,
) -> BTreeMap<String, model::Answer> {
    answers
        .into_iter()
        .map(|(q, options)| {
            (
                q,
                model::Answer {
                    options,
                    ..model::Answer::default()
                },
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 微心愿 work orders.
// ---------------------------------------------------------------------------------------------

/// One step in a work order's history.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OrderEvent {
    pub id: String,
    pub to: OrderStatus,
    /// ms since the epoch.
    pub at: i64,
    pub by: String,
    pub note: String,
}

/// A resident's small request (微心愿) and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct WorkOrder {
    pub id: String,
    pub unit: String,
    pub title: String,
    pub detail: String,
    pub created_at: i64,
    pub created_by: String,
    pub assignee: Option<String>,
    /// The current status: the latest event's target.
    pub status: OrderStatus,
    /// The history, in event id order (ids are time-ordered UUIDv7).
    pub events: Vec<OrderEvent>,
}

impl From<model::WorkOrder> for WorkOrder {
    fn from(o: model::WorkOrder) -> Self {
        WorkOrder {
            status: o.status(),
            id: o.id,
            unit: o.unit,
            title: o.title,
            detail: o.detail,
            created_at: o.created_at,
            created_by: o.created_by,
            assignee: o.assignee,
            events: o
                .events
                .into_values()
                .map(|e| OrderEvent {
                    id: e.id,
                    to: e.to,
                    at: e.at,
                    by: e.by,
                    note: e.note,
                })
                .collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Conflicts and rejections.
// ---------------------------------------------------------------------------------------------

/// Competing ballots of one owner; none of them counts until a counting officer decides.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BallotConflict {
    pub campaign: String,
    pub voter_key: String,
    /// The competing ballot ids, sorted.
    pub ballots: Vec<String>,
}

/// A household field two people changed concurrently. Editing the field again settles it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HouseholdConflict {
    /// The building document, e.g. `building/tpy/3`.
    pub doc_id: String,
    pub unit: String,
    /// e.g. `phone`, `contact_name`.
    pub field: String,
    /// The value the app currently shows.
    pub shown: String,
    /// Every concurrent value, the shown one included.
    pub values: Vec<String>,
}

impl From<FieldConflict> for HouseholdConflict {
    fn from(c: FieldConflict) -> Self {
        HouseholdConflict {
            doc_id: c.doc,
            unit: c.unit,
            field: c.field,
            shown: c.shown,
            values: c.values,
        }
    }
}

/// A document the server refused; `reset_document(doc_id)` brings back the server's state.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Rejection {
    pub doc_id: String,
    /// The machine code to match on: a write rule's code (`not_assigned`, `campaign_closed`,
    /// …), a sync code (`unapplicable_changes`, `malformed_message`), `not_held` when this
    /// phone keeps undelivered work of a document it no longer holds, or the verdict
    /// (`rejected`, `forbidden`, `upgrade_required`) from a server older than the codes.
    pub code: String,
    pub reason: String,
}

impl From<doorstep_core::sync::Rejection> for Rejection {
    fn from(r: doorstep_core::sync::Rejection) -> Self {
        Rejection {
            doc_id: r.doc.to_string(),
            code: r.code,
            reason: r.reason,
        }
    }
}

/// Everything that needs a person's attention.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Attention {
    pub ballot_conflicts: Vec<BallotConflict>,
    pub household_conflicts: Vec<HouseholdConflict>,
    pub rejections: Vec<Rejection>,
}

impl From<replica::Attention> for Attention {
    fn from(a: replica::Attention) -> Self {
        Attention {
            ballot_conflicts: a
                .ballot_conflicts
                .into_iter()
                .map(
                    |(campaign, c): (String, CoreBallotConflict)| BallotConflict {
                        campaign,
                        voter_key: c.voter_key,
                        ballots: c.ballots,
                    },
                )
                .collect(),
            household_conflicts: a.household_conflicts.into_iter().map(Into::into).collect(),
            rejections: a.rejections.into_iter().map(Rejection::from).collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sync.
// ---------------------------------------------------------------------------------------------

/// What one `sync()` did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncReport {
    /// HTTP requests made.
    pub round_trips: u32,
    /// Request body bytes sent.
    pub bytes_up: u64,
    /// Reply body bytes received.
    pub bytes_down: u64,
    /// Documents whose local content changed (server news applied, or new documents).
    pub docs_changed: u32,
    /// Documents the server refused, with its reason; the others synced. Each can be reset
    /// with `reset_document`.
    pub rejected: Vec<Rejection>,
    /// Documents this phone no longer holds (reassigned, deleted) and that had no undelivered
    /// changes, so they were removed.
    pub dropped: Vec<String>,
    /// The server needs a newer app; nothing was changed and local work is kept.
    pub upgrade_required: bool,
    /// True when the last round found nothing more to send on either side.
    pub complete: bool,
}

impl From<doorstep_core::sync::SyncReport> for SyncReport {
    fn from(r: doorstep_core::sync::SyncReport) -> Self {
        SyncReport {
            round_trips: saturating_u32(r.round_trips),
            bytes_up: r.bytes_up as u64,
            bytes_down: r.bytes_down as u64,
            docs_changed: saturating_u32(r.docs_changed),
            rejected: r.rejected.into_iter().map(Rejection::from).collect(),
            dropped: r.dropped.iter().map(ToString::to_string).collect(),
            upgrade_required: r.upgrade_required,
            complete: r.complete,
        }
    }
}

/// Counts from core are `usize`; uniffi has no such type and no phone reaches `u32::MAX`.
pub(crate) fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

//! The phone's replica: what a building head's app does, one user action at a time.
//!
//! Every action is one Automerge commit, checked by the same write rules the server applies,
//! and persisted in one SQLite transaction before the call returns: what the app was told is
//! saved survives a crash. A refused action leaves the document exactly as it was. `Replica` is
//! thread-safe (the app calls it from background threads); all calls are blocking.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use automerge::{ChangeHash, ROOT, ReadDoc};

use serde::{Deserialize, Serialize};

use crate::ballots::{self, BallotConflict};
use crate::clock::Clock;
use crate::conflicts::{FieldConflict, household_conflicts};
use crate::doc::{
    BuildingDoc, CampaignDoc, DocId, DocKind, Document, FieldDoc, OrdersDoc, RegisterDoc,
};
use crate::encryption::StoreKey;
use crate::error::{Error, Result};
use crate::model::{
    Answer, Ballot, Building, Campaign, CollectionMethod, Delivery, DoorOutcome, Household, Millis,
    Occupancy, OrderEvent, OrderStatus, Role, Unit, Visit, WorkOrder, new_record_id,
};
use crate::roll::Roll;
use crate::rules::{Context, Writer, check_changes};
use crate::store::{ServerStatus, Store, StoreConfig, Verdict, keys};
use crate::sync::{HttpTransport, SyncReport, Transport};

/// The settings key under which the enrolled identity is kept.
const IDENTITY_KEY: &str = "identity";

/// Who this install works for, as the server said at enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub account: String,
    pub community: String,
    pub roles: Vec<Role>,
    pub buildings: BTreeSet<String>,
    /// The server-issued device id, the prefix of every actor this install uses.
    pub device: uuid::Uuid,
}

impl Identity {
    fn writer(&self) -> Writer {
        Writer {
            account: self.account.clone(),
            roles: self.roles.clone(),
            buildings: self.buildings.clone(),
            device: Some(self.device),
        }
    }
}

/// What a timeline entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimelineKind {
    Visit,
    Delivery,
    Ballot,
}

/// One record of a door's timeline (门户详情), with whether the server already has it
/// (✓已同步) or it waits on this phone (⏳待同步).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    pub kind: TimelineKind,
    pub id: String,
    pub at: Millis,
    /// The door outcome, for visits.
    pub outcome: Option<DoorOutcome>,
    pub note: String,
    /// The account that recorded it.
    pub by: String,
    /// For a ballot correction: the ballot it replaces.
    pub supersedes: Option<String>,
    /// For a ballot: how it came back (schema-1 ballots read as the door).
    pub method: Option<CollectionMethod>,
    pub synced: bool,
}

/// An officer's decision on competing ballots that reached this phone (通知).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The adjudication's id.
    pub id: String,
    pub campaign: String,
    pub building: String,
    /// The owner's doors in this building (the units of the voter key in the frozen roll).
    pub units: Vec<String>,
    /// The ballot that counts and its door, or `None` when every competing ballot is void.
    pub counted_ballot: Option<String>,
    pub counted_unit: Option<String>,
    /// The account that collected the ballot that counts.
    pub counted_by: Option<String>,
    /// How many competing ballots the officer looked at.
    pub considered: usize,
    pub reason: String,
    pub at: Millis,
    /// The officer's account.
    pub by: String,
    /// Newer than the last notice the head marked as seen.
    pub unread: bool,
}

/// A unit as the door-to-door list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitView {
    pub unit: Unit,
    pub household: Option<Household>,
    /// The latest door outcome for the campaign asked about, if any.
    pub last_outcome: Option<DoorOutcome>,
    pub visits: usize,
    /// True when a ballot from this unit's owner is recorded for the campaign.
    pub ballot_recorded: bool,
}

/// A correction of some household details; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HouseholdEdit {
    pub contact_name: Option<String>,
    pub phone: Option<String>,
    pub occupancy: Option<Occupancy>,
    pub residents: Option<i64>,
    pub note: Option<String>,
}

/// Everything that needs a person's attention.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attention {
    pub ballot_conflicts: Vec<(String, BallotConflict)>,
    pub household_conflicts: Vec<FieldConflict>,
    /// Documents the server refused, with its reason.
    pub rejections: Vec<crate::sync::Rejection>,
}

/// The phone's replica over its local store.
///
/// Architecture Invariant: the replica is the one owner of the phone's open documents. Its
/// actions and the sync client (through [`crate::sync::StoreAccess`]) use the same cached
/// [`Document`]s, and each typed view of a document (the campaign, the building, a field
/// document's index) remembers the heads it was read at, so it is read again only when the
/// document changed.
#[derive(Debug)]
pub struct Replica {
    inner: Mutex<Inner>,
    clock: Arc<dyn Clock>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    docs: BTreeMap<DocId, Document>,
    /// The enrolled identity, read once from the store.
    identity: Option<Identity>,
    views: Views,
}

/// Typed views of open documents, each valid at the heads it was made at.
#[derive(Debug, Default)]
struct Views {
    campaigns: BTreeMap<DocId, Cached<Arc<Campaign>>>,
    buildings: BTreeMap<DocId, Cached<Arc<BuildingDoc>>>,
    fields: BTreeMap<DocId, Cached<FieldIndex>>,
    unsynced: BTreeMap<DocId, Cached<Unsynced>>,
}

#[derive(Debug)]
struct Cached<T> {
    heads: Vec<ChangeHash>,
    value: T,
}

/// What the door list and the door screen need from a field document, kept up to date by each
/// action instead of being read from the whole document every time.
#[derive(Debug, Default)]
struct FieldIndex {
    /// The frozen roll slice: unit code → roll entry.
    roll: BTreeMap<String, crate::model::RollEntry>,
    /// Unit code → its records in this campaign.
    units: BTreeMap<String, UnitRecords>,
    /// Voter keys with at least one ballot.
    ballot_keys: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct UnitRecords {
    visits: usize,
    /// The latest visit: (at, id, outcome).
    last: Option<(Millis, String, DoorOutcome)>,
    /// Every record of the unit as a timeline entry (`synced` is filled in when asked).
    timeline: Vec<TimelineEntry>,
}

impl FieldIndex {
    fn of(field: &FieldDoc) -> FieldIndex {
        let mut index = FieldIndex {
            roll: field.roll.clone(),
            ..FieldIndex::default()
        };
        for v in field.visits.values() {
            index.add(&Record::Visit(v.clone()));
        }
        for d in field.deliveries.values() {
            index.add(&Record::Delivery(d.clone()));
        }
        for b in field.ballots.values() {
            index.add(&Record::Ballot(b.clone()));
        }
        index
    }

    fn add(&mut self, record: &Record) {
        let entry = match record {
            Record::Visit(v) => {
                let unit = self.units.entry(v.unit.clone()).or_default();
                unit.visits += 1;
                let newer = unit
                    .last
                    .as_ref()
                    .is_none_or(|(at, id, _)| (v.at, &v.id) > (*at, id));
                if newer {
                    unit.last = Some((v.at, v.id.clone(), v.outcome));
                }
                TimelineEntry {
                    kind: TimelineKind::Visit,
                    id: v.id.clone(),
                    at: v.at,
                    outcome: Some(v.outcome),
                    note: v.note.clone(),
                    by: v.by.clone(),
                    supersedes: None,
                    method: None,
                    synced: false,
                }
            }
            Record::Delivery(d) => TimelineEntry {
                kind: TimelineKind::Delivery,
                id: d.id.clone(),
                at: d.at,
                outcome: None,
                note: String::new(),
                by: d.by.clone(),
                supersedes: None,
                method: None,
                synced: false,
            },
            Record::Ballot(b) => {
                self.ballot_keys.insert(b.voter_key.clone());
                TimelineEntry {
                    kind: TimelineKind::Ballot,
                    id: b.id.clone(),
                    at: b.collected_at,
                    outcome: None,
                    note: String::new(),
                    by: b.by.clone(),
                    supersedes: b.supersedes.clone(),
                    method: Some(b.method()),
                    synced: false,
                }
            }
        };
        let unit = match record {
            Record::Visit(v) => &v.unit,
            Record::Delivery(d) => &d.unit,
            Record::Ballot(b) => &b.unit,
        };
        self.units
            .entry(unit.clone())
            .or_default()
            .timeline
            .push(entry);
    }
}

impl Replica {
    /// Open (or create) the replica stored at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Replica> {
        Ok(Replica::from_store(Store::open(path)?))
    }

    /// Open (or create) the replica stored at `path`, encrypted at rest with `key`; a plain store
    /// from before is encrypted first without losing a record (see [`Store::open_encrypted`]).
    pub fn open_encrypted(path: impl AsRef<Path>, key: &StoreKey) -> Result<Replica> {
        Ok(Replica::from_store(Store::open_encrypted(
            path,
            key,
            StoreConfig::default(),
        )?))
    }

    /// A replica over an already open store (tests use an in-memory one).
    pub fn from_store(store: Store) -> Replica {
        Replica {
            inner: Mutex::new(Inner {
                store,
                docs: BTreeMap::new(),
                identity: None,
                views: Views::default(),
            }),
            clock: crate::clock::system(),
        }
    }

    /// The same replica reading the time from `clock` (tests move it by hand).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Replica {
        self.clock = clock;
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves only in-memory caches behind; the store is
        // transactional, so continuing with the inner value is safe.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `f` with the store, after dropping cached documents (e.g. for the sync client,
    /// which reads and writes documents through the store directly).
    pub fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> Result<T>) -> Result<T> {
        let mut inner = self.lock();
        inner.forget();
        let out = f(&mut inner.store);
        // What `f` wrote is in the store, not in the dropped cache: the next action reads it.
        inner.forget();
        out
    }

    /// The enrolled identity, if this install is enrolled.
    pub fn identity(&self) -> Result<Option<Identity>> {
        let mut inner = self.lock();
        match inner.identity() {
            Ok(identity) => Ok(Some(identity)),
            Err(Error::NotEnrolled) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Record the identity the server gave at enrollment.
    pub fn set_identity(&self, identity: &Identity) -> Result<()> {
        let mut inner = self.lock();
        let json = serde_json::to_string(identity).map_err(|e| Error::Invalid(e.to_string()))?;
        let tx = inner.store.transaction()?;
        crate::store::put_setting(&tx, IDENTITY_KEY, &json)?;
        crate::store::set_device_id(&tx, &identity.device)?;
        tx.commit([])?;
        inner.forget();
        Ok(())
    }

    /// The buildings assigned to this install's account, as the register names them.
    pub fn buildings(&self) -> Result<Vec<Building>> {
        let mut inner = self.lock();
        let identity = inner.identity()?;
        let mut out = Vec::new();
        for b in &identity.buildings {
            let id = DocId::Building {
                community: identity.community.clone(),
                building: b.clone(),
            };
            if let Some(doc) = inner.building(&id, &identity)? {
                out.push(doc.building.clone());
            }
        }
        Ok(out)
    }

    /// The campaigns this phone holds, newest first.
    pub fn campaigns(&self) -> Result<Vec<Campaign>> {
        let mut inner = self.lock();
        let identity = inner.identity()?;
        let ids = inner.store.document_ids()?;
        let mut out = Vec::new();
        for id in ids.into_iter().filter(|d| d.kind() == DocKind::Campaign) {
            if let Some(campaign) = inner.campaign(&id, &identity)? {
                out.push(Campaign::clone(&campaign));
            }
        }
        out.sort_by(|a, b| b.id.cmp(&a.id));
        Ok(out)
    }

    /// The units of one building with their households and, for `campaign`, who still needs a
    /// visit. Answered from the building's and the field document's views: the cost follows the
    /// number of units, not of records.
    pub fn units(&self, building: &str, campaign: Option<&str>) -> Result<Vec<UnitView>> {
        let mut inner = self.lock();
        let identity = inner.identity()?;
        let id = DocId::Building {
            community: identity.community.clone(),
            building: building.to_string(),
        };
        let doc = inner
            .building(&id, &identity)?
            .ok_or_else(|| Error::NotFound(format!("building {building}")))?;
        let field = match campaign {
            Some(c) => {
                let fid = DocId::Field {
                    campaign: c.to_string(),
                    building: building.to_string(),
                };
                inner.field_index(&fid, &identity)?
            }
            None => None,
        };
        Ok(doc
            .units
            .values()
            .map(|unit| {
                let records = field.and_then(|f| f.units.get(&unit.code));
                UnitView {
                    unit: unit.clone(),
                    household: doc.households.get(&unit.code).cloned(),
                    last_outcome: records.and_then(|r| r.last.as_ref().map(|(_, _, o)| *o)),
                    visits: records.map_or(0, |r| r.visits),
                    ballot_recorded: field
                        .is_some_and(|f| f.ballot_keys.contains(&unit.voter_key())),
                }
            })
            .collect())
    }

    /// The visits, deliveries and ballots of `unit` in `campaign`, oldest first, each marked
    /// synced when the server's last reported heads include it.
    pub fn unit_timeline(&self, campaign: &str, unit: &str) -> Result<Vec<TimelineEntry>> {
        let mut inner = self.lock();
        let identity = inner.identity()?;
        let id = DocId::Field {
            campaign: campaign.to_string(),
            building: building_of(unit)?.to_string(),
        };
        let server_heads = crate::store::server_status(inner.store.conn(), &id)?
            .map(|s| s.server_heads)
            .unwrap_or_default();
        let mut out: Vec<TimelineEntry> = inner
            .field_index(&id, &identity)?
            .ok_or_else(|| Error::NotFound(format!("{id} is not on this phone yet; sync first")))?
            .units
            .get(unit)
            .map(|r| r.timeline.clone())
            .unwrap_or_default();
        // What the server has: everything but the records written by changes after the heads
        // it last reported (when this phone has them all; otherwise nothing is known there).
        let unsynced = inner
            .unsynced(&id, &identity, &server_heads)?
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        for entry in &mut out {
            entry.synced = unsynced
                .records
                .as_ref()
                .is_some_and(|p| !p.contains(&entry.id));
        }
        out.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Record one door's outcome for a campaign; returns the visit's id.
    pub fn record_visit(
        &self,
        campaign: &str,
        unit: &str,
        outcome: DoorOutcome,
        note: &str,
    ) -> Result<String> {
        self.field_action(campaign, unit, "record visit", |identity, _roll, now| {
            let visit = Visit {
                id: new_record_id(),
                unit: unit.to_string(),
                outcome,
                note: note.to_string(),
                at: now,
                by: identity.account.clone(),
            };
            Ok(("visits", visit.id.clone(), Record::Visit(visit)))
        })
    }

    /// Record that a ballot was handed to the owner of `unit`.
    pub fn record_delivery(&self, campaign: &str, unit: &str) -> Result<String> {
        self.field_action(campaign, unit, "record delivery", |identity, roll, now| {
            let delivery = Delivery {
                id: new_record_id(),
                voter_key: roll.voter_key.clone(),
                unit: unit.to_string(),
                at: now,
                by: identity.account.clone(),
            };
            Ok((
                "deliveries",
                delivery.id.clone(),
                Record::Delivery(delivery),
            ))
        })
    }

    /// Record a returned ballot the owner of `unit` filled in at the door; `supersedes` names
    /// the ballot a correction by the same owner replaces.
    pub fn record_ballot(
        &self,
        campaign: &str,
        unit: &str,
        answers: BTreeMap<String, Answer>,
        supersedes: Option<String>,
    ) -> Result<String> {
        self.record_ballot_by(campaign, unit, answers, supersedes, CollectionMethod::Door)
    }

    /// [`Replica::record_ballot`], saying how the ballot came back (schema 2): at the door,
    /// signed by the owner's written proxy, at the polling place or returned to the box.
    pub fn record_ballot_by(
        &self,
        campaign: &str,
        unit: &str,
        answers: BTreeMap<String, Answer>,
        supersedes: Option<String>,
        method: CollectionMethod,
    ) -> Result<String> {
        self.field_action(campaign, unit, "record ballot", |identity, roll, now| {
            let ballot = Ballot {
                id: new_record_id(),
                voter_key: roll.voter_key.clone(),
                unit: unit.to_string(),
                answers,
                collected_at: now,
                by: identity.account.clone(),
                supersedes,
                method: Some(method),
            };
            Ok(("ballots", ballot.id.clone(), Record::Ballot(ballot)))
        })
    }

    /// Correct some household details of a unit in an assigned building.
    pub fn edit_household(&self, unit: &str, edit: &HouseholdEdit) -> Result<()> {
        let mut inner = self.lock();
        let identity = inner.identity()?;
        let building = building_of(unit)?;
        let id = DocId::Building {
            community: identity.community.clone(),
            building: building.to_string(),
        };
        let mut household = inner
            .building(&id, &identity)?
            .ok_or_else(|| Error::NotFound(format!("building {building}")))?
            .households
            .get(unit)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("household of {unit}")))?;
        if let Some(v) = &edit.contact_name {
            household.contact_name = v.clone();
        }
        if let Some(v) = &edit.phone {
            household.phone = v.clone();
        }
        if let Some(v) = edit.occupancy {
            household.occupancy = v;
        }
        if let Some(v) = edit.residents {
            household.residents = v;
        }
        if let Some(v) = &edit.note {
            household.note = v.clone();
        }
        let now = self.clock.now();
        inner.act(
            &id,
            &identity,
            None,
            "edit household",
            now,
            |doc| doc.put_record("households", unit, &household),
            |views, before, after| {
                if let Some(cached) = views.buildings.get_mut(&id)
                    && cached.heads == before
                {
                    Arc::make_mut(&mut cached.value)
                        .households
                        .insert(unit.to_string(), household.clone());
                    cached.heads = after.to_vec();
                }
            },
        )
    }

    /// Take a resident's 微心愿 request at `unit`; returns the work order's id.
    pub fn create_order(&self, unit: &str, title: &str, detail: &str) -> Result<String> {
        let mut inner = self.lock();
        let identity = inner.identity()?;
        let building = building_of(unit)?;
        let id = DocId::Orders {
            community: identity.community.clone(),
            building: building.to_string(),
        };
        if title.trim().is_empty() {
            return Err(Error::Invalid("a work order needs a title".into()));
        }
        let order = WorkOrder {
            id: new_record_id(),
            unit: unit.to_string(),
            title: title.to_string(),
            detail: detail.to_string(),
            created_at: self.clock.now(),
            created_by: identity.account.clone(),
            assignee: None,
            events: BTreeMap::new(),
        };
        let order_id = order.id.clone();
        inner.act(
            &id,
            &identity,
            None,
            "create work order",
            order.created_at,
            |doc| doc.put_record("orders", &order.id, &order),
            |_, _, _| {},
        )?;
        Ok(order_id)
    }

    /// Move a work order to `to` (claiming makes this account its assignee; dispatching names
    /// `assignee`).
    pub fn move_order(
        &self,
        building: &str,
        order: &str,
        to: OrderStatus,
        note: &str,
        assignee: Option<String>,
    ) -> Result<()> {
        let mut inner = self.lock();
        let identity = inner.identity()?;
        let id = DocId::Orders {
            community: identity.community.clone(),
            building: building.to_string(),
        };
        let doc = inner
            .doc(&id, &identity)?
            .ok_or_else(|| Error::NotFound(format!("work orders of building {building}")))?;
        let mut current = doc
            .read_record::<WorkOrder>("orders", order)?
            .ok_or_else(|| Error::NotFound(format!("work order {order}")))?;
        let now = self
            .clock
            .now()
            .max(current.events.values().map(|e| e.at + 1).max().unwrap_or(0));
        let event = OrderEvent {
            id: new_record_id(),
            to,
            at: now,
            by: identity.account.clone(),
            note: note.to_string(),
        };
        current.events.insert(event.id.clone(), event);
        match to {
            OrderStatus::Claimed => current.assignee = Some(identity.account.clone()),
            OrderStatus::Dispatched => current.assignee = assignee,
            _ => {}
        }
        inner.act(
            &id,
            &identity,
            None,
            "move work order",
            now,
            |doc| doc.put_record("orders", &current.id, &current),
            |_, _, _| {},
        )
    }

    /// The work orders of one building.
    pub fn orders(&self, building: &str) -> Result<Vec<WorkOrder>> {
        let mut inner = self.lock();
        let identity = inner.identity()?;
        let id = DocId::Orders {
            community: identity.community.clone(),
            building: building.to_string(),
        };
        Ok(match inner.doc(&id, &identity)? {
            Some(doc) => doc.read::<OrdersDoc>()?.orders.into_values().collect(),
            None => Vec::new(),
        })
    }

    /// Conflicts and server rejections that need a person.
    pub fn attention(&self) -> Result<Attention> {
        let mut inner = self.lock();
        let identity = inner.identity()?;
        let ids = inner.store.document_ids()?;
        let mut out = Attention::default();
        let mut by_campaign: BTreeMap<String, CampaignField> = BTreeMap::new();
        for id in &ids {
            if let Some(ServerStatus {
                verdict:
                    verdict @ (Verdict::Rejected | Verdict::Forbidden | Verdict::UpgradeRequired),
                reason,
                code,
                ..
            }) = crate::store::server_status(inner.store.conn(), id)?
            {
                out.rejections.push(crate::sync::Rejection {
                    doc: id.clone(),
                    // A server older than the codes sent only words: the verdict is the code.
                    code: code.unwrap_or_else(|| verdict.as_str().to_string()),
                    reason: reason.unwrap_or_else(|| "refused".into()),
                });
            }
            let Some(doc) = inner.doc(id, &identity)? else {
                continue;
            };
            match id.kind() {
                DocKind::Building => out.household_conflicts.extend(household_conflicts(doc)?),
                DocKind::Field => {
                    let field = doc.read::<FieldDoc>()?;
                    let entry = by_campaign.entry(field.campaign.clone()).or_default();
                    entry.rolls.push(field.roll);
                    entry.ballots.extend(field.ballots.into_values());
                    entry
                        .adjudications
                        .extend(field.adjudications.into_values());
                }
                _ => {}
            }
        }
        for (campaign, field) in by_campaign {
            let roll = Roll::from_slices(field.rolls.iter())
                .map_err(|e| Error::Shape(format!("roll of campaign {campaign}: {e}")))?;
            let resolution = ballots::resolve(&roll, &field.ballots, &field.adjudications, None);
            out.ballot_conflicts.extend(
                resolution
                    .conflicts
                    .into_iter()
                    .map(|c| (campaign.clone(), c)),
            );
        }
        Ok(out)
    }

    /// The officers' decisions on ballots in this phone's buildings, newest first.
    pub fn notices(&self) -> Result<Vec<Notice>> {
        let mut inner = self.lock();
        let identity = inner.identity()?;
        let seen: Millis = crate::store::setting(inner.store.conn(), keys::NOTICES_SEEN)?
            .map(|v| {
                v.parse()
                    .map_err(|_| Error::Corrupt(format!("{}: {v:?}", keys::NOTICES_SEEN)))
            })
            .transpose()?
            .unwrap_or(0);
        let mut out = Vec::new();
        for id in inner.store.document_ids()? {
            if id.kind() != DocKind::Field {
                continue;
            }
            let Some(doc) = inner.doc(&id, &identity)? else {
                continue;
            };
            let field = doc.read::<FieldDoc>()?;
            for a in field.adjudications.values() {
                let units = field
                    .roll
                    .values()
                    .filter(|e| e.voter_key == a.voter_key)
                    .map(|e| e.unit.clone())
                    .collect();
                let counted = a.chosen.as_ref().and_then(|b| field.ballots.get(b));
                out.push(Notice {
                    id: a.id.clone(),
                    campaign: field.campaign.clone(),
                    building: field.building.clone(),
                    units,
                    counted_ballot: a.chosen.clone(),
                    counted_unit: counted.map(|b| b.unit.clone()),
                    counted_by: counted.map(|b| b.by.clone()),
                    considered: a.considered.len(),
                    reason: a.reason.clone(),
                    at: a.at,
                    by: a.by.clone(),
                    unread: a.at > seen,
                });
            }
        }
        out.sort_by(|x, y| y.at.cmp(&x.at).then_with(|| y.id.cmp(&x.id)));
        Ok(out)
    }

    /// Marks every notice up to `at` (the newest one shown) as seen.
    pub fn mark_notices_seen(&self, at: Millis) -> Result<()> {
        let mut inner = self.lock();
        let tx = inner.store.transaction()?;
        crate::store::put_setting(&tx, keys::NOTICES_SEEN, &at.to_string())?;
        tx.commit(std::iter::empty())?;
        Ok(())
    }

    /// How many local changes the server has not acknowledged yet.
    pub fn pending_changes(&self) -> Result<usize> {
        let mut inner = self.lock();
        let identity = inner.identity()?;
        let ids = inner.store.document_ids()?;
        let mut pending = 0;
        for id in ids {
            let server_heads = crate::store::server_status(inner.store.conn(), &id)?
                .map(|s| s.server_heads)
                .unwrap_or_default();
            if let Some(unsynced) = inner.unsynced(&id, &identity, &server_heads)? {
                pending += unsynced.own_changes;
            }
        }
        Ok(pending)
    }

    /// Forget a document the server refused, so the next sync fetches the server's state.
    /// Other documents and their pending changes are untouched.
    pub fn reset_document(&self, id: &DocId) -> Result<()> {
        let mut inner = self.lock();
        inner.docs.remove(id);
        crate::sync::reset_document(&mut inner.store, id)
    }

    /// Enroll this install with the server at `server_url` using a one-time `code`: keep the
    /// device id and token, and the identity when the account already has a building (else the
    /// first sync after an assignment sets it). `label` names the phone on the dashboard.
    pub fn enroll(
        &self,
        transport: &dyn Transport,
        server_url: &str,
        code: &str,
        label: &str,
        app_version: &str,
    ) -> Result<Option<Identity>> {
        let enrollment = crate::sync::enroll_with(transport, code, label, app_version)?;
        self.with_store(|store| crate::sync::save_enrollment(store, server_url, &enrollment))?;
        let identity = crate::sync::identity_of(enrollment.device_id, &enrollment.account);
        if let Some(identity) = &identity {
            self.set_identity(identity)?;
        }
        Ok(identity)
    }

    /// Sync every document with news through `transport`, then keep the identity in step with
    /// the account's roles and buildings as the server reported them.
    pub fn sync(&self, transport: &dyn Transport, app_version: &str) -> Result<SyncReport> {
        let report = crate::sync::sync_shared(self, transport, app_version)?;
        let device = self.lock().store.device_id()?;
        if let Some(identity) = report
            .account
            .as_ref()
            .and_then(|account| crate::sync::identity_of(device, account))
            && self.identity()?.as_ref() != Some(&identity)
        {
            self.set_identity(&identity)?;
        }
        Ok(report)
    }

    /// The default HTTP transport to the server this install enrolled with.
    pub fn http_transport(&self) -> Result<HttpTransport> {
        let inner = self.lock();
        crate::store::setting(inner.store.conn(), crate::store::keys::SERVER_URL)?
            .map(|url| HttpTransport::new(&url))
            .ok_or(Error::NotEnrolled)
    }

    fn field_action(
        &self,
        campaign: &str,
        unit: &str,
        message: &str,
        make: impl FnOnce(
            &Identity,
            &crate::model::RollEntry,
            Millis,
        ) -> Result<(&'static str, String, Record)>,
    ) -> Result<String> {
        let mut inner = self.lock();
        let identity = inner.identity()?;
        let building = building_of(unit)?;
        let campaign_id = DocId::Campaign {
            campaign: campaign.to_string(),
        };
        let campaign_doc = inner
            .campaign(&campaign_id, &identity)?
            .ok_or_else(|| Error::NotFound(format!("campaign {campaign}")))?;
        let id = DocId::Field {
            campaign: campaign.to_string(),
            building: building.to_string(),
        };
        let roll = inner
            .field_index(&id, &identity)?
            .ok_or_else(|| Error::NotFound(format!("campaign {campaign} in building {building}")))?
            .roll
            .get(unit)
            .cloned()
            .ok_or_else(|| Error::Invalid(format!("unit {unit} is not on this campaign's roll")))?;
        let now = self.clock.now();
        let (collection, record_id, record) = make(&identity, &roll, now)?;
        inner.act(
            &id,
            &identity,
            Some(&campaign_doc),
            message,
            now,
            |doc| match &record {
                Record::Visit(v) => doc.put_record(collection, &record_id, v),
                Record::Delivery(d) => doc.put_record(collection, &record_id, d),
                Record::Ballot(b) => doc.put_record(collection, &record_id, b),
            },
            |views, before, after| {
                if let Some(index) = views.fields.get_mut(&id)
                    && index.heads == before
                {
                    index.value.add(&record);
                    index.heads = after.to_vec();
                }
            },
        )?;
        Ok(record_id)
    }
}

/// What of one document the server does not have yet, as of the heads it last reported.
#[derive(Debug, Clone)]
struct Unsynced {
    server_heads: Vec<ChangeHash>,
    /// Changes made on this device after the server's heads.
    own_changes: usize,
    /// The ids of the records (keys directly under a root collection) those changes wrote;
    /// `None` when this phone does not hold all of the server's heads (nothing is known to be
    /// on the server then).
    records: Option<BTreeSet<String>>,
}

impl Unsynced {
    fn of(doc: &mut Document, server_heads: &[ChangeHash], device: &uuid::Uuid) -> Unsynced {
        let am = doc.automerge();
        let known = !server_heads.is_empty()
            && server_heads
                .iter()
                .all(|h| am.get_change_by_hash(h).is_some());
        let changes = am.get_changes(server_heads);
        let mut unsynced = Unsynced {
            server_heads: server_heads.to_vec(),
            own_changes: 0,
            records: known.then(BTreeSet::new),
        };
        unsynced.add(doc, &changes, device);
        unsynced
    }

    /// Count `changes` (made after the server's heads) in.
    fn add(&mut self, doc: &mut Document, changes: &[automerge::Change], device: &uuid::Uuid) {
        self.own_changes += changes
            .iter()
            .filter(|c| crate::doc::actor_device(c.actor_id()) == Some(*device))
            .count();
        let Some(records) = &mut self.records else {
            return;
        };
        let am = doc.automerge();
        let collections: BTreeSet<String> = am
            .keys(ROOT)
            .filter_map(|key| match am.get(ROOT, key.as_str()) {
                Ok(Some((automerge::Value::Object(_), obj))) => Some(obj.to_string()),
                _ => None,
            })
            .collect();
        for change in changes {
            for op in change.decode().operations {
                if let automerge::legacy::Key::Map(key) = &op.key
                    && collections.contains(&op.obj.to_string())
                {
                    records.insert(key.to_string());
                }
            }
        }
    }
}

/// The field documents of one campaign that this phone holds.
#[derive(Default)]
struct CampaignField {
    rolls: Vec<BTreeMap<String, crate::model::RollEntry>>,
    ballots: Vec<Ballot>,
    adjudications: Vec<crate::model::Adjudication>,
}

enum Record {
    Visit(Visit),
    Delivery(Delivery),
    Ballot(Ballot),
}

/// The sync client takes the replica's store and open documents one step at a time, never
/// across the network; views of documents it changed are read again (they follow the heads).
impl crate::sync::StoreAccess for Replica {
    fn with_docs<T>(
        &self,
        f: impl FnOnce(&mut Store, &mut crate::sync::OpenDocs) -> Result<T>,
    ) -> Result<T> {
        let mut inner = self.lock();
        let Inner { store, docs, .. } = &mut *inner;
        f(store, docs)
    }
}

impl Inner {
    /// Forget every open document and view (the store changed under them).
    fn forget(&mut self) {
        self.docs.clear();
        self.views = Views::default();
        self.identity = None;
    }

    /// The enrolled identity (read from the store once).
    fn identity(&mut self) -> Result<Identity> {
        if self.identity.is_none() {
            self.identity = read_identity(&self.store)?;
        }
        self.identity.clone().ok_or(Error::NotEnrolled)
    }

    /// The open document `id`, loaded from the store on first use; `None` if not held.
    fn doc(&mut self, id: &DocId, identity: &Identity) -> Result<Option<&mut Document>> {
        crate::sync::open_document(&self.store, &mut self.docs, id, &identity.device)
    }

    /// The campaign definition in `id`, read again only when the document changed.
    fn campaign(&mut self, id: &DocId, identity: &Identity) -> Result<Option<Arc<Campaign>>> {
        let Inner {
            store, docs, views, ..
        } = self;
        cached_view(store, docs, &mut views.campaigns, id, identity, |doc| {
            Ok(doc.read::<CampaignDoc>()?.campaign)
        })
    }

    /// The building document `id`, read again only when it changed.
    fn building(&mut self, id: &DocId, identity: &Identity) -> Result<Option<Arc<BuildingDoc>>> {
        let Inner {
            store, docs, views, ..
        } = self;
        cached_view(store, docs, &mut views.buildings, id, identity, |doc| {
            doc.read::<BuildingDoc>()
        })
    }

    /// The index of field document `id`: built from the whole document when it is first read
    /// or changed by a sync, kept up to date by each action in between.
    fn field_index(&mut self, id: &DocId, identity: &Identity) -> Result<Option<&FieldIndex>> {
        let Some(doc) =
            crate::sync::open_document(&self.store, &mut self.docs, id, &identity.device)?
        else {
            return Ok(None);
        };
        let heads = doc.heads();
        let fresh = self
            .views
            .fields
            .get(id)
            .is_some_and(|cached| cached.heads == heads);
        if !fresh {
            let value = FieldIndex::of(&doc.read::<FieldDoc>()?);
            self.views
                .fields
                .insert(id.clone(), Cached { heads, value });
        }
        Ok(self.views.fields.get(id).map(|c| &c.value))
    }

    /// What the server does not have of document `id`, given the heads it last reported;
    /// counted once, then kept up to date by each action.
    fn unsynced(
        &mut self,
        id: &DocId,
        identity: &Identity,
        server_heads: &[ChangeHash],
    ) -> Result<Option<&Unsynced>> {
        let Some(doc) =
            crate::sync::open_document(&self.store, &mut self.docs, id, &identity.device)?
        else {
            return Ok(None);
        };
        let heads = doc.heads();
        let fresh = self
            .views
            .unsynced
            .get(id)
            .is_some_and(|c| c.heads == heads && c.value.server_heads == server_heads);
        if !fresh {
            let value = Unsynced::of(doc, server_heads, &identity.device);
            self.views
                .unsynced
                .insert(id.clone(), Cached { heads, value });
        }
        Ok(self.views.unsynced.get(id).map(|c| &c.value))
    }

    /// One user action: change, commit, check the rules, persist — or leave no trace. Once it
    /// is saved, `saved` updates the views with the heads before and after.
    #[allow(clippy::too_many_arguments)]
    fn act(
        &mut self,
        id: &DocId,
        identity: &Identity,
        campaign: Option<&Campaign>,
        message: &str,
        now: Millis,
        change: impl FnOnce(&mut Document) -> Result<()>,
        saved: impl FnOnce(&mut Views, &[ChangeHash], &[ChangeHash]),
    ) -> Result<()> {
        let writer = identity.writer();
        if self.doc(id, identity)?.is_none() {
            return Err(Error::NotFound(format!(
                "{id} is not on this phone yet; sync first"
            )));
        }
        let Inner {
            store, docs, views, ..
        } = self;
        let doc = docs
            .get_mut(id)
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        let before = doc.heads();
        let outcome = (|| {
            change(doc)?;
            doc.commit_at(message, now);
            let ctx = Context {
                writer: &writer,
                doc_id: id,
                campaign,
                now,
            };
            check_changes(&ctx, doc.automerge(), &before)?;
            let tx = store.transaction()?;
            let pending = tx.save(doc)?;
            tx.commit([pending])
        })();
        match outcome {
            Ok(()) => {
                let after = doc.heads();
                if let Some(cached) = views.unsynced.get_mut(id)
                    && cached.heads == before
                {
                    let change = doc.automerge().get_changes(&before);
                    cached.value.add(doc, &change, &identity.device);
                    cached.heads.clone_from(&after);
                }
                saved(views, &before, &after);
                Ok(())
            }
            Err(e) => {
                doc.revert_to(&before, &identity.device)?;
                Err(e)
            }
        }
    }
}

/// The typed view of document `id` in `cache`, read from the document only when its heads moved
/// since the view was made; `None` when the document is not held.
fn cached_view<T>(
    store: &Store,
    docs: &mut crate::sync::OpenDocs,
    cache: &mut BTreeMap<DocId, Cached<Arc<T>>>,
    id: &DocId,
    identity: &Identity,
    read: impl FnOnce(&Document) -> Result<T>,
) -> Result<Option<Arc<T>>> {
    let Some(doc) = crate::sync::open_document(store, docs, id, &identity.device)? else {
        return Ok(None);
    };
    let heads = doc.heads();
    if let Some(cached) = cache.get(id)
        && cached.heads == heads
    {
        return Ok(Some(cached.value.clone()));
    }
    let value = Arc::new(read(doc)?);
    cache.insert(
        id.clone(),
        Cached {
            heads,
            value: value.clone(),
        },
    );
    Ok(Some(value))
}

fn read_identity(store: &Store) -> Result<Option<Identity>> {
    match crate::store::setting(store.conn(), IDENTITY_KEY)? {
        Some(json) => serde_json::from_str(&json)
            .map(Some)
            .map_err(|e| Error::Corrupt(format!("identity setting: {e}"))),
        None => Ok(None),
    }
}

/// The building id of a unit code (`3-2-0501` → `3`).
fn building_of(unit: &str) -> Result<&str> {
    match unit.split('-').collect::<Vec<_>>().as_slice() {
        [b, _, _] if !b.is_empty() => Ok(b),
        _ => Err(Error::Invalid(format!("{unit:?} is not a unit code"))),
    }
}

/// Documents the replica holds that belong to a register (kept for callers that list them).
pub fn register_id(identity: &Identity) -> DocId {
    DocId::Register {
        community: identity.community.clone(),
    }
}

/// Read the register document if held.
pub fn read_register(replica: &Replica) -> Result<Option<RegisterDoc>> {
    let mut inner = replica.lock();
    let identity = inner.identity()?;
    let id = register_id(&identity);
    inner.doc(&id, &identity)?.map(|d| d.read()).transpose()
}

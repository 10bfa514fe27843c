//! The write rules (谁可以写什么): given who is writing, the campaign's state and the time, decide
//! whether a set of Automerge changes to a document is allowed, and say why not.
//!
//! Architecture Invariant: this module is the one place that decides what a write may touch. The
//! phone calls [`check_changes`] before it keeps a local change; the server calls it on a fork
//! before it stores anything a device sent. Both pass the same inputs and get the same answer.
//!
//! The check has two halves. The structural half walks every operation of every new change,
//! resolves the path of the object it writes into (so a write into a deleted or shadowed object
//! is still seen, which diff patches would miss) and matches it against what the writer's role
//! may touch. The semantic half reads the records those operations touched — after the changes
//! from the document itself, before them through automerge's `*_at` reads ([`At`]) — and checks
//! them: append-only collections only grow, references point into the frozen roll, the campaign
//! is in a state that accepts the work, work-order transitions follow the lifecycle. The cost
//! follows the size of the change, not of the document: nothing is forked or hydrated whole,
//! except when a document is created and for campaign definitions (small, admin-written).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use automerge::legacy::{Key, ObjectId, OpType};
use automerge::{AutoCommit, ChangeHash, ObjType, Prop, ROOT, ReadDoc, Value};
use autosurgeon::{Hydrate, hydrate, hydrate_prop};

use crate::doc::{BuildingDoc, CampaignDoc, DocId, DocKind, FieldDoc, OrdersDoc, actor_device};
use crate::model::{
    Adjudication, Answer, Ballot, Campaign, CampaignStatus, Delivery, Household, Millis,
    OrderStatus, QuestionKind, Role, RollEntry, Visit, WorkOrder,
};

macro_rules! rules {
    ($($(#[$doc:meta])* $name:ident = $code:literal,)*) => {
        /// Which rule refused a change: the stable machine code that travels unchanged from
        /// here through the server's JSON errors and the sync reply to the apps, which match on
        /// it (never on the words) and show their own sentence and next step.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[derive(serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Rule {
            $($(#[$doc])* $name,)*
        }

        impl Rule {
            /// Every rule, in declaration order (for documentation and its test).
            pub const ALL: &'static [Rule] = &[$(Rule::$name,)*];

            /// The machine code, as it appears on the wire.
            pub fn code(self) -> &'static str {
                match self {
                    $(Rule::$name => $code,)*
                }
            }

            /// The rule a machine code names.
            pub fn from_code(code: &str) -> Option<Rule> {
                match code {
                    $($code => Some(Rule::$name),)*
                    _ => None,
                }
            }
        }
    };
}

rules! {
    /// A change carries another device's actor id.
    ForeignActor = "foreign_actor",
    /// A change cannot be read against the document (unknown base, unknown object, wrong shape).
    MalformedChange = "malformed_change",
    /// Only admins may change this (register, units and owners, campaign definitions, the roll).
    AdminOnly = "admin_only",
    /// The building is not assigned to the writer.
    NotAssigned = "not_assigned",
    /// A campaign moves only forward.
    CampaignBackwards = "campaign_backwards",
    /// What publication froze (roll, rules, questions, history, identity) never changes.
    CampaignFrozen = "campaign_frozen",
    /// The unit has no household to correct.
    NoHousehold = "no_household",
    /// Building heads correct household details only.
    HouseholdFieldsOnly = "household_fields_only",
    /// A household's details are out of range or belong to another unit.
    InvalidHousehold = "invalid_household",
    /// Visits, deliveries, ballots, adjudications and order events are never edited or deleted.
    AppendOnly = "append_only",
    /// Only counting officers adjudicate conflicts.
    OfficersOnly = "officers_only",
    /// The roll is frozen.
    RollFrozen = "roll_frozen",
    /// Only the field records of a field document may be written.
    ForbiddenPath = "forbidden_path",
    /// The record belongs to another campaign.
    WrongCampaign = "wrong_campaign",
    /// The record's owner (voter key) does not match the roll, or a correction names another
    /// owner's ballot.
    OwnerMismatch = "owner_mismatch",
    /// The campaign is not known to the checker (a phone that has not synced it yet).
    UnknownCampaign = "unknown_campaign",
    /// An adjudication must choose among the ballots it considered and give a reason.
    InvalidAdjudication = "invalid_adjudication",
    /// A record must sit under its own UUID and name its own author.
    InvalidRecord = "invalid_record",
    /// The unit is not on this building's roll.
    NotOnRoll = "not_on_roll",
    /// The campaign no longer (or not yet) accepts this work.
    CampaignClosed = "campaign_closed",
    /// The grace period for ballots collected before the close has ended.
    GracePeriodEnded = "grace_period_ended",
    /// An answer does not fit its question (unknown question, candidate or option; too many).
    InvalidAnswer = "invalid_answer",
    /// After a work order is made only its status and assignee change.
    OrderFieldsLocked = "order_fields_locked",
    /// The work-order lifecycle does not allow this step.
    OrderTransition = "order_transition",
    /// Only a dispatcher reviews, publishes, dispatches and assigns work orders.
    DispatcherOnly = "dispatcher_only",
    /// Only the work order's assignee claims, works on and completes it.
    AssigneeOnly = "assignee_only",
    /// Dispatching a work order names its assignee.
    AssigneeRequired = "assignee_required",
    /// Closing needs the resident's confirmation or an admin override with a reason.
    ConfirmationRequired = "confirmation_required",
    /// A text, a key, a set of changes or the document exceeds its limit ([`Limits`]).
    TooLarge = "too_large",
}

/// The size limits every write is held to, on the phone before it stores and on the server
/// before it accepts, so that no device can make a record (or a document) that every other
/// phone of its building must then download and keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Characters in any text a change writes (a note, a name, a work order's detail).
    pub text_chars: usize,
    /// Characters in any map key (record ids are UUIDs, unit codes are short).
    pub key_chars: usize,
    /// Bytes of all the changes one check takes (one sync message's changes to one document,
    /// or one action on the phone).
    pub changes_bytes: usize,
    /// Operations a document may hold: Automerge numbers every operation, so the newest
    /// change's last operation number is the document's size, read without walking it. A
    /// visit is about ten operations: a building's field document reaches 100,000 at some
    /// 10,000 visits and ballots; the limit is ten times that.
    pub document_ops: u64,
}

/// The limits of this release.
pub const LIMITS: Limits = Limits {
    text_chars: 2_000,
    key_chars: 200,
    changes_bytes: 8 * 1024 * 1024,
    document_ops: 1_000_000,
};

fn too_large(detail: impl Into<String>) -> Violation {
    Violation::new(Rule::TooLarge, detail)
}

/// Holds the changes to [`LIMITS`] before anything reads what they wrote.
fn check_limits(changes: &[automerge::Change]) -> Result<(), Violation> {
    let bytes: usize = changes.iter().map(|c| c.raw_bytes().len()).sum();
    if bytes > LIMITS.changes_bytes {
        return Err(too_large(format!(
            "the changes are {bytes} bytes; at most {} are taken at once",
            LIMITS.changes_bytes
        )));
    }
    if let Some(ops) = changes.iter().map(|c| c.max_op()).max()
        && ops > LIMITS.document_ops
    {
        return Err(too_large(format!(
            "the document would hold {ops} operations; at most {} are allowed",
            LIMITS.document_ops
        )));
    }
    Ok(())
}

/// Holds one operation's key and value to [`LIMITS`].
fn check_op_limits(op: &automerge::legacy::Op) -> Result<(), Violation> {
    if let Key::Map(k) = &op.key
        && k.chars().count() > LIMITS.key_chars
    {
        return Err(too_large(format!(
            "a key of {} characters; at most {}",
            k.chars().count(),
            LIMITS.key_chars
        )));
    }
    let long = match &op.action {
        OpType::Put(automerge::ScalarValue::Str(s)) => s.chars().count(),
        // Bytes (nothing in the documents stores them today) are held to the same number.
        OpType::Put(automerge::ScalarValue::Bytes(b)) => b.len(),
        _ => 0,
    };
    if long > LIMITS.text_chars {
        return Err(too_large(format!(
            "a text of {long} characters; at most {} are allowed",
            LIMITS.text_chars
        )));
    }
    Ok(())
}

/// Why a change is not allowed: the rule (the machine code) and, for logs and admins, what
/// exactly broke it in English. Apps show their own words for [`Rule`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct Violation {
    pub rule: Rule,
    pub detail: String,
}

impl Violation {
    pub fn new(rule: Rule, detail: impl Into<String>) -> Violation {
        Violation {
            rule,
            detail: detail.into(),
        }
    }

    /// The machine code of the rule.
    pub fn code(&self) -> &'static str {
        self.rule.code()
    }
}

fn deny<T>(rule: Rule, detail: impl Into<String>) -> Result<T, Violation> {
    Err(Violation::new(rule, detail))
}

/// Who is writing: an account with its roles and assigned buildings, on one device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Writer {
    pub account: String,
    pub roles: Vec<Role>,
    /// Building ids assigned to this account (楼栋长 assignments).
    pub buildings: BTreeSet<String>,
    /// The device whose actor prefix every change must carry; `None` skips that check (used
    /// only for changes the server itself makes on an admin's behalf).
    pub device: Option<uuid::Uuid>,
}

impl Writer {
    pub fn is(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    fn is_admin(&self) -> bool {
        self.is(Role::Admin)
    }

    fn works_in(&self, building: &str) -> bool {
        self.is_admin() || (self.is(Role::BuildingHead) && self.buildings.contains(building))
    }
}

/// Everything the rules need besides the document itself.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub writer: &'a Writer,
    pub doc_id: &'a DocId,
    /// The campaign a field document belongs to, as the checker currently knows it.
    pub campaign: Option<&'a Campaign>,
    /// The checker's clock (server time on the server, phone time on the phone).
    pub now: Millis,
}

/// One operation, reduced to what the rules look at: the path of keys it writes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch {
    /// Map keys from the root to the written key; list positions appear as `[]`.
    pub path: Vec<String>,
    pub delete: bool,
}

/// Every path the changes after `before` write to, one per operation: how the rules and the
/// server's projections learn which records a change touched without reading the document.
pub fn touches(doc: &mut AutoCommit, before: &[ChangeHash]) -> Result<Vec<Touch>, Violation> {
    let changes = doc.get_changes(before);
    touches_of(doc, &changes)
}

fn touches_of(doc: &AutoCommit, changes: &[automerge::Change]) -> Result<Vec<Touch>, Violation> {
    // The path of each object written into: objects these changes create get theirs from the
    // operation that made them, older ones are looked up in the document once each.
    let mut paths: HashMap<ObjectId, Vec<String>> = HashMap::new();
    let mut touches = Vec::new();
    for change in changes {
        let actor = change.actor_id().clone();
        let start = change.start_op().get();
        for (i, op) in change.decode().operations.into_iter().enumerate() {
            check_op_limits(&op)?;
            let mut path = match &op.obj {
                ObjectId::Root => Vec::new(),
                obj => match paths.get(obj) {
                    Some(path) => path.clone(),
                    None => {
                        let path = object_path(doc, obj)?;
                        paths.insert(obj.clone(), path.clone());
                        path
                    }
                },
            };
            path.push(match &op.key {
                Key::Map(k) => k.to_string(),
                Key::Seq(_) => "[]".to_string(),
            });
            if let OpType::Make(_) = op.action {
                let made = ObjectId::Id(automerge::legacy::OpId(start + i as u64, actor.clone()));
                paths.insert(made, path.clone());
            }
            touches.push(Touch {
                path,
                delete: matches!(op.action, OpType::Delete),
            });
        }
    }
    Ok(touches)
}

/// What an allowed set of changes wrote, for whoever stores them (the server projects just
/// those records and counts the changes in its audit log).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    /// The paths the changes wrote, one per operation.
    pub touches: Vec<Touch>,
    /// How many changes there were.
    pub changes: usize,
    /// The records the rules read after the changes, by `(collection, key)`, so whoever stores
    /// them need not read them again. A touched record missing here was not read (or is gone).
    pub records: Records,
}

/// Records read by the rules, by `(collection, key)`.
pub type Records = BTreeMap<(String, String), Written>;

/// One record as the changes left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    Visit(Visit),
    Delivery(Delivery),
    Ballot(Ballot),
    Adjudication(Adjudication),
    Order(WorkOrder),
    Household(Household),
}

/// Decide whether every change after `before` in `doc` is allowed for `ctx`.
///
/// Changes that automerge 0.12 received without complaint can still make it panic when they
/// are read back (`fuzz/crashers/sync_message_rules/change-collector`): such a panic is caught
/// and refused as [`Rule::MalformedChange`]; the caller drops the document, as after any
/// refusal.
pub fn check_changes(
    ctx: &Context<'_>,
    doc: &mut AutoCommit,
    before: &[ChangeHash],
) -> Result<Checked, Violation> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_changes_of(ctx, doc, before)
    }))
    .unwrap_or_else(|_| {
        deny(
            Rule::MalformedChange,
            "the changes are malformed: automerge cannot read them back",
        )
    })
}

fn check_changes_of(
    ctx: &Context<'_>,
    doc: &mut AutoCommit,
    before: &[ChangeHash],
) -> Result<Checked, Violation> {
    let changes = doc.get_changes(before);
    if changes.is_empty() {
        return Ok(Checked::default());
    }
    for change in &changes {
        if let Some(device) = ctx.writer.device
            && actor_device(change.actor_id()) != Some(device)
        {
            return deny(
                Rule::ForeignActor,
                "a change carries another device's identity",
            );
        }
    }
    check_limits(&changes)?;
    let touches = touches_of(doc, &changes)?;
    let doc: &AutoCommit = doc;
    let old = At { doc, heads: before };
    let mut records = Records::new();
    check_schema_step(ctx, &touches, &old, doc)?;
    match ctx.doc_id.kind() {
        DocKind::Register => admin_only(ctx, "the register"),
        DocKind::Campaign => check_campaign(ctx, &old, doc),
        DocKind::Building => check_building(ctx, &touches, &old, doc, &mut records),
        DocKind::Field => check_field(ctx, &touches, &old, doc, &mut records),
        DocKind::Orders => check_orders(ctx, &touches, &old, doc, &mut records),
    }?;
    Ok(Checked {
        touches,
        changes: changes.len(),
        records,
    })
}

/// A document as it was at `heads`, read in place through automerge's `*_at` reads: what the
/// rules call "before" costs a lookup per record read, never a copy of the document.
pub struct At<'d> {
    pub doc: &'d AutoCommit,
    pub heads: &'d [ChangeHash],
}

impl At<'_> {
    /// True when nothing existed yet (a document being created).
    fn is_new(&self) -> bool {
        self.heads.is_empty()
    }
}

impl autosurgeon::ReadDoc for At<'_> {
    type Parents<'a>
        = automerge::Parents<'a>
    where
        Self: 'a;

    fn get_heads(&self) -> Vec<ChangeHash> {
        self.heads.to_vec()
    }

    fn get<P: Into<Prop>>(
        &self,
        obj: &automerge::ObjId,
        prop: P,
    ) -> Result<Option<(Value<'_>, automerge::ObjId)>, automerge::AutomergeError> {
        self.doc.get_at(obj, prop, self.heads)
    }

    fn object_type<O: AsRef<automerge::ObjId>>(&self, obj: O) -> Option<ObjType> {
        ReadDoc::object_type(self.doc, obj).ok()
    }

    fn map_range<'a, O, R>(&'a self, obj: O, range: R) -> automerge::iter::MapRange<'a>
    where
        R: std::ops::RangeBounds<String> + 'a,
        O: AsRef<automerge::ObjId>,
    {
        self.doc.map_range_at(obj, range, self.heads)
    }

    fn list_range<O: AsRef<automerge::ObjId>, R: std::ops::RangeBounds<usize>>(
        &self,
        obj: O,
        range: R,
    ) -> automerge::iter::ListRange<'_> {
        self.doc.list_range_at(obj, range, self.heads)
    }

    fn length<O: AsRef<automerge::ObjId>>(&self, obj: O) -> usize {
        self.doc.length_at(obj, self.heads)
    }

    fn text<O: AsRef<automerge::ObjId>>(
        &self,
        obj: O,
    ) -> Result<String, automerge::AutomergeError> {
        self.doc.text_at(obj, self.heads)
    }

    fn parents<O: AsRef<automerge::ObjId>>(
        &self,
        obj: O,
    ) -> Result<Self::Parents<'_>, automerge::AutomergeError> {
        self.doc.parents_at(obj, self.heads)
    }

    fn is_empty(&self) -> bool {
        self.doc.keys_at(ROOT, self.heads).next().is_none()
    }
}

/// The fields of each map one record is made of, as read by one pass over the map.
type MapFields = HashMap<String, (Value<'static>, automerge::ObjId)>;

/// A document read for hydrating one record: autosurgeon asks for a struct's fields one key
/// at a time, and each automerge `get` sets up a seek through the document's op columns; here
/// each map inside the record is read once with `map_range` and its fields answered from that.
/// The collection map the record sits in (which may hold thousands of records) is still read
/// key by key.
struct RecordReader<'d, D> {
    doc: &'d D,
    collection: automerge::ObjId,
    maps: std::cell::RefCell<HashMap<automerge::ObjId, MapFields>>,
}

impl<'d, D: autosurgeon::ReadDoc> RecordReader<'d, D> {
    fn new(doc: &'d D, collection: &automerge::ObjId) -> Self {
        RecordReader {
            doc,
            collection: collection.clone(),
            maps: Default::default(),
        }
    }
}

impl<D: autosurgeon::ReadDoc> autosurgeon::ReadDoc for RecordReader<'_, D> {
    type Parents<'a>
        = D::Parents<'a>
    where
        Self: 'a;

    fn get_heads(&self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    fn get<P: Into<Prop>>(
        &self,
        obj: &automerge::ObjId,
        prop: P,
    ) -> Result<Option<(Value<'_>, automerge::ObjId)>, automerge::AutomergeError> {
        let key = match prop.into() {
            Prop::Map(key) if *obj != self.collection => key,
            other => return self.doc.get(obj, other),
        };
        let mut maps = self.maps.borrow_mut();
        let fields = maps.entry(obj.clone()).or_insert_with(|| {
            self.doc
                .map_range(obj, ..)
                .map(|item| {
                    let id = item.id();
                    (item.key.to_string(), (item.value.into_value(), id))
                })
                .collect()
        });
        Ok(fields.get(&key).cloned())
    }

    fn object_type<O: AsRef<automerge::ObjId>>(&self, obj: O) -> Option<ObjType> {
        self.doc.object_type(obj)
    }

    fn map_range<'a, O, R>(&'a self, obj: O, range: R) -> automerge::iter::MapRange<'a>
    where
        R: std::ops::RangeBounds<String> + 'a,
        O: AsRef<automerge::ObjId>,
    {
        self.doc.map_range(obj, range)
    }

    fn list_range<O: AsRef<automerge::ObjId>, R: std::ops::RangeBounds<usize>>(
        &self,
        obj: O,
        range: R,
    ) -> automerge::iter::ListRange<'_> {
        self.doc.list_range(obj, range)
    }

    fn length<O: AsRef<automerge::ObjId>>(&self, obj: O) -> usize {
        self.doc.length(obj)
    }

    fn text<O: AsRef<automerge::ObjId>>(
        &self,
        obj: O,
    ) -> Result<String, automerge::AutomergeError> {
        self.doc.text(obj)
    }

    fn parents<O: AsRef<automerge::ObjId>>(
        &self,
        obj: O,
    ) -> Result<Self::Parents<'_>, automerge::AutomergeError> {
        self.doc.parents(obj)
    }

    fn is_empty(&self) -> bool {
        self.doc.is_empty()
    }
}

fn malformed(detail: impl Into<String>) -> Violation {
    Violation::new(Rule::MalformedChange, detail)
}

/// The object at `path` from the root (maps only), if every step exists.
fn object_at<D: autosurgeon::ReadDoc>(
    doc: &D,
    path: &[&str],
) -> Result<Option<automerge::ObjId>, Violation> {
    let mut obj = ROOT;
    for key in path {
        match autosurgeon::ReadDoc::get(doc, &obj, *key)
            .map_err(|e| malformed(format!("reading {key}: {e}")))?
        {
            Some((Value::Object(ObjType::Map), id)) => obj = id,
            _ => return Ok(None),
        }
    }
    Ok(Some(obj))
}

/// True when `key` exists in the map at `path`.
fn has_key<D: autosurgeon::ReadDoc>(doc: &D, path: &[&str], key: &str) -> Result<bool, Violation> {
    let Some(obj) = object_at(doc, path)? else {
        return Ok(false);
    };
    Ok(autosurgeon::ReadDoc::get(doc, &obj, key)
        .map_err(|e| malformed(format!("reading {key}: {e}")))?
        .is_some())
}

/// The record `collection/key`, typed; `None` when it is not there.
fn record<T: Hydrate, D: autosurgeon::ReadDoc>(
    doc: &D,
    collection: &str,
    key: &str,
) -> Result<Option<T>, Violation> {
    let Some(map) = object_at(doc, &[collection])? else {
        return Ok(None);
    };
    record_in(doc, &map, collection, key)
}

/// The record `key` of the collection map `map` (named `collection` in errors).
fn record_in<T: Hydrate, D: autosurgeon::ReadDoc>(
    doc: &D,
    map: &automerge::ObjId,
    collection: &str,
    key: &str,
) -> Result<Option<T>, Violation> {
    let shape = |e: String| {
        malformed(format!(
            "{collection}/{key} does not have the expected shape: {e}"
        ))
    };
    if autosurgeon::ReadDoc::get(doc, map, key)
        .map_err(|e| shape(e.to_string()))?
        .is_none()
    {
        return Ok(None);
    }
    hydrate_prop::<_, T, _, _>(&RecordReader::new(doc, map), map, key)
        .map(Some)
        .map_err(|e| shape(e.to_string()))
}

/// The keys leading from the root to `obj`, as seen in the document (visible or not).
fn object_path(doc: &AutoCommit, obj: &ObjectId) -> Result<Vec<String>, Violation> {
    if matches!(obj, ObjectId::Root) {
        return Ok(Vec::new());
    }
    let id = doc.import_obj(&obj.to_string()).map_err(|_| {
        Violation::new(
            Rule::MalformedChange,
            "a change writes into an unknown object",
        )
    })?;
    let parents = doc.parents(id).map_err(|_| {
        Violation::new(
            Rule::MalformedChange,
            "a change writes into an unknown object",
        )
    })?;
    Ok(parents
        .path()
        .into_iter()
        .map(|(_, prop)| match prop {
            Prop::Map(k) => k,
            Prop::Seq(_) => "[]".to_string(),
        })
        .collect())
}

fn read<T: Hydrate, D: autosurgeon::ReadDoc>(doc: &D, what: &str) -> Result<T, Violation> {
    hydrate(doc).map_err(|e| {
        Violation::new(
            Rule::MalformedChange,
            format!("{what} does not have the expected shape: {e}"),
        )
    })
}

/// True for a write to the document's root `schema`.
fn is_schema(touch: &Touch) -> bool {
    touch.path.len() == 1 && touch.path[0] == "schema"
}

/// The root `schema` moves only up, only to a schema this code knows, and only by an admin
/// (the server lifts what it stores when it upgrades: `doorstep_server::upgrade`).
fn check_schema_step(
    ctx: &Context<'_>,
    touches: &[Touch],
    before: &At<'_>,
    after: &AutoCommit,
) -> Result<(), Violation> {
    if !touches.iter().any(is_schema) || before.is_new() {
        return Ok(());
    }
    admin_only(ctx, "a document's schema")?;
    let schema = |doc: &dyn Fn() -> Result<u64, autosurgeon::HydrateError>| {
        doc().map_err(|e| malformed(format!("the document's schema: {e}")))
    };
    let old = schema(&|| hydrate_prop(before, ROOT, "schema"))?;
    let new = schema(&|| hydrate_prop(after, ROOT, "schema"))?;
    if new < old || new > crate::doc::SCHEMA_VERSION {
        return deny(
            Rule::MalformedChange,
            format!(
                "a document's schema moves up to at most {} (from {old} to {new})",
                crate::doc::SCHEMA_VERSION
            ),
        );
    }
    Ok(())
}

fn admin_only(ctx: &Context<'_>, what: &str) -> Result<(), Violation> {
    if ctx.writer.is_admin() {
        Ok(())
    } else {
        deny(Rule::AdminOnly, format!("only admins may change {what}"))
    }
}

// ---------------------------------------------------------------------------------------------
// Campaign documents: admin only, never backwards, frozen at publication.
// ---------------------------------------------------------------------------------------------

fn check_campaign(ctx: &Context<'_>, before: &At<'_>, after: &AutoCommit) -> Result<(), Violation> {
    admin_only(ctx, "campaign definitions")?;
    if before.is_new() {
        let _: CampaignDoc = read(after, "the campaign")?;
        return Ok(());
    }
    let old: CampaignDoc = read(before, "the campaign")?;
    let new: CampaignDoc = read(after, "the campaign")?;
    check_campaign_transition(&old.campaign, &new.campaign)
}

/// A campaign may move only forward, and what publication froze never changes again.
pub fn check_campaign_transition(old: &Campaign, new: &Campaign) -> Result<(), Violation> {
    if new.id != old.id || new.community != old.community {
        return deny(Rule::CampaignFrozen, "a campaign's identity never changes");
    }
    if new.status < old.status {
        return deny(
            Rule::CampaignBackwards,
            format!(
                "a campaign never goes backwards ({:?} → {:?})",
                old.status, new.status
            ),
        );
    }
    if old.status == CampaignStatus::Archived && new != old {
        return deny(Rule::CampaignFrozen, "an archived campaign is immutable");
    }
    if old.status.is_frozen() {
        let frozen_same = new.kind == old.kind
            && new.binding == old.binding
            && new.scope == old.scope
            && new.rules == old.rules
            && new.questions == old.questions
            && new.roll_hash == old.roll_hash
            && new.rules_hash == old.rules_hash;
        if !frozen_same {
            return deny(
                Rule::CampaignFrozen,
                "the roll, rules and questions are frozen since publication",
            );
        }
        for (status, at) in &old.status_times {
            if new.status_times.get(status) != Some(at) {
                return deny(Rule::CampaignFrozen, "the campaign's history never changes");
            }
        }
    }
    if new.status.is_frozen() && new.roll_hash.is_none() {
        return deny(
            Rule::CampaignFrozen,
            "a published campaign needs a frozen roll",
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Building documents: register fields for admins, household details for the assigned head.
// ---------------------------------------------------------------------------------------------

/// The household fields a building head may correct.
const HOUSEHOLD_FIELDS: [&str; 5] = ["contact_name", "phone", "occupancy", "residents", "note"];

fn check_building(
    ctx: &Context<'_>,
    touches: &[Touch],
    before: &At<'_>,
    after: &AutoCommit,
    records: &mut Records,
) -> Result<(), Violation> {
    if ctx.writer.is_admin() {
        let _: BuildingDoc = read(after, "the building")?;
        return Ok(());
    }
    let building = ctx.doc_id.building().unwrap_or_default();
    if !ctx.writer.works_in(building) {
        return deny(
            Rule::NotAssigned,
            format!("building {building} is not assigned to you"),
        );
    }
    let mut edited: BTreeSet<&str> = BTreeSet::new();
    for touch in touches {
        match touch.path.as_slice() {
            [households, unit, field, ..]
                if households == "households" && HOUSEHOLD_FIELDS.contains(&field.as_str()) =>
            {
                // A delete here is how a conflicting value gets overwritten; a field that ends
                // up missing fails the shape check on the result below.
                if !edited.contains(unit.as_str()) && !has_key(before, &["households"], unit)? {
                    return deny(
                        Rule::NoHousehold,
                        format!("unit {unit} has no household to edit"),
                    );
                }
                edited.insert(unit);
            }
            [first, ..] if first == "units" => {
                return deny(
                    Rule::AdminOnly,
                    "only admins may change the register's units, areas and owners",
                );
            }
            _ => {
                return deny(
                    Rule::HouseholdFieldsOnly,
                    "building heads may only correct household details",
                );
            }
        }
    }
    // Only household fields were written, so the units are as they were; each edited
    // household must still be whole and valid.
    for unit in edited {
        let Some(household) = record::<Household, _>(after, "households", unit)? else {
            continue;
        };
        if household.unit != unit {
            return deny(
                Rule::InvalidHousehold,
                "a household belongs to its own unit",
            );
        }
        if !(0..=99).contains(&household.residents) {
            return deny(Rule::InvalidHousehold, "residents must be between 0 and 99");
        }
        records.insert(
            ("households".into(), unit.to_string()),
            Written::Household(household),
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Field documents: append-only facts, unique ballots, adjudications by counting officers.
// ---------------------------------------------------------------------------------------------

/// The collections of a field document and who may append to them.
const FIELD_APPEND: [&str; 3] = ["visits", "deliveries", "ballots"];

/// The record collections of a field document, in the order their new records are checked.
const FIELD_RECORDS: [&str; 4] = ["visits", "deliveries", "ballots", "adjudications"];

fn check_field(
    ctx: &Context<'_>,
    touches: &[Touch],
    before: &At<'_>,
    after: &AutoCommit,
    records: &mut Records,
) -> Result<(), Violation> {
    let writer = ctx.writer;
    let building = ctx.doc_id.building().unwrap_or_default();
    let creating = before.is_new();
    if creating {
        // A field document is made whole at publication: its shape is checked whole, once.
        let _: FieldDoc = read(after, "the field record")?;
    }
    // The records these changes wrote into, each checked against the state before once.
    let mut added: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut roll_frozen: Option<bool> = None;
    for touch in touches {
        match touch.path.as_slice() {
            [coll, id, ..] if FIELD_APPEND.contains(&coll.as_str()) => {
                if !writer.works_in(building) {
                    return deny(
                        Rule::NotAssigned,
                        format!("building {building} is not assigned to you"),
                    );
                }
                if touch.delete
                    || (!added.contains(&(coll.as_str(), id.as_str()))
                        && has_key(before, &[coll], id)?)
                {
                    return deny(
                        Rule::AppendOnly,
                        format!(
                            "{coll} are append-only: record a new one (a ballot correction supersedes)"
                        ),
                    );
                }
                added.insert((coll, id));
            }
            [coll, id, ..] if coll == "adjudications" => {
                if !writer.is(Role::CountingOfficer) {
                    return deny(
                        Rule::OfficersOnly,
                        "only counting officers adjudicate conflicts",
                    );
                }
                if touch.delete
                    || (!added.contains(&(coll.as_str(), id.as_str()))
                        && has_key(before, &[coll], id)?)
                {
                    return deny(
                        Rule::AppendOnly,
                        "an adjudication is never edited; record a new one",
                    );
                }
                added.insert((coll, id));
            }
            [coll, ..] if coll == "roll" => {
                let frozen = match roll_frozen {
                    Some(frozen) => frozen,
                    None => {
                        let frozen = match object_at(before, &["roll"])? {
                            Some(roll) => before.doc.length_at(&roll, before.heads) > 0,
                            None => false,
                        };
                        *roll_frozen.insert(frozen)
                    }
                };
                if frozen {
                    return deny(Rule::RollFrozen, "the roll is frozen");
                }
                admin_only(ctx, "the roll")?;
            }
            // Checked by `check_schema_step`.
            _ if is_schema(touch) && writer.is_admin() => {}
            _ => {
                if !(writer.is_admin() && creating) {
                    return deny(
                        Rule::ForbiddenPath,
                        "only the field records of a field document may be written",
                    );
                }
            }
        }
    }

    let campaign = ctx.campaign;
    if let Some(c) = campaign {
        let of: String = hydrate_prop(after, ROOT, "campaign")
            .map_err(|e| malformed(format!("the field record's campaign: {e}")))?;
        if of != c.id {
            return deny(
                Rule::WrongCampaign,
                "the field record belongs to another campaign",
            );
        }
    }
    // Roll entries, each read once however many records name its unit.
    let roll = object_at(after, &["roll"])?;
    let entries: std::cell::RefCell<HashMap<String, RollEntry>> = Default::default();
    let roll_entry = |unit: &str| -> Result<RollEntry, Violation> {
        if let Some(entry) = entries.borrow().get(unit) {
            return Ok(entry.clone());
        }
        let entry = match &roll {
            Some(map) => record_in::<RollEntry, _>(after, map, "roll", unit)?,
            None => None,
        }
        .ok_or_else(|| {
            Violation::new(
                Rule::NotOnRoll,
                format!("unit {unit} is not on this building's roll"),
            )
        })?;
        entries.borrow_mut().insert(unit.to_string(), entry.clone());
        Ok(entry)
    };
    for collection in FIELD_RECORDS {
        for (_, id) in added.iter().filter(|(c, _)| *c == collection) {
            match collection {
                "visits" => {
                    let Some(visit) = record::<Visit, _>(after, collection, id)? else {
                        continue;
                    };
                    check_record_key(id, &visit.id)?;
                    check_author(ctx, &visit.by)?;
                    roll_entry(&visit.unit)?;
                    check_accepts_field_work(campaign, "visits")?;
                    records.insert((collection.into(), id.to_string()), Written::Visit(visit));
                }
                "deliveries" => {
                    let Some(delivery) = record::<Delivery, _>(after, collection, id)? else {
                        continue;
                    };
                    check_record_key(id, &delivery.id)?;
                    check_author(ctx, &delivery.by)?;
                    let entry = roll_entry(&delivery.unit)?;
                    if entry.voter_key != delivery.voter_key {
                        return deny(
                            Rule::OwnerMismatch,
                            "the delivery's owner does not match the roll",
                        );
                    }
                    check_accepts_field_work(campaign, "deliveries")?;
                    records.insert(
                        (collection.into(), id.to_string()),
                        Written::Delivery(delivery),
                    );
                }
                "ballots" => {
                    let Some(ballot) = record::<Ballot, _>(after, collection, id)? else {
                        continue;
                    };
                    check_ballot(ctx, after, id, &ballot, &roll_entry(&ballot.unit)?)?;
                    records.insert((collection.into(), id.to_string()), Written::Ballot(ballot));
                }
                _ => {
                    let Some(adj) = record::<Adjudication, _>(after, collection, id)? else {
                        continue;
                    };
                    check_record_key(id, &adj.id)?;
                    check_author(ctx, &adj.by)?;
                    if let Some(chosen) = &adj.chosen
                        && !adj.considered.contains(chosen)
                    {
                        return deny(
                            Rule::InvalidAdjudication,
                            "the chosen ballot must be one of those considered",
                        );
                    }
                    if adj.reason.trim().is_empty() {
                        return deny(Rule::InvalidAdjudication, "an adjudication needs a reason");
                    }
                    records.insert(
                        (collection.into(), id.to_string()),
                        Written::Adjudication(adj),
                    );
                }
            }
        }
    }
    Ok(())
}

/// A new ballot: its own id and author, the roll's owner, collected while the campaign takes
/// ballots, answers that fit the questions, and a correction only of the same owner's ballot.
fn check_ballot(
    ctx: &Context<'_>,
    after: &AutoCommit,
    id: &str,
    ballot: &Ballot,
    entry: &RollEntry,
) -> Result<(), Violation> {
    check_record_key(id, &ballot.id)?;
    check_author(ctx, &ballot.by)?;
    if entry.voter_key != ballot.voter_key {
        return deny(
            Rule::OwnerMismatch,
            "the ballot's owner does not match the roll",
        );
    }
    let campaign = ctx
        .campaign
        .ok_or_else(|| Violation::new(Rule::UnknownCampaign, "the campaign is unknown"))?;
    check_ballot_timing(campaign, ballot, ctx.now)?;
    check_answers(campaign, ballot)?;
    if let Some(prev) = &ballot.supersedes
        && let Some(prev_ballot) = record::<Ballot, _>(after, "ballots", prev)?
        && prev_ballot.voter_key != ballot.voter_key
    {
        return deny(
            Rule::OwnerMismatch,
            "a correction supersedes a ballot of the same owner",
        );
    }
    Ok(())
}

fn check_record_key(key: &str, id: &str) -> Result<(), Violation> {
    if key != id {
        return deny(Rule::InvalidRecord, "a record is stored under its own id");
    }
    if uuid::Uuid::parse_str(id).is_err() {
        return deny(
            Rule::InvalidRecord,
            "record ids are UUIDs made on the phone",
        );
    }
    Ok(())
}

fn check_author(ctx: &Context<'_>, by: &str) -> Result<(), Violation> {
    if by != ctx.writer.account {
        return deny(Rule::InvalidRecord, "a record names its own author");
    }
    Ok(())
}

fn check_accepts_field_work(campaign: Option<&Campaign>, what: &str) -> Result<(), Violation> {
    match campaign {
        Some(c) if c.status.accepts_field_work() => Ok(()),
        Some(c) => deny(
            Rule::CampaignClosed,
            format!(
                "the campaign is {:?}: it no longer accepts {what}",
                c.status
            ),
        ),
        None => deny(Rule::UnknownCampaign, "the campaign is unknown"),
    }
}

/// Ballots are accepted while the campaign is published or open; after the close only those
/// collected before the close that arrive within the grace period.
fn check_ballot_timing(campaign: &Campaign, ballot: &Ballot, now: Millis) -> Result<(), Violation> {
    match campaign.status {
        CampaignStatus::Published | CampaignStatus::Open => Ok(()),
        CampaignStatus::Closed => {
            let closed = campaign.closed_at().unwrap_or(Millis::MIN);
            if ballot.collected_at > closed {
                deny(
                    Rule::CampaignClosed,
                    "the ballot was collected after the campaign closed",
                )
            } else if now > closed.saturating_add(campaign.rules.grace_period_ms) {
                deny(
                    Rule::GracePeriodEnded,
                    "the grace period for ballots collected before the close has ended",
                )
            } else {
                Ok(())
            }
        }
        status => deny(
            Rule::CampaignClosed,
            format!("the campaign is {status:?}: it accepts no ballots"),
        ),
    }
}

fn check_answers(campaign: &Campaign, ballot: &Ballot) -> Result<(), Violation> {
    for (qid, answer) in &ballot.answers {
        let question = campaign.questions.get(qid).ok_or_else(|| {
            Violation::new(
                Rule::InvalidAnswer,
                format!("question {qid} is not on this campaign"),
            )
        })?;
        check_answer(&question.kind, answer)?;
    }
    Ok(())
}

/// An answer must fit its question: a choice for a resolution, known candidates within the
/// seats for an election, known options within the limit for a survey.
pub fn check_answer(kind: &QuestionKind, answer: &Answer) -> Result<(), Violation> {
    match kind {
        QuestionKind::Resolution { .. } => {
            if answer.choice.is_none()
                || !answer.candidates.is_empty()
                || !answer.options.is_empty()
            {
                return deny(
                    Rule::InvalidAnswer,
                    "a resolution is answered with 同意, 反对 or 弃权",
                );
            }
        }
        QuestionKind::Election { seats, candidates } => {
            if answer.choice.is_some() || !answer.options.is_empty() {
                return deny(Rule::InvalidAnswer, "an election is answered per candidate");
            }
            if let Some(unknown) = answer
                .candidates
                .keys()
                .find(|c| !candidates.contains_key(*c))
            {
                return deny(
                    Rule::InvalidAnswer,
                    format!("candidate {unknown} is not on the ballot"),
                );
            }
            let yes = answer
                .candidates
                .values()
                .filter(|c| **c == crate::model::Choice::Yes)
                .count();
            if yes as i64 > *seats {
                return deny(
                    Rule::InvalidAnswer,
                    format!("at most {seats} candidates may be approved"),
                );
            }
        }
        QuestionKind::Survey {
            options,
            max_choices,
        } => {
            if answer.choice.is_some() || !answer.candidates.is_empty() {
                return deny(Rule::InvalidAnswer, "a survey is answered with its options");
            }
            if let Some(unknown) = answer.options.iter().find(|o| !options.contains_key(*o)) {
                return deny(
                    Rule::InvalidAnswer,
                    format!("option {unknown} is not on the survey"),
                );
            }
            let distinct: BTreeSet<_> = answer.options.iter().collect();
            if distinct.len() != answer.options.len() || answer.options.len() as i64 > *max_choices
            {
                return deny(
                    Rule::InvalidAnswer,
                    format!("choose at most {max_choices} different options"),
                );
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Work orders (微心愿).
// ---------------------------------------------------------------------------------------------

fn check_orders(
    ctx: &Context<'_>,
    touches: &[Touch],
    before: &At<'_>,
    after: &AutoCommit,
    records: &mut Records,
) -> Result<(), Violation> {
    let writer = ctx.writer;
    let building = ctx.doc_id.building().unwrap_or_default();
    let creating = before.is_new();
    if creating {
        let _: OrdersDoc = read(after, "the work orders")?;
    }
    let dispatcher = writer.is(Role::Dispatcher) || writer.is_admin();
    if !(writer.works_in(building) || dispatcher) {
        return deny(
            Rule::NotAssigned,
            format!("building {building} is not assigned to you"),
        );
    }
    // Each order written into, and whether it existed before these changes.
    let mut touched: BTreeMap<&str, bool> = BTreeMap::new();
    for touch in touches {
        if touch.delete && !writer.is_admin() {
            return deny(
                Rule::AppendOnly,
                "work orders keep their history; nothing is deleted",
            );
        }
        let existed = match touch.path.as_slice() {
            [orders, id, ..] if orders == "orders" => match touched.get(id.as_str()) {
                Some(existed) => *existed,
                None => *touched
                    .entry(id)
                    .or_insert(has_key(before, &["orders"], id)?),
            },
            _ => false,
        };
        match touch.path.as_slice() {
            [orders, _, ..] if orders == "orders" && !existed => {}
            [orders, id, events, eid, ..] if orders == "orders" && events == "events" => {
                if has_key(before, &["orders", id, "events"], eid)? {
                    return deny(Rule::AppendOnly, "a work order's history is append-only");
                }
            }
            [orders, _, field] if orders == "orders" && field == "assignee" => {}
            _ if writer.is_admin() => {}
            _ if creating => {
                return deny(Rule::AdminOnly, "only admins create the work order list");
            }
            _ => {
                return deny(
                    Rule::OrderFieldsLocked,
                    "only a work order's status and assignee change after it is made",
                );
            }
        }
    }
    for (id, existed) in touched {
        let Some(order) = record::<WorkOrder, _>(after, "orders", id)? else {
            continue;
        };
        if existed {
            let prev = record::<WorkOrder, _>(before, "orders", id)?;
            check_order_events(ctx, prev.as_ref(), &order)?;
        } else {
            check_record_key(id, &order.id)?;
            check_author(ctx, &order.created_by)?;
            check_order_events(ctx, None, &order)?;
        }
        records.insert(("orders".into(), id.to_string()), Written::Order(order));
    }
    Ok(())
}

/// Replay the new events of `order` on top of its previous state and check each transition.
fn check_order_events(
    ctx: &Context<'_>,
    prev: Option<&WorkOrder>,
    order: &WorkOrder,
) -> Result<(), Violation> {
    let writer = ctx.writer;
    let mut state = prev.cloned().unwrap_or_else(|| WorkOrder {
        events: BTreeMap::new(),
        assignee: None,
        ..order.clone()
    });
    // New events are those under a key the order's history did not have; each must be stored
    // under its own id, so that an event cannot hide behind the id of an old one.
    let mut new_events = Vec::new();
    for (key, event) in &order.events {
        if !state.events.contains_key(key) {
            check_record_key(key, &event.id)?;
            new_events.push(event);
        }
    }
    new_events.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
    let assignee_changed = prev.is_some_and(|p| p.assignee != order.assignee)
        || (prev.is_none() && order.assignee.is_some());
    for event in new_events {
        check_author(ctx, &event.by)?;
        let from = state.status();
        if !order_transition_allowed(from, event.to) {
            return deny(
                Rule::OrderTransition,
                format!("a work order cannot go from {from:?} to {:?}", event.to),
            );
        }
        let dispatcher = writer.is(Role::Dispatcher) || writer.is_admin();
        match event.to {
            OrderStatus::UnderReview
            | OrderStatus::Rejected
            | OrderStatus::Merged
            | OrderStatus::Published
            | OrderStatus::Dispatched
                if !dispatcher =>
            {
                return deny(
                    Rule::DispatcherOnly,
                    "only a dispatcher reviews, publishes and dispatches work orders",
                );
            }
            OrderStatus::Claimed if order.assignee.as_deref() != Some(&writer.account) => {
                return deny(
                    Rule::AssigneeOnly,
                    "claiming a work order makes you its assignee",
                );
            }
            OrderStatus::Dispatched if order.assignee.is_none() => {
                return deny(
                    Rule::AssigneeRequired,
                    "dispatching a work order names its assignee",
                );
            }
            OrderStatus::InProgress | OrderStatus::Done
                if order.assignee.as_deref() != Some(&writer.account) =>
            {
                return deny(
                    Rule::AssigneeOnly,
                    "only the assignee works on and completes a work order",
                );
            }
            OrderStatus::Closed
                if from != OrderStatus::Confirmed && !admin_override(writer, event) =>
            {
                return deny(
                    Rule::ConfirmationRequired,
                    "closing needs the resident's confirmation or an admin override with a reason",
                );
            }
            _ => {}
        }
        state.events.insert(event.id.clone(), event.clone());
    }
    if assignee_changed {
        let claimed_by_self = order.assignee.as_deref() == Some(&writer.account)
            && state.status() == OrderStatus::Claimed;
        if !(writer.is(Role::Dispatcher) || writer.is_admin() || claimed_by_self) {
            return deny(
                Rule::DispatcherOnly,
                "only a dispatcher assigns work orders",
            );
        }
    }
    Ok(())
}

/// An admin may close a work order without the resident's confirmation when they give a reason.
fn admin_override(writer: &Writer, event: &crate::model::OrderEvent) -> bool {
    writer.is_admin() && !event.note.trim().is_empty()
}

/// The 微心愿 lifecycle: submitted → under_review → (rejected | merged) → published →
/// dispatched/claimed → in_progress → done → (confirmed | disputed → in_progress | unreachable)
/// → closed.
pub fn order_transition_allowed(from: OrderStatus, to: OrderStatus) -> bool {
    use OrderStatus::*;
    matches!(
        (from, to),
        (Submitted, UnderReview)
            | (UnderReview, Rejected | Merged | Published)
            | (Published, Dispatched | Claimed)
            | (Dispatched | Claimed, InProgress)
            | (InProgress, Done)
            | (Done, Confirmed | Disputed | Unreachable)
            | (Disputed, InProgress)
            | (
                Confirmed | Unreachable | Rejected | Merged | Disputed | Done,
                Closed
            )
    )
}

//! `sync_message_rules`: one document's Automerge sync message as the server handles it in
//! `work_one` (`server/src/sync.rs`, crate-private, so its steps are repeated here): decode the
//! message, receive it into the cached document, and when the heads moved run
//! `rules::check_changes` exactly as the server does, then save the accepted changes and answer.
//!
//! The documents are those of one building of the sample register (`core/testdata`) with a
//! published, opened campaign, each with some field work, household edits and a work order
//! already in it, built once through core's public API and loaded as the server loads stored
//! documents. The first bytes of an input choose the document, the writer, the campaign the
//! rules see and the server's clock; the next byte how the rest becomes a sync message:
//!
//! * 0: a program of edits made on the phone's replica (typed records through autosurgeon, or
//!   raw puts, deletes, objects, counters and text at paths found in the document), committed
//!   and sent as the phone's sync client sends it (one uncompressed bundle when there are
//!   several changes);
//! * 1: the bytes are the sync message;
//! * 2: the bytes are one chunk (change, compressed change, bundle or whole document) given a
//!   valid header and checksum, sent in a sync message.
//!
//! Any panic is a crash. Changes the rules accept must also leave the document readable as its
//! typed shape (for every writer on field, building and campaign documents; for non-admins on
//! work orders) with every new record under its own id and naming its writer: the rules promise
//! both (`Rule::MalformedChange`, `Rule::InvalidRecord`).
//!
//! Shared by the fuzz target, its seed maker and `core/tests/fuzz_crashers.rs` (included there
//! with `#[path]`), so it uses only doorstep-core and its dependencies.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use automerge::sync::{self as am_sync, BloomFilter, Have, SyncDoc};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{
    ActorId, AutoCommit, LoadOptions, ObjId, ObjType, OnPartialLoad, Prop, ROOT, ReadDoc,
    ScalarValue, Value,
};
use autosurgeon::{Hydrate, Reconcile, hydrate, reconcile_prop};
use doorstep_core::campaign;
use doorstep_core::doc::{BuildingDoc, CampaignDoc, DocId, DocKind, Document, FieldDoc, OrdersDoc};
use doorstep_core::import;
use doorstep_core::model::{
    Adjudication, Answer, Ballot, Campaign, CampaignKind, CampaignStatus, Candidate, Choice,
    Delivery, DoorOutcome, Household, Millis, Occupancy, OrderEvent, OrderStatus, Question,
    QuestionKind, Role, Rules, Scope, SurveyOption, Visit, WorkOrder,
};
use doorstep_core::rules::{self, Checked, Context, Violation, Writer};
use sha2::{Digest, Sha256};
use uuid::Uuid;

const SAMPLE: &[u8] = include_bytes!("../../core/testdata/taipingyang-garden.csv");
const COMMUNITY: &str = "tpy";
const BUILDING: &str = "3";
const CAMPAIGN: &str = "0190a000-0000-7000-8000-00000000c001";

/// The server's device (the actor prefix of what it writes) and the phone's.
const SERVER: Uuid = Uuid::from_u128(0x0190_a000_0000_7000_8000_0000_0000_5e71);
const DEVICE: Uuid = Uuid::from_u128(0x0190_a000_0000_7000_8000_0000_0000_d001);
const OTHER_DEVICE: Uuid = Uuid::from_u128(0x0190_a000_0000_7000_8000_0000_0000_d002);

const T_IMPORT: Millis = 1_700_000_000_000;
const T_PUBLISH: Millis = T_IMPORT + 3_600_000;
const T_OPEN: Millis = T_PUBLISH + 3_600_000;
const T_WORK: Millis = T_OPEN + 3_600_000;
const T_CLOSE: Millis = T_OPEN + 7 * 24 * 3_600_000;
const T_TALLY: Millis = T_CLOSE + 2 * 24 * 3_600_000;
const GRACE: Millis = 24 * 3_600_000;

/// The server clocks an input can pick.
const NOWS: [Millis; 6] = [
    T_WORK,
    T_CLOSE - 1,
    T_CLOSE + GRACE,
    T_CLOSE + GRACE + 1,
    0,
    Millis::MAX,
];

/// Times a record can carry.
const TIMES: [Millis; 10] = [
    T_WORK,
    T_CLOSE,
    T_CLOSE + 1,
    T_CLOSE - 1,
    0,
    -1,
    Millis::MIN,
    Millis::MAX,
    T_PUBLISH - 1,
    T_TALLY,
];

/// Record ids already in the documents.
const VISIT: &str = "0190a000-0000-7000-8000-0000000a0001";
const DELIVERY: &str = "0190a000-0000-7000-8000-0000000a0002";
const BALLOT: &str = "0190a000-0000-7000-8000-0000000a0003";
const BALLOT_2: &str = "0190a000-0000-7000-8000-0000000a0004";
const ADJUDICATION: &str = "0190a000-0000-7000-8000-0000000a0005";
const ORDER: &str = "0190a000-0000-7000-8000-0000000a0006";
const EVENTS: [&str; 3] = [
    "0190a000-0000-7000-8000-0000000a0007",
    "0190a000-0000-7000-8000-0000000a0008",
    "0190a000-0000-7000-8000-0000000a0009",
];

const ACCOUNTS: [&str; 5] = ["head3", "head4", "admin", "officer", "dispatcher"];

/// Keys and values worth trying: the documents' field names, collections, enum spellings.
const WORDS: &[&str] = &[
    "visits",
    "deliveries",
    "ballots",
    "adjudications",
    "roll",
    "households",
    "units",
    "orders",
    "events",
    "schema",
    "campaign",
    "building",
    "community",
    "buildings",
    "id",
    "unit",
    "outcome",
    "note",
    "at",
    "by",
    "voter_key",
    "answers",
    "collected_at",
    "supersedes",
    "considered",
    "chosen",
    "reason",
    "contact_name",
    "phone",
    "occupancy",
    "residents",
    "title",
    "detail",
    "created_at",
    "created_by",
    "assignee",
    "to",
    "status",
    "status_times",
    "questions",
    "rules",
    "kind",
    "choice",
    "candidates",
    "options",
    "area",
    "owner_key",
    "owner_names",
    "q1",
    "q2",
    "q3",
    "c1",
    "o1",
    "closed",
    "yes",
    "no",
    "not_home",
    "collected",
    "submitted",
    "claimed",
    "in_progress",
    "done",
    "confirmed",
    "owner_occupied",
    "",
    "[]",
];

/// One document as the server holds it and as the phone holds it.
pub struct Held {
    pub id: DocId,
    /// Loaded from its saved bytes as the server loads a stored document.
    pub server: AutoCommit,
    /// The same bytes on the phone, with the phone's actor for this opening.
    pub phone: AutoCommit,
}

/// Everything an input can choose from.
pub struct World {
    /// Field, building, orders, campaign and register documents, in that order.
    pub docs: Vec<Held>,
    /// Head of building 3, head of building 4, admin, counting officer, dispatcher; one device.
    pub writers: Vec<Writer>,
    /// The campaign as the rules may see it: open, closed, published, tallied, unknown.
    pub campaigns: Vec<Option<Campaign>>,
    /// Unit codes of the roll with their voter keys.
    pub units: Vec<(String, String)>,
    /// Record ids present in the documents (any collection).
    pub ids: Vec<String>,
    /// Field and orders documents as they are, for what the oracle calls new.
    field_before: FieldDoc,
    building_before: BuildingDoc,
    orders_before: OrdersDoc,
}

/// The world, built on first use.
pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(build)
}

/// An actor of `device` for its `n`th opening of a document (deterministic, so that inputs
/// replay to the same change hashes).
fn actor(device: &Uuid, n: u8) -> ActorId {
    let mut bytes = device.as_bytes().to_vec();
    bytes.extend_from_slice(&[n; 8]);
    ActorId::from(bytes)
}

fn writer(account: &str, roles: Vec<Role>, building: Option<&str>) -> Writer {
    Writer {
        account: account.to_string(),
        roles,
        buildings: building
            .map(|b| BTreeSet::from([b.to_string()]))
            .unwrap_or_default(),
        device: Some(DEVICE),
    }
}

fn draft() -> Campaign {
    let resolution = Question {
        id: "q1".into(),
        order: 1,
        text: "续聘物业".into(),
        kind: QuestionKind::Resolution { matter: 4 },
    };
    let election = Question {
        id: "q2".into(),
        order: 2,
        text: "选举业委会委员".into(),
        kind: QuestionKind::Election {
            seats: 5,
            candidates: (1..=6)
                .map(|i| {
                    let id = format!("c{i}");
                    let candidate = Candidate {
                        id: id.clone(),
                        name: format!("候选人{i}"),
                        order: i,
                    };
                    (id, candidate)
                })
                .collect(),
        },
    };
    let survey = Question {
        id: "q3".into(),
        order: 3,
        text: "停车方案".into(),
        kind: QuestionKind::Survey {
            options: (1..=3)
                .map(|i| {
                    let id = format!("o{i}");
                    let option = SurveyOption {
                        id: id.clone(),
                        label: format!("方案{i}"),
                        order: i,
                    };
                    (id, option)
                })
                .collect(),
            max_choices: 2,
        },
    };
    Campaign {
        id: CAMPAIGN.into(),
        community: COMMUNITY.into(),
        title: "业主大会".into(),
        kind: CampaignKind::Resolution,
        binding: true,
        scope: Scope::Building {
            building: BUILDING.into(),
        },
        rules: Rules::default(),
        questions: [resolution, election, survey]
            .into_iter()
            .map(|q| (q.id.clone(), q))
            .collect(),
        status: CampaignStatus::Draft,
        status_times: BTreeMap::new(),
        roll_hash: None,
        rules_hash: None,
    }
}

/// A new document written by the server at `at`.
fn created<R: Reconcile>(id: DocId, value: &R, at: Millis) -> Document {
    let mut doc = Document::new(id, &SERVER);
    doc.automerge().set_actor(actor(&SERVER, 1));
    doc.write(value).expect("the world's documents reconcile");
    doc.commit_at("create", at);
    doc
}

fn record<R: Reconcile>(doc: &mut Document, collection: &str, key: &str, value: &R) {
    doc.put_record(collection, key, value)
        .expect("the world's records reconcile");
}

fn build() -> World {
    let register = import::parse_csv(COMMUNITY, "太平洋花园", SAMPLE).expect("the sample imports");
    let building = register
        .buildings
        .iter()
        .find(|b| b.building.id == BUILDING)
        .cloned()
        .expect("building 3");
    let publication =
        campaign::publish(&draft(), std::slice::from_ref(&building), T_PUBLISH).expect("publish");
    let open =
        campaign::advance(&publication.campaign, CampaignStatus::Open, T_OPEN).expect("open");
    let closed = campaign::advance(&open, CampaignStatus::Closed, T_CLOSE).expect("close");
    let tallied = campaign::advance(&closed, CampaignStatus::Tallied, T_TALLY).expect("tally");
    let field_doc = publication
        .field_docs
        .iter()
        .find(|f| f.building == BUILDING)
        .cloned()
        .expect("a field document for building 3");
    let units: Vec<(String, String)> = field_doc
        .roll
        .values()
        .map(|e| (e.unit.clone(), e.voter_key.clone()))
        .collect();
    let (unit, voter) = units[0].clone();
    let (unit_2, voter_2) = units[1].clone();

    // The field document: published by the server, then a day of the head's work on the
    // phone and an officer's adjudication.
    let mut field = created(
        DocId::Field {
            campaign: CAMPAIGN.into(),
            building: BUILDING.into(),
        },
        &field_doc,
        T_PUBLISH,
    );
    field.automerge().set_actor(actor(&DEVICE, 1));
    let visit = Visit {
        id: VISIT.into(),
        unit: unit.clone(),
        outcome: DoorOutcome::Collected,
        note: "业主在家".into(),
        at: T_WORK,
        by: "head3".into(),
    };
    record(&mut field, "visits", VISIT, &visit);
    let delivery = Delivery {
        id: DELIVERY.into(),
        voter_key: voter.clone(),
        unit: unit.clone(),
        at: T_WORK,
        by: "head3".into(),
    };
    record(&mut field, "deliveries", DELIVERY, &delivery);
    field.commit_at("visit", T_WORK);
    let answers = |choice| {
        BTreeMap::from([(
            "q1".to_string(),
            Answer {
                choice: Some(choice),
                ..Answer::default()
            },
        )])
    };
    let ballot = Ballot {
        id: BALLOT.into(),
        voter_key: voter.clone(),
        unit: unit.clone(),
        answers: answers(Choice::Yes),
        collected_at: T_WORK,
        by: "head3".into(),
        supersedes: None,
        method: None,
    };
    record(&mut field, "ballots", BALLOT, &ballot);
    field.commit_at("ballot", T_WORK);
    let ballot_2 = Ballot {
        id: BALLOT_2.into(),
        voter_key: voter_2,
        unit: unit_2,
        answers: answers(Choice::No),
        collected_at: T_WORK,
        by: "head3".into(),
        supersedes: None,
        method: None,
    };
    record(&mut field, "ballots", BALLOT_2, &ballot_2);
    field.commit_at("ballot", T_WORK);
    let adjudication = Adjudication {
        id: ADJUDICATION.into(),
        voter_key: voter,
        considered: vec![BALLOT.into()],
        chosen: Some(BALLOT.into()),
        reason: "唯一有效票".into(),
        at: T_WORK,
        by: "officer".into(),
    };
    record(&mut field, "adjudications", ADJUDICATION, &adjudication);
    field.commit_at("adjudicate", T_WORK);

    // The building document: imported, then one household corrected by the head.
    let mut building_doc = created(
        DocId::Building {
            community: COMMUNITY.into(),
            building: BUILDING.into(),
        },
        &building,
        T_IMPORT,
    );
    building_doc.automerge().set_actor(actor(&DEVICE, 1));
    let mut household = building.households[&unit].clone();
    household.phone = "13900000000".into();
    household.occupancy = Occupancy::Rented;
    record(&mut building_doc, "households", &unit, &household);
    building_doc.commit_at("household", T_WORK);

    // The work orders: one made by the head, reviewed, published and dispatched to them.
    let mut orders = created(
        DocId::Orders {
            community: COMMUNITY.into(),
            building: BUILDING.into(),
        },
        &OrdersDoc {
            schema: 1,
            community: COMMUNITY.into(),
            building: BUILDING.into(),
            orders: BTreeMap::new(),
        },
        T_IMPORT,
    );
    orders.automerge().set_actor(actor(&DEVICE, 1));
    let mut order = WorkOrder {
        id: ORDER.into(),
        unit: unit.clone(),
        title: "楼道灯坏了".into(),
        detail: "三楼".into(),
        created_at: T_WORK,
        created_by: "head3".into(),
        assignee: None,
        events: BTreeMap::new(),
    };
    record(&mut orders, "orders", ORDER, &order);
    orders.commit_at("order", T_WORK);
    orders.automerge().set_actor(actor(&SERVER, 1));
    let steps = [
        OrderStatus::UnderReview,
        OrderStatus::Published,
        OrderStatus::Dispatched,
    ];
    for (i, (id, to)) in EVENTS.iter().zip(steps).enumerate() {
        order.events.insert(
            id.to_string(),
            OrderEvent {
                id: id.to_string(),
                to,
                at: T_WORK + 1 + i as Millis,
                by: "dispatcher".into(),
                note: String::new(),
            },
        );
    }
    order.assignee = Some("head3".into());
    record(&mut orders, "orders", ORDER, &order);
    orders.commit_at("dispatch", T_WORK + 10);

    // The campaign document: published, then opened.
    let campaign_id = DocId::Campaign {
        campaign: CAMPAIGN.into(),
    };
    let mut campaign_doc = created(
        campaign_id,
        &CampaignDoc {
            schema: 1,
            campaign: publication.campaign.clone(),
        },
        T_PUBLISH,
    );
    campaign_doc
        .write(&CampaignDoc {
            schema: 1,
            campaign: open.clone(),
        })
        .expect("open");
    campaign_doc.commit_at("open", T_OPEN);

    let register_doc: Document = created(
        DocId::Register {
            community: COMMUNITY.into(),
        },
        &register.register,
        T_IMPORT,
    );

    let field_before: FieldDoc = field.read().expect("the field document reads");
    let building_before: BuildingDoc = building_doc.read().expect("the building reads");
    let orders_before: OrdersDoc = orders.read().expect("the orders read");
    let docs = [field, building_doc, orders, campaign_doc, register_doc]
        .into_iter()
        .map(|mut doc| {
            let bytes = doc.snapshot();
            let options = LoadOptions::new().on_partial_load(OnPartialLoad::Error);
            let server = AutoCommit::load_with_options(&bytes, options)
                .expect("the server loads it")
                .with_actor(actor(&SERVER, 2));
            let phone = AutoCommit::load(&bytes)
                .expect("the phone loads it")
                .with_actor(actor(&DEVICE, 2));
            Held {
                id: doc.id().clone(),
                server,
                phone,
            }
        })
        .collect();
    let mut ids: Vec<String> = [VISIT, DELIVERY, BALLOT, BALLOT_2, ADJUDICATION, ORDER]
        .into_iter()
        .chain(EVENTS)
        .map(str::to_string)
        .collect();
    ids.push(CAMPAIGN.into());
    World {
        docs,
        writers: vec![
            writer("head3", vec![Role::BuildingHead], Some(BUILDING)),
            writer("head4", vec![Role::BuildingHead], Some("4")),
            writer("admin", vec![Role::Admin], None),
            writer("officer", vec![Role::CountingOfficer], None),
            writer("dispatcher", vec![Role::Dispatcher], None),
        ],
        campaigns: vec![
            Some(open),
            Some(closed),
            Some(publication.campaign),
            Some(tallied),
            None,
        ],
        units,
        ids,
        field_before,
        building_before,
        orders_before,
    }
}

// ---------------------------------------------------------------------------------------------
// Reading an input.
// ---------------------------------------------------------------------------------------------

/// The bytes of an input, read front to back; zeros once they run out.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { self.byte() as usize % n }
    }

    fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }

    fn time(&mut self) -> Millis {
        match self.byte() {
            b if (b as usize) < TIMES.len() * 20 => TIMES[b as usize % TIMES.len()],
            b => T_WORK + i64::from(b),
        }
    }

    fn int(&mut self) -> i64 {
        match self.below(6) {
            0 => i64::from(self.byte() as i8),
            1 => self.time(),
            2 => 99 + i64::from(self.byte() % 4),
            3 => i64::from(self.byte()) * 1_000_000,
            4 => -1,
            _ => i64::from(self.byte()),
        }
    }

    /// A string: a word, an id or unit of the world, an account, a fresh UUID, raw bytes, or
    /// one long enough for the size limits.
    fn text(&mut self, world: &World) -> String {
        match self.below(8) {
            0 | 1 => self.pick(WORDS).to_string(),
            2 => self.pick(&world.ids),
            3 => self.pick(&world.units).0,
            4 => self.pick(&ACCOUNTS).to_string(),
            5 => {
                let n = (u64::from(self.byte()) << 8) | u64::from(self.byte());
                format!("0190b000-0000-7000-8000-{n:012x}")
            }
            6 => {
                let len = self.below(24);
                let bytes: Vec<u8> = (0..len).map(|_| self.byte()).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            }
            _ => match self.below(4) {
                0 => "x".repeat(2_001),
                1 => "键".repeat(201),
                2 => self.pick(&world.units).1,
                _ => String::new(),
            },
        }
    }

    /// A record id: usually a fresh UUID, sometimes anything.
    fn id(&mut self, world: &World) -> String {
        if self.below(4) == 0 {
            self.text(world)
        } else {
            let n = (u64::from(self.byte()) << 8) | u64::from(self.byte());
            format!("0190b000-0000-7000-8000-{n:012x}")
        }
    }

    fn account(&mut self, world: &World, writer: &Writer) -> String {
        if self.below(4) == 0 {
            self.text(world)
        } else {
            writer.account.clone()
        }
    }

    fn scalar(&mut self, world: &World) -> ScalarValue {
        match self.below(10) {
            0..=2 => ScalarValue::Str(self.text(world).into()),
            3 | 4 => ScalarValue::Int(self.int()),
            5 => ScalarValue::Uint(self.int() as u64),
            6 => ScalarValue::F64(self.int() as f64 / 3.0),
            7 => ScalarValue::Boolean(self.flag()),
            8 => ScalarValue::Null,
            _ => match self.below(3) {
                0 => ScalarValue::Counter(self.int().into()),
                1 => ScalarValue::Timestamp(self.time()),
                _ => ScalarValue::Bytes((0..self.below(8)).map(|_| self.byte()).collect()),
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The target.
// ---------------------------------------------------------------------------------------------

/// What the server made of one message.
#[derive(Debug)]
pub enum Outcome {
    /// `malformed_message`.
    Malformed,
    /// `unapplicable_changes`.
    Unapplicable,
    /// No new changes.
    Unchanged,
    /// A rule refused the changes.
    Refused(Violation),
    /// Kept.
    Accepted(Checked),
}

/// What one input chose: the document, the writer, the campaign the rules see, the server's
/// clock, and the sync message the server receives.
pub struct Case {
    pub held: &'static Held,
    pub writer: &'static Writer,
    pub campaign: Option<&'static Campaign>,
    pub now: Millis,
    pub message: Vec<u8>,
}

/// Read one input's choices and make its message.
pub fn case(data: &[u8]) -> Case {
    let world = world();
    let mut input = Input::new(data);
    let held = &world.docs[input.below(world.docs.len())];
    let writer = &world.writers[input.below(world.writers.len())];
    let campaign = world.campaigns[input.below(world.campaigns.len())].as_ref();
    let now = input.pick(&NOWS);
    let message = match input.below(3) {
        0 => phone_message(world, held, writer, &mut input),
        1 => input.rest().to_vec(),
        _ => chunk_message(input.rest()),
    };
    Case {
        held,
        writer,
        campaign,
        now,
        message,
    }
}

/// One input: choose the document, writer, campaign and clock, make the message, handle it.
pub fn run(data: &[u8]) -> Outcome {
    let world = world();
    let Case {
        held,
        writer,
        campaign,
        now,
        message,
    } = case(data);
    let ctx = Context {
        writer,
        doc_id: &held.id,
        campaign,
        now,
    };
    let mut doc = held.server.clone();
    let outcome = receive(&ctx, &mut doc, &message);
    if let Outcome::Accepted(checked) = &outcome {
        accepted(world, &ctx, &mut doc, checked);
    }
    outcome
}

/// The server's `work_one` for a message from a phone whose sync state it has not stored.
pub fn receive(ctx: &Context<'_>, doc: &mut AutoCommit, bytes: &[u8]) -> Outcome {
    let before = doc.get_heads();
    let Ok(message) = am_sync::Message::decode(bytes) else {
        return Outcome::Malformed;
    };
    let mut received = am_sync::State::new();
    if doorstep_core::doc::receive_sync_message(doc, &mut received, message).is_err() {
        return Outcome::Unapplicable;
    }
    // Changes still waiting for their dependencies evict the document on the server.
    let _queued = !doc.get_missing_deps(&[]).is_empty();
    let outcome = if doc.get_heads() == before {
        Outcome::Unchanged
    } else {
        match rules::check_changes(ctx, doc, &before) {
            Ok(checked) => {
                // What the server stores: the changes after `before` as one chunk.
                let chunk = doc.save_after(&before);
                assert!(!chunk.is_empty(), "accepted changes save to nothing");
                Outcome::Accepted(checked)
            }
            Err(violation) => return Outcome::Refused(violation),
        }
    };
    // The answer, for a phone that reported the server's old heads.
    let mut state = received;
    state.their_heads = Some(before.clone());
    state.their_have = Some(vec![Have {
        last_sync: before,
        bloom: BloomFilter::default(),
    }]);
    state.their_need = Some(Vec::new());
    if let Some(reply) = doc.sync().generate_sync_message(&mut state) {
        am_sync::Message::decode(&reply.encode()).expect("the server's answer decodes");
    }
    outcome
}

/// What accepted changes must leave behind (see the module's documentation).
fn accepted(world: &World, ctx: &Context<'_>, doc: &mut AutoCommit, checked: &Checked) {
    let admin = ctx.writer.is(Role::Admin);
    let account = ctx.writer.account.as_str();
    match ctx.doc_id.kind() {
        DocKind::Field => {
            let after: FieldDoc = shape(doc, "field");
            let before = &world.field_before;
            new_records(&before.visits, &after.visits, account, |r| (&r.id, &r.by));
            new_records(&before.deliveries, &after.deliveries, account, |r| {
                (&r.id, &r.by)
            });
            new_records(&before.ballots, &after.ballots, account, |r| (&r.id, &r.by));
            new_records(&before.adjudications, &after.adjudications, account, |r| {
                (&r.id, &r.by)
            });
            assert_eq!(after.roll, before.roll, "the frozen roll changed");
        }
        DocKind::Building => {
            let after: BuildingDoc = shape(doc, "building");
            if !admin {
                assert_eq!(
                    after.units, world.building_before.units,
                    "a head changed units"
                );
            }
        }
        DocKind::Campaign => {
            let _: CampaignDoc = shape(doc, "campaign");
        }
        DocKind::Orders if !admin => {
            let after: OrdersDoc = shape(doc, "orders");
            let before = &world.orders_before;
            for (key, order) in &after.orders {
                assert_eq!(key, &order.id, "a work order is not under its own id");
                let old = before.orders.get(key);
                match old {
                    None => assert_eq!(
                        order.created_by, account,
                        "a new order names another author"
                    ),
                    Some(old) => {
                        let locked = |o: &WorkOrder| {
                            (
                                o.id.clone(),
                                o.unit.clone(),
                                o.title.clone(),
                                o.detail.clone(),
                                o.created_at,
                                o.created_by.clone(),
                            )
                        };
                        assert_eq!(locked(order), locked(old), "a work order's fields changed");
                        for (event_key, event) in &old.events {
                            assert_eq!(
                                order.events.get(event_key),
                                Some(event),
                                "an order event changed"
                            );
                        }
                    }
                }
                for (event_key, event) in &order.events {
                    assert_eq!(
                        event_key, &event.id,
                        "a work order event is not under its own id"
                    );
                    if old.is_none_or(|o| !o.events.contains_key(event_key)) {
                        assert_eq!(event.by, account, "a new order event names another author");
                    }
                }
            }
        }
        DocKind::Orders | DocKind::Register => {}
    }
    assert!(checked.changes >= 1, "accepted without changes");
}

fn shape<T: Hydrate>(doc: &AutoCommit, what: &str) -> T {
    match hydrate(doc) {
        Ok(value) => value,
        Err(e) => panic!("accepted changes leave the {what} document unreadable: {e}"),
    }
}

/// Records of `after` not in `before` sit under their own id and name `account`.
fn new_records<R: PartialEq>(
    before: &BTreeMap<String, R>,
    after: &BTreeMap<String, R>,
    account: &str,
    parts: impl Fn(&R) -> (&String, &String),
) {
    for (key, record) in before {
        assert!(
            after.get(key) == Some(record),
            "an append-only record changed"
        );
    }
    for (key, record) in after {
        if before.contains_key(key) {
            continue;
        }
        let (id, by) = parts(record);
        assert_eq!(key, id, "a new record is not under its own id");
        assert_eq!(by, account, "a new record names another author");
    }
}

// ---------------------------------------------------------------------------------------------
// Messages.
// ---------------------------------------------------------------------------------------------

/// `body` as one chunk of type `kind` with a valid header and checksum, in a sync message.
pub fn chunk_message(data: &[u8]) -> Vec<u8> {
    let (kind, body) = data.split_first().map_or((1, data), |(k, b)| (*k, b));
    let message = am_sync::Message {
        heads: Vec::new(),
        need: Vec::new(),
        have: Vec::new(),
        changes: am_sync::ChunkList::from(vec![chunk(kind, body)]),
        flags: None,
        version: am_sync::MessageVersion::V1,
    };
    message.encode()
}

/// An automerge storage chunk: magic bytes, checksum, type, length, data.
pub fn chunk(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut typed = vec![kind];
    let mut len = body.len() as u64;
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            typed.push(byte);
            break;
        }
        typed.push(byte | 0x80);
    }
    let hash = Sha256::new()
        .chain_update(&typed)
        .chain_update(body)
        .finalize();
    let mut out = vec![0x85, 0x6f, 0x4a, 0x83];
    out.extend_from_slice(&hash[..4]);
    out.extend_from_slice(&typed);
    out.extend_from_slice(body);
    out
}

/// The header-less form of the chunks of a sync message (type byte then data), the input of
/// mode 2; for seeds.
pub fn chunk_bodies(message: &[u8]) -> Vec<Vec<u8>> {
    let Ok(message) = am_sync::Message::decode(message) else {
        return Vec::new();
    };
    message
        .changes
        .iter()
        .filter_map(|chunk| {
            let rest = chunk.get(8..)?;
            let (kind, mut rest) = rest.split_first()?;
            // Skip the LEB128 length.
            while let Some((b, tail)) = rest.split_first() {
                rest = tail;
                if b & 0x80 == 0 {
                    break;
                }
            }
            let mut out = vec![*kind];
            out.extend_from_slice(rest);
            Some(out)
        })
        .collect()
}

/// The phone's edits from `input`, committed and sent as `sync::sync_shared` sends them.
pub fn phone_message(
    world: &World,
    held: &Held,
    writer: &Writer,
    input: &mut Input<'_>,
) -> Vec<u8> {
    let mut phone = held.phone.clone();
    let base = phone.get_heads();
    let mut ops = 0;
    while !input.is_empty() && ops < 24 {
        ops += 1;
        // Errors (a key on a list, a counter that is not one) just skip the edit.
        let _ = edit(world, held, writer, &mut phone, input);
    }
    phone.commit_with(CommitOptions::default().with_time(T_WORK / 1000));
    let mut state = am_sync::State::new();
    state.their_heads = Some(base.clone());
    state.their_have = Some(vec![Have {
        last_sync: base,
        bloom: BloomFilter::default(),
    }]);
    state.their_need = Some(Vec::new());
    let Some(message) = phone.sync().generate_sync_message(&mut state) else {
        return Vec::new();
    };
    doorstep_core::bundle::bundle_changes(&phone, message)
        .expect("a bundle of its own changes")
        .encode()
}

type EditResult = Result<(), Box<dyn std::error::Error>>;

/// One edit on the phone's replica.
fn edit(
    world: &World,
    held: &Held,
    writer: &Writer,
    doc: &mut AutoCommit,
    input: &mut Input<'_>,
) -> EditResult {
    match input.below(10) {
        0..=3 => typed(world, held, writer, doc, input)?,
        4 => {
            let (obj, prop) = locate(world, doc, input);
            let value = input.scalar(world);
            match prop {
                Prop::Map(k) => doc.put(&obj, k, value)?,
                Prop::Seq(i) if input.flag() => doc.insert(&obj, i, value)?,
                Prop::Seq(i) => doc.put(&obj, i, value)?,
            }
        }
        5 => {
            let (obj, prop) = locate(world, doc, input);
            doc.delete(&obj, prop)?;
        }
        6 => {
            let (obj, prop) = locate(world, doc, input);
            let kind = input.pick(&[ObjType::Map, ObjType::List, ObjType::Text]);
            match prop {
                Prop::Map(k) => doc.put_object(&obj, k, kind)?,
                Prop::Seq(i) => doc.insert_object(&obj, i, kind)?,
            };
        }
        7 => {
            let (obj, prop) = locate(world, doc, input);
            let by = input.int();
            match doc.object_type(&obj)? {
                ObjType::Text => {
                    let len = doc.length(&obj);
                    let at = input.below(len + 1);
                    let del = input.below(3).min(len - at) as isize;
                    doc.splice_text(&obj, at, del, &input.text(world))?;
                }
                _ => doc.increment(&obj, prop, by)?,
            }
        }
        8 => {
            doc.commit_with(CommitOptions::default().with_time(T_WORK / 1000));
        }
        _ => {
            // Another opening of the document on this phone, or another phone's actor.
            doc.commit_with(CommitOptions::default().with_time(T_WORK / 1000));
            let device = if input.below(4) == 0 {
                OTHER_DEVICE
            } else {
                DEVICE
            };
            doc.set_actor(actor(&device, 3 + input.byte() % 4));
        }
    }
    Ok(())
}

/// A place in the document: walk down from the root through existing keys or new ones.
fn locate(world: &World, doc: &AutoCommit, input: &mut Input<'_>) -> (ObjId, Prop) {
    let mut obj = ROOT;
    for _ in 0..5 {
        let prop = match doc.object_type(&obj) {
            Ok(ObjType::List | ObjType::Text) => {
                let len = doc.length(&obj);
                Prop::Seq(input.below(len + 1))
            }
            _ => {
                let keys: Vec<String> = doc.keys(&obj).collect();
                if !keys.is_empty() && input.below(4) != 0 {
                    Prop::Map(input.pick(&keys))
                } else {
                    Prop::Map(input.text(world))
                }
            }
        };
        match doc.get(&obj, prop.clone()) {
            Ok(Some((Value::Object(_), child))) if input.below(5) != 0 => obj = child,
            _ => return (obj, prop),
        }
    }
    let prop = match doc.object_type(&obj) {
        Ok(ObjType::List | ObjType::Text) => Prop::Seq(0),
        _ => Prop::Map(input.text(world)),
    };
    (obj, prop)
}

/// The map at `path` from the root, made when missing.
fn map_at(doc: &mut AutoCommit, path: &[&str]) -> Result<ObjId, automerge::AutomergeError> {
    let mut obj = ROOT;
    for key in path {
        obj = match doc.get(&obj, *key)? {
            Some((Value::Object(ObjType::Map), id)) => id,
            _ => doc.put_object(&obj, *key, ObjType::Map)?,
        };
    }
    Ok(obj)
}

fn put<R: Reconcile>(doc: &mut AutoCommit, path: &[&str], key: &str, value: &R) -> EditResult {
    let obj = map_at(doc, path)?;
    reconcile_prop(doc, obj, key, value)?;
    Ok(())
}

/// A whole record of the document's kind, written the way the phone writes records.
fn typed(
    world: &World,
    held: &Held,
    writer: &Writer,
    doc: &mut AutoCommit,
    input: &mut Input<'_>,
) -> EditResult {
    let id = input.id(world);
    let key = if input.below(4) == 0 {
        input.text(world)
    } else {
        id.clone()
    };
    let (unit, voter_key) = if input.below(8) == 0 {
        (input.text(world), input.text(world))
    } else {
        let (unit, voter) = input.pick(&world.units);
        let voter = if input.below(6) == 0 {
            input.text(world)
        } else {
            voter
        };
        (unit, voter)
    };
    let by = input.account(world, writer);
    let at = input.time();
    match held.id.kind() {
        DocKind::Field => match input.below(4) {
            0 => put(
                doc,
                &["visits"],
                &key,
                &Visit {
                    id,
                    unit,
                    outcome: input.pick(DoorOutcome::ALL),
                    note: input.text(world),
                    at,
                    by,
                },
            )?,
            1 => put(
                doc,
                &["deliveries"],
                &key,
                &Delivery {
                    id,
                    voter_key,
                    unit,
                    at,
                    by,
                },
            )?,
            2 => {
                let mut answers = BTreeMap::new();
                for _ in 0..input.below(4) {
                    let question = if input.below(6) == 0 {
                        input.text(world)
                    } else {
                        input.pick(&["q1", "q2", "q3"]).to_string()
                    };
                    answers.insert(question, answer(world, input));
                }
                let supersedes = match input.below(3) {
                    0 => None,
                    1 => Some(input.pick(&[BALLOT, BALLOT_2]).to_string()),
                    _ => Some(input.text(world)),
                };
                put(
                    doc,
                    &["ballots"],
                    &key,
                    &Ballot {
                        id,
                        voter_key,
                        unit,
                        answers,
                        collected_at: at,
                        by,
                        supersedes,
                        method: None,
                    },
                )?
            }
            _ => {
                let considered: Vec<String> = (0..input.below(4))
                    .map(|_| {
                        if input.flag() {
                            input.pick(&[BALLOT, BALLOT_2]).to_string()
                        } else {
                            input.text(world)
                        }
                    })
                    .collect();
                let chosen = match input.below(3) {
                    0 => None,
                    1 => considered.first().cloned(),
                    _ => Some(input.text(world)),
                };
                put(
                    doc,
                    &["adjudications"],
                    &key,
                    &Adjudication {
                        id,
                        voter_key,
                        considered,
                        chosen,
                        reason: input.text(world),
                        at,
                        by,
                    },
                )?
            }
        },
        DocKind::Building => {
            let unit_key = if input.below(4) == 0 {
                key
            } else {
                unit.clone()
            };
            let household = Household {
                unit,
                contact_name: input.text(world),
                phone: input.text(world),
                occupancy: input.pick(&[
                    Occupancy::Unknown,
                    Occupancy::OwnerOccupied,
                    Occupancy::Rented,
                    Occupancy::Vacant,
                ]),
                residents: input.int(),
                note: input.text(world),
            };
            if input.below(3) == 0 {
                // Only the fields a head may correct, one by one.
                let field = input.pick(&["contact_name", "phone", "residents", "note", "unit"]);
                let path = ["households", unit_key.as_str()];
                match field {
                    "residents" => put(doc, &path, field, &household.residents)?,
                    "contact_name" => put(doc, &path, field, &household.contact_name)?,
                    "phone" => put(doc, &path, field, &household.phone)?,
                    "note" => put(doc, &path, field, &household.note)?,
                    _ => put(doc, &path, field, &household.unit)?,
                }
            } else {
                put(doc, &["households"], &unit_key, &household)?;
            }
        }
        DocKind::Orders => {
            let status = input.pick(&[
                OrderStatus::Submitted,
                OrderStatus::UnderReview,
                OrderStatus::Rejected,
                OrderStatus::Merged,
                OrderStatus::Published,
                OrderStatus::Dispatched,
                OrderStatus::Claimed,
                OrderStatus::InProgress,
                OrderStatus::Done,
                OrderStatus::Confirmed,
                OrderStatus::Disputed,
                OrderStatus::Unreachable,
                OrderStatus::Closed,
            ]);
            let event_id = if input.below(3) == 0 {
                input.pick(&EVENTS).to_string()
            } else {
                id.clone()
            };
            let event = OrderEvent {
                id: event_id,
                to: status,
                at,
                by: by.clone(),
                note: input.text(world),
            };
            let assignee = match input.below(3) {
                0 => None,
                1 => Some(writer.account.clone()),
                _ => Some(input.text(world)),
            };
            match input.below(3) {
                0 => put(doc, &["orders", ORDER, "events"], &key, &event)?,
                1 => put(doc, &["orders", ORDER], "assignee", &assignee)?,
                _ => put(
                    doc,
                    &["orders"],
                    &key,
                    &WorkOrder {
                        id,
                        unit,
                        title: input.text(world),
                        detail: input.text(world),
                        created_at: at,
                        created_by: by,
                        assignee,
                        events: BTreeMap::from([(event.id.clone(), event)]),
                    },
                )?,
            }
        }
        // An admin's edit of the campaign or the register, written field by field: the same
        // operations reconciling the whole value writes (autosurgeon writes only what differs),
        // without hydrating and diffing all the rest on every input, which took most of the
        // target's time.
        DocKind::Campaign => match input.below(5) {
            0 => {
                let status = input.pick(CampaignStatus::ALL);
                put(doc, &["campaign"], "status", &status)?;
                let step = input.text(world);
                put(doc, &["campaign", "status_times"], &step, &input.time())?;
            }
            1 => put(doc, &["campaign"], "title", &input.text(world))?,
            2 => {
                let questions = map_at(doc, &["campaign", "questions"])?;
                let question = input.text(world);
                if doc.get(&questions, question.as_str())?.is_some() {
                    doc.delete(&questions, question.as_str())?;
                }
            }
            3 => put(doc, &["campaign", "rules"], "grace_period_ms", &input.int())?,
            _ => put(doc, &["campaign"], "roll_hash", &None::<String>)?,
        },
        DocKind::Register => {
            put(doc, &[], "total_area", &input.int())?;
            put(doc, &[], "name", &input.text(world))?;
        }
    }
    Ok(())
}

fn answer(world: &World, input: &mut Input<'_>) -> Answer {
    let choices = [Choice::Yes, Choice::No, Choice::Abstain];
    let choice = if input.flag() {
        Some(input.pick(&choices))
    } else {
        None
    };
    let candidates = (0..input.below(8))
        .map(|_| {
            let id = if input.below(6) == 0 {
                input.text(world)
            } else {
                format!("c{}", 1 + input.below(6))
            };
            (id, input.pick(&choices))
        })
        .collect();
    let options = (0..input.below(4))
        .map(|_| {
            if input.below(6) == 0 {
                input.text(world)
            } else {
                format!("o{}", 1 + input.below(3))
            }
        })
        .collect();
    Answer {
        choice,
        candidates,
        options,
    }
}

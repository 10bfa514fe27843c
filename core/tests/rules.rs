//! The write rules refuse each forbidden write with its reason, and the document is unchanged.

use std::collections::{BTreeMap, BTreeSet};

use automerge::ChangeHash;
use doorstep_core::doc::{BuildingDoc, CampaignDoc, DocId, Document, FieldDoc, OrdersDoc};
use doorstep_core::import::parse_csv;
use doorstep_core::model::*;
use doorstep_core::rules::{Context, Rule, Violation, Writer, check_changes};
use uuid::Uuid;

const SAMPLE: &[u8] = include_bytes!("../testdata/taipingyang-garden.csv");
const CAMPAIGN: &str = "0190a000-0000-7000-8000-000000000001";
const Q: &str = "q1";

struct World {
    server: Uuid,
    head_device: Uuid,
    head: Writer,
    admin: Writer,
    officer: Writer,
    campaign: Campaign,
    building: Document,
    field: Document,
    orders: Document,
}

fn campaign(status: CampaignStatus) -> Campaign {
    let mut questions = BTreeMap::new();
    questions.insert(
        Q.to_string(),
        Question {
            id: Q.into(),
            order: 1,
            text: "续聘物业".into(),
            kind: QuestionKind::Resolution { matter: 4 },
        },
    );
    Campaign {
        id: CAMPAIGN.into(),
        community: "tpy".into(),
        title: "业主大会".into(),
        kind: CampaignKind::Resolution,
        binding: true,
        scope: Scope::Whole,
        rules: Rules::default(),
        questions,
        status,
        status_times: BTreeMap::from([("published".to_string(), 1_000)]),
        roll_hash: Some("h".into()),
        rules_hash: Some("r".into()),
    }
}

fn world() -> World {
    let server = Uuid::new_v4();
    let head_device = Uuid::new_v4();
    let reg = parse_csv("tpy", "太平洋花园", SAMPLE).expect("sample");
    let b3: BuildingDoc = reg
        .buildings
        .iter()
        .find(|b| b.building.id == "3")
        .cloned()
        .expect("3");
    let mut building = Document::new(
        DocId::Building {
            community: "tpy".into(),
            building: "3".into(),
        },
        &server,
    );
    building.write(&b3).expect("write");
    building.commit("import");
    let roll = b3
        .units
        .values()
        .map(|u| {
            (
                u.code.clone(),
                RollEntry {
                    unit: u.code.clone(),
                    building: u.building.clone(),
                    entrance: u.entrance.clone(),
                    voter_key: u.voter_key(),
                    area: u.area,
                },
            )
        })
        .collect();
    let mut field = Document::new(
        DocId::Field {
            campaign: CAMPAIGN.into(),
            building: "3".into(),
        },
        &server,
    );
    field
        .write(&FieldDoc {
            schema: 1,
            campaign: CAMPAIGN.into(),
            building: "3".into(),
            roll,
            ..FieldDoc::default()
        })
        .expect("write");
    field.commit("publish");
    let mut orders = Document::new(
        DocId::Orders {
            community: "tpy".into(),
            building: "3".into(),
        },
        &server,
    );
    orders
        .write(&OrdersDoc {
            schema: 1,
            community: "tpy".into(),
            building: "3".into(),
            orders: BTreeMap::new(),
        })
        .expect("write");
    orders.commit("create");
    // The phone works on its own replicas with its own actor.
    let reopen = |d: &mut Document| {
        let bytes = d.snapshot();
        Document::load(d.id().clone(), &bytes, &head_device).expect("load")
    };
    World {
        server,
        head_device,
        head: Writer {
            account: "head3".into(),
            roles: vec![Role::BuildingHead],
            buildings: BTreeSet::from(["3".to_string()]),
            device: Some(head_device),
        },
        admin: Writer {
            account: "admin".into(),
            roles: vec![Role::Admin],
            buildings: BTreeSet::new(),
            device: Some(head_device),
        },
        officer: Writer {
            account: "officer".into(),
            roles: vec![Role::CountingOfficer],
            buildings: BTreeSet::new(),
            device: Some(head_device),
        },
        campaign: campaign(CampaignStatus::Open),
        building: reopen(&mut building),
        field: reopen(&mut field),
        orders: reopen(&mut orders),
    }
}

/// Apply `edit` to `doc` as one commit and run the rules; on refusal the document is reverted.
fn attempt(
    doc: &mut Document,
    writer: &Writer,
    campaign: Option<&Campaign>,
    now: Millis,
    edit: impl FnOnce(&mut Document),
) -> Result<(), Violation> {
    let before: Vec<ChangeHash> = doc.heads();
    edit(doc);
    doc.commit("attempt");
    let id = doc.id().clone();
    let ctx = Context {
        writer,
        doc_id: &id,
        campaign,
        now,
    };
    let result = check_changes(&ctx, doc.automerge(), &before);
    if result.is_err() {
        let device = writer.device.unwrap_or_default();
        doc.revert_to(&before, &device).expect("revert");
    }
    result.map(|_| ())
}

fn visit(by: &str, unit: &str) -> Visit {
    Visit {
        id: new_record_id(),
        unit: unit.into(),
        outcome: DoorOutcome::NotHome,
        note: String::new(),
        at: 2_000,
        by: by.into(),
    }
}

fn ballot(by: &str, unit: &str, voter_key: &str, collected_at: Millis) -> Ballot {
    Ballot {
        id: new_record_id(),
        voter_key: voter_key.into(),
        unit: unit.into(),
        answers: BTreeMap::from([(
            Q.to_string(),
            Answer {
                choice: Some(Choice::Yes),
                ..Answer::default()
            },
        )]),
        collected_at,
        by: by.into(),
        supersedes: None,
        method: None,
    }
}

fn assert_refused(result: Result<(), Violation>, rule: Rule) {
    match result {
        Err(v) => assert_eq!(v.rule, rule, "refused for {:?} ({})", v.rule, v.detail),
        Ok(()) => panic!("expected a refusal by {rule:?}"),
    }
}

#[test]
fn a_building_head_records_visits_ballots_and_household_details_in_their_building() {
    let mut w = world();
    let c = w.campaign.clone();
    let v = visit("head3", "3-1-0101");
    attempt(&mut w.field, &w.head, Some(&c), 3_000, |d| {
        d.put_record("visits", &v.id, &v).expect("put")
    })
    .expect("visit allowed");
    let b = ballot("head3", "3-1-0101", "P0057", 3_000);
    let voter = w.field.read::<FieldDoc>().expect("read").roll["3-1-0101"]
        .voter_key
        .clone();
    let b = Ballot {
        voter_key: voter,
        ..b
    };
    attempt(&mut w.field, &w.head, Some(&c), 3_000, |d| {
        d.put_record("ballots", &b.id, &b).expect("put")
    })
    .expect("ballot allowed");
    let mut household =
        w.building.read::<BuildingDoc>().expect("read").households["3-1-0101"].clone();
    household.phone = "13900000000".into();
    household.residents = 4;
    attempt(&mut w.building, &w.head, None, 3_000, |d| {
        d.put_record("households", "3-1-0101", &household)
            .expect("put")
    })
    .expect("household edit allowed");
    let doc = w.field.read::<FieldDoc>().expect("read");
    assert_eq!((doc.visits.len(), doc.ballots.len()), (1, 1));
}

#[test]
fn each_forbidden_write_is_refused_with_its_reason_and_leaves_the_document_unchanged() {
    let mut w = world();
    let open = w.campaign.clone();
    let entry = w.field.read::<FieldDoc>().expect("read").roll["3-1-0101"].clone();

    // Setup: one visit and one ballot exist.
    let v = visit("head3", "3-1-0101");
    let b = ballot("head3", "3-1-0101", &entry.voter_key, 3_000);
    attempt(&mut w.field, &w.head, Some(&open), 3_000, |d| {
        d.put_record("visits", &v.id, &v).expect("put");
        d.put_record("ballots", &b.id, &b).expect("put");
    })
    .expect("setup");

    let field_before = w.field.read::<FieldDoc>().expect("read");
    let building_before = w.building.read::<BuildingDoc>().expect("read");
    let heads_before = w.field.heads();

    // A head writing into another building's documents.
    let mut other = w.head.clone();
    other.buildings = BTreeSet::from(["4".to_string()]);
    let v2 = visit("head3", "3-1-0102");
    assert_refused(
        attempt(&mut w.field, &other, Some(&open), 3_000, |d| {
            d.put_record("visits", &v2.id, &v2).expect("put")
        }),
        Rule::NotAssigned,
    );

    // A head editing the register's area or owners.
    let mut unit = building_before.units["3-1-0101"].clone();
    unit.area += 100;
    assert_refused(
        attempt(&mut w.building, &w.head, None, 3_000, |d| {
            d.put_record("units", "3-1-0101", &unit).expect("put")
        }),
        Rule::AdminOnly,
    );

    // A head editing a campaign definition.
    let mut campaign_doc = Document::new(
        DocId::Campaign {
            campaign: CAMPAIGN.into(),
        },
        &w.head_device,
    );
    assert_refused(
        attempt(&mut campaign_doc, &w.head, None, 3_000, |d| {
            d.write(&CampaignDoc {
                schema: 1,
                campaign: campaign(CampaignStatus::Draft),
            })
            .expect("write")
        }),
        Rule::AdminOnly,
    );

    // Editing an existing visit or ballot (append-only).
    let mut edited = v.clone();
    edited.outcome = DoorOutcome::Refused;
    assert_refused(
        attempt(&mut w.field, &w.head, Some(&open), 3_000, |d| {
            d.put_record("visits", &v.id, &edited).expect("put")
        }),
        Rule::AppendOnly,
    );
    let mut flipped = b.clone();
    flipped.answers.get_mut(Q).expect("q").choice = Some(Choice::No);
    assert_refused(
        attempt(&mut w.field, &w.head, Some(&open), 3_000, |d| {
            d.put_record("ballots", &b.id, &flipped).expect("put")
        }),
        Rule::AppendOnly,
    );

    // A closed campaign: a ballot collected after the close, and one too late for the grace.
    let mut closed = open.clone();
    closed.status = CampaignStatus::Closed;
    closed.status_times.insert("closed".into(), 10_000);
    let late = ballot("head3", "3-1-0102", "x", 11_000);
    let late = Ballot {
        voter_key: field_before.roll["3-1-0102"].voter_key.clone(),
        ..late
    };
    assert_refused(
        attempt(&mut w.field, &w.head, Some(&closed), 12_000, |d| {
            d.put_record("ballots", &late.id, &late).expect("put")
        }),
        Rule::CampaignClosed,
    );
    let early = Ballot {
        id: new_record_id(),
        collected_at: 9_000,
        ..late.clone()
    };
    let after_grace = 10_000 + closed.rules.grace_period_ms + 1;
    assert_refused(
        attempt(&mut w.field, &w.head, Some(&closed), after_grace, |d| {
            d.put_record("ballots", &early.id, &early).expect("put")
        }),
        Rule::GracePeriodEnded,
    );
    let v3 = visit("head3", "3-1-0102");
    assert_refused(
        attempt(&mut w.field, &w.head, Some(&closed), 12_000, |d| {
            d.put_record("visits", &v3.id, &v3).expect("put")
        }),
        Rule::CampaignClosed,
    );

    // A frozen roll never changes, not even for an admin.
    let mut entry2 = entry.clone();
    entry2.area = 1;
    assert_refused(
        attempt(&mut w.field, &w.admin, Some(&open), 3_000, |d| {
            d.put_record("roll", "3-1-0101", &entry2).expect("put")
        }),
        Rule::RollFrozen,
    );

    // Only counting officers adjudicate.
    let adj = Adjudication {
        id: new_record_id(),
        voter_key: entry.voter_key.clone(),
        considered: vec![b.id.clone()],
        chosen: Some(b.id.clone()),
        reason: "本人确认".into(),
        at: 4_000,
        by: "head3".into(),
    };
    assert_refused(
        attempt(&mut w.field, &w.head, Some(&open), 3_000, |d| {
            d.put_record("adjudications", &adj.id, &adj).expect("put")
        }),
        Rule::OfficersOnly,
    );

    // A ballot for the wrong owner of a unit, and one answering a question not asked.
    let wrong_owner = ballot("head3", "3-1-0102", "P9999", 3_000);
    assert_refused(
        attempt(&mut w.field, &w.head, Some(&open), 3_000, |d| {
            d.put_record("ballots", &wrong_owner.id, &wrong_owner)
                .expect("put")
        }),
        Rule::OwnerMismatch,
    );

    // A record claiming another author.
    let forged = visit("head4", "3-1-0102");
    assert_refused(
        attempt(&mut w.field, &w.head, Some(&open), 3_000, |d| {
            d.put_record("visits", &forged.id, &forged).expect("put")
        }),
        Rule::InvalidRecord,
    );

    // Changes carrying another device's actor.
    let mut stranger = w.head.clone();
    stranger.device = Some(Uuid::new_v4());
    let v4 = visit("head3", "3-1-0102");
    assert_refused(
        attempt(&mut w.field, &stranger, Some(&open), 3_000, |d| {
            d.put_record("visits", &v4.id, &v4).expect("put")
        }),
        Rule::ForeignActor,
    );

    // After all of that, nothing changed.
    assert_eq!(w.field.read::<FieldDoc>().expect("read"), field_before);
    assert_eq!(w.field.heads(), heads_before);
    assert_eq!(
        w.building.read::<BuildingDoc>().expect("read"),
        building_before
    );
}

#[test]
fn an_officer_adjudicates_and_a_correction_supersedes() {
    let mut w = world();
    let open = w.campaign.clone();
    let voter = w.field.read::<FieldDoc>().expect("read").roll["3-1-0101"]
        .voter_key
        .clone();
    let first = ballot("head3", "3-1-0101", &voter, 3_000);
    let mut correction = ballot("head3", "3-1-0101", &voter, 3_500);
    correction.supersedes = Some(first.id.clone());
    attempt(&mut w.field, &w.head, Some(&open), 4_000, |d| {
        d.put_record("ballots", &first.id, &first).expect("put");
        d.put_record("ballots", &correction.id, &correction)
            .expect("put");
    })
    .expect("a correction is a new ballot");
    let adj = Adjudication {
        id: new_record_id(),
        voter_key: voter,
        considered: vec![first.id.clone(), correction.id.clone()],
        chosen: Some(correction.id.clone()),
        reason: "以更正票为准".into(),
        at: 5_000,
        by: "officer".into(),
    };
    attempt(&mut w.field, &w.officer, Some(&open), 5_000, |d| {
        d.put_record("adjudications", &adj.id, &adj).expect("put")
    })
    .expect("officers adjudicate");
    let _ = w.server;
}

#[test]
fn campaigns_never_go_backwards_and_stay_frozen_after_publication() {
    let w = world();
    let server_admin = Writer {
        device: None,
        ..w.admin.clone()
    };
    let mut doc = Document::new(
        DocId::Campaign {
            campaign: CAMPAIGN.into(),
        },
        &w.server,
    );
    attempt(&mut doc, &server_admin, None, 0, |d| {
        d.write(&CampaignDoc {
            schema: 1,
            campaign: campaign(CampaignStatus::Open),
        })
        .expect("write")
    })
    .expect("admins create campaigns");
    let before = doc.read::<CampaignDoc>().expect("read");
    let mut back = before.clone();
    back.campaign.status = CampaignStatus::Published;
    assert_refused(
        attempt(&mut doc, &server_admin, None, 0, |d| {
            d.write(&back).expect("write")
        }),
        Rule::CampaignBackwards,
    );
    let mut reworded = before.clone();
    reworded.campaign.questions.get_mut(Q).expect("q").text = "解聘物业".into();
    assert_refused(
        attempt(&mut doc, &server_admin, None, 0, |d| {
            d.write(&reworded).expect("write")
        }),
        Rule::CampaignFrozen,
    );
    let mut closing = before.clone();
    closing.campaign.status = CampaignStatus::Closed;
    closing.campaign.status_times.insert("closed".into(), 9_000);
    attempt(&mut doc, &server_admin, None, 0, |d| {
        d.write(&closing).expect("write")
    })
    .expect("closing moves forward");
    assert_eq!(doc.read::<CampaignDoc>().expect("read"), closing);
}

#[test]
fn work_orders_follow_their_lifecycle() {
    let mut w = world();
    let dispatcher = Writer {
        account: "disp".into(),
        roles: vec![Role::Dispatcher],
        ..w.head.clone()
    };
    let event = |to: OrderStatus, at: Millis, by: &str, note: &str| OrderEvent {
        id: new_record_id(),
        to,
        at,
        by: by.into(),
        note: note.into(),
    };
    let mut order = WorkOrder {
        id: new_record_id(),
        unit: "3-1-0101".into(),
        title: "楼道灯坏了".into(),
        detail: String::new(),
        created_at: 1,
        created_by: "head3".into(),
        assignee: None,
        events: BTreeMap::new(),
    };
    attempt(&mut w.orders, &w.head, None, 1, |d| {
        d.put_record("orders", &order.id, &order).expect("put")
    })
    .expect("a head takes a resident's request");

    // A head may not publish or dispatch.
    let publish = event(OrderStatus::UnderReview, 2, "head3", "");
    let mut o2 = order.clone();
    o2.events.insert(publish.id.clone(), publish);
    assert_refused(
        attempt(&mut w.orders, &w.head, None, 2, |d| {
            d.put_record("orders", &order.id, &o2).expect("put")
        }),
        Rule::DispatcherOnly,
    );

    for (to, at) in [(OrderStatus::UnderReview, 2), (OrderStatus::Published, 3)] {
        let e = event(to, at, "disp", "");
        order.events.insert(e.id.clone(), e);
    }
    let e = event(OrderStatus::Dispatched, 4, "disp", "");
    order.events.insert(e.id.clone(), e);
    order.assignee = Some("head3".into());
    attempt(&mut w.orders, &dispatcher, None, 4, |d| {
        d.put_record("orders", &order.id, &order).expect("put")
    })
    .expect("the dispatcher dispatches");

    // An event stored under a new key but carrying an old event's id is still a new event,
    // and is refused (it may not hide a jump to closed behind an old id).
    let mut hidden = order.clone();
    let old_id = order.events.keys().next().expect("an event").clone();
    let jump = OrderEvent {
        id: old_id,
        ..event(OrderStatus::Closed, 5, "head3", "")
    };
    hidden.events.insert(new_record_id(), jump);
    assert_refused(
        attempt(&mut w.orders, &w.head, None, 5, |d| {
            d.put_record("orders", &order.id, &hidden).expect("put")
        }),
        Rule::InvalidRecord,
    );

    // Skipping in_progress is refused; the assignee works and completes.
    let mut skip = order.clone();
    let e = event(OrderStatus::Closed, 5, "head3", "");
    skip.events.insert(e.id.clone(), e);
    assert_refused(
        attempt(&mut w.orders, &w.head, None, 5, |d| {
            d.put_record("orders", &order.id, &skip).expect("put")
        }),
        Rule::OrderTransition,
    );
    for (to, at) in [
        (OrderStatus::InProgress, 5),
        (OrderStatus::Done, 6),
        (OrderStatus::Confirmed, 7),
        (OrderStatus::Closed, 8),
    ] {
        let e = event(to, at, "head3", "");
        order.events.insert(e.id.clone(), e);
    }
    attempt(&mut w.orders, &w.head, None, 8, |d| {
        d.put_record("orders", &order.id, &order).expect("put")
    })
    .expect("the assignee completes, the resident confirms, the order closes");
    let stored = w.orders.read::<OrdersDoc>().expect("read");
    assert_eq!(stored.orders[&order.id].status(), OrderStatus::Closed);
}

#[test]
fn oversized_texts_keys_and_change_sets_are_refused_before_anything_is_kept() {
    use doorstep_core::rules::LIMITS;
    let mut w = world();
    let c = w.campaign.clone();
    let heads = w.orders.heads();
    // A resident's request whose detail is 20 MB of text: refused, whole.
    let order = WorkOrder {
        id: new_record_id(),
        unit: "3-1-0101".into(),
        title: "楼道灯坏了".into(),
        detail: "灯".repeat(20 * 1024 * 1024 / 3),
        created_at: 1,
        created_by: "head3".into(),
        assignee: None,
        events: BTreeMap::new(),
    };
    assert_refused(
        attempt(&mut w.orders, &w.head, None, 1, |d| {
            d.put_record("orders", &order.id, &order).expect("put")
        }),
        Rule::TooLarge,
    );
    assert_eq!(w.orders.heads(), heads, "nothing of it is kept");

    // At the limit a note is taken; one character more is not.
    let mut v = visit("head3", "3-1-0101");
    v.note = "门".repeat(LIMITS.text_chars + 1);
    assert_refused(
        attempt(&mut w.field, &w.head, Some(&c), 3_000, |d| {
            d.put_record("visits", &v.id, &v).expect("put")
        }),
        Rule::TooLarge,
    );
    v.note = "门".repeat(LIMITS.text_chars);
    attempt(&mut w.field, &w.head, Some(&c), 3_000, |d| {
        d.put_record("visits", &v.id, &v).expect("put")
    })
    .expect("a note at the limit is taken");

    // A key longer than any id.
    let mut long = visit("head3", "3-1-0101");
    long.id = "x".repeat(LIMITS.key_chars + 1);
    assert_refused(
        attempt(&mut w.field, &w.head, Some(&c), 3_000, |d| {
            d.put_record("visits", &long.id, &long).expect("put")
        }),
        Rule::TooLarge,
    );
    assert_eq!(Rule::from_code("too_large"), Some(Rule::TooLarge));
}

#[test]
fn only_an_admin_lifts_a_documents_schema_and_never_lowers_it() {
    use automerge::ROOT;
    use automerge::transaction::Transactable as _;
    use doorstep_core::doc::SCHEMA_VERSION;
    let mut w = world();
    let c = w.campaign.clone();
    let set = |schema: u64| {
        move |d: &mut Document| {
            d.automerge()
                .put(ROOT, "schema", schema)
                .expect("put schema");
        }
    };
    // Documents at schema 1 (the work orders are built so here) and at the current schema.
    for doc in [&mut w.field, &mut w.building, &mut w.orders] {
        let schema: u64 =
            autosurgeon::hydrate_prop(&*doc.automerge(), ROOT, "schema").expect("schema");
        assert_refused(
            attempt(doc, &w.head, Some(&c), 3_000, set(schema + 1)),
            Rule::AdminOnly,
        );
        assert_refused(
            attempt(doc, &w.admin, Some(&c), 3_000, set(SCHEMA_VERSION + 1)),
            Rule::MalformedChange,
        );
        assert_refused(
            attempt(doc, &w.admin, Some(&c), 3_000, set(0)),
            Rule::MalformedChange,
        );
        attempt(doc, &w.admin, Some(&c), 3_000, set(SCHEMA_VERSION)).expect("lifted");
        let lifted: u64 =
            autosurgeon::hydrate_prop(&*doc.automerge(), ROOT, "schema").expect("schema");
        assert_eq!(lifted, SCHEMA_VERSION);
    }
}

#[test]
fn a_ballot_says_how_it_came_back_and_one_schema_one_wrote_reads_as_collected_at_the_door() {
    let mut w = world();
    let c = w.campaign.clone();
    let voter = w.field.read::<FieldDoc>().expect("read").roll["3-1-0101"]
        .voter_key
        .clone();
    let proxy = Ballot {
        method: Some(CollectionMethod::Proxy),
        ..ballot("head3", "3-1-0101", &voter, 3_000)
    };
    attempt(&mut w.field, &w.head, Some(&c), 3_000, |d| {
        d.put_record("ballots", &proxy.id, &proxy).expect("put");
    })
    .expect("a proxy's ballot");
    // A ballot as schema 1 wrote it: no `method` key at all.
    #[derive(autosurgeon::Reconcile)]
    struct BallotV1 {
        id: String,
        voter_key: String,
        unit: String,
        answers: BTreeMap<String, Answer>,
        collected_at: Millis,
        by: String,
        supersedes: Option<String>,
    }
    let b = ballot("head3", "3-1-0102", &voter_of(&mut w, "3-1-0102"), 3_000);
    let old = BallotV1 {
        id: b.id.clone(),
        voter_key: b.voter_key,
        unit: b.unit,
        answers: b.answers,
        collected_at: b.collected_at,
        by: b.by,
        supersedes: None,
    };
    attempt(&mut w.field, &w.head, Some(&c), 3_000, |d| {
        d.put_record("ballots", &old.id, &old).expect("put");
    })
    .expect("a schema-1 ballot is still accepted");
    let field = w.field.read::<FieldDoc>().expect("read");
    assert_eq!(field.ballots[&proxy.id].method(), CollectionMethod::Proxy);
    assert_eq!(field.ballots[&old.id].method, None);
    assert_eq!(field.ballots[&old.id].method(), CollectionMethod::Door);
}

fn voter_of(w: &mut World, unit: &str) -> String {
    w.field.read::<FieldDoc>().expect("read").roll[unit]
        .voter_key
        .clone()
}

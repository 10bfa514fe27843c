//! Convergence: 3–11 phones make random concurrent valid changes offline and merge in random
//! orders; every phone ends with identical documents and an identical tally, no record is lost,
//! and every duplicate ballot is reported as a conflict.

use std::collections::{BTreeMap, BTreeSet};

use automerge::ChangeHash;
use doorstep_core::ballots::resolve;
use doorstep_core::campaign::publish;
use doorstep_core::doc::{BuildingDoc, DocId, Document, FieldDoc, OrdersDoc};
use doorstep_core::import::parse_csv;
use doorstep_core::model::*;
use doorstep_core::roll::Roll;
use doorstep_core::rules::{Context, Writer, check_changes};
use doorstep_core::tally::tally;
use proptest::prelude::*;
use uuid::Uuid;

const SAMPLE: &[u8] = include_bytes!("../testdata/taipingyang-garden.csv");

/// What one phone does next.
#[derive(Debug, Clone)]
enum Op {
    Visit {
        unit: usize,
        outcome: usize,
    },
    Ballot {
        unit: usize,
        choice: usize,
    },
    Correct {
        choice: usize,
    },
    EditHousehold {
        unit: usize,
        residents: i64,
    },
    NewOrder {
        unit: usize,
    },
    Adjudicate,
    /// Meet another phone on the stairs and sync with it.
    MergeFrom {
        other: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..6usize, 0..12usize).prop_map(|(unit, outcome)| Op::Visit { unit, outcome }),
        3 => (0..6usize, 0..3usize).prop_map(|(unit, choice)| Op::Ballot { unit, choice }),
        1 => (0..3usize).prop_map(|choice| Op::Correct { choice }),
        2 => (0..6usize, 0..6i64).prop_map(|(unit, residents)| Op::EditHousehold { unit, residents }),
        1 => (0..6usize).prop_map(|unit| Op::NewOrder { unit }),
        1 => Just(Op::Adjudicate),
        1 => (0..11usize).prop_map(|other| Op::MergeFrom { other }),
    ]
}

struct Phone {
    writer: Writer,
    field: Document,
    building: Document,
    orders: Document,
    own_ballots: Vec<Ballot>,
}

struct Fixture {
    campaign: Campaign,
    units: Vec<RollEntry>,
    field: Vec<u8>,
    building: Vec<u8>,
    orders: Vec<u8>,
    field_id: DocId,
    building_id: DocId,
    orders_id: DocId,
}

fn fixture() -> Fixture {
    let server = Uuid::new_v4();
    let reg = parse_csv("tpy", "太平洋花园", SAMPLE).expect("sample");
    let b3: BuildingDoc = reg
        .buildings
        .iter()
        .find(|b| b.building.id == "3")
        .cloned()
        .expect("building 3");
    let draft = Campaign {
        id: "0190a000-0000-7000-8000-00000000c0de".into(),
        community: "tpy".into(),
        title: "续聘物业".into(),
        kind: CampaignKind::Resolution,
        binding: true,
        scope: Scope::Building {
            building: "3".into(),
        },
        rules: Rules::default(),
        questions: BTreeMap::from([(
            "q1".to_string(),
            Question {
                id: "q1".into(),
                order: 1,
                text: "续聘物业".into(),
                kind: QuestionKind::Resolution { matter: 4 },
            },
        )]),
        status: CampaignStatus::Draft,
        status_times: BTreeMap::new(),
        roll_hash: None,
        rules_hash: None,
    };
    let mut publication = publish(&draft, std::slice::from_ref(&b3), 1_000).expect("publish");
    publication.campaign.status = CampaignStatus::Open;
    let field_doc = publication.field_docs.remove(0);
    let units: Vec<RollEntry> = field_doc.roll.values().take(6).cloned().collect();

    let field_id = DocId::Field {
        campaign: draft.id.clone(),
        building: "3".into(),
    };
    let building_id = DocId::Building {
        community: "tpy".into(),
        building: "3".into(),
    };
    let orders_id = DocId::Orders {
        community: "tpy".into(),
        building: "3".into(),
    };
    let save = |id: &DocId, write: &dyn Fn(&mut Document)| {
        let mut d = Document::new(id.clone(), &server);
        write(&mut d);
        d.commit("server");
        d.snapshot()
    };
    let field = save(&field_id, &|d| d.write(&field_doc).expect("field"));
    let building = save(&building_id, &|d| d.write(&b3).expect("building"));
    let orders = save(&orders_id, &|d| {
        d.write(&OrdersDoc {
            schema: 1,
            community: "tpy".into(),
            building: "3".into(),
            orders: BTreeMap::new(),
        })
        .expect("orders")
    });
    Fixture {
        campaign: publication.campaign,
        units,
        field,
        building,
        orders,
        field_id,
        building_id,
        orders_id,
    }
}

fn phone(fx: &Fixture, index: usize) -> Phone {
    let device = Uuid::new_v4();
    // Phone 0 is the counting officer; the rest are the head and deputies of building 3.
    let roles = if index == 0 {
        vec![Role::CountingOfficer, Role::BuildingHead]
    } else {
        vec![Role::BuildingHead]
    };
    let writer = Writer {
        account: format!("acct{index}"),
        roles,
        buildings: BTreeSet::from(["3".to_string()]),
        device: Some(device),
    };
    Phone {
        writer,
        field: Document::load(fx.field_id.clone(), &fx.field, &device).expect("load"),
        building: Document::load(fx.building_id.clone(), &fx.building, &device).expect("load"),
        orders: Document::load(fx.orders_id.clone(), &fx.orders, &device).expect("load"),
        own_ballots: Vec::new(),
    }
}

/// Apply one local action through the rules, as the replica does; returns the record id kept.
fn act(
    doc: &mut Document,
    writer: &Writer,
    campaign: &Campaign,
    edit: impl FnOnce(&mut Document),
) -> bool {
    let before: Vec<ChangeHash> = doc.heads();
    edit(doc);
    doc.commit("action");
    let id = doc.id().clone();
    let ctx = Context {
        writer,
        doc_id: &id,
        campaign: Some(campaign),
        now: 5_000,
    };
    match check_changes(&ctx, doc.automerge(), &before) {
        Ok(_) => true,
        Err(e) => {
            if std::env::var("DEBUG_RULES").is_ok() {
                eprintln!("refused: {e}");
            }
            let device = writer.device.expect("device");
            doc.revert_to(&before, &device).expect("revert");
            false
        }
    }
}

const CHOICES: [Choice; 3] = [Choice::Yes, Choice::No, Choice::Abstain];

fn ballot(p: &Phone, entry: &RollEntry, choice: usize, supersedes: Option<String>) -> Ballot {
    Ballot {
        id: new_record_id(),
        voter_key: entry.voter_key.clone(),
        unit: entry.unit.clone(),
        answers: BTreeMap::from([(
            "q1".to_string(),
            Answer {
                choice: Some(CHOICES[choice]),
                ..Answer::default()
            },
        )]),
        collected_at: 4_000,
        by: p.writer.account.clone(),
        supersedes,
        method: None,
    }
}

fn merge_into(a: &mut Phone, b: &mut Phone) {
    a.field
        .automerge()
        .merge(b.field.automerge())
        .expect("merge");
    a.building
        .automerge()
        .merge(b.building.automerge())
        .expect("merge");
    a.orders
        .automerge()
        .merge(b.orders.automerge())
        .expect("merge");
}

fn pair(phones: &mut [Phone], a: usize, b: usize) -> (&mut Phone, &mut Phone) {
    assert_ne!(a, b);
    if a < b {
        let (left, right) = phones.split_at_mut(b);
        (&mut left[a], &mut right[0])
    } else {
        let (left, right) = phones.split_at_mut(a);
        (&mut right[0], &mut left[b])
    }
}

fn run(fx: &Fixture, scripts: Vec<Vec<Op>>, merge_order: Vec<usize>) {
    let n = scripts.len();
    let mut phones: Vec<Phone> = (0..n).map(|i| phone(fx, i)).collect();
    let mut accepted: BTreeSet<String> = BTreeSet::new();
    let campaign = &fx.campaign;

    // Interleave the scripts round-robin so merges see partial work.
    let longest = scripts.iter().map(Vec::len).max().unwrap_or(0);
    for step in 0..longest {
        for (i, script) in scripts.iter().enumerate() {
            let Some(op) = script.get(step) else { continue };
            match op.clone() {
                Op::MergeFrom { other } => {
                    let other = other % n;
                    if other != i {
                        let (a, b) = pair(&mut phones, i, other);
                        merge_into(a, b);
                    }
                }
                Op::Visit { unit, outcome } => {
                    let p = &mut phones[i];
                    let v = Visit {
                        id: new_record_id(),
                        unit: fx.units[unit].unit.clone(),
                        outcome: DoorOutcome::ALL[outcome],
                        note: String::new(),
                        at: 4_000,
                        by: p.writer.account.clone(),
                    };
                    if act(&mut p.field, &p.writer, campaign, |d| {
                        d.put_record("visits", &v.id, &v).expect("put")
                    }) {
                        accepted.insert(v.id);
                    }
                }
                Op::Ballot { unit, choice } => {
                    let p = &mut phones[i];
                    let b = ballot(p, &fx.units[unit], choice, None);
                    if act(&mut p.field, &p.writer, campaign, |d| {
                        d.put_record("ballots", &b.id, &b).expect("put")
                    }) {
                        accepted.insert(b.id.clone());
                        p.own_ballots.push(b);
                    }
                }
                Op::Correct { choice } => {
                    let p = &mut phones[i];
                    let Some(prev) = p.own_ballots.last().cloned() else {
                        continue;
                    };
                    let entry = fx.units.iter().find(|u| u.unit == prev.unit).expect("unit");
                    let b = ballot(p, entry, choice, Some(prev.id.clone()));
                    if act(&mut p.field, &p.writer, campaign, |d| {
                        d.put_record("ballots", &b.id, &b).expect("put")
                    }) {
                        accepted.insert(b.id.clone());
                        p.own_ballots.push(b);
                    }
                }
                Op::EditHousehold { unit, residents } => {
                    let p = &mut phones[i];
                    let code = &fx.units[unit].unit;
                    let mut h =
                        p.building.read::<BuildingDoc>().expect("read").households[code].clone();
                    h.residents = residents;
                    h.note = format!("edited by {}", p.writer.account);
                    assert!(
                        act(&mut p.building, &p.writer, campaign, |d| {
                            d.put_record("households", code, &h).expect("put")
                        }),
                        "a valid household edit is accepted"
                    );
                }
                Op::NewOrder { unit } => {
                    let p = &mut phones[i];
                    let o = WorkOrder {
                        id: new_record_id(),
                        unit: fx.units[unit].unit.clone(),
                        title: "修理门禁".into(),
                        detail: String::new(),
                        created_at: 4_000,
                        created_by: p.writer.account.clone(),
                        assignee: None,
                        events: BTreeMap::new(),
                    };
                    if act(&mut p.orders, &p.writer, campaign, |d| {
                        d.put_record("orders", &o.id, &o).expect("put")
                    }) {
                        accepted.insert(o.id);
                    }
                }
                Op::Adjudicate => {
                    let p = &mut phones[i];
                    if !p.writer.is(Role::CountingOfficer) {
                        continue;
                    }
                    let field = p.field.read::<FieldDoc>().expect("read");
                    let roll = Roll::from_slices([&field.roll]).expect("roll");
                    let ballots: Vec<Ballot> = field.ballots.values().cloned().collect();
                    let adjs: Vec<Adjudication> = field.adjudications.values().cloned().collect();
                    let Some(conflict) = resolve(&roll, &ballots, &adjs, None)
                        .conflicts
                        .first()
                        .cloned()
                    else {
                        continue;
                    };
                    let a = Adjudication {
                        id: new_record_id(),
                        voter_key: conflict.voter_key.clone(),
                        considered: conflict.ballots.clone(),
                        chosen: conflict.ballots.first().cloned(),
                        reason: "业主当面确认".into(),
                        at: 4_500,
                        by: p.writer.account.clone(),
                    };
                    assert!(
                        act(&mut p.field, &p.writer, campaign, |d| {
                            d.put_record("adjudications", &a.id, &a).expect("put")
                        }),
                        "an officer's adjudication is accepted"
                    );
                    accepted.insert(a.id);
                }
            }
        }
    }

    // Reconnect in a random order: each phone merges everyone in that order, twice round.
    for _ in 0..2 {
        for &i in &merge_order {
            for &j in &merge_order {
                if i % n != j % n {
                    let (a, b) = pair(&mut phones, i % n, j % n);
                    merge_into(a, b);
                }
            }
        }
    }
    for i in 0..n {
        for j in 0..n {
            if i != j {
                let (a, b) = pair(&mut phones, i, j);
                merge_into(a, b);
            }
        }
    }

    let first_field = phones[0].field.read::<FieldDoc>().expect("read");
    let first_building = phones[0].building.read::<BuildingDoc>().expect("read");
    let first_orders = phones[0].orders.read::<OrdersDoc>().expect("read");
    let tally_of = |f: &FieldDoc| {
        let roll = Roll::from_slices([&f.roll]).expect("roll");
        let ballots: Vec<Ballot> = f.ballots.values().cloned().collect();
        let deliveries: Vec<Delivery> = f.deliveries.values().cloned().collect();
        let adjs: Vec<Adjudication> = f.adjudications.values().cloned().collect();
        tally(&roll, campaign, &ballots, &deliveries, &adjs)
    };
    let first_tally = tally_of(&first_field);
    let first_heads = phones[0].field.heads();
    for p in phones.iter_mut().skip(1) {
        assert_eq!(p.field.heads(), first_heads, "field heads converge");
        let field = p.field.read::<FieldDoc>().expect("read");
        assert_eq!(field, first_field, "field records converge");
        assert_eq!(
            p.building.read::<BuildingDoc>().expect("read"),
            first_building,
            "households converge"
        );
        assert_eq!(
            p.orders.read::<OrdersDoc>().expect("read"),
            first_orders,
            "work orders converge"
        );
        assert_eq!(
            serde_json::to_string(&tally_of(&field)).expect("json"),
            serde_json::to_string(&first_tally).expect("json"),
            "tallies are identical"
        );
    }

    // No record lost.
    let mut present: BTreeSet<String> = first_field.visits.keys().cloned().collect();
    present.extend(first_field.ballots.keys().cloned());
    present.extend(first_field.adjudications.keys().cloned());
    present.extend(first_orders.orders.keys().cloned());
    let lost: Vec<_> = accepted.difference(&present).collect();
    assert!(lost.is_empty(), "records lost: {lost:?}");

    // Every voter key with competing un-superseded ballots is a conflict unless adjudicated.
    let superseded: BTreeSet<&str> = first_field
        .ballots
        .values()
        .filter_map(|b| b.supersedes.as_deref())
        .collect();
    let mut heads_by_voter: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for b in first_field.ballots.values() {
        if !superseded.contains(b.id.as_str()) {
            heads_by_voter
                .entry(&b.voter_key)
                .or_default()
                .insert(&b.id);
        }
    }
    let settled: BTreeSet<&str> = first_tally
        .adjudicated
        .iter()
        .map(|a| a.voter_key.as_str())
        .collect();
    let listed: BTreeSet<&str> = first_tally
        .conflicts
        .iter()
        .map(|c| c.voter_key.as_str())
        .collect();
    for (voter, heads) in heads_by_voter {
        if heads.len() > 1 {
            assert!(
                listed.contains(voter) || settled.contains(voter),
                "duplicate ballots of {voter} are neither listed nor adjudicated"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn replicas_converge_with_identical_tallies_and_nothing_lost(
        scripts in (3..=11usize).prop_flat_map(|n| proptest::collection::vec(
            proptest::collection::vec(op(), 1..8), n)),
        merge_seed in proptest::collection::vec(0..11usize, 11),
    ) {
        let fx = fixture();
        run(&fx, scripts, merge_seed);
    }
}

#[test]
fn a_head_and_a_deputy_ballot_for_one_owner_is_a_conflict_until_adjudicated() {
    let fx = fixture();
    let scripts = vec![
        vec![Op::MergeFrom { other: 1 }, Op::Adjudicate],
        vec![Op::Ballot { unit: 0, choice: 0 }],
        vec![
            Op::Ballot { unit: 0, choice: 1 },
            Op::MergeFrom { other: 1 },
        ],
    ];
    run(&fx, scripts, vec![2, 0, 1]);
}

#[test]
fn concurrent_household_edits_keep_both_values_visible_as_a_conflict() {
    let fx = fixture();
    let mut head = phone(&fx, 1);
    let mut deputy = phone(&fx, 2);
    let code = fx.units[0].unit.clone();
    for (p, phone_no) in [(&mut head, "13900000001"), (&mut deputy, "13900000002")] {
        let mut h = p.building.read::<BuildingDoc>().expect("read").households[&code].clone();
        h.phone = phone_no.into();
        assert!(act(&mut p.building, &p.writer, &fx.campaign, |d| {
            d.put_record("households", &code, &h).expect("put")
        }));
    }
    merge_into(&mut head, &mut deputy);
    merge_into(&mut deputy, &mut head);
    for p in [&mut head, &mut deputy] {
        let conflicts =
            doorstep_core::conflicts::household_conflicts(&mut p.building).expect("conflicts");
        assert_eq!(conflicts.len(), 1, "one field in conflict: {conflicts:?}");
        let c = &conflicts[0];
        assert_eq!(
            (c.unit.as_str(), c.field.as_str()),
            (code.as_str(), "phone")
        );
        let values: BTreeSet<&str> = c.values.iter().map(String::as_str).collect();
        assert_eq!(values, BTreeSet::from(["13900000001", "13900000002"]));
    }
    // Writing the field again settles it, and the conflict disappears on both after merging.
    let mut h = head
        .building
        .read::<BuildingDoc>()
        .expect("read")
        .households[&code]
        .clone();
    h.phone = "13900000002".into();
    assert!(act(&mut head.building, &head.writer, &fx.campaign, |d| {
        d.put_record("households", &code, &h).expect("put")
    }));
    merge_into(&mut deputy, &mut head);
    assert!(
        doorstep_core::conflicts::household_conflicts(&mut deputy.building)
            .expect("c")
            .is_empty()
    );
}

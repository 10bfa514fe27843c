//! The phone's replica: each action is checked, saved at once, survives reopening, and a refused
//! action leaves nothing behind.

use std::collections::{BTreeMap, BTreeSet};

use doorstep_core::Error;
use doorstep_core::campaign::publish;
use doorstep_core::doc::{CampaignDoc, DocId, Document, OrdersDoc};
use doorstep_core::import::parse_csv;
use doorstep_core::model::*;
use doorstep_core::replica::{HouseholdEdit, Identity, Replica};
use doorstep_core::store::Store;
use uuid::Uuid;

const SAMPLE: &[u8] = include_bytes!("../testdata/taipingyang-garden.csv");

/// A store holding what a building head of building 3 receives on first sync.
fn seeded(path: &std::path::Path) -> (Replica, String) {
    let server = Uuid::new_v4();
    let reg = parse_csv("tpy", "太平洋花园", SAMPLE).expect("sample");
    let draft = Campaign {
        id: new_record_id(),
        community: "tpy".into(),
        title: "续聘物业".into(),
        kind: CampaignKind::Resolution,
        binding: true,
        scope: Scope::Whole,
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
    let publication = publish(&draft, &reg.buildings, 1).expect("publish");
    let mut store = Store::open(path).expect("store");
    let b3 = reg
        .buildings
        .iter()
        .find(|b| b.building.id == "3")
        .expect("3");
    let mut docs = Vec::new();
    let mut add = |id: DocId, write: &dyn Fn(&mut Document)| {
        let mut d = Document::new(id, &server);
        write(&mut d);
        d.commit("server");
        docs.push(d);
    };
    add(
        DocId::Building {
            community: "tpy".into(),
            building: "3".into(),
        },
        &|d| d.write(b3).expect("w"),
    );
    add(
        DocId::Campaign {
            campaign: draft.id.clone(),
        },
        &|d| {
            d.write(&CampaignDoc {
                schema: 1,
                campaign: publication.campaign.clone(),
            })
            .expect("w")
        },
    );
    let field3 = publication
        .field_docs
        .iter()
        .find(|f| f.building == "3")
        .expect("f3");
    add(
        DocId::Field {
            campaign: draft.id.clone(),
            building: "3".into(),
        },
        &|d| d.write(field3).expect("w"),
    );
    add(
        DocId::Orders {
            community: "tpy".into(),
            building: "3".into(),
        },
        &|d| {
            d.write(&OrdersDoc {
                schema: 1,
                community: "tpy".into(),
                building: "3".into(),
                orders: BTreeMap::new(),
            })
            .expect("w")
        },
    );
    let mut refs: Vec<&mut Document> = docs.iter_mut().collect();
    store.save(&mut refs).expect("save");
    let replica = Replica::from_store(store);
    (replica, draft.id)
}

fn enroll(replica: &Replica) {
    replica
        .set_identity(&Identity {
            account: "head-3".into(),
            community: "tpy".into(),
            roles: vec![Role::BuildingHead],
            buildings: BTreeSet::from(["3".to_string()]),
            device: Uuid::new_v4(),
        })
        .expect("identity");
}

#[test]
fn an_afternoon_offline_is_saved_action_by_action_and_survives_reopening() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("phone.sqlite");
    let (replica, campaign) = seeded(&path);
    assert!(
        matches!(replica.buildings(), Err(Error::NotEnrolled)),
        "not enrolled yet"
    );
    enroll(&replica);

    let units = replica.units("3", Some(&campaign)).expect("units");
    assert_eq!(units.len(), 28);
    let first = units[0].unit.code.clone();
    replica
        .record_visit(&campaign, &first, DoorOutcome::Delivered, "")
        .expect("visit");
    replica
        .record_delivery(&campaign, &first)
        .expect("delivery");
    let answers = BTreeMap::from([(
        "q1".to_string(),
        Answer {
            choice: Some(Choice::Yes),
            ..Answer::default()
        },
    )]);
    let ballot = replica
        .record_ballot(&campaign, &first, answers.clone(), None)
        .expect("ballot");
    let mut correction = answers.clone();
    correction.get_mut("q1").expect("q1").choice = Some(Choice::No);
    replica
        .record_ballot(&campaign, &first, correction, Some(ballot))
        .expect("correction");
    replica
        .edit_household(
            &first,
            &HouseholdEdit {
                residents: Some(5),
                ..HouseholdEdit::default()
            },
        )
        .expect("household");
    let order = replica
        .create_order(&first, "楼道灯坏了", "三楼")
        .expect("order");
    assert_eq!(replica.pending_changes().expect("pending"), 6);
    drop(replica);

    // Reopen as after the app was killed: everything acknowledged is there.
    let replica = Replica::open(&path).expect("reopen");
    let units = replica.units("3", Some(&campaign)).expect("units");
    let unit = units.iter().find(|u| u.unit.code == first).expect("unit");
    assert_eq!(unit.last_outcome, Some(DoorOutcome::Delivered));
    assert!(unit.ballot_recorded);
    assert_eq!(unit.household.as_ref().map(|h| h.residents), Some(5));
    let orders = replica.orders("3").expect("orders");
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].id, order);
    assert_eq!(replica.pending_changes().expect("pending"), 6);
    let attention = replica.attention().expect("attention");
    assert!(
        attention.ballot_conflicts.is_empty(),
        "a correction is not a conflict"
    );
}

#[test]
fn refused_actions_leave_nothing_behind() {
    let dir = tempfile::tempdir().expect("tmp");
    let (replica, campaign) = seeded(&dir.path().join("phone.sqlite"));
    enroll(&replica);
    let unit = replica.units("3", None).expect("units")[0]
        .unit
        .code
        .clone();

    // A unit of another building, a unit that does not exist, an over-long household value.
    assert!(
        replica
            .record_visit(&campaign, "4-1-0101", DoorOutcome::NotHome, "")
            .is_err()
    );
    assert!(
        replica
            .record_visit(&campaign, "3-9-9999", DoorOutcome::NotHome, "")
            .is_err()
    );
    let refused = replica.edit_household(
        &unit,
        &HouseholdEdit {
            residents: Some(500),
            ..HouseholdEdit::default()
        },
    );
    assert!(matches!(refused, Err(Error::NotAllowed(_))), "{refused:?}");
    // A ballot answering a question the campaign does not ask.
    let bogus = BTreeMap::from([(
        "q9".to_string(),
        Answer {
            choice: Some(Choice::Yes),
            ..Answer::default()
        },
    )]);
    assert!(matches!(
        replica.record_ballot(&campaign, &unit, bogus, None),
        Err(Error::NotAllowed(_))
    ));
    assert_eq!(replica.pending_changes().expect("pending"), 0);
    let view = replica.units("3", Some(&campaign)).expect("units");
    assert!(view.iter().all(|u| u.visits == 0 && !u.ballot_recorded));

    // The replica keeps working after refusals.
    replica
        .record_visit(&campaign, &unit, DoorOutcome::NotHome, "")
        .expect("visit");
    assert_eq!(replica.pending_changes().expect("pending"), 1);
}

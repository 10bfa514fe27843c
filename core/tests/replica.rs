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

/// Every file of the store's folder, concatenated (the database, its WAL, anything left beside).
fn folder_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir") {
        all.extend(std::fs::read(entry.expect("entry").path()).expect("read"));
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The residents' names and phone numbers building 3's head carries.
fn personal_data(replica: &Replica) -> Vec<String> {
    let mut out = Vec::new();
    for view in replica.units("3", None).expect("units") {
        out.extend(view.unit.owner_names.iter().cloned());
        if let Some(h) = view.household {
            out.extend([h.contact_name, h.phone]);
        }
    }
    out.retain(|s| s.chars().count() >= 2);
    assert!(out.len() > 20, "building 3 has names and phones: {out:?}");
    out
}

#[test]
fn an_old_plain_store_is_encrypted_in_place_keeping_every_record_and_no_name_stays_readable() {
    use doorstep_core::encryption::StoreKey;
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("phone.sqlite");
    let key = StoreKey::from_bytes(&[7u8; 32]).expect("key");
    let (replica, campaign) = seeded(&path);
    enroll(&replica);
    let units = replica.units("3", Some(&campaign)).expect("units");
    for view in &units[..3] {
        replica
            .record_visit(&campaign, &view.unit.code, DoorOutcome::NotHome, "")
            .expect("visit");
    }
    // A correction made in the field is a small change, stored uncompressed: in a plain store
    // its name and phone number can be read with `strings`.
    let edit = HouseholdEdit {
        contact_name: Some("欧阳春花".into()),
        phone: Some("13987654321".into()),
        ..HouseholdEdit::default()
    };
    replica
        .edit_household(&units[0].unit.code, &edit)
        .expect("edit");
    let secrets = personal_data(&replica);
    assert!(secrets.contains(&"欧阳春花".to_string()));
    let pending = replica.pending_changes().expect("pending");
    drop(replica);
    let plain = folder_bytes(dir.path());
    assert!(
        contains(&plain, "欧阳春花") && contains(&plain, "13987654321"),
        "a plain store holds the correction in clear (the check below means something)"
    );

    let replica = Replica::open_encrypted(&path, &key).expect("encrypted open migrates");
    let after = replica.units("3", Some(&campaign)).expect("units");
    assert_eq!(after.len(), units.len());
    assert_eq!(after.iter().map(|u| u.visits).sum::<usize>(), 3);
    assert_eq!(replica.pending_changes().expect("pending"), pending);
    assert_eq!(personal_data(&replica), secrets);
    replica
        .record_visit(&campaign, &units[3].unit.code, DoorOutcome::Refused, "")
        .expect("a visit after the migration");
    drop(replica);

    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".plain") || n.ends_with(".encrypting"))
        .collect();
    assert!(
        names.is_empty(),
        "no plain or staging copy is left: {names:?}"
    );
    let encrypted = folder_bytes(dir.path());
    assert!(!contains(&encrypted, "SQLite format 3"));
    let readable: Vec<_> = secrets.iter().filter(|s| contains(&encrypted, s)).collect();
    assert!(
        readable.is_empty(),
        "{} names or phones readable",
        readable.len()
    );
}

#[test]
fn a_wrong_key_or_no_key_is_refused_and_changes_nothing_on_disk() {
    use doorstep_core::encryption::StoreKey;
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("phone.sqlite");
    let key = StoreKey::from_bytes(&[1u8; 32]).expect("key");
    let (replica, campaign) = seeded(&path);
    drop(replica);
    let replica = Replica::open_encrypted(&path, &key).expect("open");
    enroll(&replica);
    let door = replica.units("3", Some(&campaign)).expect("units")[0]
        .unit
        .code
        .clone();
    replica
        .record_visit(&campaign, &door, DoorOutcome::ComeBack, "")
        .expect("visit");
    drop(replica);
    let before = folder_bytes(dir.path());

    let wrong = StoreKey::from_bytes(&[2u8; 32]).expect("key");
    let err = Replica::open_encrypted(&path, &wrong).expect_err("a wrong key");
    assert_eq!(err.code(), "wrong_key");
    let err = Replica::open(&path).expect_err("no key");
    assert_eq!(err.code(), "storage");
    assert_eq!(folder_bytes(dir.path()), before, "nothing changed on disk");
    assert_eq!(
        StoreKey::from_bytes(&[1u8; 16])
            .expect_err("short key")
            .code(),
        "invalid_input"
    );

    let replica = Replica::open_encrypted(&path, &key).expect("the right key still opens it");
    let view = replica.units("3", Some(&campaign)).expect("units");
    assert_eq!(view[0].visits, 1);
}

#[test]
fn an_encryption_interrupted_at_either_step_is_finished_by_the_next_open() {
    use doorstep_core::encryption::StoreKey;
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("phone.sqlite");
    let staging = dir.path().join("phone.sqlite.encrypting");
    let plain_copy = dir.path().join("phone.sqlite.plain");
    let key = StoreKey::from_bytes(&[9u8; 32]).expect("key");
    let (replica, _campaign) = seeded(&path);
    enroll(&replica);
    let secrets = personal_data(&replica);
    drop(replica);

    // Killed during the export: a half-written staging file beside the untouched plain store.
    std::fs::write(&staging, b"half an export").expect("staging");
    let replica = Replica::open_encrypted(&path, &key).expect("open");
    assert_eq!(personal_data(&replica), secrets);
    drop(replica);
    assert!(!staging.exists());

    // Killed after the rename, before the plain copy was wiped: the next open wipes it.
    std::fs::write(&plain_copy, secrets.join("\n")).expect("a stand-in for the plain copy");
    let replica = Replica::open_encrypted(&path, &key).expect("open");
    assert_eq!(personal_data(&replica), secrets);
    drop(replica);
    assert!(!plain_copy.exists(), "the plain copy is removed");
    let bytes = folder_bytes(dir.path());
    assert!(secrets.iter().all(|s| !contains(&bytes, s)));
}

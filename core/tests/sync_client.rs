//! The phone's sync client against a scripted fake server: a transport that answers the
//! protocol from a few server-side documents and can fail on cue (a 5xx, a reply lost after the
//! server stored the changes, a document taken away). No HTTP server, no sleeping.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use automerge::sync::{self as am_sync, SyncDoc};
use automerge::{AutoCommit, ChangeHash};
use doorstep_core::Error;
use doorstep_core::campaign::publish;
use doorstep_core::doc::{CampaignDoc, DocId, Document, FieldDoc, OrdersDoc};
use doorstep_core::import::parse_csv;
use doorstep_core::model::*;
use doorstep_core::protocol::{
    self, Bytes, DocResponse, DocStatus, Manifest, ManifestEntry, SyncResponse, heads_from_wire,
    heads_to_wire,
};
use doorstep_core::replica::{Identity, Replica};
use doorstep_core::store::{self, Store};
use doorstep_core::sync::{Transport, TransportError};
use uuid::Uuid;

const SAMPLE: &[u8] = include_bytes!("../testdata/taipingyang-garden.csv");
const CAMPAIGN: &str = "c-2026";

/// What the fake server does with the next request.
enum Fault {
    /// Answer with this HTTP status before looking at the request.
    Status(u16),
    /// Store everything, then lose the reply on the way back.
    LoseReply,
}

type Hook = Box<dyn FnOnce() + Send>;

/// A server holding documents for one device, answering sync requests in-process.
struct FakeServer {
    docs: Mutex<BTreeMap<DocId, AutoCommit>>,
    /// The documents this device may hold (its manifest).
    holds: Mutex<BTreeSet<DocId>>,
    script: Mutex<VecDeque<Fault>>,
    /// Runs while the next request is "on the network".
    during: Mutex<Option<Hook>>,
    /// The document ids each request carried.
    requests: Mutex<Vec<Vec<String>>>,
}

impl FakeServer {
    fn new() -> Arc<FakeServer> {
        let server = Uuid::new_v4();
        let reg = parse_csv("tpy", "太平洋花园", SAMPLE).expect("sample");
        let draft = Campaign {
            id: CAMPAIGN.into(),
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
        let b3 = reg
            .buildings
            .iter()
            .find(|b| b.building.id == "3")
            .expect("3");
        let field3 = publication
            .field_docs
            .iter()
            .find(|f| f.building == "3")
            .expect("f3");
        let mut docs = BTreeMap::new();
        let mut add = |id: DocId, write: &dyn Fn(&mut Document)| {
            let mut d = Document::new(id.clone(), &server);
            write(&mut d);
            d.commit("server");
            docs.insert(id, d.automerge().clone());
        };
        add(building_id(), &|d| d.write(b3).expect("w"));
        add(campaign_id(), &|d| {
            d.write(&CampaignDoc {
                schema: 1,
                campaign: publication.campaign.clone(),
            })
            .expect("w")
        });
        add(field_id(), &|d| d.write(field3).expect("w"));
        add(orders_id(), &|d| {
            d.write(&OrdersDoc {
                schema: 1,
                community: "tpy".into(),
                building: "3".into(),
                orders: BTreeMap::new(),
            })
            .expect("w")
        });
        let holds = docs.keys().cloned().collect();
        Arc::new(FakeServer {
            docs: Mutex::new(docs),
            holds: Mutex::new(holds),
            script: Mutex::new(VecDeque::new()),
            during: Mutex::new(None),
            requests: Mutex::new(Vec::new()),
        })
    }

    fn then(&self, fault: Fault) {
        self.script.lock().expect("script").push_back(fault);
    }

    /// How many visits the server's field document holds.
    fn visits(&self) -> usize {
        let docs = self.docs.lock().expect("docs");
        let field: FieldDoc = autosurgeon::hydrate(&docs[&field_id()]).expect("field");
        field.visits.len()
    }

    fn last_request(&self) -> Vec<String> {
        self.requests
            .lock()
            .expect("requests")
            .last()
            .cloned()
            .unwrap_or_default()
    }

    fn answer(&self, body: &[u8]) -> SyncResponse {
        let request = protocol::decode_request(body).expect("a well-formed request");
        self.requests
            .lock()
            .expect("requests")
            .push(request.docs.iter().map(|d| d.id.clone()).collect());
        let holds = self.holds.lock().expect("holds").clone();
        let mut docs = self.docs.lock().expect("docs");
        let mut out = Vec::new();
        for entry in &request.docs {
            let id: DocId = entry.id.parse().expect("doc id");
            let Some(doc) = docs.get_mut(&id).filter(|_| holds.contains(&id)) else {
                out.push(DocResponse {
                    id: entry.id.clone(),
                    status: DocStatus::Forbidden,
                    reason: Some("not assigned".into()),
                    code: Some("not_assigned".into()),
                    heads: Vec::new(),
                    msg: None,
                });
                continue;
            };
            let mut state = am_sync::State::new();
            if let Some(msg) = &entry.msg {
                let message = am_sync::Message::decode(&msg.0).expect("message");
                doc.sync()
                    .receive_sync_message(&mut state, message)
                    .expect("receive");
            }
            // Nothing to send when the phone already has everything the server has.
            let phone: Vec<ChangeHash> = heads_from_wire(&entry.heads).expect("heads");
            let phone_has_all = !phone.is_empty()
                && phone.iter().all(|h| doc.get_change_by_hash(h).is_some())
                && doc.get_changes(&phone).is_empty();
            let msg = if phone_has_all {
                None
            } else {
                doc.sync()
                    .generate_sync_message(&mut state)
                    .map(|m| Bytes(m.encode()))
            };
            out.push(DocResponse {
                id: entry.id.clone(),
                status: DocStatus::Ok,
                reason: None,
                code: None,
                heads: heads_to_wire(&doc.get_heads()),
                msg,
            });
        }
        let entries: Vec<(String, Vec<ChangeHash>)> = holds
            .iter()
            .map(|id| (id.to_string(), docs.get_mut(id).expect("held").get_heads()))
            .collect();
        let digest =
            protocol::manifest_digest(entries.iter().map(|(id, h)| (id.as_str(), h.as_slice())));
        SyncResponse {
            protocol: protocol::PROTOCOL_VERSION,
            schema: 1,
            docs: out,
            manifest: Some(Manifest {
                digest,
                full: true,
                docs: entries
                    .iter()
                    .map(|(id, heads)| ManifestEntry {
                        id: id.clone(),
                        heads: heads_to_wire(heads),
                    })
                    .collect(),
                removed: Vec::new(),
            }),
            account: None,
        }
    }
}

impl Transport for FakeServer {
    fn post(&self, body: Vec<u8>, _token: &str) -> Result<Vec<u8>, TransportError> {
        let fault = self.script.lock().expect("script").pop_front();
        if let Some(Fault::Status(status)) = fault {
            return Err(TransportError::Http {
                status,
                code: "unavailable".into(),
                message: "the server is restarting".into(),
            });
        }
        let hook = self.during.lock().expect("hook").take();
        if let Some(hook) = hook {
            hook();
        }
        let reply = protocol::encode(&self.answer(&body));
        match fault {
            Some(Fault::LoseReply) => Err(TransportError::Network("connection reset".into())),
            _ => Ok(reply),
        }
    }

    fn enroll(&self, _body: Vec<u8>) -> Result<Vec<u8>, TransportError> {
        Err(TransportError::Network("not in these tests".into()))
    }
}

fn building_id() -> DocId {
    DocId::Building {
        community: "tpy".into(),
        building: "3".into(),
    }
}

fn campaign_id() -> DocId {
    DocId::Campaign {
        campaign: CAMPAIGN.into(),
    }
}

fn field_id() -> DocId {
    DocId::Field {
        campaign: CAMPAIGN.into(),
        building: "3".into(),
    }
}

fn orders_id() -> DocId {
    DocId::Orders {
        community: "tpy".into(),
        building: "3".into(),
    }
}

/// An enrolled phone (a device token and an identity), holding nothing yet.
fn phone() -> Arc<Replica> {
    phone_at(doorstep_core::clock::system())
}

/// [`phone`] reading the time from `clock`.
fn phone_at(clock: Arc<dyn doorstep_core::clock::Clock>) -> Arc<Replica> {
    let device = Uuid::new_v4();
    let mut store = Store::open_in_memory().expect("store");
    {
        let tx = store.transaction().expect("tx");
        store::put_setting(&tx, store::keys::DEVICE_TOKEN, "token").expect("token");
        tx.commit([]).expect("commit");
    }
    let replica = Replica::from_store(store).with_clock(clock);
    replica
        .set_identity(&Identity {
            account: "head-3".into(),
            community: "tpy".into(),
            roles: vec![Role::BuildingHead],
            buildings: BTreeSet::from(["3".to_string()]),
            device,
        })
        .expect("identity");
    Arc::new(replica)
}

fn units(replica: &Replica) -> Vec<String> {
    replica
        .units("3", Some(CAMPAIGN))
        .expect("units")
        .into_iter()
        .map(|u| u.unit.code)
        .collect()
}

#[test]
fn a_first_sync_fetches_the_building_and_the_next_sends_nothing_unchanged() {
    let server = FakeServer::new();
    let replica = phone();
    let report = replica.sync(server.as_ref(), "test").expect("sync");
    assert!(report.complete);
    assert_eq!(report.docs_changed, 4, "{report:?}");
    assert_eq!(units(&replica).len(), 28);

    let again = replica.sync(server.as_ref(), "test").expect("sync");
    assert!(again.complete);
    assert_eq!(again.round_trips, 1);
    assert!(
        server.last_request().is_empty(),
        "unchanged documents are not offered: {:?}",
        server.last_request()
    );
}

#[test]
fn work_recorded_while_a_request_is_on_the_network_is_kept_and_sent_next() {
    let server = FakeServer::new();
    let replica = phone();
    replica.sync(server.as_ref(), "test").expect("first sync");
    let doors = units(&replica);
    replica
        .record_visit(CAMPAIGN, &doors[0], DoorOutcome::NotHome, "")
        .expect("visit");

    // While the request is out, the head records another visit from another thread. The
    // replica must not be locked across the network; a generous bound turns a regression
    // into a failure instead of a hang.
    let during = replica.clone();
    let door = doors[1].clone();
    *server.during.lock().expect("hook") = Some(Box::new(move || {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(during.record_visit(CAMPAIGN, &door, DoorOutcome::Refused, ""));
        });
        rx.recv_timeout(Duration::from_secs(30))
            .expect("the replica answered while the sync waited on the network")
            .expect("visit during sync");
    }));
    let report = replica.sync(server.as_ref(), "test").expect("sync");
    assert!(report.complete, "{report:?}");
    assert_eq!(server.visits(), 2, "both visits reached the server");
    assert_eq!(replica.pending_changes().expect("pending"), 0);
    let timeline = replica
        .unit_timeline(CAMPAIGN, &doors[1])
        .expect("timeline");
    assert!(timeline.iter().all(|e| e.synced), "{timeline:?}");
}

#[test]
fn a_lost_reply_is_sent_again_and_stored_once() {
    let server = FakeServer::new();
    let replica = phone();
    replica.sync(server.as_ref(), "test").expect("first sync");
    let doors = units(&replica);
    for door in &doors[..3] {
        replica
            .record_visit(CAMPAIGN, door, DoorOutcome::NotHome, "")
            .expect("visit");
    }
    server.then(Fault::LoseReply);
    let err = replica
        .sync(server.as_ref(), "test")
        .expect_err("the reply was lost");
    assert!(matches!(err, Error::Network(_)), "{err:?}");
    assert_eq!(
        server.visits(),
        3,
        "the server stored them before the reply was lost"
    );
    assert_eq!(
        replica.pending_changes().expect("pending"),
        3,
        "the phone does not know the server has them"
    );

    let report = replica.sync(server.as_ref(), "test").expect("retry");
    assert!(report.complete);
    assert_eq!(server.visits(), 3, "nothing stored twice");
    assert_eq!(replica.pending_changes().expect("pending"), 0);
}

#[test]
fn a_server_error_leaves_the_phone_as_it_was_and_the_next_sync_delivers() {
    let server = FakeServer::new();
    let replica = phone();
    replica.sync(server.as_ref(), "test").expect("first sync");
    let doors = units(&replica);
    replica
        .record_visit(CAMPAIGN, &doors[0], DoorOutcome::ComeBack, "周末再来")
        .expect("visit");
    server.then(Fault::Status(503));
    let err = replica.sync(server.as_ref(), "test").expect_err("503");
    assert!(
        matches!(err, Error::Network(_)),
        "a 5xx means retry: {err:?}"
    );
    assert_eq!(server.visits(), 0);
    assert_eq!(replica.pending_changes().expect("pending"), 1);

    replica.sync(server.as_ref(), "test").expect("retry");
    assert_eq!(server.visits(), 1);
    assert_eq!(replica.pending_changes().expect("pending"), 0);
}

#[test]
fn a_document_taken_away_is_dropped_unless_it_holds_undelivered_work() {
    let server = FakeServer::new();
    let replica = phone();
    replica.sync(server.as_ref(), "test").expect("first sync");
    let doors = units(&replica);
    replica
        .record_visit(CAMPAIGN, &doors[0], DoorOutcome::NotHome, "")
        .expect("visit");

    // The building is reassigned: the field and orders documents leave this device's manifest.
    {
        let mut holds = server.holds.lock().expect("holds");
        holds.remove(&field_id());
        holds.remove(&orders_id());
    }
    let report = replica.sync(server.as_ref(), "test").expect("sync");
    assert_eq!(report.dropped, vec![orders_id()], "{report:?}");
    let kept: Vec<(&DocId, &str)> = report
        .rejected
        .iter()
        .map(|r| (&r.doc, r.code.as_str()))
        .collect();
    assert_eq!(kept, vec![(&field_id(), "not_held")]);
    // The visit is still on the phone, waiting for an admin to take it.
    assert_eq!(replica.pending_changes().expect("pending"), 1);
    let timeline = replica
        .unit_timeline(CAMPAIGN, &doors[0])
        .expect("timeline");
    assert_eq!(timeline.len(), 1);
    assert!(!timeline[0].synced);
    assert!(
        replica.orders("3").expect("orders").is_empty(),
        "the orders document is gone"
    );
}

#[test]
fn once_the_campaign_closed_the_phone_refuses_a_ballot_collected_after_the_close() {
    const CLOSE: Millis = 1_780_000_000_000;
    let server = FakeServer::new();
    {
        let mut docs = server.docs.lock().expect("docs");
        let doc = docs.get_mut(&campaign_id()).expect("campaign");
        let mut campaign: CampaignDoc = autosurgeon::hydrate(&*doc).expect("campaign");
        campaign.campaign.status = CampaignStatus::Closed;
        campaign
            .campaign
            .status_times
            .insert("open".into(), CLOSE - 86_400_000);
        campaign
            .campaign
            .status_times
            .insert("closed".into(), CLOSE);
        autosurgeon::reconcile(doc, &campaign).expect("close");
        doc.commit();
    }
    // The phone's clock, set by hand: a minute before the close.
    let clock = doorstep_core::clock::ManualClock::new(CLOSE - 60_000);
    let replica = phone_at(clock.clone());
    replica.sync(server.as_ref(), "test").expect("sync");
    let doors = units(&replica);
    let answers = BTreeMap::from([(
        "q1".to_string(),
        Answer {
            choice: Some(Choice::Yes),
            ..Answer::default()
        },
    )]);
    replica
        .record_ballot(CAMPAIGN, &doors[0], answers.clone(), None)
        .expect("collected before the close, inside the grace period");

    clock.set(CLOSE + 1);
    let err = replica
        .record_ballot(CAMPAIGN, &doors[1], answers, None)
        .expect_err("collected after the close");
    assert_eq!(err.code(), "campaign_closed");
    assert_eq!(
        replica.pending_changes().expect("pending"),
        1,
        "the refused ballot left nothing"
    );
}

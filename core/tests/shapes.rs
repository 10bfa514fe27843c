//! Snapshot tests of document shapes: what is stored in Automerge, as JSON, for each kind.
//! A change here changes what every phone and server hold; it must be deliberate.

use std::collections::BTreeMap;

use automerge::AutoSerde;
use doorstep_core::campaign::publish;
use doorstep_core::doc::{BuildingDoc, CampaignDoc, DocId, Document, OrdersDoc};
use doorstep_core::import::parse_csv;
use doorstep_core::model::*;
use uuid::Uuid;

const CSV: &str =
    "unit_code,building,entrance,floor,room,area_m2,owner_key,owner_name,phone,residents,note
9-1-0101,9号楼,1单元,1,0101,86.03,P0001,崔振平,13808940945,2,
9-1-0102,9号楼,1单元,1,0102,88.52,P0002,吴华萍、陈德华,13801786786,1,co_owned
9-1-0201,9号楼,1单元,2,0201,95.60,DEVELOPER,某开发公司,,0,developer_unsold
";

fn json(doc: &mut Document) -> serde_json::Value {
    serde_json::to_value(AutoSerde::from(doc.automerge().document())).expect("json")
}

fn campaign() -> Campaign {
    Campaign {
        id: "0190a000-0000-7000-8000-000000000001".into(),
        community: "demo".into(),
        title: "第一届业主委员会选举".into(),
        kind: CampaignKind::Election,
        binding: true,
        scope: Scope::Whole,
        rules: Rules::default(),
        questions: BTreeMap::from([(
            "q1".to_string(),
            Question {
                id: "q1".into(),
                order: 1,
                text: "选举业主委员会委员".into(),
                kind: QuestionKind::Election {
                    seats: 5,
                    candidates: (1..=6)
                        .map(|i| {
                            (
                                format!("c{i}"),
                                Candidate {
                                    id: format!("c{i}"),
                                    name: format!("候选人{i}"),
                                    order: i,
                                },
                            )
                        })
                        .collect(),
                },
            },
        )]),
        status: CampaignStatus::Draft,
        status_times: BTreeMap::new(),
        roll_hash: None,
        rules_hash: None,
    }
}

/// A published campaign's document (schema 1, as the first release wrote campaigns).
fn campaign_document(campaign: &Campaign, device: &Uuid) -> Document {
    let mut doc = Document::new(
        DocId::Campaign {
            campaign: campaign.id.clone(),
        },
        device,
    );
    doc.write(&CampaignDoc {
        schema: 1,
        campaign: campaign.clone(),
    })
    .expect("write");
    doc
}

#[test]
fn document_shapes_are_stable() {
    let device = Uuid::nil();
    let reg = parse_csv("demo", "示例小区", CSV.as_bytes()).expect("csv");
    let mut register = Document::new(
        DocId::Register {
            community: "demo".into(),
        },
        &device,
    );
    register.write(&reg.register).expect("write");
    insta::assert_json_snapshot!("register", json(&mut register));

    let b: &BuildingDoc = &reg.buildings[0];
    let mut building = Document::new(
        DocId::Building {
            community: "demo".into(),
            building: "9".into(),
        },
        &device,
    );
    building.write(b).expect("write");
    insta::assert_json_snapshot!("building", json(&mut building));

    let publication = publish(&campaign(), &reg.buildings, 1_700_000_000_000).expect("publish");
    let mut campaign_doc = campaign_document(&publication.campaign, &device);
    insta::assert_json_snapshot!("campaign", json(&mut campaign_doc));

    let mut field = publication.field_docs[0].clone();
    let visit = Visit {
        id: "0190a000-0000-7000-8000-0000000000a1".into(),
        unit: "9-1-0101".into(),
        outcome: DoorOutcome::Collected,
        note: "本人签字".into(),
        at: 1_700_000_100_000,
        by: "head9".into(),
    };
    field.visits.insert(visit.id.clone(), visit);
    let ballot = Ballot {
        id: "0190a000-0000-7000-8000-0000000000b1".into(),
        voter_key: "P0001".into(),
        unit: "9-1-0101".into(),
        answers: BTreeMap::from([(
            "q1".to_string(),
            Answer {
                candidates: BTreeMap::from([
                    ("c1".to_string(), Choice::Yes),
                    ("c2".to_string(), Choice::No),
                    ("c3".to_string(), Choice::Abstain),
                ]),
                ..Answer::default()
            },
        )]),
        collected_at: 1_700_000_100_000,
        by: "head9".into(),
        supersedes: None,
        method: Some(CollectionMethod::Proxy),
    };
    field.ballots.insert(ballot.id.clone(), ballot);
    let delivery = Delivery {
        id: "0190a000-0000-7000-8000-0000000000e1".into(),
        voter_key: "P0002".into(),
        unit: "9-1-0102".into(),
        at: 1_700_000_100_500,
        by: "head9".into(),
    };
    field.deliveries.insert(delivery.id.clone(), delivery);
    let adjudication = Adjudication {
        id: "0190a000-0000-7000-8000-0000000000f1".into(),
        voter_key: "P0001".into(),
        considered: vec![
            "0190a000-0000-7000-8000-0000000000b1".into(),
            "0190a000-0000-7000-8000-0000000000b2".into(),
        ],
        chosen: Some("0190a000-0000-7000-8000-0000000000b1".into()),
        reason: "本人到场确认".into(),
        at: 1_700_000_400_000,
        by: "officer1".into(),
    };
    field
        .adjudications
        .insert(adjudication.id.clone(), adjudication);
    let mut field_doc = Document::new(
        DocId::Field {
            campaign: publication.campaign.id.clone(),
            building: "9".into(),
        },
        &device,
    );
    field_doc.write(&field).expect("write");
    insta::assert_json_snapshot!("field", json(&mut field_doc));

    let order = WorkOrder {
        id: "0190a000-0000-7000-8000-0000000000c1".into(),
        unit: "9-1-0102".into(),
        title: "楼道灯不亮".into(),
        detail: "三楼".into(),
        created_at: 1_700_000_200_000,
        created_by: "head9".into(),
        assignee: None,
        events: BTreeMap::from([(
            "0190a000-0000-7000-8000-0000000000d1".to_string(),
            OrderEvent {
                id: "0190a000-0000-7000-8000-0000000000d1".into(),
                to: OrderStatus::UnderReview,
                at: 1_700_000_300_000,
                by: "disp".into(),
                note: String::new(),
            },
        )]),
    };
    let mut orders = Document::new(
        DocId::Orders {
            community: "demo".into(),
            building: "9".into(),
        },
        &device,
    );
    orders
        .write(&OrdersDoc {
            schema: 1,
            community: "demo".into(),
            building: "9".into(),
            orders: BTreeMap::from([(order.id.clone(), order)]),
        })
        .expect("write");
    insta::assert_json_snapshot!("orders", json(&mut orders));
}

/// The variants of a campaign's scope and question kinds that the election above does not use:
/// a resolution and a survey on one building.
#[test]
fn campaign_variant_shapes_are_stable() {
    let device = Uuid::nil();
    let reg = parse_csv("demo", "示例小区", CSV.as_bytes()).expect("csv");
    let mut draft = campaign();
    draft.kind = CampaignKind::Resolution;
    draft.scope = Scope::Building {
        building: "9".into(),
    };
    draft.questions = BTreeMap::from([
        (
            "q1".to_string(),
            Question {
                id: "q1".into(),
                order: 1,
                text: "使用维修资金更换电梯".into(),
                kind: QuestionKind::Resolution { matter: 6 },
            },
        ),
        (
            "q2".to_string(),
            Question {
                id: "q2".into(),
                order: 2,
                text: "电梯品牌".into(),
                kind: QuestionKind::Survey {
                    options: BTreeMap::from([(
                        "o1".to_string(),
                        SurveyOption {
                            id: "o1".into(),
                            label: "品牌甲".into(),
                            order: 1,
                        },
                    )]),
                    max_choices: 1,
                },
            },
        ),
    ]);
    let publication = publish(&draft, &reg.buildings, 1_700_000_000_000).expect("publish");
    let mut campaign_doc = campaign_document(&publication.campaign, &device);
    insta::assert_json_snapshot!("campaign_variants", json(&mut campaign_doc));
}

//! Test-only exports (cargo feature `testing`): a replica seeded without a server, and a call
//! that panics on purpose so foreign tests can see a panic arrive as an `ApiError`.
//!
//! Release builds for phones never enable this feature, so none of it ships; the crate's own
//! unit tests compile it too.

use std::collections::{BTreeMap, BTreeSet};

use doorstep_core::Error;
use doorstep_core::doc::{CampaignDoc, DocId, Document, FieldDoc, OrdersDoc, SCHEMA_VERSION};
use doorstep_core::import::parse_csv;
use doorstep_core::model::{
    Campaign, CampaignKind, CampaignStatus, DoorOutcome, Question, QuestionKind, Role, Rules,
    Scope, SurveyOption, Visit,
};
use doorstep_core::replica::{Identity, Replica};
use doorstep_core::roll::Roll;
use doorstep_core::store::Store;

use crate::error::{ApiError, guard};

/// The sample register of 太平洋花园 shipped with core's tests.
const SAMPLE_REGISTER: &[u8] = include_bytes!("../../core/testdata/taipingyang-garden.csv");

/// The community id the seeded replica uses.
const COMMUNITY: &str = "tpy";

/// What `seed_demo_replica` wrote, so a test knows which ids to use.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DemoSeed {
    /// A building head who is also a dispatcher, so work orders can go through their lifecycle.
    pub account: String,
    /// The buildings assigned to the account (`1`, `2`, `3`).
    pub buildings: Vec<String>,
    /// An open binding resolution with one question `q1` (matter 4).
    pub resolution: String,
    /// An open survey with one question `s1` (options `a`, `b`, `c`, up to two choices).
    pub survey: String,
}

/// Write into the (new or empty) store at `path` what a building head's phone holds after its
/// first sync: three building documents of the sample register, two open campaigns and their
/// field documents for those buildings, their (empty) work-order lists, and the identity of a
/// building head who also dispatches work orders. Then `DoorstepReplica.open`.
#[uniffi::export]
pub fn seed_demo_replica(path: String) -> Result<DemoSeed, ApiError> {
    guard(|| {
        let register = parse_csv(COMMUNITY, "太平洋花园", SAMPLE_REGISTER)?;
        let mut store = Store::open(&path)?;
        let device = store.device_id()?;
        let buildings: BTreeSet<String> = ["1", "2", "3"].map(String::from).into();
        let roll = Roll::from_units(register.units());
        let resolution = campaign(
            "demo-resolution",
            CampaignKind::Resolution,
            QuestionKind::Resolution { matter: 4 },
            &roll,
        );
        let survey = campaign(
            "demo-survey",
            CampaignKind::Survey,
            QuestionKind::Survey {
                options: ["a", "b", "c"]
                    .into_iter()
                    .enumerate()
                    .map(|(i, id)| {
                        let option = SurveyOption {
                            id: id.to_string(),
                            label: format!("option {id}"),
                            order: i as i64,
                        };
                        (id.to_string(), option)
                    })
                    .collect(),
                max_choices: 2,
            },
            &roll,
        );

        let mut docs = Vec::new();
        for b in register
            .buildings
            .iter()
            .filter(|b| buildings.contains(&b.building.id))
        {
            let id = DocId::Building {
                community: COMMUNITY.into(),
                building: b.building.id.clone(),
            };
            docs.push(written(id, &device, b)?);
            let orders = OrdersDoc {
                schema: SCHEMA_VERSION,
                community: COMMUNITY.into(),
                building: b.building.id.clone(),
                ..OrdersDoc::default()
            };
            let id = DocId::Orders {
                community: COMMUNITY.into(),
                building: b.building.id.clone(),
            };
            docs.push(written(id, &device, &orders)?);
        }
        for c in [&resolution, &survey] {
            let id = DocId::Campaign {
                campaign: c.id.clone(),
            };
            let doc = CampaignDoc {
                schema: SCHEMA_VERSION,
                campaign: c.clone(),
            };
            docs.push(written(id, &device, &doc)?);
            for b in &buildings {
                let field = FieldDoc {
                    schema: SCHEMA_VERSION,
                    campaign: c.id.clone(),
                    building: b.clone(),
                    roll: roll.slice(b),
                    ..FieldDoc::default()
                };
                let id = DocId::Field {
                    campaign: c.id.clone(),
                    building: b.clone(),
                };
                docs.push(written(id, &device, &field)?);
            }
        }
        let mut refs: Vec<&mut Document> = docs.iter_mut().collect();
        store.save(&mut refs)?;
        drop(store);

        let identity = Identity {
            account: "head-demo".into(),
            community: COMMUNITY.into(),
            roles: vec![Role::BuildingHead, Role::Dispatcher],
            buildings: buildings.clone(),
            device,
        };
        Replica::open(&path)?.set_identity(&identity)?;
        Ok(DemoSeed {
            account: identity.account,
            buildings: buildings.into_iter().collect(),
            resolution: resolution.id,
            survey: survey.id,
        })
    })
}

/// Panics inside an exported call, to prove the panic arrives as `ApiError.Storage`.
#[uniffi::export]
pub fn testing_panic(message: String) -> Result<(), ApiError> {
    guard(|| -> Result<(), Error> { panic!("{message}") })
}

/// Adds `count` visits (spread over the building's doors) to the field document of `campaign`
/// in `building`, in one commit, so benchmarks can time an action at 10,000 records without
/// 10,000 actions first, recorded by `account`. `key` opens an encrypted store. The replica must
/// not be open.
#[uniffi::export]
pub fn testing_fill_visits(
    path: String,
    key: Option<Vec<u8>>,
    campaign: String,
    building: String,
    account: String,
    count: u32,
) -> Result<(), ApiError> {
    guard(|| {
        let mut store = match key {
            Some(key) => Store::open_encrypted(
                &path,
                &doorstep_core::encryption::StoreKey::from_bytes(&key)?,
                doorstep_core::store::StoreConfig::default(),
            )?,
            None => Store::open(&path)?,
        };
        let device = store.device_id()?;
        let id = DocId::Field {
            campaign: campaign.clone(),
            building,
        };
        let mut doc = store
            .load_document(&id, &device)?
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        let mut field = doc.read::<FieldDoc>()?;
        let units: Vec<String> = field.roll.keys().cloned().collect();
        if units.is_empty() {
            return Err(Error::Invalid(format!("{id} has an empty roll")));
        }
        for i in 0..count as usize {
            let visit = Visit {
                id: doorstep_core::model::new_record_id(),
                unit: units[i % units.len()].clone(),
                outcome: DoorOutcome::NotHome,
                note: String::new(),
                at: 1_767_000_000_000 + i as i64,
                by: account.clone(),
            };
            field.visits.insert(visit.id.clone(), visit);
        }
        doc.write(&field)?;
        doc.commit("bench fill");
        store.save(&mut [&mut doc])?;
        Ok(())
    })
}

fn campaign(id: &str, kind: CampaignKind, question: QuestionKind, roll: &Roll) -> Campaign {
    let qid = match kind {
        CampaignKind::Survey => "s1",
        _ => "q1",
    };
    Campaign {
        id: id.to_string(),
        community: COMMUNITY.into(),
        title: format!("{id} (demo)"),
        kind,
        binding: kind == CampaignKind::Resolution,
        scope: Scope::Whole,
        rules: Rules::default(),
        questions: BTreeMap::from([(
            qid.to_string(),
            Question {
                id: qid.to_string(),
                order: 1,
                text: "Demo question".into(),
                kind: question,
            },
        )]),
        status: CampaignStatus::Open,
        status_times: BTreeMap::from([("published".to_string(), 1), ("open".to_string(), 2)]),
        roll_hash: Some(roll.hash()),
        rules_hash: None,
    }
}

fn written<T: autosurgeon::Reconcile>(
    id: DocId,
    device: &uuid::Uuid,
    value: &T,
) -> Result<Document, Error> {
    let mut doc = Document::new(id, device);
    doc.write(value)?;
    doc.commit("seed");
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica::DoorstepReplica;
    use crate::types::{Answer, Choice, DoorOutcome};
    use std::collections::HashMap;

    #[test]
    fn a_seeded_replica_records_visits_and_ballots() -> Result<(), ApiError> {
        let dir = tempfile::tempdir().map_err(|e| ApiError::Storage {
            reason: e.to_string(),
        })?;
        let path = dir.path().join("phone.db").display().to_string();
        let seed = seed_demo_replica(path.clone())?;
        let replica = DoorstepReplica::open(path)?;
        assert_eq!(replica.buildings()?.len(), 3);
        let units = replica.units("1".into(), Some(seed.resolution.clone()))?;
        let unit = units[0].unit.code.clone();
        replica.record_visit(
            seed.resolution.clone(),
            unit.clone(),
            DoorOutcome::Collected,
            String::new(),
        )?;
        let answers = HashMap::from([(
            "q1".to_string(),
            Answer {
                choice: Some(Choice::Yes),
                ..Answer::default()
            },
        )]);
        replica.record_ballot(seed.resolution.clone(), unit.clone(), answers, None, None)?;
        let after = replica.units("1".into(), Some(seed.resolution))?;
        assert_eq!(after[0].visits, 1);
        assert!(after[0].ballot_recorded);
        assert!(replica.pending_count()? >= 2);
        Ok(())
    }

    #[test]
    fn the_panicking_export_returns_a_storage_error() {
        assert!(matches!(
            testing_panic("boom".into()),
            Err(ApiError::Storage { reason }) if reason.contains("boom")
        ));
    }
}

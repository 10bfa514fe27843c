//! Campaign lifecycle (活动流程): draft → published → open → closed → tallied → publicised →
//! archived, never backwards; publication freezes the roll and the rules.
//!
//! Publishing builds the roll from the register's units inside the campaign's scope, keeps its
//! hash and the rules' hash in the campaign, and writes one field document per building in scope
//! carrying that building's slice of the roll. The write rules then keep all of it frozen.

use sha2::{Digest, Sha256};

use crate::doc::{BuildingDoc, FieldDoc, SCHEMA_VERSION};
use crate::error::{Error, Result};
use crate::model::{Campaign, CampaignStatus, Millis, QuestionKind};
use crate::roll::Roll;

/// The status key under which `status_times` records when a status was entered.
pub fn status_key(status: CampaignStatus) -> &'static str {
    match status {
        CampaignStatus::Draft => "draft",
        CampaignStatus::Published => "published",
        CampaignStatus::Open => "open",
        CampaignStatus::Closed => "closed",
        CampaignStatus::Tallied => "tallied",
        CampaignStatus::Publicised => "publicised",
        CampaignStatus::Archived => "archived",
    }
}

/// Check that a draft is complete enough to publish: questions present and well formed.
pub fn validate_definition(campaign: &Campaign) -> Result<()> {
    if campaign.title.trim().is_empty() {
        return Err(Error::Invalid("a campaign needs a title".into()));
    }
    if campaign.questions.is_empty() {
        return Err(Error::Invalid(
            "a campaign needs at least one question".into(),
        ));
    }
    for q in campaign.questions.values() {
        match &q.kind {
            QuestionKind::Resolution { matter } if !(1..=9).contains(matter) => {
                return Err(Error::Invalid(format!(
                    "question {}: matter item must be 1–9",
                    q.id
                )));
            }
            QuestionKind::Election { seats, candidates } => {
                if !(5..=11).contains(seats) || seats % 2 == 0 {
                    return Err(Error::Invalid(format!(
                        "question {}: seats must be odd, 5–11",
                        q.id
                    )));
                }
                if candidates.is_empty() {
                    return Err(Error::Invalid(format!("question {}: no candidates", q.id)));
                }
            }
            QuestionKind::Survey {
                options,
                max_choices,
            } => {
                if options.is_empty() || *max_choices < 1 {
                    return Err(Error::Invalid(format!(
                        "question {}: a survey needs options and at least one choice",
                        q.id
                    )));
                }
            }
            QuestionKind::Resolution { .. } => {}
        }
    }
    Ok(())
}

/// Hash of the frozen rules and questions (hex sha256 of their canonical JSON).
pub fn rules_hash(campaign: &Campaign) -> String {
    let canonical = serde_json::json!({
        "kind": campaign.kind,
        "binding": campaign.binding,
        "scope": campaign.scope,
        "rules": campaign.rules,
        "questions": campaign.questions,
    });
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// What publication produces: the campaign as frozen and one field document per building.
#[derive(Debug, Clone)]
pub struct Publication {
    pub campaign: Campaign,
    pub roll: Roll,
    pub field_docs: Vec<FieldDoc>,
}

/// Publish a draft: freeze the roll of the units in scope, the rules and the questions.
pub fn publish(draft: &Campaign, buildings: &[BuildingDoc], now: Millis) -> Result<Publication> {
    if draft.status != CampaignStatus::Draft {
        return Err(Error::Invalid(format!(
            "only a draft can be published; this campaign is {:?}",
            draft.status
        )));
    }
    validate_definition(draft)?;
    let units = buildings
        .iter()
        .flat_map(|b| b.units.values())
        .filter(|u| draft.scope.contains(&u.building, &u.entrance));
    let roll = Roll::from_units(units);
    if roll.is_empty() {
        return Err(Error::Invalid(
            "no unit lies inside the campaign's scope".into(),
        ));
    }
    let mut campaign = draft.clone();
    campaign.status = CampaignStatus::Published;
    campaign
        .status_times
        .insert(status_key(CampaignStatus::Published).into(), now);
    campaign.roll_hash = Some(roll.hash());
    campaign.rules_hash = Some(rules_hash(&campaign));
    let mut building_ids: Vec<&str> = roll.entries().iter().map(|e| e.building.as_str()).collect();
    building_ids.dedup();
    let field_docs = building_ids
        .into_iter()
        .map(|b| FieldDoc {
            schema: SCHEMA_VERSION,
            campaign: campaign.id.clone(),
            building: b.to_string(),
            roll: roll.slice(b),
            ..FieldDoc::default()
        })
        .collect();
    Ok(Publication {
        campaign,
        roll,
        field_docs,
    })
}

/// Move a published campaign one step forward (open, close, tallied, publicised, archived).
pub fn advance(campaign: &Campaign, to: CampaignStatus, now: Millis) -> Result<Campaign> {
    if campaign.status == CampaignStatus::Draft {
        return Err(Error::Invalid("publish the draft first".into()));
    }
    if campaign.status.next() != Some(to) {
        return Err(Error::Invalid(format!(
            "a {:?} campaign cannot become {:?}",
            campaign.status, to
        )));
    }
    let mut next = campaign.clone();
    next.status = to;
    next.status_times.insert(status_key(to).into(), now);
    Ok(next)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::import::parse_csv;
    use crate::model::{CampaignKind, Question, Rules, Scope};

    fn draft(scope: Scope) -> Campaign {
        Campaign {
            id: "c1".into(),
            community: "tpy".into(),
            title: "加装电梯".into(),
            kind: CampaignKind::Resolution,
            binding: true,
            scope,
            rules: Rules::default(),
            questions: BTreeMap::from([(
                "q1".to_string(),
                Question {
                    id: "q1".into(),
                    order: 1,
                    text: "同意加装电梯".into(),
                    kind: QuestionKind::Resolution { matter: 8 },
                },
            )]),
            status: CampaignStatus::Draft,
            status_times: BTreeMap::new(),
            roll_hash: None,
            rules_hash: None,
        }
    }

    #[test]
    fn publishing_freezes_the_roll_into_one_field_document_per_building_in_scope() {
        let reg = parse_csv(
            "tpy",
            "太平洋花园",
            include_bytes!("../testdata/taipingyang-garden.csv"),
        )
        .expect("sample");
        let whole = publish(&draft(Scope::Whole), &reg.buildings, 5).expect("publish");
        assert_eq!(whole.field_docs.len(), 11);
        assert_eq!(whole.roll.len(), 306);
        assert_eq!(whole.roll.voter_keys().len(), 303);
        assert_eq!(whole.campaign.status, CampaignStatus::Published);
        assert_eq!(whole.campaign.roll_hash, Some(whole.roll.hash()));

        let entrance = publish(
            &draft(Scope::Entrance {
                entrance: "3-2".into(),
            }),
            &reg.buildings,
            5,
        )
        .expect("publish");
        assert_eq!(entrance.field_docs.len(), 1);
        assert!(entrance.roll.entries().iter().all(|e| e.entrance == "3-2"));

        assert!(publish(&whole.campaign, &reg.buildings, 6).is_err());
    }

    #[test]
    fn the_lifecycle_only_moves_forward_one_step_at_a_time() {
        let mut c = draft(Scope::Whole);
        assert!(advance(&c, CampaignStatus::Open, 1).is_err());
        c.status = CampaignStatus::Published;
        let open = advance(&c, CampaignStatus::Open, 2).expect("open");
        assert!(advance(&open, CampaignStatus::Tallied, 3).is_err());
        assert!(advance(&open, CampaignStatus::Published, 3).is_err());
        let closed = advance(&open, CampaignStatus::Closed, 4).expect("close");
        assert_eq!(closed.closed_at(), Some(4));
    }

    #[test]
    fn elections_need_odd_seats_from_five_to_eleven() {
        let mut c = draft(Scope::Whole);
        c.questions.get_mut("q1").expect("q").kind = QuestionKind::Election {
            seats: 4,
            candidates: BTreeMap::new(),
        };
        assert!(validate_definition(&c).is_err());
    }
}

//! The sample community behind `doorstep-server demo`: 太平洋花园 (306 units, 11 buildings)
//! imported from the CSV shipped in `server/data/`, an admin, a counting officer, one building
//! head per building with an assignment and a fresh enrollment code, and a published election.
//!
//! Running it again on the same database changes nothing but issues fresh enrollment codes.

use std::collections::{BTreeMap, BTreeSet};

use doorstep_core::import;
use doorstep_core::model::{
    Campaign, CampaignKind, CampaignStatus, Candidate, Question, QuestionKind, Role, Rules, Scope,
};

use crate::auth;
use crate::error::{AppError, AppResult};
use crate::ops;
use crate::state::AppState;
use crate::storage::{Assignment, Communities, Grants, NewAccount};

/// The sample register (a copy of `shared/data/taipingyang-garden.csv`).
pub const SAMPLE_CSV: &[u8] = include_bytes!("../data/taipingyang-garden.csv");

/// The sample community's id and name.
pub const COMMUNITY: &str = "tpy";
pub const COMMUNITY_NAME: &str = "太平洋花园";

/// The demo election's campaign id.
pub const CAMPAIGN: &str = "election-2025";

/// The demo admin's and counting officer's logins.
pub const ADMIN_LOGIN: &str = "admin";
pub const OFFICER_LOGIN: &str = "officer";

/// What `demo` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoInfo {
    pub admin_login: String,
    /// Set when this run created the admin with a generated password (shown once).
    pub generated_admin_password: Option<String>,
    pub officer_login: String,
    /// Set when this run created the officer (its password is generated, shown once).
    pub generated_officer_password: Option<String>,
    /// (login, building, enrollment code) per building head.
    pub heads: Vec<(String, String, String)>,
    pub campaign: String,
}

fn election() -> Campaign {
    let candidates: BTreeMap<String, Candidate> = (1..=9)
        .map(|i| {
            let id = format!("cand-{i}");
            (
                id.clone(),
                Candidate {
                    id,
                    name: format!("候选人{i}"),
                    order: i,
                },
            )
        })
        .collect();
    Campaign {
        id: CAMPAIGN.into(),
        community: COMMUNITY.into(),
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
                text: "选举业主委员会委员（7名）".into(),
                kind: QuestionKind::Election {
                    seats: 7,
                    candidates,
                },
            },
        )]),
        status: CampaignStatus::Draft,
        status_times: BTreeMap::new(),
        roll_hash: None,
        rules_hash: None,
    }
}

fn random_password() -> String {
    hex::encode(auth::random_bytes(9))
}

/// Set up (or top up) the demo community. Blocking: call it off the async runtime.
pub fn setup(state: &AppState, admin_password: Option<&str>) -> AppResult<DemoInfo> {
    let storage = state.storage();
    let docs = state.docs();

    let mut generated_admin_password = None;
    let admin = match storage.account_by_login(ADMIN_LOGIN)? {
        Some(admin) => admin,
        None => {
            let password = match admin_password {
                Some(p) => p.to_string(),
                None => {
                    let p = random_password();
                    generated_admin_password = Some(p.clone());
                    p
                }
            };
            auth::create_password_account(
                storage,
                ADMIN_LOGIN,
                "社区管理员",
                // The server's first admin, who would add the 街道's other communities.
                Grants::uniform(&[Role::Admin], &Communities::All)
                    .expect("invariant: one role is given"),
                &password,
                "server",
            )?
        }
    };
    let actor = format!("account:{}", admin.id);
    let admin_writer = ops::account_writer(&admin, COMMUNITY, BTreeSet::new());

    let mut generated_officer_password = None;
    if storage.account_by_login(OFFICER_LOGIN)?.is_none() {
        let password = random_password();
        auth::create_password_account(
            storage,
            OFFICER_LOGIN,
            "计票人",
            Grants::one(COMMUNITY, &[Role::CountingOfficer]).expect("invariant: one role is given"),
            &password,
            &actor,
        )?;
        generated_officer_password = Some(password);
    }

    let imported = import::parse_csv(COMMUNITY, COMMUNITY_NAME, SAMPLE_CSV)?;
    ops::import_register(docs, &imported, &admin_writer, &actor)?;

    let campaign_id = doorstep_core::doc::DocId::Campaign {
        campaign: CAMPAIGN.into(),
    };
    if storage.document_meta(&campaign_id)?.is_none() {
        ops::create_draft(docs, &election(), &admin_writer, &actor)?;
    }
    let current = docs
        .campaign(CAMPAIGN)?
        .ok_or_else(|| AppError::internal("the demo campaign vanished"))?;
    if current.status == CampaignStatus::Draft {
        ops::publish_campaign(docs, CAMPAIGN, &admin_writer, &actor)?;
    }

    let mut heads = Vec::new();
    for building in imported.register.buildings.keys() {
        let login = format!("head-{building}");
        let account = match storage.account_by_login(&login)? {
            Some(account) => account,
            None => storage.create_account(
                &NewAccount {
                    login: login.clone(),
                    display_name: format!("{building}号楼楼栋长"),
                    grants: Grants::one(COMMUNITY, &[Role::BuildingHead])
                        .expect("invariant: one role is given"),
                    password_hash: None,
                },
                &actor,
            )?,
        };
        storage.assign(
            &Assignment {
                account_id: account.id.clone(),
                community: COMMUNITY.into(),
                building: building.clone(),
            },
            &actor,
        )?;
        let (code, _) = auth::issue_enrollment_code(
            storage,
            &account.id,
            state.config().enrollment_ttl_ms,
            &actor,
        )?;
        heads.push((login, building.clone(), code));
    }
    heads.sort_by_key(|(_, b, _)| b.parse::<u32>().unwrap_or(u32::MAX));

    Ok(DemoInfo {
        admin_login: ADMIN_LOGIN.into(),
        generated_admin_password,
        officer_login: OFFICER_LOGIN.into(),
        generated_officer_password,
        heads,
        campaign: CAMPAIGN.into(),
    })
}

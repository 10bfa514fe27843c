//! Shared by the sync benchmarks: communities made from the sample register, building heads'
//! phones (core replicas over in-memory stores) that enroll over HTTP, and a day of door-to-door
//! work recorded action by action.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use doorstep_core::import;
use doorstep_core::model::{Answer, Campaign, Choice, DoorOutcome, Role};
use doorstep_core::replica::{HouseholdEdit, Replica};
use doorstep_core::store::Store;
use doorstep_core::sync::{self, SyncReport, Transport};
use doorstep_server::storage::{Assignment, Grants, NewAccount};
use doorstep_server::{AppState, auth, demo, ops};

/// How much work a day brings, each record its own action (one commit, one transaction).
#[derive(Debug, Clone, Copy)]
pub struct Day {
    pub visits: usize,
    pub deliveries: usize,
    pub ballots: usize,
    pub orders: usize,
    pub household_edits: usize,
}

impl Day {
    /// The day `bench_sync` has always measured: 28 visits, 25 ballots, 5 work orders.
    pub const SYNC: Day = Day {
        visits: 28,
        deliveries: 0,
        ballots: 25,
        orders: 5,
        household_edits: 0,
    };

    /// The storm's day: 86 actions in three documents (field, orders, building).
    pub const STORM: Day = Day {
        visits: 28,
        deliveries: 25,
        ballots: 25,
        orders: 5,
        household_edits: 3,
    };

    pub fn actions(&self) -> usize {
        self.visits + self.deliveries + self.ballots + self.orders + self.household_edits
    }
}

/// One building head's phone.
pub struct Phone {
    pub replica: Replica,
    pub community: String,
    pub building: String,
}

impl Phone {
    pub fn sync(&self, transport: &dyn Transport) -> Result<SyncReport> {
        Ok(self.replica.sync(transport, "bench/0.1")?)
    }
}

/// Set up `n` communities, each a copy of the sample register with a published election and a
/// head account per building; returns (community, building, enrollment code) per head.
pub fn setup(state: &AppState, n: usize) -> Result<Vec<(String, String, String)>> {
    let info = demo::setup(state, Some("bench-passphrase-1")).map_err(|e| anyhow!("{e}"))?;
    let storage = state.storage();
    let admin = storage
        .account_by_login(&info.admin_login)?
        .context("admin")?;
    let writer = ops::account_writer(
        &admin,
        doorstep_server::storage::EVERYWHERE,
        Default::default(),
    );
    let actor = format!("account:{}", admin.id);
    let mut codes = Vec::new();
    for c in 0..n {
        let community = format!("c{c:03}");
        let imported = import::parse_csv(&community, "bench", demo::SAMPLE_CSV)?;
        ops::import_register(state.docs(), &imported, &writer, &actor)
            .map_err(|e| anyhow!("{e}"))?;
        let campaign_id = format!("{community}-election");
        let mut draft: Campaign = state
            .docs()
            .campaign(demo::CAMPAIGN)
            .map_err(|e| anyhow!("{e}"))?
            .context("demo campaign")?;
        draft.id = campaign_id.clone();
        draft.community = community.clone();
        draft.status = doorstep_core::model::CampaignStatus::Draft;
        draft.status_times.clear();
        draft.roll_hash = None;
        draft.rules_hash = None;
        ops::create_draft(state.docs(), &draft, &writer, &actor).map_err(|e| anyhow!("{e}"))?;
        ops::publish_campaign(state.docs(), &campaign_id, &writer, &actor)
            .map_err(|e| anyhow!("{e}"))?;
        for building in imported.register.buildings.keys() {
            let account = storage.create_account(
                &NewAccount {
                    login: format!("{community}-head-{building}"),
                    display_name: String::new(),
                    grants: Grants::one(&community, &[Role::BuildingHead]).expect("a role"),
                    password_hash: None,
                },
                &actor,
            )?;
            storage.assign(
                &Assignment {
                    account_id: account.id.clone(),
                    community: community.clone(),
                    building: building.clone(),
                },
                &actor,
            )?;
            let (code, _) = auth::issue_enrollment_code(storage, &account.id, 3_600_000, &actor)?;
            codes.push((community.clone(), building.clone(), code));
        }
    }
    Ok(codes)
}

pub fn enroll(url: &str, code: &str, community: &str, building: &str) -> Result<Phone> {
    let enrollment = sync::enroll(url, code)?;
    let mut store = Store::open_in_memory()?;
    sync::save_enrollment(&mut store, url, &enrollment)?;
    let replica = Replica::from_store(store);
    let identity =
        sync::identity_of(enrollment.device_id, &enrollment.account).context("identity")?;
    replica.set_identity(&identity)?;
    Ok(Phone {
        replica,
        community: community.to_string(),
        building: building.to_string(),
    })
}

/// A day of work as `day` says, each a checked, stored action.
pub fn day_of_work(phone: &Phone, campaign: &str, day: Day) -> Result<()> {
    let units: Vec<String> = phone
        .replica
        .units(&phone.building, Some(campaign))?
        .into_iter()
        .map(|u| u.unit.code)
        .collect();
    let mut seen_keys = std::collections::BTreeSet::new();
    for (i, unit) in units.iter().cycle().take(day.visits).enumerate() {
        let outcome = if i % 3 == 0 {
            DoorOutcome::NotHome
        } else {
            DoorOutcome::Collected
        };
        phone.replica.record_visit(campaign, unit, outcome, "")?;
    }
    let mut ballots = 0;
    for view in phone.replica.units(&phone.building, Some(campaign))? {
        if ballots == day.ballots {
            break;
        }
        if !seen_keys.insert(view.unit.voter_key()) {
            continue;
        }
        let answers = BTreeMap::from([(
            "q1".to_string(),
            Answer {
                candidates: (1..=7)
                    .map(|c| (format!("cand-{c}"), Choice::Yes))
                    .collect(),
                ..Answer::default()
            },
        )]);
        phone
            .replica
            .record_ballot(campaign, &view.unit.code, answers, None)?;
        ballots += 1;
    }
    phone.replica.orders(&phone.building)?;
    for unit in units.iter().take(day.orders) {
        phone
            .replica
            .create_order(unit, "楼道灯不亮", "三楼到四楼")?;
    }
    for unit in units.iter().cycle().take(day.deliveries) {
        phone.replica.record_delivery(campaign, unit)?;
    }
    for (i, unit) in units.iter().take(day.household_edits).enumerate() {
        let edit = HouseholdEdit {
            residents: Some(2 + i as i64),
            ..HouseholdEdit::default()
        };
        phone.replica.edit_household(unit, &edit)?;
    }
    Ok(())
}

pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

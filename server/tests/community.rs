//! The sample community end to end against the real router: 11 building heads enroll, sync, go
//! offline and work (visits, deliveries, ballots, household edits, work orders); a deputy and
//! the head both take a ballot from one owner; an admin edits a household through the API at
//! the same time as a head; phones reconnect in a shuffled order, some twice. Then the server
//! and every phone hold the same documents, the projections equal a rebuild and the documents,
//! the tally from the tables equals the tally from the documents, the duplicate ballot is a
//! listed conflict, and a counting officer's adjudication reaches the phones.

mod common;

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use common::*;
use doorstep_core::doc::{DocId, FieldDoc};
use doorstep_core::model::{DEVELOPER_VOTER_KEY, DoorOutcome, Occupancy};
use doorstep_core::replica::HouseholdEdit;
use serde_json::json;

const ADMIN: &str = "/api/v1/admin";

/// A small deterministic generator (xorshift), so a failure replays with the same order.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// Units of `building` whose owner holds no other unit (so one building's ballots never
/// compete with another's), in unit order.
fn single_owner_units(rolls: &BTreeMap<String, FieldDoc>, building: &str) -> Result<Vec<String>> {
    let mut owners: BTreeMap<&str, usize> = BTreeMap::new();
    for field in rolls.values() {
        for entry in field.roll.values() {
            *owners.entry(entry.voter_key.as_str()).or_default() += 1;
        }
    }
    let field = rolls.get(building).context("field document")?;
    Ok(field
        .roll
        .values()
        .filter(|e| e.voter_key != DEVELOPER_VOTER_KEY && owners[e.voter_key.as_str()] == 1)
        .map(|e| e.unit.clone())
        .collect())
}

/// Every document a phone holds has the server's heads.
fn assert_converged(server: &TestServer, phone: &Phone, who: &str) -> Result<()> {
    let held = phone.held()?;
    assert!(!held.is_empty(), "{who} holds documents");
    for id in held {
        let mut server_heads = server.heads(&id)?;
        server_heads.sort();
        assert_eq!(phone.heads(&id)?, server_heads, "{who}: {id}");
    }
    Ok(())
}

#[test]
fn the_sample_community_works_offline_and_converges() -> Result<()> {
    the_sample_community_on(TestServer::start()?)
}

/// The same scenario, unchanged, with the server's storage on PostgreSQL.
#[test]
fn the_sample_community_works_offline_and_converges_on_postgresql() -> Result<()> {
    the_sample_community_on(TestServer::start_postgres()?)
}

fn the_sample_community_on(server: TestServer) -> Result<()> {
    let admin = server.admin_token()?;
    let officer = officer_token(&server)?;
    let mut rng = Rng(0x5eed_2025_d00e);

    // Eleven heads and one deputy enroll and sync once.
    let buildings: Vec<String> = (1..=11).map(|b| b.to_string()).collect();
    let mut phones: Vec<(String, Phone)> = Vec::new();
    for b in &buildings {
        phones.push((
            format!("head-{b}"),
            Phone::enroll(&server, &server.code(b))?,
        ));
    }
    phones.push(("deputy-1".to_string(), deputy(&server, &admin, "1")?));
    let rolls: BTreeMap<String, FieldDoc> = buildings
        .iter()
        .map(|b| Ok((b.clone(), server.read::<FieldDoc>(&field(b))?)))
        .collect::<Result<_>>()?;

    // Offline work: every head visits, delivers and collects ballots from a few doors, edits a
    // household and takes a 微心愿 request.
    let mut ballots = 0;
    for (i, b) in buildings.iter().enumerate() {
        let phone = &phones[i].1;
        let units = single_owner_units(&rolls, b)?;
        let doors = 3 + rng.below(4);
        for (k, unit) in units.iter().take(doors).enumerate() {
            let outcome = DoorOutcome::ALL[rng.below(DoorOutcome::ALL.len())];
            phone
                .replica
                .record_visit(demo_campaign(), unit, outcome, "")?;
            phone.replica.record_delivery(demo_campaign(), unit)?;
            if k % 3 != 2 {
                let yes: Vec<u32> = (1..=9).filter(|_| rng.below(3) > 0).collect();
                phone
                    .replica
                    .record_ballot(demo_campaign(), unit, election_answers(&yes), None)?;
                ballots += 1;
            }
        }
        phone.replica.edit_household(
            &units[doors],
            &HouseholdEdit {
                residents: Some(1 + rng.below(5) as i64),
                occupancy: Some(Occupancy::OwnerOccupied),
                ..HouseholdEdit::default()
            },
        )?;
        phone
            .replica
            .create_order(&units[doors + 1], "楼道灯不亮", "三楼")?;
    }

    // The deputy of building 1 also takes a ballot from an owner the head already met.
    let contested_unit = single_owner_units(&rolls, "1")?.remove(0);
    let deputy = &phones[11].1;
    deputy
        .replica
        .record_visit(demo_campaign(), &contested_unit, DoorOutcome::Collected, "")?;
    deputy.replica.record_ballot(
        demo_campaign(),
        &contested_unit,
        election_answers(&[9]),
        None,
    )?;
    ballots += 1;

    // Building 2's head corrects a phone number offline while an admin, following up by
    // telephone, changes the same household through the API.
    let edited_unit = single_owner_units(&rolls, "2")?.remove(0);
    phones[1].1.replica.edit_household(
        &edited_unit,
        &HouseholdEdit {
            phone: Some("13900001111".into()),
            ..HouseholdEdit::default()
        },
    )?;
    api_ok(
        &server,
        "PATCH",
        &format!("{ADMIN}/households/{}/{edited_unit}", demo_community()),
        Some(&json!({ "phone": "13722223333", "note": "电话回访" })),
        &admin,
    )?;

    // Reconnect in a shuffled order, some phones twice.
    let mut order: Vec<usize> = (0..phones.len()).collect();
    rng.shuffle(&mut order);
    let twice: Vec<usize> = order.iter().copied().filter(|i| i % 3 == 0).collect();
    order.extend(twice);
    rng.shuffle(&mut order);
    for i in order {
        let report = phones[i].1.sync()?;
        assert!(report.rejected.is_empty(), "{}: {:?}", phones[i].0, report);
    }
    // One more round lets every phone hear what the others sent after it last synced.
    for (_, phone) in &phones {
        phone.sync()?;
    }
    for (who, phone) in &phones {
        assert_converged(&server, phone, who)?;
    }

    // Projections equal a rebuild and the documents; both tallies agree.
    let live = projections(&server)?;
    server.state.db().rebuild_projections()?;
    assert_eq!(projections(&server)?, live);
    let from_documents: usize = buildings
        .iter()
        .map(|b| Ok(server.read::<FieldDoc>(&field(b))?.ballots.len()))
        .sum::<Result<usize>>()?;
    assert_eq!(from_documents, ballots);
    assert_eq!(live["p_ballots"].len(), ballots);
    assert_eq!(live["p_orders"].len(), 11);
    let tally = tally_from_api(&server, demo_campaign(), &admin)?;
    assert_eq!(tally, tally_from_documents(&server, demo_campaign())?);
    assert_eq!(tally.returned.headcount as usize, ballots - 2);

    // The duplicate ballot is the one conflict; the concurrent household edit is listed too.
    let listed = api_ok(
        &server,
        "GET",
        &format!("{ADMIN}/campaigns/{}/conflicts", demo_campaign()),
        None,
        &officer,
    )?;
    let conflicts = listed["conflicts"].as_array().context("conflicts")?;
    assert_eq!(conflicts.len(), 1, "{listed}");
    let contested_key = rolls["1"].roll[&contested_unit].voter_key.clone();
    assert_eq!(conflicts[0]["voter_key"], json!(contested_key));
    let chosen = conflicts[0]["ballots"][0]["id"].clone();
    let households = api_ok(
        &server,
        "GET",
        &format!("{ADMIN}/conflicts/households"),
        None,
        &admin,
    )?;
    assert!(
        households
            .as_array()
            .context("household conflicts")?
            .iter()
            .any(|c| c["unit"] == json!(edited_unit) && c["field"] == "phone"),
        "{households}"
    );

    // A counting officer adjudicates; the head and the deputy receive it on their next sync.
    api_ok(
        &server,
        "POST",
        &format!("{ADMIN}/campaigns/{}/adjudications", demo_campaign()),
        Some(&json!({ "voter_key": contested_key, "chosen": chosen,
                      "reason": "业主当面确认" })),
        &officer,
    )?;
    for i in [0, 11] {
        phones[i].1.sync()?;
        let on_phone: FieldDoc = phones[i].1.read(&field("1"))?;
        assert_eq!(on_phone.adjudications.len(), 1, "{}", phones[i].0);
        // 通知: the decision shows on the phone, unread until the head has seen it.
        let notices = phones[i].1.replica.notices()?;
        assert_eq!(notices.len(), 1, "{}", phones[i].0);
        let notice = &notices[0];
        assert!(notice.unread && notice.units.contains(&contested_unit));
        assert_eq!(notice.reason, "业主当面确认");
        assert_eq!(notice.counted_ballot.as_deref(), chosen.as_str());
        assert!(notice.considered >= 2 && notice.counted_unit.is_some());
        assert!(
            notice.counted_by.is_some(),
            "who collected the ballot that counts"
        );
        phones[i].1.replica.mark_notices_seen(notice.at)?;
        assert!(!phones[i].1.replica.notices()?[0].unread);
        assert_converged(&server, &phones[i].1, &phones[i].0)?;
    }
    let tally = tally_from_api(&server, demo_campaign(), &admin)?;
    assert!(tally.conflicts.is_empty());
    assert_eq!(tally.returned.headcount as usize, ballots - 1);
    assert_eq!(tally, tally_from_documents(&server, demo_campaign())?);
    let id = DocId::Campaign {
        campaign: demo_campaign().into(),
    };
    assert!(!server.heads(&id)?.is_empty());
    Ok(())
}

fn demo_campaign() -> &'static str {
    doorstep_server::demo::CAMPAIGN
}

fn demo_community() -> &'static str {
    doorstep_server::demo::COMMUNITY
}

//! The legal tally, checked the way a counting officer would: on the sample register, at every
//! threshold's edge, under each silence policy, with conflicts and corrections, and as invariants
//! over random campaigns.

use std::collections::BTreeMap;

use doorstep_core::ballots::InvalidReason;
use doorstep_core::model::{
    Adjudication, Answer, AreaSource, Ballot, Campaign, CampaignKind, CampaignStatus, Candidate,
    Choice, DEVELOPER_VOTER_KEY, Delivery, Question, QuestionKind, Rules, SaleStatus, Scope,
    SilencePolicy, SurveyOption, Unit,
};
use doorstep_core::roll::{Roll, Totals};
use doorstep_core::tally::{
    CandidateResult, ElectionResult, Measure, Notice, QuestionOutcome, ResolutionResult,
    SEAT_TIE_NOTE, SeatTie, Seating, SilenceEffect, Tally, Threshold, tally,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Helpers: the sample register, small rolls, campaigns and ballots.
// ---------------------------------------------------------------------------------------------

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/taipingyang-garden.csv"
);

/// "86.03" → 8603, "86.5" → 8650, "86" → 8600, by string parsing (never floats).
fn parse_area(s: &str) -> i64 {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    assert!(frac.len() <= 2, "area {s} has more than two decimals");
    let whole: i64 = whole.parse().expect("whole square metres");
    let frac: i64 = format!("{frac:0<2}").parse().expect("hundredths");
    whole * 100 + frac
}

/// The sample register's units, parsed minimally (the real importer lives in `import`).
fn sample_units() -> Vec<Unit> {
    let mut reader = csv::Reader::from_path(SAMPLE).expect("sample register");
    let mut units = Vec::new();
    for row in reader.records() {
        let row = row.expect("csv row");
        let code = row[0].to_string();
        let mut parts = code.split('-');
        let building = parts.next().expect("building").to_string();
        let entrance = format!("{building}-{}", parts.next().expect("entrance"));
        let sale_status = if &row[10] == "developer_unsold" {
            SaleStatus::DeveloperUnsold
        } else {
            SaleStatus::Sold
        };
        units.push(Unit {
            code,
            building,
            entrance,
            floor: row[3].parse().expect("floor"),
            room: row[4].to_string(),
            area: parse_area(&row[5]),
            area_source: AreaSource::Registered,
            sale_status,
            owner_key: row[6].to_string(),
            owner_names: row[7].split('、').map(str::to_string).collect(),
        });
    }
    units
}

/// A roll of one building, one entrance, one unit per voter, with these areas (0.01 m²).
/// Voter keys are `V01`, `V02`, … in the order given.
fn roll_of(areas: &[i64]) -> Roll {
    let units: Vec<Unit> = areas
        .iter()
        .enumerate()
        .map(|(i, &area)| unit(&format!("1-1-{:04}", i + 1), area, &voter(i)))
        .collect();
    Roll::from_units(&units)
}

fn voter(i: usize) -> String {
    format!("V{:02}", i + 1)
}

fn unit(code: &str, area: i64, owner: &str) -> Unit {
    let mut parts = code.split('-');
    let building = parts.next().unwrap_or_default().to_string();
    let entrance = format!("{building}-{}", parts.next().unwrap_or_default());
    Unit {
        code: code.to_string(),
        building,
        entrance,
        floor: 1,
        room: code.to_string(),
        area,
        area_source: AreaSource::Registered,
        sale_status: SaleStatus::Sold,
        owner_key: owner.to_string(),
        owner_names: vec![owner.to_string()],
    }
}

fn resolution_q(id: &str, order: i64, matter: u8) -> Question {
    Question {
        id: id.into(),
        order,
        text: format!("第{matter}项事项"),
        kind: QuestionKind::Resolution { matter },
    }
}

fn election_q(id: &str, seats: i64, names: &[&str]) -> Question {
    let candidates = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let c = Candidate {
                id: n.to_string(),
                name: format!("候选人{n}"),
                order: i as i64,
            };
            (c.id.clone(), c)
        })
        .collect();
    Question {
        id: id.into(),
        order: 10,
        text: "选举业主委员会委员".into(),
        kind: QuestionKind::Election { seats, candidates },
    }
}

fn survey_q(id: &str, options: &[&str], max_choices: i64) -> Question {
    let options = options
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let opt = SurveyOption {
                id: o.to_string(),
                label: format!("方案{o}"),
                order: i as i64,
            };
            (opt.id.clone(), opt)
        })
        .collect();
    Question {
        id: id.into(),
        order: 20,
        text: "电梯供应商意见征集".into(),
        kind: QuestionKind::Survey {
            options,
            max_choices,
        },
    }
}

fn campaign(questions: Vec<Question>) -> Campaign {
    Campaign {
        id: "c-2025-01".into(),
        community: "taipingyang".into(),
        title: "太平洋花园业主大会".into(),
        kind: CampaignKind::Resolution,
        binding: true,
        scope: Scope::Whole,
        rules: Rules::default(),
        questions: questions.into_iter().map(|q| (q.id.clone(), q)).collect(),
        status: CampaignStatus::Closed,
        status_times: BTreeMap::from([("closed".to_string(), 1_000_000)]),
        roll_hash: None,
        rules_hash: None,
    }
}

fn with_silence(mut c: Campaign, silence: SilencePolicy, announced: bool) -> Campaign {
    c.rules.silence = silence;
    c.rules.silence_announced = announced;
    c
}

/// A ballot of `voter_key` answering each `(question, choice)`.
fn ballot(id: &str, voter_key: &str, answers: &[(&str, Choice)]) -> Ballot {
    Ballot {
        id: id.into(),
        voter_key: voter_key.into(),
        unit: String::new(),
        answers: answers
            .iter()
            .map(|(q, c)| {
                (
                    q.to_string(),
                    Answer {
                        choice: Some(*c),
                        ..Answer::default()
                    },
                )
            })
            .collect(),
        collected_at: 1_000,
        by: "head-1".into(),
        supersedes: None,
        method: None,
    }
}

/// One ballot per voter on question `q`, in roll order: `choices[i]` for voter `i`, `None`
/// for a voter who returned nothing.
fn votes(q: &str, choices: &[Option<Choice>]) -> Vec<Ballot> {
    choices
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.map(|c| ballot(&format!("b-{}", voter(i)), &voter(i), &[(q, c)])))
        .collect()
}

fn delivery(voter_key: &str) -> Delivery {
    Delivery {
        id: format!("d-{voter_key}"),
        voter_key: voter_key.into(),
        unit: String::new(),
        at: 500,
        by: "head-1".into(),
    }
}

fn adjudication(
    id: &str,
    voter_key: &str,
    considered: &[&str],
    chosen: Option<&str>,
) -> Adjudication {
    Adjudication {
        id: id.into(),
        voter_key: voter_key.into(),
        considered: considered.iter().map(|s| s.to_string()).collect(),
        chosen: chosen.map(str::to_string),
        reason: "核实业主本人意愿".into(),
        at: 2_000_000,
        by: "officer-1".into(),
    }
}

fn resolution<'a>(t: &'a Tally, question: &str) -> &'a ResolutionResult {
    match t
        .questions
        .iter()
        .find(|q| q.question == question)
        .map(|q| &q.outcome)
    {
        Some(QuestionOutcome::Resolution(r)) => r,
        other => panic!("question {question} is not a resolution: {other:?}"),
    }
}

fn election<'a>(t: &'a Tally, question: &str) -> &'a ElectionResult {
    match t
        .questions
        .iter()
        .find(|q| q.question == question)
        .map(|q| &q.outcome)
    {
        Some(QuestionOutcome::Election(e)) => e,
        other => panic!("question {question} is not an election: {other:?}"),
    }
}

fn m(area: i64, headcount: i64) -> Measure {
    Measure { area, headcount }
}

use Choice::{Abstain, No, Yes};

// ---------------------------------------------------------------------------------------------
// The sample register.
// ---------------------------------------------------------------------------------------------

#[test]
fn sample_register_roll_has_303_voter_keys() {
    let units = sample_units();
    assert_eq!(units.len(), 306);
    let roll = Roll::from_units(&units);
    roll.validate().expect("valid roll");
    assert_eq!(
        roll.totals(&Scope::Whole),
        Totals {
            area: 2_896_559,
            headcount: 303,
            units: 306
        }
    );
    let voters = roll.voters(&Scope::Whole);
    // P0041 holds two units (2-1-0701 and 3-1-0702): counted once, areas added.
    assert_eq!(voters.get("P0041"), Some(&(12_723 + 12_820)));
    // The three unsold units are one voter key: the developer's.
    assert_eq!(
        voters.get(DEVELOPER_VOTER_KEY),
        Some(&(9_560 + 6_839 + 7_150))
    );
}

#[test]
fn sample_register_roll_hash_is_pinned() {
    let units = sample_units();
    let roll = Roll::from_units(&units);
    let mut reversed = units.clone();
    reversed.reverse();
    assert_eq!(Roll::from_units(&reversed).hash(), roll.hash());
    // The 公示 cites this hash: a change to the canonical bytes must be deliberate.
    assert_eq!(
        roll.hash(),
        "6b805281632b1efa3fcac9c172bc244aa90762921ab874830c406847e71ffa7a"
    );
}

#[test]
fn sample_register_roll_reassembles_from_building_slices() {
    let roll = Roll::from_units(&sample_units());
    let slices: Vec<_> = (1..=11).map(|b| roll.slice(&b.to_string())).collect();
    let back = Roll::from_slices(&slices).expect("slices agree");
    assert_eq!(back.hash(), roll.hash());
}

#[test]
fn scope_building_and_entrance_totals() {
    let roll = Roll::from_units(&sample_units());
    let building = |b: &str| Scope::Building { building: b.into() };
    // P0041 straddles buildings 2 and 3: counted once in each, with only that building's area.
    assert_eq!(
        roll.totals(&building("2")),
        Totals {
            area: 265_179,
            headcount: 28,
            units: 28
        }
    );
    assert_eq!(roll.voters(&building("2")).get("P0041"), Some(&12_723));
    assert_eq!(roll.voters(&building("3")).get("P0041"), Some(&12_820));
    assert_eq!(
        roll.totals(&building("11")),
        Totals {
            area: 237_521,
            headcount: 24,
            units: 26
        }
    );
    // Entrance 11-2 holds the three developer units: 12 units, 10 voter keys.
    assert_eq!(
        roll.totals(&Scope::Entrance {
            entrance: "11-2".into()
        }),
        Totals {
            area: 109_157,
            headcount: 10,
            units: 12
        }
    );
}

/// Voter `k` (in voter-key order) votes no when `k % 3 == 2`, abstains when `k % 7 == 6`,
/// and votes yes otherwise.
fn sample_pattern(roll: &Roll, questions: &[&str]) -> Vec<Ballot> {
    roll.voter_keys()
        .into_iter()
        .enumerate()
        .map(|(k, key)| {
            let choice = if k % 3 == 2 {
                No
            } else if k % 7 == 6 {
                Abstain
            } else {
                Yes
            };
            let answers: Vec<(&str, Choice)> = questions.iter().map(|q| (*q, choice)).collect();
            ballot(&format!("b-{key}"), key, &answers)
        })
        .collect()
}

#[test]
fn sample_register_everyone_votes() {
    let roll = Roll::from_units(&sample_units());
    let c = campaign(vec![resolution_q("q1", 1, 1), resolution_q("q6", 2, 6)]);
    let ballots = sample_pattern(&roll, &["q1", "q6"]);
    let t = tally(&roll, &c, &ballots, &[], &[]);

    let q1 = resolution(&t, "q1");
    assert_eq!(q1.counts.participating, m(2_896_559, 303));
    assert_eq!(q1.counts.yes, m(1_650_395, 173));
    assert_eq!(q1.counts.no, m(962_514, 101));
    assert_eq!(q1.counts.abstain, m(283_650, 29));
    assert!(q1.quorum.met);
    assert_eq!(q1.passed, Some(true));

    // 173 of 303 is more than half but less than three quarters: matter 6 fails.
    let q6 = resolution(&t, "q6");
    assert_eq!(q6.threshold.threshold, Threshold::AtLeastThreeQuarters);
    assert_eq!(q6.passed, Some(false));
    assert!(t.is_final);

    let text = t.to_string();
    assert!(text.contains("28965.59"), "{text}");
    assert!(text.contains("通过 passed"), "{text}");
    assert!(text.contains("未通过 not passed"), "{text}");
}

#[test]
fn sample_register_tally_is_byte_identical_in_any_order() {
    let roll = Roll::from_units(&sample_units());
    let c = with_silence(
        campaign(vec![resolution_q("q1", 1, 1)]),
        SilencePolicy::DeliveredCountsAsAbstain,
        true,
    );
    let mut ballots = sample_pattern(&roll, &["q1"]);
    ballots.truncate(250);
    let deliveries: Vec<Delivery> = roll.voter_keys().into_iter().map(delivery).collect();
    let t1 = tally(&roll, &c, &ballots, &deliveries, &[]);

    let mut shuffled = ballots.clone();
    shuffled.reverse();
    shuffled.extend(ballots[..40].iter().cloned());
    let mut deliveries2 = deliveries.clone();
    deliveries2.reverse();
    deliveries2.push(deliveries[3].clone());
    let t2 = tally(&roll, &c, &shuffled, &deliveries2, &[]);
    assert_eq!(t1.to_json(), t2.to_json());
    assert_eq!(t1.inputs_hash, t2.inputs_hash);

    // Change one answer and the inputs hash changes.
    let mut changed = ballots.clone();
    changed[0] = ballot(&changed[0].id, &changed[0].voter_key.clone(), &[("q1", No)]);
    let t3 = tally(&roll, &c, &changed, &deliveries, &[]);
    assert_ne!(t1.inputs_hash, t3.inputs_hash);
}

// ---------------------------------------------------------------------------------------------
// Quorum: 3·P ≥ 2·T on area and headcount.
// ---------------------------------------------------------------------------------------------

#[test]
fn quorum_exactly_two_thirds_passes() {
    let roll = roll_of(&[100, 100, 100]);
    let c = campaign(vec![resolution_q("q", 1, 1)]);
    let t = tally(
        &roll,
        &c,
        &votes("q", &[Some(Yes), Some(Yes), None]),
        &[],
        &[],
    );
    let r = resolution(&t, "q");
    assert_eq!(r.counts.participating, m(200, 2));
    assert!(r.quorum.area && r.quorum.headcount);
    assert_eq!(r.passed, Some(true));
}

#[test]
fn quorum_one_hundredth_of_a_square_metre_short_fails() {
    // Total 300, participating 199: 3·199 = 597 < 600. Headcount 2 of 3 is enough.
    let roll = roll_of(&[100, 99, 101]);
    let c = campaign(vec![resolution_q("q", 1, 1)]);
    let t = tally(
        &roll,
        &c,
        &votes("q", &[Some(Yes), Some(Yes), None]),
        &[],
        &[],
    );
    let r = resolution(&t, "q");
    assert_eq!(r.counts.participating, m(199, 2));
    assert!(!r.quorum.area);
    assert!(r.quorum.headcount);
    assert_eq!(r.passed, Some(false));
}

#[test]
fn quorum_one_owner_short_fails() {
    // Area 450 of 600 is enough, but 3 of 6 owners is not (3·3 = 9 < 12).
    let roll = roll_of(&[200, 200, 50, 50, 50, 50]);
    let c = campaign(vec![resolution_q("q", 1, 1)]);
    let ballots = votes("q", &[Some(Yes), Some(Yes), Some(Yes), None, None, None]);
    let t = tally(&roll, &c, &ballots, &[], &[]);
    let r = resolution(&t, "q");
    assert!(r.quorum.area);
    assert!(!r.quorum.headcount);
    assert_eq!(r.passed, Some(false));

    // One more owner (4 of 6: 12 ≥ 12) and it passes.
    let ballots = votes(
        "q",
        &[Some(Yes), Some(Yes), Some(Yes), Some(No), None, None],
    );
    let t = tally(&roll, &c, &ballots, &[], &[]);
    assert_eq!(resolution(&t, "q").passed, Some(true));
}

// ---------------------------------------------------------------------------------------------
// Thresholds: > 1/2 strict; ≥ 3/4 for matters 6–8; both dimensions, of the participating.
// ---------------------------------------------------------------------------------------------

#[test]
fn yes_exactly_half_fails() {
    let roll = roll_of(&[100, 100, 100, 100]);
    let c = campaign(vec![resolution_q("q", 1, 1)]);
    let t = tally(
        &roll,
        &c,
        &votes("q", &[Some(Yes), Some(Yes), Some(No), Some(No)]),
        &[],
        &[],
    );
    let r = resolution(&t, "q");
    assert_eq!(r.threshold.threshold, Threshold::MoreThanHalf);
    assert!(!r.threshold.area && !r.threshold.headcount);
    assert_eq!(r.passed, Some(false));

    let t = tally(
        &roll,
        &c,
        &votes("q", &[Some(Yes), Some(Yes), Some(Yes), Some(No)]),
        &[],
        &[],
    );
    assert_eq!(resolution(&t, "q").passed, Some(true));
}

#[test]
fn exactly_three_quarters_passes_matters_six_to_eight() {
    let roll = roll_of(&[100, 100, 100, 100]);
    for matter in [6, 7, 8] {
        let c = campaign(vec![resolution_q("q", 1, matter)]);
        let t = tally(
            &roll,
            &c,
            &votes("q", &[Some(Yes), Some(Yes), Some(Yes), Some(No)]),
            &[],
            &[],
        );
        let r = resolution(&t, "q");
        assert_eq!(
            r.threshold.threshold,
            Threshold::AtLeastThreeQuarters,
            "matter {matter}"
        );
        assert_eq!(r.passed, Some(true), "matter {matter}");
    }
}

#[test]
fn just_below_three_quarters_fails_matters_six_to_eight() {
    // Area: 4·299 = 1196 < 3·399 = 1197, one 0.01 m² short; headcount 3 of 4 is enough.
    let by_area = roll_of(&[100, 100, 99, 100]);
    // Headcount: 3 of 5 owners (4·3 = 12 < 3·5 = 15), though the area is plenty.
    let by_head = roll_of(&[1000, 1000, 1000, 10, 10]);
    for matter in [6, 7, 8] {
        let c = campaign(vec![resolution_q("q", 1, matter)]);
        let t = tally(
            &by_area,
            &c,
            &votes("q", &[Some(Yes), Some(Yes), Some(Yes), Some(No)]),
            &[],
            &[],
        );
        let r = resolution(&t, "q");
        assert!(
            !r.threshold.area && r.threshold.headcount,
            "matter {matter}"
        );
        assert_eq!(r.passed, Some(false), "matter {matter}");

        let ballots = votes("q", &[Some(Yes), Some(Yes), Some(Yes), Some(No), Some(No)]);
        let t = tally(&by_head, &c, &ballots, &[], &[]);
        let r = resolution(&t, "q");
        assert!(
            r.threshold.area && !r.threshold.headcount,
            "matter {matter}"
        );
        assert_eq!(r.passed, Some(false), "matter {matter}");
    }
    // 299 of 399 is far above half: an ordinary matter passes with the same ballots.
    let c = campaign(vec![resolution_q("q", 1, 5)]);
    let t = tally(
        &by_area,
        &c,
        &votes("q", &[Some(Yes), Some(Yes), Some(Yes), Some(No)]),
        &[],
        &[],
    );
    assert_eq!(resolution(&t, "q").passed, Some(true));
}

#[test]
fn area_passes_but_headcount_fails() {
    let roll = roll_of(&[1000, 100, 100]);
    let c = campaign(vec![resolution_q("q", 1, 1)]);
    let t = tally(
        &roll,
        &c,
        &votes("q", &[Some(Yes), Some(No), Some(No)]),
        &[],
        &[],
    );
    let r = resolution(&t, "q");
    assert!(r.quorum.met);
    assert!(r.threshold.area);
    assert!(!r.threshold.headcount);
    assert_eq!(r.passed, Some(false));
}

#[test]
fn abstain_counts_in_participation_only() {
    let roll = roll_of(&[100, 100, 100]);
    let c = campaign(vec![resolution_q("q", 1, 1)]);
    let t = tally(
        &roll,
        &c,
        &votes("q", &[Some(Yes), Some(Abstain), None]),
        &[],
        &[],
    );
    let r = resolution(&t, "q");
    // The abstention brings participation to 2/3 …
    assert_eq!(r.counts.participating, m(200, 2));
    assert_eq!(r.counts.abstain, m(100, 1));
    assert!(r.quorum.met);
    // … but is not a yes: 1 of 2 is not more than half.
    assert_eq!(r.counts.yes, m(100, 1));
    assert_eq!(r.passed, Some(false));
}

#[test]
fn a_question_left_blank_on_a_returned_ballot_is_an_abstention() {
    let roll = roll_of(&[100, 100, 100]);
    let c = campaign(vec![resolution_q("q1", 1, 1), resolution_q("q2", 2, 2)]);
    let ballots = vec![
        ballot("b1", "V01", &[("q1", Yes), ("q2", Yes)]),
        ballot("b2", "V02", &[("q1", Yes)]),
    ];
    let t = tally(&roll, &c, &ballots, &[], &[]);
    let q2 = resolution(&t, "q2");
    assert_eq!(q2.counts.participating, m(200, 2));
    assert_eq!(q2.counts.abstain, m(100, 1));
}

#[test]
fn advisory_campaigns_count_but_never_pass() {
    let roll = roll_of(&[100, 100, 100]);
    let mut c = campaign(vec![resolution_q("q", 1, 1)]);
    c.binding = false;
    c.kind = CampaignKind::Hearing;
    let t = tally(
        &roll,
        &c,
        &votes("q", &[Some(Yes), Some(Yes), Some(Yes)]),
        &[],
        &[],
    );
    let r = resolution(&t, "q");
    assert!(r.quorum.met && r.threshold.met);
    assert_eq!(r.passed, None);
    assert!(t.notices.contains(&Notice::Advisory));
}

#[test]
fn nobody_participating_never_passes_even_on_an_empty_scope() {
    let roll = roll_of(&[100]);
    let mut c = campaign(vec![resolution_q("q", 1, 7)]);
    c.scope = Scope::Building {
        building: "99".into(),
    };
    let t = tally(&roll, &c, &[], &[], &[]);
    assert_eq!(t.totals, Totals::default());
    assert_eq!(resolution(&t, "q").passed, Some(false));
}

#[test]
fn a_roll_that_is_not_the_frozen_one_withholds_every_decision() {
    let roll = roll_of(&[100, 100, 100]);
    let mut c = campaign(vec![resolution_q("q", 1, 1)]);
    c.roll_hash = Some(roll_of(&[100, 100, 101]).hash());
    let t = tally(
        &roll,
        &c,
        &votes("q", &[Some(Yes), Some(Yes), Some(Yes)]),
        &[],
        &[],
    );
    assert!(t.decisions_withheld);
    assert!(!t.is_final);
    assert_eq!(resolution(&t, "q").passed, None);
    assert!(matches!(t.notices[0], Notice::RollNotFrozen { .. }));

    c.roll_hash = Some(roll.hash());
    let t = tally(
        &roll,
        &c,
        &votes("q", &[Some(Yes), Some(Yes), Some(Yes)]),
        &[],
        &[],
    );
    assert_eq!(resolution(&t, "q").passed, Some(true));
}

// ---------------------------------------------------------------------------------------------
// Silence policies.
// ---------------------------------------------------------------------------------------------

/// Six owners of 100 each: V01, V02 yes, V03 no returned; V04, V05 delivered and silent; V06
/// silent without a delivery.
fn silence_case(policy: SilencePolicy, announced: bool, delivered: bool) -> Tally {
    let roll = roll_of(&[100; 6]);
    let c = with_silence(campaign(vec![resolution_q("q", 1, 1)]), policy, announced);
    let ballots = votes("q", &[Some(Yes), Some(Yes), Some(No), None, None, None]);
    let deliveries = if delivered {
        vec![delivery("V04"), delivery("V05"), delivery("V01")]
    } else {
        Vec::new()
    };
    tally(&roll, &c, &ballots, &deliveries, &[])
}

#[test]
fn strict_silence_leaves_silent_owners_out() {
    for delivered in [false, true] {
        let t = silence_case(SilencePolicy::Strict, true, delivered);
        let r = resolution(&t, "q");
        assert_eq!(r.counts.participating, m(300, 3));
        assert!(!r.quorum.met);
        assert_eq!(r.passed, Some(false));
        assert_eq!(r.counts.silent_counted, Measure::default());
    }
}

#[test]
fn delivered_counts_as_abstain() {
    let t = silence_case(SilencePolicy::DeliveredCountsAsAbstain, true, true);
    assert_eq!(t.silence_applied, SilencePolicy::DeliveredCountsAsAbstain);
    let r = resolution(&t, "q");
    // V04 and V05 join as abstentions; V06 (no delivery) stays out.
    assert_eq!(r.counts.participating, m(500, 5));
    assert_eq!(r.counts.abstain, m(200, 2));
    assert_eq!(r.counts.silent_counted, m(200, 2));
    assert_eq!(r.counts.silent_joined, Some(Abstain));
    assert!(r.quorum.met);
    // 2 yes of 5 participating is not more than half.
    assert_eq!(r.passed, Some(false));

    // Without recorded deliveries nobody is counted: as strict.
    let t = silence_case(SilencePolicy::DeliveredCountsAsAbstain, true, false);
    assert_eq!(resolution(&t, "q").counts.participating, m(300, 3));
}

#[test]
fn follows_majority_joins_the_returned_majority() {
    let t = silence_case(SilencePolicy::FollowsMajority, true, true);
    let r = resolution(&t, "q");
    assert_eq!(r.counts.silent_joined, Some(Yes));
    assert_eq!(r.counts.yes, m(400, 4));
    assert_eq!(r.counts.participating, m(500, 5));
    assert_eq!(r.passed, Some(true));

    let t = silence_case(SilencePolicy::FollowsMajority, true, false);
    let r = resolution(&t, "q");
    assert_eq!(r.counts.participating, m(300, 3));
    assert_eq!(r.passed, Some(false));
}

/// Four owners of 100 m² each (the example), `V04` delivered and silent; the others
/// return `choices` on a resolution of `matter` under "follows the majority".
fn four_owners_one_silent(matter: u8, choices: [Choice; 3]) -> Tally {
    let roll = roll_of(&[10_000; 4]);
    let c = with_silence(
        campaign(vec![resolution_q("q", 1, matter)]),
        SilencePolicy::FollowsMajority,
        true,
    );
    let ballots = votes(
        "q",
        &[Some(choices[0]), Some(choices[1]), Some(choices[2]), None],
    );
    tally(&roll, &c, &ballots, &[delivery("V04")], &[])
}

#[test]
fn follows_majority_cannot_manufacture_a_supermajority() {
    for matter in [6, 7, 8] {
        // Returned: yes, yes, no — 2/3 of the returned, short of 3/4. Counting the silent owner
        // as yes would make 3 of 4 and pass; they join the returned ballots' outcome: no.
        let t = four_owners_one_silent(matter, [Yes, Yes, No]);
        let r = resolution(&t, "q");
        let alone = r.silence.returned_alone.expect("follows the majority");
        assert_eq!(alone.participating, m(30_000, 3));
        assert_eq!(alone.yes, m(20_000, 2));
        assert!(!alone.passes, "matter {matter}");
        assert_eq!(r.silence.policy, SilencePolicy::FollowsMajority);
        assert_eq!(r.silence.moved, m(10_000, 1));
        assert_eq!(r.silence.joined, Some(No));
        assert_eq!(r.counts.yes, m(20_000, 2));
        assert_eq!(r.counts.no, m(20_000, 2));
        // The silent owner still counts towards the quorum (4 of 4) …
        assert_eq!(r.counts.participating, m(40_000, 4));
        assert!(r.quorum.met);
        // … but the matter fails, as the returned ballots alone fail it.
        assert!(!r.threshold.area && !r.threshold.headcount);
        assert_eq!(r.passed, Some(false), "matter {matter}");
        let text = t.to_string();
        assert!(
            text.contains(
                "未表决业主 Silence: 已送达未表决随多数 follows the majority; 计入 moved 1 人, 面积 100.00 m², 计为 counted as 反对 no"
            ),
            "{text}"
        );
        assert!(text.contains("未达到四分之三以上"), "{text}");
        if matter == 6 {
            insta::assert_json_snapshot!("follows_majority_resolution", r);
        }
    }
}

#[test]
fn follows_majority_follows_returned_ballots_that_pass() {
    // The mirror image: yes, yes, yes returned pass ≥ 3/4 on their own; the silent owner joins.
    let t = four_owners_one_silent(6, [Yes, Yes, Yes]);
    let r = resolution(&t, "q");
    assert!(
        r.silence
            .returned_alone
            .expect("follows the majority")
            .passes
    );
    assert_eq!(r.silence.joined, Some(Yes));
    assert_eq!(r.silence.moved, m(10_000, 1));
    assert_eq!(r.counts.yes, m(40_000, 4));
    assert_eq!(r.passed, Some(true));
    assert!(
        t.to_string().contains("计为 counted as 同意 yes"),
        "{}",
        t.to_string()
    );

    // An ordinary matter (> 1/2): yes, yes, no passes on its own, so the silent owner is a yes.
    let t = four_owners_one_silent(1, [Yes, Yes, No]);
    let r = resolution(&t, "q");
    assert_eq!(r.silence.joined, Some(Yes));
    assert_eq!(r.counts.yes, m(30_000, 3));
    assert_eq!(r.passed, Some(true));
}

#[test]
fn follows_majority_judges_area_and_headcount_together() {
    let c = with_silence(
        campaign(vec![resolution_q("q", 1, 1)]),
        SilencePolicy::FollowsMajority,
        true,
    );
    // Headcount says yes (2 of 3), area says no (200 of 450). Joining the headcount majority
    // would make yes 300 of 550 and 3 of 4: a pass that silence manufactured. They join no.
    let roll = roll_of(&[100, 100, 250, 100]);
    let t = tally(
        &roll,
        &c,
        &votes("q", &[Some(Yes), Some(Yes), Some(No)]),
        &[delivery("V04")],
        &[],
    );
    let r = resolution(&t, "q");
    let alone = r.silence.returned_alone.expect("follows the majority");
    assert!(alone.threshold.headcount && !alone.threshold.area && !alone.passes);
    assert_eq!(r.silence.joined, Some(No));
    assert_eq!(r.counts.no, m(350, 2));
    assert_eq!(r.counts.yes, m(200, 2));
    assert!(r.quorum.met);
    assert_eq!(r.passed, Some(false));

    // The mirror image: area says yes (400 of 600), headcount says no (1 of 3). No again.
    let roll = roll_of(&[400, 100, 100, 100]);
    let t = tally(
        &roll,
        &c,
        &votes("q", &[Some(Yes), Some(No), Some(No)]),
        &[delivery("V04")],
        &[],
    );
    let r = resolution(&t, "q");
    let alone = r.silence.returned_alone.expect("follows the majority");
    assert!(alone.threshold.area && !alone.threshold.headcount && !alone.passes);
    assert_eq!(r.silence.joined, Some(No));
    assert_eq!(r.counts.no, m(300, 3));
    assert_eq!(r.passed, Some(false));
}

#[test]
fn follows_majority_with_no_returned_ballot_passes_nothing() {
    let roll = roll_of(&[100, 100, 100]);
    let deliveries = [delivery("V01"), delivery("V02"), delivery("V03")];
    for matter in [1, 6] {
        let c = with_silence(
            campaign(vec![resolution_q("q", 1, matter)]),
            SilencePolicy::FollowsMajority,
            true,
        );
        let t = tally(&roll, &c, &[], &deliveries, &[]);
        let r = resolution(&t, "q");
        assert!(!r.silence.returned_alone.expect("follows").passes);
        assert_eq!(r.silence.joined, Some(No));
        // Everyone counts towards the quorum, as no.
        assert_eq!(r.counts.participating, m(300, 3));
        assert_eq!(r.counts.no, m(300, 3));
        assert!(r.quorum.met);
        assert_eq!(r.passed, Some(false), "matter {matter}");
    }
}

#[test]
fn follows_majority_counts_each_candidate_on_its_own() {
    // Five owners; three return, two are delivered and silent.
    let roll = roll_of(&[100; 5]);
    let mut c = with_silence(
        campaign(vec![election_q("e", 1, &["a", "b"])]),
        SilencePolicy::FollowsMajority,
        true,
    );
    c.kind = CampaignKind::Election;
    let marks = [(Yes, Yes), (Yes, No), (No, No)];
    let ballots: Vec<Ballot> = marks
        .iter()
        .enumerate()
        .map(|(v, &(a, b))| {
            let mut ballot = ballot(&format!("b{v}"), &voter(v), &[]);
            ballot.answers.insert(
                "e".into(),
                Answer {
                    candidates: BTreeMap::from([("a".to_string(), a), ("b".to_string(), b)]),
                    ..Answer::default()
                },
            );
            ballot
        })
        .collect();
    let t = tally(
        &roll,
        &c,
        &ballots,
        &[delivery("V04"), delivery("V05")],
        &[],
    );
    let e = election(&t, "e");
    assert_eq!(e.silence_policy, SilencePolicy::FollowsMajority);
    assert_eq!(e.silent_moved, m(200, 2));
    assert_eq!(e.participating, m(500, 5));
    // a: 2 of 3 returned say yes, so the silent owners are yes for a …
    let a = &e.candidates[0];
    assert_eq!(a.silence.joined, Some(Yes));
    assert_eq!(a.counts.yes, m(400, 4));
    assert_eq!(a.passed, Some(true));
    // … and 1 of 3 for b, so they are no for b.
    let b = &e.candidates[1];
    assert_eq!(b.silence.joined, Some(No));
    assert_eq!(b.counts.yes, m(100, 1));
    assert_eq!(b.counts.no, m(400, 4));
    assert_eq!(b.passed, Some(false));
    assert_eq!(e.seating.as_ref().expect("binding").elected, ["a"]);
    let text = t.to_string();
    assert!(text.contains("未表决计为 silent as 同意 yes"), "{text}");
    assert!(text.contains("未表决计为 silent as 反对 no"), "{text}");
}

#[test]
fn every_policy_states_what_it_moved() {
    for (policy, moved, joined) in [
        (SilencePolicy::Strict, m(0, 0), None),
        (
            SilencePolicy::DeliveredCountsAsAbstain,
            m(200, 2),
            Some(Abstain),
        ),
        (SilencePolicy::FollowsMajority, m(200, 2), Some(Yes)),
    ] {
        let t = silence_case(policy, true, true);
        let r = resolution(&t, "q");
        assert_eq!(r.silence.policy, policy);
        assert_eq!(r.silence.moved, moved, "{policy:?}");
        assert_eq!(r.silence.joined, joined, "{policy:?}");
        assert_eq!(
            r.silence.returned_alone.is_some(),
            policy == SilencePolicy::FollowsMajority
        );
        assert_eq!(r.counts.silent_counted, moved);
        assert_eq!(r.counts.silent_joined, joined);
        let text = t.to_string();
        assert!(
            text.contains(&format!(
                "计入 moved {} 人, 面积 {}.00 m²",
                moved.headcount,
                moved.area / 100
            )),
            "{text}"
        );
    }
    // Not announced: applied strictly, and the matter says so.
    let t = silence_case(SilencePolicy::FollowsMajority, false, true);
    let r = resolution(&t, "q");
    assert_eq!(r.silence.policy, SilencePolicy::Strict);
    assert_eq!(r.silence.moved, Measure::default());
    assert!(
        t.to_string()
            .contains("未表决业主 Silence: 未表决不计入 strict; 计入 moved 0 人"),
        "{t}"
    );
}

#[test]
fn unannounced_silence_policies_count_strictly_and_say_so() {
    for policy in [
        SilencePolicy::DeliveredCountsAsAbstain,
        SilencePolicy::FollowsMajority,
    ] {
        let t = silence_case(policy, false, true);
        assert_eq!(t.silence_applied, SilencePolicy::Strict);
        assert!(
            t.notices
                .contains(&Notice::SilencePolicyNotAnnounced { configured: policy })
        );
        let r = resolution(&t, "q");
        assert_eq!(r.counts.participating, m(300, 3));
        assert_eq!(r.passed, Some(false));
        // The tally still shows how many silent owners had a delivery.
        assert_eq!(t.silent_delivered, m(200, 2));
    }
}

// ---------------------------------------------------------------------------------------------
// Elections.
// ---------------------------------------------------------------------------------------------

#[test]
fn election_with_more_passing_candidates_than_seats_has_alternates() {
    // Nine owners; V09 is larger so that c4 outranks c3 on area at equal headcount.
    let roll = roll_of(&[100, 100, 100, 100, 100, 100, 100, 100, 150]);
    let names = ["c1", "c2", "c3", "c4", "c5", "c6", "c7"];
    let mut c = campaign(vec![election_q("e", 5, &names)]);
    c.kind = CampaignKind::Election;
    // Which voters (1-based) say yes to each candidate; the others say no or leave it out.
    let yes_by: [(&str, &[usize]); 7] = [
        ("c1", &[1, 2, 3, 4, 5, 6, 7, 8, 9]),
        ("c2", &[1, 2, 3, 4, 5, 6, 7, 8]),
        ("c3", &[1, 2, 3, 4, 5, 6, 7]),
        ("c4", &[2, 3, 4, 5, 6, 7, 9]),
        ("c5", &[1, 2, 3, 4, 5, 6]),
        ("c6", &[1, 2, 3, 4, 5]),
        ("c7", &[1, 2, 3, 4]),
    ];
    let ballots: Vec<Ballot> = (1..=9)
        .map(|v| {
            let mut b = ballot(&format!("b{v}"), &voter(v - 1), &[]);
            let mut answer = Answer::default();
            for (cand, yes) in &yes_by {
                if yes.contains(&v) {
                    answer.candidates.insert(cand.to_string(), Yes);
                } else if v % 2 == 0 {
                    answer.candidates.insert(cand.to_string(), No);
                }
            }
            b.answers.insert("e".into(), answer);
            b
        })
        .collect();
    let t = tally(&roll, &c, &ballots, &[], &[]);
    let e = election(&t, "e");
    assert!(e.quorum.met);
    let cand = |id: &str| -> &CandidateResult {
        e.candidates
            .iter()
            .find(|c| c.candidate == id)
            .expect("candidate")
    };
    assert_eq!(cand("c4").counts.yes, m(750, 7));
    assert_eq!(cand("c6").passed, Some(true));
    assert_eq!(cand("c7").passed, Some(false));
    // Every candidate's yes + no + abstain is the whole participation.
    for c in &e.candidates {
        assert_eq!(c.counts.participating, e.participating);
    }
    let seating = e.seating.as_ref().expect("binding election");
    assert_eq!(seating.elected, ["c1", "c2", "c4", "c3", "c5"]);
    assert_eq!(seating.alternates, ["c6"]);
    assert_eq!(seating.alternate_groups, [["c6"]]);
    assert_eq!(seating.open_seats, 0);
    assert_eq!(seating.tie, None);
    let text = t.to_string();
    assert!(text.contains("候补 Alternates: 候选人c6"), "{text}");
}

/// An election of `seats` among `names`: voter `v` (0-based) marks yes exactly the candidates
/// listed for it in `yes_by_voter`, no to every other.
fn election_tally(areas: &[i64], seats: i64, names: &[&str], yes_by_voter: &[&[&str]]) -> Tally {
    let roll = roll_of(areas);
    let mut c = campaign(vec![election_q("e", seats, names)]);
    c.kind = CampaignKind::Election;
    let ballots: Vec<Ballot> = yes_by_voter
        .iter()
        .enumerate()
        .map(|(v, yes)| {
            let mut b = ballot(&format!("b{v}"), &voter(v), &[]);
            let candidates = names
                .iter()
                .map(|n| (n.to_string(), if yes.contains(n) { Yes } else { No }))
                .collect();
            b.answers.insert(
                "e".into(),
                Answer {
                    candidates,
                    ..Answer::default()
                },
            );
            b
        })
        .collect();
    tally(&roll, &c, &ballots, &[], &[])
}

fn seating_of(t: &Tally) -> Seating {
    election(t, "e").seating.clone().expect("binding election")
}

const TEN: [&str; 10] = [
    "c01", "c02", "c03", "c04", "c05", "c06", "c07", "c08", "c09", "c10",
];

#[test]
fn a_tie_straddling_the_last_seat_elects_nobody_of_it() {
    // The example: one voter marks 8 candidates yes for 5 seats. List order used to
    // seat c03–c07; now nobody of the tied group is elected and the 5 seats stay open.
    let yes: &[&str] = &["c03", "c04", "c05", "c06", "c07", "c08", "c09", "c10"];
    let t = election_tally(&[100], 5, &TEN, &[yes]);
    let e = election(&t, "e");
    assert!(e.quorum.met);
    for c in &e.candidates {
        assert_eq!(c.passed, Some(yes.contains(&c.candidate.as_str())));
    }
    let seating = seating_of(&t);
    assert!(seating.elected.is_empty());
    assert_eq!(seating.open_seats, 5);
    assert_eq!(
        seating.tie,
        Some(SeatTie {
            seats: 5,
            candidates: yes.iter().map(|s| s.to_string()).collect(),
            yes: m(100, 1),
            note: SEAT_TIE_NOTE.to_string(),
        })
    );
    assert_eq!(SEAT_TIE_NOTE, "并列，须依议事规则另行决定（加投或抽签）");
    assert!(seating.alternates.is_empty() && seating.alternate_groups.is_empty());
    assert!(t.notices.contains(&Notice::SeatsOpen {
        question: "e".into(),
        open_seats: 5,
        tied: yes.iter().map(|s| s.to_string()).collect(),
    }));
    // The 公示 never prints a tied candidate as elected.
    let text = t.to_string();
    assert!(text.contains("当选 Elected: 无 none"), "{text}");
    assert!(
        text.contains("并列 Tied at the last seat (5 席 seats open"),
        "{text}"
    );
    assert!(text.contains(SEAT_TIE_NOTE), "{text}");
    assert!(text.contains("空缺 Open seats: 5"), "{text}");
    insta::assert_json_snapshot!("seat_tie_seating", seating);
}

#[test]
fn a_tie_that_fits_within_the_seats_elects_the_whole_group() {
    // The mirror image: one voter marks 5 candidates yes for 5 seats. All five are elected.
    let yes: &[&str] = &["c03", "c04", "c05", "c06", "c07"];
    let t = election_tally(&[100], 5, &TEN, &[yes]);
    let seating = seating_of(&t);
    assert_eq!(seating.elected, yes);
    assert_eq!(seating.open_seats, 0);
    assert_eq!(seating.tie, None);
    assert!(seating.alternates.is_empty());
    assert!(
        !t.notices
            .iter()
            .any(|n| matches!(n, Notice::SeatsOpen { .. }))
    );

    // Two seats and two equal candidates: both elected.
    let ab: &[&str] = &["a", "b"];
    let t = election_tally(&[100, 100, 100], 2, ab, &[ab; 3]);
    let seating = seating_of(&t);
    assert_eq!(seating.elected, ["a", "b"]);
    assert_eq!(seating.tie, None);
    // One seat and the same two: nobody, one seat open.
    let t = election_tally(&[100, 100, 100], 1, ab, &[ab; 3]);
    let seating = seating_of(&t);
    assert!(seating.elected.is_empty());
    assert_eq!(seating.open_seats, 1);
    assert_eq!(
        seating.tie.map(|t| (t.seats, t.candidates)),
        Some((1, vec!["a".to_string(), "b".to_string()]))
    );
    assert!(seating.alternates.is_empty());
}

/// Four owners (V04 smaller) and nine candidates: c1, c2 get 4 yes; c3–c6 get 3 yes (300);
/// c7, c8 get 3 yes (290); c9 gets 2 of 4 and fails.
fn ladder(seats: i64) -> Tally {
    let names = ["c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"];
    let v1: &[&str] = &names;
    let v2: &[&str] = &names;
    let v3: &[&str] = &["c1", "c2", "c3", "c4", "c5", "c6"];
    let v4: &[&str] = &["c1", "c2", "c7", "c8"];
    election_tally(&[100, 100, 100, 90], seats, &names, &[v1, v2, v3, v4])
}

fn strings(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_tie_below_the_top_seats_leaves_those_seats_open_and_the_rest_alternates() {
    // Five seats: c1, c2 elected; c3–c6 tie for the three seats left: nobody of them is
    // elected, three seats stay open; c7, c8 (strictly below) are alternates.
    let t = ladder(5);
    let seating = seating_of(&t);
    assert_eq!(seating.elected, ["c1", "c2"]);
    let tie = seating.tie.clone().expect("tie at the last seat");
    assert_eq!(tie.seats, 3);
    assert_eq!(tie.candidates, ["c3", "c4", "c5", "c6"]);
    assert_eq!(tie.yes, m(300, 3));
    assert_eq!(seating.open_seats, 3);
    assert_eq!(seating.alternates, ["c7", "c8"]);
    assert_eq!(seating.alternate_groups, [strings(&["c7", "c8"])]);
    let text = t.to_string();
    assert!(
        text.contains("当选 Elected: 候选人c1、候选人c2\n"),
        "{text}"
    );
    assert!(
        text.contains("候补 Alternates: （候选人c7、候选人c8 并列 tied）"),
        "{text}"
    );

    // One seat: c1 and c2 tie for it; everyone below is an alternate, in groups of equal rank.
    let seating = seating_of(&ladder(1));
    assert!(seating.elected.is_empty());
    assert_eq!(
        seating.tie.map(|t| t.candidates),
        Some(strings(&["c1", "c2"]))
    );
    assert_eq!(
        seating.alternate_groups,
        [strings(&["c3", "c4", "c5", "c6"]), strings(&["c7", "c8"])]
    );
}

#[test]
fn ties_below_the_seats_only_order_the_alternates() {
    // Six seats: c1–c6 elected (the c3–c6 group fits exactly); c7 = c8 are alternates of one
    // rank, their order not decided.
    let t = ladder(6);
    let seating = seating_of(&t);
    assert_eq!(seating.elected, ["c1", "c2", "c3", "c4", "c5", "c6"]);
    assert_eq!(seating.tie, None);
    assert_eq!(seating.open_seats, 0);
    assert_eq!(seating.alternate_groups, [strings(&["c7", "c8"])]);
    // Two seats: c1 = c2 fit; everything below only orders the alternates.
    let seating = seating_of(&ladder(2));
    assert_eq!(seating.elected, ["c1", "c2"]);
    assert_eq!(seating.tie, None);
    assert_eq!(
        seating.alternate_groups,
        [strings(&["c3", "c4", "c5", "c6"]), strings(&["c7", "c8"])]
    );
    assert_eq!(seating.alternates, ["c3", "c4", "c5", "c6", "c7", "c8"]);
}

#[test]
fn fewer_passing_candidates_than_seats_leave_seats_open() {
    let t = ladder(11);
    let seating = seating_of(&t);
    assert_eq!(seating.elected.len(), 8);
    assert_eq!(seating.open_seats, 3);
    assert_eq!(seating.tie, None);
    assert!(t.notices.contains(&Notice::SeatsOpen {
        question: "e".into(),
        open_seats: 3,
        tied: Vec::new(),
    }));
    assert!(t.to_string().contains("空缺 Open seats: 3"));
}

// ---------------------------------------------------------------------------------------------
// Surveys.
// ---------------------------------------------------------------------------------------------

#[test]
fn survey_counts_and_exact_shares() {
    let roll = roll_of(&[100, 200, 300, 400]);
    let mut c = campaign(vec![survey_q("s", &["x", "y", "z"], 2)]);
    c.binding = false;
    c.kind = CampaignKind::Survey;
    let pick = |id: &str, v: usize, options: &[&str]| {
        let mut b = ballot(id, &voter(v), &[]);
        b.answers.insert(
            "s".into(),
            Answer {
                options: options.iter().map(|s| s.to_string()).collect(),
                ..Answer::default()
            },
        );
        b
    };
    let ballots = [
        pick("b1", 0, &["x"]),
        pick("b2", 1, &["x", "y", "x", "unknown"]),
        pick("b3", 2, &["x", "y", "z"]),
        pick("b4", 3, &[]),
    ];
    let t = tally(&roll, &c, &ballots, &[], &[]);
    let QuestionOutcome::Survey(s) = &t.questions[0].outcome else {
        panic!("survey expected");
    };
    assert_eq!(s.respondents, m(1000, 4));
    assert_eq!(s.over_chosen, m(300, 1));
    assert_eq!(s.blank, m(400, 1));
    let x = &s.options[0];
    assert_eq!(x.chosen, m(300, 2));
    assert_eq!(
        (
            x.share_of_headcount.numerator,
            x.share_of_headcount.denominator
        ),
        (2, 4)
    );
    assert_eq!(x.share_of_headcount.display, "2/4 (50.00%)");
    assert_eq!(x.share_of_area.display, "300/1000 (30.00%)");
}

// ---------------------------------------------------------------------------------------------
// Conflicts, adjudications, corrections, scope and validity.
// ---------------------------------------------------------------------------------------------

#[test]
fn conflicting_ballots_count_for_neither_side_until_adjudicated() {
    let roll = roll_of(&[100, 100, 100]);
    let c = with_silence(
        campaign(vec![resolution_q("q", 1, 1)]),
        SilencePolicy::DeliveredCountsAsAbstain,
        true,
    );
    let mut ballots = votes("q", &[Some(Yes), Some(Yes), None]);
    ballots.push(ballot("b-V01-deputy", "V01", &[("q", No)]));
    let deliveries = [delivery("V01")];

    let t = tally(&roll, &c, &ballots, &deliveries, &[]);
    let r = resolution(&t, "q");
    // V01 counts neither as yes, nor no, nor as a silent abstention.
    assert_eq!(r.counts.participating, m(100, 1));
    assert_eq!(r.counts.no, Measure::default());
    assert_eq!(t.conflicts.len(), 1);
    assert_eq!(t.conflicts[0].voter_key, "V01");
    assert_eq!(t.conflicts[0].ballots, ["b-V01", "b-V01-deputy"]);
    assert!(!t.is_final);
    assert!(t.notices.contains(&Notice::OpenConflicts { count: 1 }));

    // The officer picks the deputy's ballot: it counts as no.
    let pick = adjudication(
        "j1",
        "V01",
        &["b-V01", "b-V01-deputy"],
        Some("b-V01-deputy"),
    );
    let t = tally(&roll, &c, &ballots, &deliveries, &[pick]);
    let r = resolution(&t, "q");
    assert_eq!(r.counts.no, m(100, 1));
    assert_eq!(r.counts.participating, m(200, 2));
    assert!(t.conflicts.is_empty());
    assert_eq!(t.adjudicated[0].chosen.as_deref(), Some("b-V01-deputy"));
    assert!(t.is_final);

    // The officer voids both: V01 does not participate, and is not silent either.
    let void = adjudication("j2", "V01", &["b-V01", "b-V01-deputy"], None);
    let t = tally(&roll, &c, &ballots, &deliveries, &[void]);
    let r = resolution(&t, "q");
    assert_eq!(r.counts.participating, m(100, 1));
    assert_eq!(r.counts.silent_counted, Measure::default());
}

#[test]
fn supersede_chains_keep_the_last_correction() {
    let roll = roll_of(&[100, 100, 100]);
    let c = campaign(vec![resolution_q("q", 1, 1)]);
    let mut first = ballot("b1", "V01", &[("q", No)]);
    first.collected_at = 10;
    let mut second = ballot("b2", "V01", &[("q", Abstain)]);
    second.supersedes = Some("b1".into());
    let mut third = ballot("b3", "V01", &[("q", Yes)]);
    third.supersedes = Some("b2".into());
    let ballots = [third, first, second, ballot("b4", "V02", &[("q", Yes)])];
    let t = tally(&roll, &c, &ballots, &[], &[]);
    let r = resolution(&t, "q");
    assert_eq!(r.counts.yes, m(200, 2));
    assert_eq!(r.counts.participating, m(200, 2));
    assert_eq!(t.superseded, ["b1", "b2"]);
    assert!(t.conflicts.is_empty());
}

#[test]
fn a_correction_of_someone_elses_ballot_is_invalid() {
    let roll = roll_of(&[100, 100, 100]);
    let c = campaign(vec![resolution_q("q", 1, 1)]);
    let mut wrong = ballot("b2", "V02", &[("q", No)]);
    wrong.supersedes = Some("b1".into());
    let ballots = [ballot("b1", "V01", &[("q", Yes)]), wrong];
    let t = tally(&roll, &c, &ballots, &[], &[]);
    assert_eq!(resolution(&t, "q").counts.participating, m(100, 1));
    assert_eq!(t.invalid.len(), 1);
    assert_eq!(t.invalid[0].ballot, "b2");
    assert!(matches!(
        t.invalid[0].reason,
        InvalidReason::SupersedesOtherVoter { .. }
    ));
}

#[test]
fn ballots_off_the_roll_after_the_close_or_outside_the_scope_do_not_count() {
    let units = [
        unit("1-1-0101", 100, "A"),
        unit("1-1-0102", 100, "B"),
        unit("1-2-0101", 100, "C"),
    ];
    let roll = Roll::from_units(&units);
    let mut c = campaign(vec![resolution_q("q", 1, 1)]);
    c.scope = Scope::Entrance {
        entrance: "1-1".into(),
    };
    let mut late = ballot("late", "B", &[("q", No)]);
    late.collected_at = 2_000_000;
    let ballots = [
        ballot("a", "A", &[("q", Yes)]),
        late,
        ballot("c", "C", &[("q", No)]),
        ballot("x", "STRANGER", &[("q", No)]),
    ];
    let t = tally(&roll, &c, &ballots, &[], &[]);
    let r = resolution(&t, "q");
    assert_eq!(t.totals.headcount, 2);
    assert_eq!(r.counts.participating, m(100, 1));
    assert_eq!(t.out_of_scope, ["c"]);
    let reasons: Vec<(&str, &InvalidReason)> = t
        .invalid
        .iter()
        .map(|i| (i.ballot.as_str(), &i.reason))
        .collect();
    assert!(reasons.contains(&("x", &InvalidReason::NotOnRoll)));
    assert!(matches!(
        reasons.iter().find(|(id, _)| *id == "late"),
        Some((_, InvalidReason::CollectedAfterClose { .. }))
    ));
}

// ---------------------------------------------------------------------------------------------
// The wire and report shape.
// ---------------------------------------------------------------------------------------------

#[test]
fn tally_json_shape_is_pinned() {
    let units = [
        unit("1-1-0101", 8603, "P0001"),
        unit("1-1-0102", 8852, "P0002"),
        unit("1-2-0101", 8523, "P0003"),
        unit("2-1-0101", 9082, "P0001"),
    ];
    let roll = Roll::from_units(&units);
    let mut c = with_silence(
        campaign(vec![
            resolution_q("q1", 1, 1),
            resolution_q("q7", 2, 7),
            election_q("e", 1, &["a", "b"]),
            survey_q("s", &["x", "y"], 1),
        ]),
        SilencePolicy::DeliveredCountsAsAbstain,
        true,
    );
    c.roll_hash = Some(roll.hash());
    let mut b1 = ballot("b1", "P0001", &[("q1", Yes), ("q7", Yes)]);
    b1.answers.insert(
        "e".into(),
        Answer {
            candidates: BTreeMap::from([("a".to_string(), Yes), ("b".to_string(), No)]),
            ..Answer::default()
        },
    );
    b1.answers.insert(
        "s".into(),
        Answer {
            options: vec!["x".into()],
            ..Answer::default()
        },
    );
    let ballots = [
        b1,
        ballot("b2", "P0002", &[("q1", No), ("q7", Yes)]),
        ballot("b2-deputy", "P0002", &[("q1", Yes)]),
        ballot("b9", "NOBODY", &[("q1", Yes)]),
    ];
    let t = tally(&roll, &c, &ballots, &[delivery("P0003")], &[]);
    insta::assert_json_snapshot!("small_campaign_tally", t);
    insta::assert_snapshot!("small_campaign_summary", t.to_string());
}

// ---------------------------------------------------------------------------------------------
// Invariants over random campaigns.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct RandomCase {
    /// (building 1–2, entrance 1–2, owner 0–7 with 7 = developer, area).
    units: Vec<(u8, u8, u8, i64)>,
    /// (voter index, resolution choice 0–3 with 3 = blank, candidate a, candidate b,
    /// supersedes an earlier ballot index).
    ballots: Vec<(usize, u8, u8, u8, Option<usize>)>,
    deliveries: Vec<usize>,
    /// (voter index, considered ballot indices, chosen index into considered or none).
    adjudications: Vec<(usize, Vec<usize>, Option<usize>)>,
    matter: u8,
    policy: u8,
    announced: bool,
    binding: bool,
    scope: u8,
    seed: u64,
}

fn random_case() -> impl Strategy<Value = RandomCase> {
    (
        prop::collection::vec((1u8..=2, 1u8..=2, 0u8..8, 0i64..20_000), 1..16),
        prop::collection::vec(
            (
                0usize..10,
                0u8..4,
                0u8..4,
                0u8..4,
                prop::option::weighted(0.2, 0usize..20),
            ),
            0..24,
        ),
        prop::collection::vec(0usize..10, 0..10),
        prop::collection::vec(
            (
                0usize..10,
                prop::collection::vec(0usize..24, 0..4),
                prop::option::of(0usize..4),
            ),
            0..4,
        ),
        (
            1u8..=9,
            0u8..3,
            any::<bool>(),
            any::<bool>(),
            0u8..3,
            any::<u64>(),
        ),
    )
        .prop_map(
            |(
                units,
                ballots,
                deliveries,
                adjudications,
                (matter, policy, announced, binding, scope, seed),
            )| {
                RandomCase {
                    units,
                    ballots,
                    deliveries,
                    adjudications,
                    matter,
                    policy,
                    announced,
                    binding,
                    scope,
                    seed,
                }
            },
        )
}

struct Built {
    roll: Roll,
    campaign: Campaign,
    ballots: Vec<Ballot>,
    deliveries: Vec<Delivery>,
    adjudications: Vec<Adjudication>,
}

fn choice(n: u8) -> Option<Choice> {
    match n {
        0 => Some(Yes),
        1 => Some(No),
        2 => Some(Abstain),
        _ => None,
    }
}

fn build(case: &RandomCase) -> Built {
    let units: Vec<Unit> = case
        .units
        .iter()
        .enumerate()
        .map(|(i, &(b, e, owner, area))| {
            let mut u = unit(&format!("{b}-{e}-{i:04}"), area, &format!("O{owner}"));
            if owner == 7 {
                u.sale_status = SaleStatus::DeveloperUndelivered;
            }
            u
        })
        .collect();
    let roll = Roll::from_units(&units);
    // Voter index 9 is never on the roll; the others wrap around the roll's keys.
    let keys: Vec<String> = roll.voter_keys().into_iter().map(str::to_string).collect();
    let key = |i: usize| -> String {
        if i == 9 {
            "STRANGER".to_string()
        } else {
            keys[i % keys.len()].clone()
        }
    };
    let ballots: Vec<Ballot> = case
        .ballots
        .iter()
        .enumerate()
        .map(|(i, &(v, q, a, b, sup))| {
            let mut ballot = ballot(&format!("b{i:02}"), &key(v), &[]);
            if let Some(c) = choice(q) {
                ballot.answers.insert(
                    "q".into(),
                    Answer {
                        choice: Some(c),
                        ..Answer::default()
                    },
                );
            }
            let mut cands = BTreeMap::new();
            for (id, n) in [("a", a), ("b", b)] {
                if let Some(c) = choice(n) {
                    cands.insert(id.to_string(), c);
                }
            }
            ballot.answers.insert(
                "e".into(),
                Answer {
                    candidates: cands,
                    ..Answer::default()
                },
            );
            ballot.supersedes = sup.filter(|s| *s < i).map(|s| format!("b{s:02}"));
            ballot
        })
        .collect();
    let deliveries = case.deliveries.iter().map(|&v| delivery(&key(v))).collect();
    let adjudications = case
        .adjudications
        .iter()
        .enumerate()
        .map(|(i, (v, considered, chosen))| {
            let ids: Vec<String> = considered.iter().map(|c| format!("b{c:02}")).collect();
            let chosen = chosen.and_then(|c| ids.get(c).cloned());
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            let mut a = adjudication(&format!("j{i}"), &key(*v), &refs, chosen.as_deref());
            a.at = i as i64;
            a
        })
        .collect();
    let policy = [
        SilencePolicy::Strict,
        SilencePolicy::DeliveredCountsAsAbstain,
        SilencePolicy::FollowsMajority,
    ][case.policy as usize];
    let mut campaign = with_silence(
        campaign(vec![
            resolution_q("q", 1, case.matter),
            election_q("e", 1, &["a", "b"]),
        ]),
        policy,
        case.announced,
    );
    campaign.binding = case.binding;
    campaign.scope = match case.scope {
        0 => Scope::Whole,
        1 => Scope::Building {
            building: "1".into(),
        },
        _ => Scope::Entrance {
            entrance: "2-1".into(),
        },
    };
    Built {
        roll,
        campaign,
        ballots,
        deliveries,
        adjudications,
    }
}

/// A deterministic shuffle (xorshift), so a failing case replays exactly.
fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut out = items.to_vec();
    let mut state = seed | 1;
    for i in (1..out.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.swap(i, (state % (i as u64 + 1)) as usize);
    }
    out
}

/// Every yes measure in the tally, by question and candidate.
fn yes_counts(t: &Tally) -> Vec<Measure> {
    let mut out = Vec::new();
    for q in &t.questions {
        match &q.outcome {
            QuestionOutcome::Resolution(r) => out.push(r.counts.yes),
            QuestionOutcome::Election(e) => out.extend(e.candidates.iter().map(|c| c.counts.yes)),
            QuestionOutcome::Survey(_) => {}
        }
    }
    out
}

fn check_counts(
    counts: &doorstep_core::tally::VoteCounts,
    totals: &Totals,
    quorum_met: bool,
    threshold_met: bool,
    passed: Option<bool>,
) -> Result<(), TestCaseError> {
    let p = counts.participating;
    prop_assert_eq!(
        counts.yes.area + counts.no.area + counts.abstain.area,
        p.area
    );
    prop_assert_eq!(
        counts.yes.headcount + counts.no.headcount + counts.abstain.headcount,
        p.headcount
    );
    prop_assert!(p.area <= totals.area && p.headcount <= totals.headcount);
    if passed == Some(true) {
        prop_assert!(quorum_met && threshold_met);
    }
    Ok(())
}

/// What a matter's silence record must say, whatever the inputs.
fn check_silence(
    silence: &SilenceEffect,
    threshold_met: bool,
    passed: Option<bool>,
    t: &Tally,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(silence.policy, t.silence_applied);
    prop_assert!(silence.moved.headcount <= t.silent_delivered.headcount);
    prop_assert_eq!(silence.joined.is_some(), silence.moved.headcount > 0);
    match silence.policy {
        SilencePolicy::Strict => prop_assert_eq!(silence.moved, Measure::default()),
        SilencePolicy::DeliveredCountsAsAbstain => {
            prop_assert_eq!(silence.moved, t.silent_delivered);
        }
        SilencePolicy::FollowsMajority => {
            prop_assert_eq!(silence.moved, t.silent_delivered);
            let alone = silence.returned_alone.expect("follows the majority");
            // Silence never manufactures a pass, and never undoes one.
            if passed == Some(true) {
                prop_assert!(alone.passes);
            }
            if silence.moved.headcount > 0 {
                prop_assert_eq!(threshold_met, alone.passes);
                let side = if alone.passes { Yes } else { No };
                prop_assert_eq!(silence.joined, Some(side));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn tally_invariants(case in random_case()) {
        let b = build(&case);
        let t = tally(&b.roll, &b.campaign, &b.ballots, &b.deliveries, &b.adjudications);
        for q in &t.questions {
            match &q.outcome {
                QuestionOutcome::Resolution(r) => {
                    check_counts(&r.counts, &t.totals, r.quorum.met, r.threshold.met, r.passed)?;
                    check_silence(&r.silence, r.threshold.met, r.passed, &t)?;
                }
                QuestionOutcome::Election(e) => {
                    for c in &e.candidates {
                        prop_assert_eq!(c.counts.participating, e.participating);
                        check_counts(&c.counts, &t.totals, e.quorum.met, c.threshold.met, c.passed)?;
                        check_silence(&c.silence, c.threshold.met, c.passed, &t)?;
                        prop_assert_eq!(c.silence.moved, e.silent_moved);
                    }
                    if let Some(s) = &e.seating {
                        prop_assert!(s.elected.len() <= 1);
                        let tied = s.tie.as_ref().map_or(0, |t| t.candidates.len());
                        prop_assert_eq!(s.elected.len() as i64 + s.open_seats, e.seats.max(0));
                        prop_assert!(s.tie.as_ref().is_none_or(|t| t.seats == s.open_seats));
                        let passing = e.candidates.iter().filter(|c| c.passed == Some(true)).count();
                        prop_assert_eq!(s.elected.len() + tied + s.alternates.len(), passing);
                    }
                }
                QuestionOutcome::Survey(_) => {}
            }
        }

        // Any order, with duplicated copies, gives the same bytes and hash.
        let mut ballots = shuffled(&b.ballots, case.seed);
        ballots.extend(shuffled(&b.ballots, case.seed.rotate_left(7)).into_iter().take(3));
        let mut deliveries = shuffled(&b.deliveries, case.seed.rotate_left(13));
        deliveries.extend(b.deliveries.iter().take(2).cloned());
        let adjudications = shuffled(&b.adjudications, case.seed.rotate_left(29));
        let again = tally(&b.roll, &b.campaign, &ballots, &deliveries, &adjudications);
        prop_assert_eq!(t.to_json(), again.to_json());
        prop_assert_eq!(&t.inputs_hash, &again.inputs_hash);
    }

    #[test]
    fn a_conflicting_ballot_never_adds_a_yes(case in random_case(), pick in any::<usize>()) {
        let mut b = build(&case);
        // Under "follows the majority", removing a returned no can make the returned ballots
        // pass on their own and so turn silent owners into yes votes; the property is about the
        // policies where a conflict can only remove votes.
        if b.campaign.rules.silence == SilencePolicy::FollowsMajority {
            b.campaign.rules.silence = SilencePolicy::DeliveredCountsAsAbstain;
        }
        let before = tally(&b.roll, &b.campaign, &b.ballots, &b.deliveries, &b.adjudications);
        let counted: Vec<String> = doorstep_core::ballots::resolve(
            &b.roll, &b.ballots, &b.adjudications, b.campaign.closed_at(),
        )
        .effective
        .into_keys()
        .collect();
        prop_assume!(!counted.is_empty());
        let voter_key = &counted[pick % counted.len()];
        let mut ballots = b.ballots.clone();
        let mut extra = ballot("zz-conflict", voter_key, &[("q", Yes)]);
        extra.answers.insert(
            "e".into(),
            Answer {
                candidates: BTreeMap::from([("a".to_string(), Yes), ("b".to_string(), Yes)]),
                ..Answer::default()
            },
        );
        ballots.push(extra);
        let after = tally(&b.roll, &b.campaign, &ballots, &b.deliveries, &b.adjudications);
        for (x, y) in yes_counts(&before).iter().zip(yes_counts(&after).iter()) {
            prop_assert!(y.area <= x.area && y.headcount <= x.headcount);
        }
        // A new ballot never settles a conflict.
        prop_assert!(after.conflicts.len() >= before.conflicts.len());
    }
}

//! An independent check of the tally: a second, deliberately simple implementation of the
//! counting rules, written straight from PRODUCT.md ("Domain rules the software must get exactly
//! right", with its "Readings where the law leaves a choice") and the ballot rules stated in the
//! module comment of `core/src/ballots.rs`. It shares no code with `core/src/tally.rs`, nor with
//! `ballots.rs` or `roll.rs`: it reads the register's units itself, forms the voter keys itself,
//! resolves supersede chains, conflicts and adjudications itself, and uses only the public model
//! types for its inputs. It favours plain loops and re-computation over speed.
//!
//! The property test compares the two on random registers (multi-unit owners, developer units,
//! zero and equal areas, several buildings and entrances), ballots (blank answers, corrections,
//! cycles, corrections of someone else's ballot, late and off-roll ballots, duplicate and
//! divergent copies), deliveries and adjudications, under every silence policy and every scope
//! for each generated case. Surveys are not compared: PRODUCT.md states no rule for them beyond
//! "counts and shares".

use std::collections::{BTreeMap, BTreeSet};

use doorstep_core::model::{
    Adjudication, Answer, AreaSource, Ballot, Campaign, CampaignKind, CampaignStatus, Candidate,
    Choice, DEVELOPER_VOTER_KEY, Delivery, Question, QuestionKind, Rules, SaleStatus, Scope,
    SilencePolicy, Unit,
};
use doorstep_core::roll::Roll;
use doorstep_core::tally::{Measure, QuestionOutcome, Tally, tally};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

// ---------------------------------------------------------------------------------------------
// What both implementations are compared on.
// ---------------------------------------------------------------------------------------------

/// (area in 0.01 m², headcount).
type Amount = (i64, i64);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Counted {
    totals: Amount,
    returned: Amount,
    silent_delivered: Amount,
    policy: SilencePolicy,
    withheld: bool,
    questions: Vec<(String, QuestionCount)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum QuestionCount {
    Resolution(Matter),
    Election {
        participating: Amount,
        quorum: [bool; 2],
        moved: Amount,
        candidates: Vec<(String, Matter)>,
        seats: Option<Seats>,
    },
}

/// One resolution, or one candidate of an election.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Matter {
    participating: Amount,
    yes: Amount,
    no: Amount,
    abstain: Amount,
    /// [area, headcount]
    quorum: [bool; 2],
    /// [area, headcount]
    threshold: [bool; 2],
    passed: Option<bool>,
    moved: Amount,
    joined: Option<Choice>,
    /// Under "follows the majority": whether the returned ballots alone pass.
    returned_alone_passes: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Seats {
    elected: BTreeSet<String>,
    /// (seats left open for the group, the group) when a tie straddles the last seat.
    tie: Option<(i64, BTreeSet<String>)>,
    open_seats: i64,
    /// Alternates by rank, best first; a set holds candidates of equal rank.
    alternates: Vec<BTreeSet<String>>,
}

// ---------------------------------------------------------------------------------------------
// The reference.
// ---------------------------------------------------------------------------------------------

/// What the reference counts from.
struct Inputs<'a> {
    units: &'a [Unit],
    campaign: &'a Campaign,
    /// False when the roll counted is not the one frozen at publication.
    roll_is_the_frozen_one: bool,
    ballots: &'a [Ballot],
    deliveries: &'a [Delivery],
    adjudications: &'a [Adjudication],
}

/// PRODUCT.md: one owner holding several units counts once; all units the developer has not
/// sold or not delivered count together as one owner; co-owners of one unit count as one.
fn owner_of(unit: &Unit) -> String {
    match unit.sale_status {
        SaleStatus::Sold => unit.owner_key.clone(),
        SaleStatus::DeveloperUnsold | SaleStatus::DeveloperUndelivered => {
            DEVELOPER_VOTER_KEY.to_string()
        }
    }
}

fn in_scope(unit: &Unit, scope: &Scope) -> bool {
    match scope {
        Scope::Whole => true,
        Scope::Building { building } => unit.building == *building,
        Scope::Entrance { entrance } => unit.entrance == *entrance,
    }
}

/// `3·P ≥ 2·T`.
fn two_thirds(part: i64, total: i64) -> bool {
    i128::from(part) * 3 >= i128::from(total) * 2
}

/// Yes is more than half of the participating: more yes than everything else.
fn more_than_half(yes: i64, part: i64) -> bool {
    i128::from(yes) > i128::from(part) - i128::from(yes)
}

/// `4·Y ≥ 3·P`.
fn three_quarters(yes: i64, part: i64) -> bool {
    i128::from(yes) * 4 >= i128::from(part) * 3
}

fn meets(matter_needs_three_quarters: bool, yes: i64, part: i64) -> bool {
    if matter_needs_three_quarters {
        three_quarters(yes, part)
    } else {
        more_than_half(yes, part)
    }
}

/// Which ballot counts for each owner, and which owners have ballots that count for nobody
/// (an open or voided conflict): those are not silent.
struct Resolved<'a> {
    counts_for: BTreeMap<String, &'a Ballot>,
    contested: BTreeSet<String>,
}

fn resolve_ballots<'a>(
    on_roll: &BTreeSet<String>,
    ballots: &'a [Ballot],
    adjudications: &[Adjudication],
    closed_at: Option<i64>,
) -> Resolved<'a> {
    // Copies of one ballot id: identical ones are one ballot; differing ones void the id.
    let mut clean: BTreeMap<&str, &Ballot> = BTreeMap::new();
    let mut void: BTreeSet<&str> = BTreeSet::new();
    for b in ballots {
        match clean.get(b.id.as_str()) {
            Some(first) if *first != b => {
                void.insert(b.id.as_str());
            }
            _ => {
                clean.insert(b.id.as_str(), b);
            }
        }
    }
    for id in &void {
        clean.remove(id);
    }
    // A ballot takes part when its owner is on the roll, it was collected by the close, it
    // does not correct itself, and it does not claim to correct another owner's ballot.
    let takes_part = |b: &Ballot| -> bool {
        let on_time = closed_at.is_none_or(|closed| b.collected_at <= closed);
        let corrects_other_owner = b
            .supersedes
            .as_deref()
            .and_then(|s| clean.get(s))
            .is_some_and(|target| target.voter_key != b.voter_key);
        on_roll.contains(&b.voter_key)
            && on_time
            && b.supersedes.as_deref() != Some(b.id.as_str())
            && !corrects_other_owner
    };
    let mut by_owner: BTreeMap<&str, Vec<&Ballot>> = BTreeMap::new();
    for b in clean.values() {
        if takes_part(b) {
            by_owner.entry(b.voter_key.as_str()).or_default().push(b);
        }
    }
    // Adjudications: identical copies are one, differing copies of one id decide nothing.
    let mut adj: BTreeMap<&str, &Adjudication> = BTreeMap::new();
    let mut adj_void: BTreeSet<&str> = BTreeSet::new();
    for a in adjudications {
        match adj.get(a.id.as_str()) {
            Some(first) if *first != a => {
                adj_void.insert(a.id.as_str());
            }
            _ => {
                adj.insert(a.id.as_str(), a);
            }
        }
    }
    for id in &adj_void {
        adj.remove(id);
    }

    let mut out = Resolved {
        counts_for: BTreeMap::new(),
        contested: BTreeSet::new(),
    };
    for (owner, mine) in by_owner {
        let cyclic = |b: &Ballot| on_cycle(&mine, b);
        let replaced = |b: &Ballot| -> bool {
            mine.iter()
                .any(|c| !cyclic(c) && corrects(&mine, c).is_some_and(|t| t.id == b.id))
        };
        let heads: Vec<&Ballot> = mine
            .iter()
            .copied()
            .filter(|b| !cyclic(b) && !replaced(b))
            .collect();
        match heads.as_slice() {
            [] => {}
            [only] => {
                out.counts_for.insert(owner.to_string(), only);
            }
            competing => {
                // A counting officer's choice counts when it saw every competing ballot and
                // picked one of them (or voided them all); the latest such choice decides.
                let head_ids: BTreeSet<&str> = competing.iter().map(|b| b.id.as_str()).collect();
                let latest = adj
                    .values()
                    .filter(|a| a.voter_key == owner)
                    .filter(|a| head_ids.iter().all(|h| a.considered.iter().any(|c| c == h)))
                    .filter(|a| {
                        a.chosen
                            .as_deref()
                            .is_none_or(|chosen| head_ids.contains(chosen))
                    })
                    .max_by(|x, y| (x.at, &x.id).cmp(&(y.at, &y.id)));
                let chosen = latest
                    .and_then(|a| a.chosen.as_deref())
                    .and_then(|id| competing.iter().find(|b| b.id == id));
                match chosen {
                    Some(b) => {
                        out.counts_for.insert(owner.to_string(), b);
                    }
                    None => {
                        out.contested.insert(owner.to_string());
                    }
                }
            }
        }
    }
    out
}

/// The ballot `b` corrects, among `mine` (one owner's ballots that take part).
fn corrects<'a>(mine: &[&'a Ballot], b: &Ballot) -> Option<&'a Ballot> {
    let target = b.supersedes.as_deref()?;
    mine.iter().copied().find(|c| c.id == target)
}

/// `b` is on a cycle of corrections: following the corrections leads back to it.
fn on_cycle(mine: &[&Ballot], b: &Ballot) -> bool {
    let mut at = corrects(mine, b);
    for _ in 0..mine.len() {
        match at {
            Some(c) if c.id == b.id => return true,
            Some(c) => at = corrects(mine, c),
            None => return false,
        }
    }
    false
}

/// Count the returned answers of one matter, then the silent delivered owners by the policy.
fn count_matter(
    returned: &[(Choice, i64)],
    silent: Amount,
    policy: SilencePolicy,
    three_quarters_needed: bool,
    totals: Amount,
    decide: bool,
) -> Matter {
    let mut yes = (0, 0);
    let mut no = (0, 0);
    let mut abstain = (0, 0);
    for &(choice, area) in returned {
        let side = match choice {
            Choice::Yes => &mut yes,
            Choice::No => &mut no,
            Choice::Abstain => &mut abstain,
        };
        side.0 += area;
        side.1 += 1;
    }
    let returned_part = (yes.0 + no.0 + abstain.0, yes.1 + no.1 + abstain.1);
    // PRODUCT.md: under "follows the majority" silent owners join the outcome the returned
    // ballots reach on their own, on both dimensions; with no returned ballot nothing passes.
    let returned_alone_passes = returned_part.1 > 0
        && meets(three_quarters_needed, yes.0, returned_part.0)
        && meets(three_quarters_needed, yes.1, returned_part.1);
    let joined = match policy {
        _ if silent.1 == 0 => None,
        SilencePolicy::Strict => None,
        SilencePolicy::DeliveredCountsAsAbstain => Some(Choice::Abstain),
        SilencePolicy::FollowsMajority if returned_alone_passes => Some(Choice::Yes),
        SilencePolicy::FollowsMajority => Some(Choice::No),
    };
    let moved = if joined.is_some() { silent } else { (0, 0) };
    match joined {
        Some(Choice::Yes) => yes = (yes.0 + silent.0, yes.1 + silent.1),
        Some(Choice::No) => no = (no.0 + silent.0, no.1 + silent.1),
        Some(Choice::Abstain) => abstain = (abstain.0 + silent.0, abstain.1 + silent.1),
        None => {}
    }
    let participating = (yes.0 + no.0 + abstain.0, yes.1 + no.1 + abstain.1);
    let quorum = [
        two_thirds(participating.0, totals.0),
        two_thirds(participating.1, totals.1),
    ];
    let threshold = [
        meets(three_quarters_needed, yes.0, participating.0),
        meets(three_quarters_needed, yes.1, participating.1),
    ];
    // Nothing passes with nobody participating.
    let passed = decide
        .then_some(quorum[0] && quorum[1] && threshold[0] && threshold[1] && participating.1 > 0);
    Matter {
        participating,
        yes,
        no,
        abstain,
        quorum,
        threshold,
        passed,
        moved,
        joined,
        returned_alone_passes: (policy == SilencePolicy::FollowsMajority)
            .then_some(returned_alone_passes),
    }
}

/// Seats go to passing candidates by yes-headcount, then yes-area. A candidate's equals share
/// its place: if the whole group fits in the seats it is elected; if it straddles the last seat
/// nobody of it is; below the seats they are alternates. List order decides nothing.
fn seat_candidates(candidates: &[(String, Matter)], seats: i64) -> Seats {
    let passing: Vec<(&String, Amount)> = candidates
        .iter()
        .filter(|(_, m)| m.passed == Some(true))
        .map(|(id, m)| (id, m.yes))
        .collect();
    let better = |a: Amount, b: Amount| (a.1, a.0) > (b.1, b.0);
    let seats = seats.max(0);
    let mut elected = BTreeSet::new();
    let mut tie: Option<(i64, BTreeSet<String>)> = None;
    let mut alternates: BTreeMap<(i64, i64), BTreeSet<String>> = BTreeMap::new();
    for &(id, yes) in &passing {
        let above = passing.iter().filter(|(_, y)| better(*y, yes)).count() as i64;
        let equal = passing.iter().filter(|(_, y)| *y == yes).count() as i64;
        if above + equal <= seats {
            elected.insert(id.clone());
        } else if above < seats {
            tie.get_or_insert_with(|| (seats - above, BTreeSet::new()))
                .1
                .insert(id.clone());
        } else {
            // Keyed so that the best comes first.
            alternates
                .entry((-yes.1, -yes.0))
                .or_default()
                .insert(id.clone());
        }
    }
    Seats {
        open_seats: seats - elected.len() as i64,
        elected,
        tie,
        alternates: alternates.into_values().collect(),
    }
}

fn reference(inputs: &Inputs<'_>) -> Counted {
    let c = inputs.campaign;
    // Every owner on the roll, and each in-scope owner with their in-scope area.
    let on_roll: BTreeSet<String> = inputs.units.iter().map(owner_of).collect();
    let mut area_in_scope: BTreeMap<String, i64> = BTreeMap::new();
    for u in inputs.units.iter().filter(|u| in_scope(u, &c.scope)) {
        *area_in_scope.entry(owner_of(u)).or_insert(0) += u.area;
    }
    let totals = (
        area_in_scope.values().sum::<i64>(),
        area_in_scope.len() as i64,
    );

    let resolved = resolve_ballots(
        &on_roll,
        inputs.ballots,
        inputs.adjudications,
        c.status_times.get("closed").copied(),
    );
    // Returned: in-scope owners whose ballot counts, with their in-scope area.
    let returned: Vec<(&Ballot, i64)> = area_in_scope
        .iter()
        .filter_map(|(owner, area)| resolved.counts_for.get(owner).map(|b| (*b, *area)))
        .collect();
    let returned_amount = (
        returned.iter().map(|(_, a)| a).sum::<i64>(),
        returned.len() as i64,
    );
    // Silent delivered: in scope, nothing returned that counts or competes, a delivery recorded.
    let delivered: BTreeSet<&str> = inputs
        .deliveries
        .iter()
        .map(|d| d.voter_key.as_str())
        .collect();
    let mut silent = (0, 0);
    for (owner, area) in &area_in_scope {
        if delivered.contains(owner.as_str())
            && !resolved.counts_for.contains_key(owner)
            && !resolved.contested.contains(owner)
        {
            silent = (silent.0 + area, silent.1 + 1);
        }
    }
    // A non-strict policy applies only when its consequence was announced.
    let policy = if c.rules.silence_announced {
        c.rules.silence
    } else {
        SilencePolicy::Strict
    };
    let withheld = !inputs.roll_is_the_frozen_one;
    let decide = c.binding && !withheld;

    let mut questions: Vec<&Question> = c.questions.values().collect();
    questions.sort_by_key(|q| (q.order, q.id.clone()));
    let mut counted = Vec::new();
    for q in questions {
        let answer_of = |b: &Ballot| b.answers.get(&q.id).cloned().unwrap_or_default();
        let count = match &q.kind {
            QuestionKind::Resolution { matter } => {
                // A question left blank on a returned ballot is an abstention.
                let answers: Vec<(Choice, i64)> = returned
                    .iter()
                    .map(|(b, area)| (answer_of(b).choice.unwrap_or(Choice::Abstain), *area))
                    .collect();
                QuestionCount::Resolution(count_matter(
                    &answers,
                    silent,
                    policy,
                    (6..=8).contains(matter),
                    totals,
                    decide,
                ))
            }
            QuestionKind::Election { seats, candidates } => {
                let mut listed: Vec<&Candidate> = candidates.values().collect();
                listed.sort_by_key(|cand| (cand.order, cand.id.clone()));
                let results: Vec<(String, Matter)> = listed
                    .iter()
                    .map(|cand| {
                        let answers: Vec<(Choice, i64)> = returned
                            .iter()
                            .map(|(b, area)| {
                                let choice = answer_of(b)
                                    .candidates
                                    .get(&cand.id)
                                    .copied()
                                    .unwrap_or(Choice::Abstain);
                                (choice, *area)
                            })
                            .collect();
                        let matter = count_matter(&answers, silent, policy, false, totals, decide);
                        (cand.id.clone(), matter)
                    })
                    .collect();
                let moved = if policy == SilencePolicy::Strict {
                    (0, 0)
                } else {
                    silent
                };
                let participating = (returned_amount.0 + moved.0, returned_amount.1 + moved.1);
                QuestionCount::Election {
                    participating,
                    quorum: [
                        two_thirds(participating.0, totals.0),
                        two_thirds(participating.1, totals.1),
                    ],
                    moved,
                    seats: decide.then(|| seat_candidates(&results, *seats)),
                    candidates: results,
                }
            }
            QuestionKind::Survey { .. } => continue,
        };
        counted.push((q.id.clone(), count));
    }
    Counted {
        totals,
        returned: returned_amount,
        silent_delivered: silent,
        policy,
        withheld,
        questions: counted,
    }
}

// ---------------------------------------------------------------------------------------------
// The same view of the real tally.
// ---------------------------------------------------------------------------------------------

fn amount(m: Measure) -> Amount {
    (m.area, m.headcount)
}

fn view(t: &Tally) -> Counted {
    let matter = |counts: &doorstep_core::tally::VoteCounts,
                  quorum: &doorstep_core::tally::Quorum,
                  threshold: &doorstep_core::tally::ThresholdCheck,
                  passed: Option<bool>,
                  silence: &doorstep_core::tally::SilenceEffect| Matter {
        participating: amount(counts.participating),
        yes: amount(counts.yes),
        no: amount(counts.no),
        abstain: amount(counts.abstain),
        quorum: [quorum.area, quorum.headcount],
        threshold: [threshold.area, threshold.headcount],
        passed,
        moved: amount(silence.moved),
        joined: silence.joined,
        returned_alone_passes: silence.returned_alone.map(|r| r.passes),
    };
    let mut questions = Vec::new();
    for q in &t.questions {
        let count = match &q.outcome {
            QuestionOutcome::Resolution(r) => QuestionCount::Resolution(matter(
                &r.counts,
                &r.quorum,
                &r.threshold,
                r.passed,
                &r.silence,
            )),
            QuestionOutcome::Election(e) => QuestionCount::Election {
                participating: amount(e.participating),
                quorum: [e.quorum.area, e.quorum.headcount],
                moved: amount(e.silent_moved),
                candidates: e
                    .candidates
                    .iter()
                    .map(|c| {
                        (
                            c.candidate.clone(),
                            matter(&c.counts, &e.quorum, &c.threshold, c.passed, &c.silence),
                        )
                    })
                    .collect(),
                seats: e.seating.as_ref().map(|s| Seats {
                    elected: s.elected.iter().cloned().collect(),
                    tie: s
                        .tie
                        .as_ref()
                        .map(|t| (t.seats, t.candidates.iter().cloned().collect())),
                    open_seats: s.open_seats,
                    alternates: s
                        .alternate_groups
                        .iter()
                        .map(|g| g.iter().cloned().collect())
                        .collect(),
                }),
            },
            QuestionOutcome::Survey(_) => continue,
        };
        questions.push((q.question.clone(), count));
    }
    Counted {
        totals: (t.totals.area, t.totals.headcount),
        returned: amount(t.returned),
        silent_delivered: amount(t.silent_delivered),
        policy: t.silence_applied,
        withheld: t.decisions_withheld,
        questions,
    }
}

// ---------------------------------------------------------------------------------------------
// Random campaigns.
// ---------------------------------------------------------------------------------------------

/// Voter indices 0–7 are owners `O0`–`O7` (not all of them hold a unit), 8 is the developer,
/// 9 is nobody on the roll.
const VOTERS: usize = 10;

fn voter_key(i: usize) -> String {
    match i {
        8 => DEVELOPER_VOTER_KEY.to_string(),
        9 => "STRANGER".to_string(),
        _ => format!("O{i}"),
    }
}

#[derive(Debug, Clone)]
struct RandomBallot {
    voter: usize,
    /// Per resolution: 0 yes, 1 no, 2 abstain, 3 answer missing, 4 answer without a choice.
    resolutions: [u8; 2],
    /// Per candidate, the same coding.
    candidates: Vec<u8>,
    /// When set, the mark given to every candidate (a voter who marks a whole slate alike).
    slate: Option<u8>,
    /// Index of the ballot it corrects (any index: itself, later ones and cycles included).
    supersedes: Option<usize>,
    late: bool,
    /// 0 one copy, 1 two identical copies, 2 a second copy with different content.
    copies: u8,
}

/// (voter, considered ballot indices — none: every ballot of that voter —, chosen: index into
/// considered, or none = void them all, at).
type RandomAdjudication = (usize, Option<Vec<usize>>, Option<usize>, i64);

#[derive(Debug, Clone)]
struct RandomCase {
    /// (building 1–2, entrance 1–2, owner 0–7, sale status 0–3, area).
    units: Vec<(u8, u8, usize, u8, i64)>,
    matters: [u8; 2],
    seats: i64,
    candidates: usize,
    ballots: Vec<RandomBallot>,
    deliveries: Vec<usize>,
    adjudications: Vec<RandomAdjudication>,
    announced: bool,
    binding: bool,
    closed: bool,
    /// 0 no frozen hash, 1 the roll's own hash, 2 another hash.
    frozen: u8,
}

fn area() -> impl Strategy<Value = i64> {
    // Equal areas make ties; zero areas probe the edges of the thresholds.
    prop_oneof![
        3 => Just(10_000i64),
        1 => Just(0i64),
        1 => Just(5_000i64),
        3 => 1i64..30_000,
    ]
}

fn random_ballot() -> impl Strategy<Value = RandomBallot> {
    (
        0..VOTERS,
        [0u8..5, 0u8..5],
        prop::collection::vec(prop_oneof![4 => 0u8..3, 1 => 3u8..5], 6),
        prop::option::weighted(0.6, 0u8..3),
        prop::option::weighted(0.25, 0usize..20),
        prop::bool::weighted(0.08),
        prop_oneof![8 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
    )
        .prop_map(
            |(voter, resolutions, candidates, slate, supersedes, late, copies)| RandomBallot {
                voter,
                resolutions,
                candidates,
                slate,
                supersedes,
                late,
                copies,
            },
        )
}

fn random_case() -> impl Strategy<Value = RandomCase> {
    (
        prop::collection::vec((1u8..=2, 1u8..=2, 0usize..8, 0u8..4, area()), 1..14),
        [1u8..=9, 1u8..=9],
        // Few seats for up to six candidates, so that alternates and ties below are common.
        prop_oneof![1 => -1i64..=0, 4 => 1i64..=3, 1 => 4i64..=5],
        1usize..=6,
        prop::collection::vec(random_ballot(), 0..24),
        prop::collection::vec(0..VOTERS, 0..12),
        prop::collection::vec(
            (
                0..VOTERS,
                prop::option::weighted(0.3, prop::collection::vec(0usize..20, 0..5)),
                prop::option::weighted(0.8, 0usize..5),
                0i64..4,
            ),
            0..6,
        ),
        (
            prop::bool::weighted(0.8),
            prop::bool::weighted(0.85),
            prop::bool::weighted(0.85),
            prop_oneof![2 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8)],
        ),
    )
        .prop_map(
            |(
                units,
                matters,
                seats,
                candidates,
                ballots,
                deliveries,
                adjudications,
                (announced, binding, closed, frozen),
            )| RandomCase {
                units,
                matters,
                seats,
                candidates,
                ballots,
                deliveries,
                adjudications,
                announced,
                binding,
                closed,
                frozen,
            },
        )
}

const CLOSED_AT: i64 = 1_000_000;

struct Built {
    units: Vec<Unit>,
    roll: Roll,
    campaign: Campaign,
    ballots: Vec<Ballot>,
    deliveries: Vec<Delivery>,
    adjudications: Vec<Adjudication>,
}

fn choice(code: u8) -> Option<Choice> {
    match code {
        0 => Some(Choice::Yes),
        1 => Some(Choice::No),
        2 => Some(Choice::Abstain),
        _ => None,
    }
}

fn build(case: &RandomCase, policy: SilencePolicy, scope: Scope) -> Built {
    let units: Vec<Unit> = case
        .units
        .iter()
        .enumerate()
        .map(|(i, &(b, e, owner, status, area))| Unit {
            code: format!("{b}-{e}-{i:04}"),
            building: b.to_string(),
            entrance: format!("{b}-{e}"),
            floor: 1,
            room: format!("{i:04}"),
            area,
            area_source: AreaSource::Registered,
            // The developer's units keep whatever owner key they were filed under.
            sale_status: match status {
                2 => SaleStatus::DeveloperUnsold,
                3 => SaleStatus::DeveloperUndelivered,
                _ => SaleStatus::Sold,
            },
            owner_key: voter_key(owner),
            owner_names: vec![format!("业主{owner}")],
        })
        .collect();
    let roll = Roll::from_units(&units);

    let candidate_ids: Vec<String> = (0..case.candidates).map(|i| format!("c{i}")).collect();
    let mut questions = BTreeMap::new();
    for (i, matter) in case.matters.iter().enumerate() {
        let q = Question {
            id: format!("q{i}"),
            order: i as i64,
            text: format!("第{matter}项"),
            kind: QuestionKind::Resolution { matter: *matter },
        };
        questions.insert(q.id.clone(), q);
    }
    let candidates = candidate_ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            // Candidate order runs against the ids, so list order and id order differ.
            let c = Candidate {
                id: id.clone(),
                name: format!("候选人{i}"),
                order: -(i as i64),
            };
            (id.clone(), c)
        })
        .collect();
    questions.insert(
        "e".to_string(),
        Question {
            id: "e".into(),
            order: 5,
            text: "选举".into(),
            kind: QuestionKind::Election {
                seats: case.seats,
                candidates,
            },
        },
    );
    let mut status_times = BTreeMap::new();
    if case.closed {
        status_times.insert("closed".to_string(), CLOSED_AT);
    }
    let campaign = Campaign {
        id: "c-ref".into(),
        community: "ref".into(),
        title: "参照计票".into(),
        kind: CampaignKind::Election,
        binding: case.binding,
        scope,
        rules: Rules {
            silence: policy,
            silence_announced: case.announced,
            ..Rules::default()
        },
        questions,
        status: if case.closed {
            CampaignStatus::Closed
        } else {
            CampaignStatus::Open
        },
        status_times,
        roll_hash: match case.frozen {
            0 => None,
            1 => Some(roll.hash()),
            _ => Some("0".repeat(64)),
        },
        rules_hash: None,
    };

    let mut ballots = Vec::new();
    for (i, rb) in case.ballots.iter().enumerate() {
        let mut answers = BTreeMap::new();
        for (q, code) in rb.resolutions.iter().enumerate() {
            if *code != 3 {
                answers.insert(
                    format!("q{q}"),
                    Answer {
                        choice: choice(*code),
                        ..Answer::default()
                    },
                );
            }
        }
        let marks: BTreeMap<String, Choice> = candidate_ids
            .iter()
            .zip(&rb.candidates)
            .filter_map(|(id, code)| choice(rb.slate.unwrap_or(*code)).map(|c| (id.clone(), c)))
            .collect();
        if rb.candidates.first() != Some(&3) {
            answers.insert(
                "e".to_string(),
                Answer {
                    candidates: marks,
                    ..Answer::default()
                },
            );
        }
        let ballot = Ballot {
            id: format!("b{i:02}"),
            voter_key: voter_key(rb.voter),
            unit: String::new(),
            answers,
            collected_at: if rb.late { CLOSED_AT + 1 } else { CLOSED_AT },
            by: "head".into(),
            supersedes: rb.supersedes.map(|s| format!("b{s:02}")),
            method: None,
        };
        match rb.copies {
            1 => ballots.push(ballot.clone()),
            2 => {
                let mut other = ballot.clone();
                other.by = "deputy".into();
                ballots.push(other);
            }
            _ => {}
        }
        ballots.push(ballot);
    }
    let deliveries = case
        .deliveries
        .iter()
        .enumerate()
        .map(|(i, v)| Delivery {
            id: format!("d{i}"),
            voter_key: voter_key(*v),
            unit: String::new(),
            at: 500,
            by: "head".into(),
        })
        .collect();
    let adjudications = case
        .adjudications
        .iter()
        .enumerate()
        .map(|(i, (v, considered, chosen, at))| {
            let considered: Vec<String> = match considered {
                Some(listed) => listed.iter().map(|c| format!("b{c:02}")).collect(),
                None => (0..case.ballots.len())
                    .filter(|b| case.ballots[*b].voter == *v)
                    .map(|b| format!("b{b:02}"))
                    .collect(),
            };
            Adjudication {
                id: format!("j{i}"),
                voter_key: voter_key(*v),
                chosen: chosen.and_then(|c| considered.get(c).cloned()),
                considered,
                reason: "核实".into(),
                at: *at,
                by: "officer".into(),
            }
        })
        .collect();
    Built {
        units,
        roll,
        campaign,
        ballots,
        deliveries,
        adjudications,
    }
}

const POLICIES: [SilencePolicy; 3] = [
    SilencePolicy::Strict,
    SilencePolicy::DeliveredCountsAsAbstain,
    SilencePolicy::FollowsMajority,
];

fn scopes() -> [Scope; 3] {
    [
        Scope::Whole,
        Scope::Building {
            building: "1".into(),
        },
        Scope::Entrance {
            entrance: "2-1".into(),
        },
    ]
}

/// Both implementations on one case, one policy, one scope.
fn both(case: &RandomCase, policy: SilencePolicy, scope: Scope) -> (Counted, Counted) {
    let b = build(case, policy, scope);
    let t = tally(
        &b.roll,
        &b.campaign,
        &b.ballots,
        &b.deliveries,
        &b.adjudications,
    );
    let expected = reference(&Inputs {
        units: &b.units,
        campaign: &b.campaign,
        roll_is_the_frozen_one: case.frozen != 2,
        ballots: &b.ballots,
        deliveries: &b.deliveries,
        adjudications: &b.adjudications,
    });
    (view(&t), expected)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// 1,024 random campaigns, each under every silence policy and every scope.
    #[test]
    fn the_tally_agrees_with_the_reference(case in random_case()) {
        for policy in POLICIES {
            for scope in scopes() {
                let (actual, expected) = both(&case, policy, scope.clone());
                prop_assert_eq!(actual, expected, "policy {:?}, scope {:?}", policy, scope);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The random cases reach what they are meant to test.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Reached {
    silent_joined_yes: usize,
    silent_joined_no: usize,
    silent_abstain: usize,
    passed_with_silence: usize,
    tie_at_last_seat: usize,
    tie_among_alternates: usize,
    tie_within_seats: usize,
    open_seats_without_tie: usize,
    contested: usize,
    adjudicated_choice: usize,
    passed: usize,
    failed_on_threshold_with_quorum: usize,
}

#[test]
fn the_random_cases_reach_every_reading() {
    let mut runner = TestRunner::deterministic();
    let strategy = random_case();
    let mut reached = Reached::default();
    for _ in 0..1024 {
        let case = strategy
            .new_tree(&mut runner)
            .expect("a random case")
            .current();
        for policy in POLICIES {
            for scope in scopes() {
                let b = build(&case, policy, scope);
                let t = tally(
                    &b.roll,
                    &b.campaign,
                    &b.ballots,
                    &b.deliveries,
                    &b.adjudications,
                );
                let actual = view(&t);
                reached.contested += usize::from(!t.conflicts.is_empty());
                reached.adjudicated_choice +=
                    usize::from(t.adjudicated.iter().any(|a| a.chosen.is_some()));
                for (_, q) in &actual.questions {
                    let mut matters: Vec<&Matter> = Vec::new();
                    match q {
                        QuestionCount::Resolution(m) => matters.push(m),
                        QuestionCount::Election {
                            candidates, seats, ..
                        } => {
                            matters.extend(candidates.iter().map(|(_, m)| m));
                            if let Some(s) = seats {
                                reached.tie_at_last_seat += usize::from(s.tie.is_some());
                                reached.tie_among_alternates +=
                                    usize::from(s.alternates.iter().any(|g| g.len() > 1));
                                reached.open_seats_without_tie +=
                                    usize::from(s.tie.is_none() && s.open_seats > 0);
                                let yes_of = |id: &String| {
                                    candidates.iter().find(|(c, _)| c == id).map(|(_, m)| m.yes)
                                };
                                let elected: Vec<_> = s.elected.iter().map(yes_of).collect();
                                reached.tie_within_seats += usize::from(
                                    (0..elected.len())
                                        .any(|i| elected[i + 1..].contains(&elected[i])),
                                );
                            }
                        }
                    }
                    for m in matters {
                        reached.silent_joined_yes += usize::from(m.joined == Some(Choice::Yes));
                        reached.silent_joined_no += usize::from(m.joined == Some(Choice::No));
                        reached.silent_abstain += usize::from(m.joined == Some(Choice::Abstain));
                        reached.passed += usize::from(m.passed == Some(true));
                        reached.passed_with_silence +=
                            usize::from(m.passed == Some(true) && m.moved.1 > 0);
                        reached.failed_on_threshold_with_quorum += usize::from(
                            m.passed == Some(false)
                                && m.quorum == [true, true]
                                && m.threshold != [true, true],
                        );
                    }
                }
            }
        }
    }
    let counts = [
        ("silent joined yes", reached.silent_joined_yes),
        ("silent joined no", reached.silent_joined_no),
        ("silent abstain", reached.silent_abstain),
        ("passed with silence", reached.passed_with_silence),
        ("tie at the last seat", reached.tie_at_last_seat),
        ("tie among alternates", reached.tie_among_alternates),
        ("tie within the seats", reached.tie_within_seats),
        ("open seats without a tie", reached.open_seats_without_tie),
        ("open conflict", reached.contested),
        ("adjudicated choice", reached.adjudicated_choice),
        ("passed", reached.passed),
        (
            "failed on threshold with quorum",
            reached.failed_on_threshold_with_quorum,
        ),
    ];
    for (what, n) in counts {
        assert!(
            n >= 20,
            "the random cases reach '{what}' only {n} times: {reached:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The reference itself, on the issue's examples (so a shared misreading cannot hide).
// ---------------------------------------------------------------------------------------------

fn one_unit(i: usize, area: i64) -> Unit {
    Unit {
        code: format!("1-1-{i:04}"),
        building: "1".into(),
        entrance: "1-1".into(),
        floor: 1,
        room: format!("{i:04}"),
        area,
        area_source: AreaSource::Registered,
        sale_status: SaleStatus::Sold,
        owner_key: voter_key(i),
        owner_names: vec![voter_key(i)],
    }
}

#[test]
fn the_reference_reads_the_issue_examples_as_product_md_decides() {
    // Four owners of 100 m², matter 6, yes, yes, no returned, one delivered owner silent.
    let units: Vec<Unit> = (0..4).map(|i| one_unit(i, 10_000)).collect();
    let mut case_campaign = build(
        &RandomCase {
            units: vec![],
            matters: [6, 6],
            seats: 5,
            candidates: 1,
            ballots: vec![],
            deliveries: vec![],
            adjudications: vec![],
            announced: true,
            binding: true,
            closed: true,
            frozen: 0,
        },
        SilencePolicy::FollowsMajority,
        Scope::Whole,
    )
    .campaign;
    case_campaign.questions.retain(|id, _| id == "q0");
    let ballot = |i: usize, c: Choice| Ballot {
        id: format!("b{i}"),
        voter_key: voter_key(i),
        unit: String::new(),
        answers: BTreeMap::from([(
            "q0".to_string(),
            Answer {
                choice: Some(c),
                ..Answer::default()
            },
        )]),
        collected_at: 0,
        by: "head".into(),
        supersedes: None,
        method: None,
    };
    let ballots = [
        ballot(0, Choice::Yes),
        ballot(1, Choice::Yes),
        ballot(2, Choice::No),
    ];
    let deliveries = [Delivery {
        id: "d".into(),
        voter_key: voter_key(3),
        unit: String::new(),
        at: 0,
        by: "head".into(),
    }];
    let expected = reference(&Inputs {
        units: &units,
        campaign: &case_campaign,
        roll_is_the_frozen_one: true,
        ballots: &ballots,
        deliveries: &deliveries,
        adjudications: &[],
    });
    let QuestionCount::Resolution(m) = &expected.questions[0].1 else {
        panic!("a resolution: {expected:?}");
    };
    assert_eq!(m.joined, Some(Choice::No));
    assert_eq!(m.yes, (20_000, 2));
    assert_eq!(m.quorum, [true, true]);
    assert_eq!(m.passed, Some(false));
    let roll = Roll::from_units(&units);
    let t = tally(&roll, &case_campaign, &ballots, &deliveries, &[]);
    assert_eq!(view(&t), expected);

    // One voter marks 8 of 10 candidates yes for 5 seats: nobody of the tie is elected.
    let mark = |yes: bool| Matter {
        participating: (100, 1),
        yes: if yes { (100, 1) } else { (0, 0) },
        no: if yes { (0, 0) } else { (100, 1) },
        abstain: (0, 0),
        quorum: [true, true],
        threshold: [yes, yes],
        passed: Some(yes),
        moved: (0, 0),
        joined: None,
        returned_alone_passes: None,
    };
    let candidates: Vec<(String, Matter)> = (1..=10)
        .map(|i| (format!("c{i:02}"), mark(i >= 3)))
        .collect();
    let seats = seat_candidates(&candidates, 5);
    assert!(seats.elected.is_empty());
    assert_eq!(seats.open_seats, 5);
    assert_eq!(seats.tie.as_ref().map(|t| (t.0, t.1.len())), Some((5, 8)));
    assert!(seats.alternates.is_empty());
    // The same 8 for 11 seats: all elected, three seats open.
    let seats = seat_candidates(&candidates, 11);
    assert_eq!(seats.elected.len(), 8);
    assert_eq!(seats.open_seats, 3);
    assert_eq!(seats.tie, None);
}

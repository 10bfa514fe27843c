//! The legal tally (计票): a pure function of the frozen roll, the frozen rules and questions, and
//! the accepted ballots, deliveries and adjudications. The same inputs, in any order, give the
//! same [`Tally`], the same JSON bytes and the same [`Tally::inputs_hash`], which the 公示 cites.
//!
//! The counting rules, all in integers (areas in 0.01 m², products in `i128`):
//!
//! - **Totals** are taken inside the campaign's scope ([`Roll::totals`]); a voter key counts with
//!   its in-scope area only.
//! - **Participation**: every effective ballot of an in-scope voter key participates in every
//!   question. A question left blank on a returned ballot counts as abstain (弃权), as is usual in
//!   议事规则 ("未填写的视为弃权"); in an election, a candidate left out counts as abstain too.
//!   Abstain counts in participation only, never as yes.
//! - **Quorum** (民法典 art 278): `3·P ≥ 2·T` on area **and** headcount.
//! - **Thresholds**, always of the participating: matters 6–8 need `4·Y ≥ 3·P` (≥ 3/4), every
//!   other matter and every election candidate `2·Y > P` (> 1/2, strict; art 1259), on both
//!   dimensions. Nothing passes with nobody participating.
//! - **Silent owners** (no effective ballot, no contested ballot): under `Strict` they do not
//!   participate. `DeliveredCountsAsAbstain` and `FollowsMajority` apply only to silent voter keys
//!   with a recorded delivery, and only when `rules.silence_announced` is true; otherwise the
//!   tally counts strictly and says so in a [`Notice`]. Under `FollowsMajority` (指导规则 art 26,
//!   read as PRODUCT.md "Readings where the law leaves a choice" decides) the silent delivered
//!   owners join, per question and per candidate, the **outcome the returned ballots reach on
//!   their own** under the matter's threshold, judged on area and headcount together: yes when
//!   the returned ballots alone meet the threshold on both dimensions with somebody returning,
//!   otherwise no. They count towards the quorum, but since they only ever add to the side the
//!   returned ballots already chose, they can never turn a failing matter into a passing one (nor
//!   a passing one into a failing one); with no returned ballot nothing passes. Each matter
//!   records in a [`SilenceEffect`] the policy applied, how many silent owners (and what area) it
//!   moved, which side they joined and, under `FollowsMajority`, the returned ballots' own check.
//!   Surveys are never filled in for silent owners.
//! - **Conflicts**: voter keys with competing ballots count for neither side and are not silent
//!   either; the conflict is listed and the tally is not final until it is adjudicated.
//! - **Elections**: each candidate needs quorum and > 1/2 on both dimensions; passing candidates
//!   are ranked by yes-headcount, then yes-area. Candidates equal on both form one group, and
//!   the candidate list order decides nothing: walking the groups in rank order, a group that
//!   fits in the seats still free is elected whole; a group that straddles the last seat elects
//!   nobody of it — those seats stay open ([`Seating::open_seats`], [`SeatTie`]) and must be
//!   decided by the community's rules (re-vote or lot, [`SEAT_TIE_NOTE`]); every candidate
//!   strictly below is an alternate (候补), in groups of equal rank
//!   ([`Seating::alternate_groups`]). A tie among alternates only leaves their order open.
//! - **Surveys** count per option by headcount and area, with shares of the respondents as exact
//!   fractions.
//! - Binding campaigns get `passed: Some(..)`; advisory ones get `None`. When the roll given is
//!   not the frozen one (hash mismatch) or is invalid, every decision is withheld (`None`).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ballots::{
    AdjudicatedConflict, BallotConflict, InvalidBallot, UnusedAdjudication, resolve_indexed,
};
use crate::model::{
    Adjudication, Ballot, Campaign, CampaignKind, CampaignStatus, Choice, CollectionMethod,
    Delivery, MatterItem, Millis, Question, QuestionKind, Rules, Scope, SilencePolicy,
    is_supermajority_matter,
};
use crate::roll::{Keyed, Roll, Totals, cmp_keyed, keyed};

/// The version of the tally's JSON shape and of the canonical inputs serialization. Version 2:
/// `follows_majority` joins the returned ballots' own outcome, a tie at the last seat leaves the
/// seats open, and every matter carries its [`SilenceEffect`].
pub const TALLY_SCHEMA: u32 = 2;

/// What the tally and the 公示 say about a tie that straddles the last seat.
pub const SEAT_TIE_NOTE: &str = "并列，须依议事规则另行决定（加投或抽签）";

/// An amount on both legal dimensions: area in 0.01 m² and headcount in voter keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Measure {
    pub area: i64,
    pub headcount: i64,
}

impl Measure {
    /// Add one voter key with `area`.
    fn add_voter(&mut self, area: i64) {
        self.area = self.area.saturating_add(area);
        self.headcount = self.headcount.saturating_add(1);
    }

    fn add(&mut self, other: Measure) {
        self.area = self.area.saturating_add(other.area);
        self.headcount = self.headcount.saturating_add(other.headcount);
    }
}

/// The share of yes votes a matter needs, of the participating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Threshold {
    /// 过半数: `2·Y > P`, strict.
    MoreThanHalf,
    /// 四分之三以上: `4·Y ≥ 3·P` (matters 6–8).
    AtLeastThreeQuarters,
}

impl Threshold {
    /// The threshold a matter of 民法典 art 278 needs.
    pub fn for_matter(matter: MatterItem) -> Threshold {
        if is_supermajority_matter(matter) {
            Threshold::AtLeastThreeQuarters
        } else {
            Threshold::MoreThanHalf
        }
    }

    /// True when `yes` out of `participating` meets the threshold on one dimension.
    pub fn is_met(self, yes: i64, participating: i64) -> bool {
        let (y, p) = (i128::from(yes), i128::from(participating));
        match self {
            Threshold::MoreThanHalf => 2 * y > p,
            Threshold::AtLeastThreeQuarters => 4 * y >= 3 * p,
        }
    }

    fn label_zh(self) -> &'static str {
        match self {
            Threshold::MoreThanHalf => "过半数",
            Threshold::AtLeastThreeQuarters => "四分之三以上",
        }
    }
}

/// True when `participating` out of `total` meets the 2/3 quorum on one dimension: `3·P ≥ 2·T`.
pub fn quorum_met(participating: i64, total: i64) -> bool {
    3 * i128::from(participating) >= 2 * i128::from(total)
}

/// The quorum check of one question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quorum {
    pub area: bool,
    pub headcount: bool,
    /// Both dimensions.
    pub met: bool,
}

impl Quorum {
    fn of(participating: Measure, totals: &Totals) -> Quorum {
        let area = quorum_met(participating.area, totals.area);
        let headcount = quorum_met(participating.headcount, totals.headcount);
        Quorum {
            area,
            headcount,
            met: area && headcount,
        }
    }
}

/// The threshold check of one question or candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThresholdCheck {
    pub threshold: Threshold,
    pub area: bool,
    pub headcount: bool,
    /// Both dimensions.
    pub met: bool,
}

impl ThresholdCheck {
    fn of(threshold: Threshold, counts: &VoteCounts) -> ThresholdCheck {
        let area = threshold.is_met(counts.yes.area, counts.participating.area);
        let headcount = threshold.is_met(counts.yes.headcount, counts.participating.headcount);
        ThresholdCheck {
            threshold,
            area,
            headcount,
            met: area && headcount,
        }
    }
}

/// Yes / no / abstain on both dimensions; `yes + no + abstain == participating`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VoteCounts {
    pub participating: Measure,
    pub yes: Measure,
    pub no: Measure,
    pub abstain: Measure,
    /// Of the participating, the silent delivered owners counted by the silence policy (the
    /// same as the matter's [`SilenceEffect::moved`]).
    pub silent_counted: Measure,
    /// The side those silent owners were counted on, when there were any (the same as
    /// [`SilenceEffect::joined`]).
    pub silent_joined: Option<Choice>,
}

impl VoteCounts {
    fn add(&mut self, choice: Choice, area: i64) {
        self.participating.add_voter(area);
        match choice {
            Choice::Yes => self.yes.add_voter(area),
            Choice::No => self.no.add_voter(area),
            Choice::Abstain => self.abstain.add_voter(area),
        }
    }

    /// Count the silent delivered owners (`silent`) under `policy`, after the returned ballots
    /// (which `self` holds alone when this is called), for a matter needing `threshold`.
    fn apply_silence(
        &mut self,
        policy: SilencePolicy,
        silent: Measure,
        threshold: Threshold,
    ) -> SilenceEffect {
        let returned_alone =
            (policy == SilencePolicy::FollowsMajority).then(|| ReturnedAlone::of(threshold, self));
        let side = match policy {
            SilencePolicy::Strict => None,
            SilencePolicy::DeliveredCountsAsAbstain => Some(Choice::Abstain),
            SilencePolicy::FollowsMajority => Some(if returned_alone.is_some_and(|r| r.passes) {
                Choice::Yes
            } else {
                Choice::No
            }),
        };
        let mut effect = SilenceEffect {
            policy,
            moved: Measure::default(),
            joined: None,
            returned_alone,
        };
        let Some(side) = side.filter(|_| silent.headcount > 0) else {
            return effect;
        };
        self.participating.add(silent);
        match side {
            Choice::Yes => self.yes.add(silent),
            Choice::No => self.no.add(silent),
            Choice::Abstain => self.abstain.add(silent),
        }
        self.silent_counted = silent;
        self.silent_joined = Some(side);
        effect.moved = silent;
        effect.joined = Some(side);
        effect
    }
}

/// The returned ballots' own result on one matter, before any silent owner is counted: what
/// silent delivered owners join under `follows_majority`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnedAlone {
    pub participating: Measure,
    pub yes: Measure,
    pub threshold: ThresholdCheck,
    /// The threshold is met on both dimensions by somebody returning: silent owners count as
    /// yes when true, as no otherwise.
    pub passes: bool,
}

impl ReturnedAlone {
    fn of(threshold: Threshold, returned: &VoteCounts) -> ReturnedAlone {
        let check = ThresholdCheck::of(threshold, returned);
        ReturnedAlone {
            participating: returned.participating,
            yes: returned.yes,
            threshold: check,
            passes: check.met && returned.participating.headcount > 0,
        }
    }
}

/// What the silence policy did on one matter (a resolution, or one candidate of an election),
/// so an objecting owner can see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceEffect {
    /// The policy applied: the configured one, or strict when it was not announced.
    pub policy: SilencePolicy,
    /// Silent owners with a recorded delivery that the policy counted as participating; zero
    /// under strict.
    pub moved: Measure,
    /// The side they were counted on, when the policy moved anyone.
    pub joined: Option<Choice>,
    /// Under `follows_majority` only: the returned ballots' own check, whose outcome decides
    /// `joined`.
    pub returned_alone: Option<ReturnedAlone>,
}

/// The result of a yes/no/abstain question on one matter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolutionResult {
    pub matter: MatterItem,
    pub counts: VoteCounts,
    pub quorum: Quorum,
    pub threshold: ThresholdCheck,
    /// Binding campaigns only: quorum and threshold met, with someone participating.
    pub passed: Option<bool>,
    /// Which silence policy was applied and how many silent owners it moved.
    pub silence: SilenceEffect,
}

/// One candidate's result in an election.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandidateResult {
    pub candidate: String,
    pub name: String,
    pub order: i64,
    pub counts: VoteCounts,
    pub threshold: ThresholdCheck,
    /// Binding campaigns only: quorum and > 1/2 on both dimensions.
    pub passed: Option<bool>,
    /// Which silence policy was applied to this candidate and which side it moved silent
    /// owners to.
    pub silence: SilenceEffect,
}

/// Passing candidates with equal yes-headcount and yes-area that straddle the last seat: nobody
/// of them is elected, and the seats left for them stay open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatTie {
    /// How many seats stay open for this group (fewer than its members).
    pub seats: i64,
    /// The tied candidate ids, in candidate list order (which decides nothing).
    pub candidates: Vec<String>,
    /// The yes votes each of them received.
    pub yes: Measure,
    /// [`SEAT_TIE_NOTE`]: the community's rules decide (re-vote or lot).
    pub note: String,
}

/// Who takes the seats, for a binding election.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seating {
    /// Candidate ids in rank order (equal candidates, all elected, in list order).
    pub elected: Vec<String>,
    /// 候补: passing candidates strictly below the seats (and below a tie at the last seat), in
    /// rank order; equal candidates in list order, see `alternate_groups`.
    pub alternates: Vec<String>,
    /// The alternates grouped by rank: each inner list holds candidates with equal yes-headcount
    /// and yes-area (in list order), whose order among themselves is not decided.
    pub alternate_groups: Vec<Vec<String>>,
    /// Seats nobody was elected to: a tie at the last seat, or fewer passing candidates than
    /// seats.
    pub open_seats: i64,
    /// The tie at the last seat, if any.
    pub tie: Option<SeatTie>,
}

/// The result of an election question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionResult {
    pub seats: i64,
    pub participating: Measure,
    pub quorum: Quorum,
    /// The silence policy applied to every candidate.
    pub silence_policy: SilencePolicy,
    /// Silent delivered owners it counted as participating (the side differs per candidate).
    pub silent_moved: Measure,
    /// In candidate list order (`order`, then id).
    pub candidates: Vec<CandidateResult>,
    /// Binding campaigns only.
    pub seating: Option<Seating>,
}

/// An exact share: `numerator / denominator`, unreduced so the raw counts stay visible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fraction {
    pub numerator: i64,
    pub denominator: i64,
    /// E.g. `12/30 (40.00%)`; the percentage is rounded half up, `—` when the denominator is 0.
    pub display: String,
}

impl Fraction {
    pub fn new(numerator: i64, denominator: i64) -> Fraction {
        Fraction {
            numerator,
            denominator,
            display: format!(
                "{numerator}/{denominator} ({})",
                percent(numerator, denominator)
            ),
        }
    }
}

/// One survey option's count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptionResult {
    pub option: String,
    pub label: String,
    pub order: i64,
    pub chosen: Measure,
    /// Of the respondents' headcount.
    pub share_of_headcount: Fraction,
    /// Of the respondents' area.
    pub share_of_area: Fraction,
}

/// The result of a survey question (意见征集): counts and shares, no decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveyResult {
    /// Below 1 means no limit.
    pub max_choices: i64,
    /// Effective ballots in scope.
    pub respondents: Measure,
    /// Respondents who chose no known option.
    pub blank: Measure,
    /// Respondents who chose more than `max_choices` options; their answer counts for none.
    pub over_chosen: Measure,
    /// In option list order (`order`, then id).
    pub options: Vec<OptionResult>,
}

/// A question's result, by kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum QuestionOutcome {
    Resolution(ResolutionResult),
    Election(ElectionResult),
    Survey(SurveyResult),
}

/// One question of the campaign with its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionTally {
    pub question: String,
    pub order: i64,
    pub text: String,
    pub outcome: QuestionOutcome,
}

/// Something a counting officer must know about this tally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Notice {
    /// The roll given is not the one frozen at publication; no decision is made.
    RollNotFrozen { frozen: String, given: String },
    /// The roll is inconsistent (see [`crate::roll::RollError`]); no decision is made.
    RollInvalid { problem: String },
    /// A non-strict silence policy was configured but its consequence was not announced, so
    /// silent owners were counted strictly.
    SilencePolicyNotAnnounced { configured: SilencePolicy },
    /// Conflicts wait for a counting officer; their ballots count for neither side.
    OpenConflicts { count: i64 },
    /// The campaign is not closed yet, so more ballots may come.
    NotClosed { status: CampaignStatus },
    /// Advisory campaign: counts only, nothing passes or fails.
    Advisory,
    /// An election left seats open: `tied` straddle the last seat with equal votes (the
    /// community's rules must decide between them), or, when `tied` is empty, fewer candidates
    /// passed than there are seats.
    SeatsOpen {
        question: String,
        open_seats: i64,
        tied: Vec<String>,
    },
    /// An election has no positive number of seats, so nobody is elected.
    NoSeats { question: String, seats: i64 },
}

impl Notice {
    /// One line for the 公示 and the dashboard, Chinese first.
    pub fn describe(&self) -> String {
        match self {
            Notice::RollNotFrozen { frozen, given } => format!(
                "名册与发布时冻结的名册不一致, 不作决定 (roll {given} is not the frozen roll {frozen}; no decision)"
            ),
            Notice::RollInvalid { problem } => {
                format!("名册有误, 不作决定 (invalid roll: {problem}; no decision)")
            }
            Notice::SilencePolicyNotAnnounced { configured } => format!(
                "议事规则的未表决计票方式未经公告, 按未表决不计入处理 ({} was not announced; counted strictly)",
                silence_label(*configured)
            ),
            Notice::OpenConflicts { count } => format!(
                "{count} 位业主的表决票存在冲突待裁决, 暂不计入 ({count} conflicts wait for adjudication and count for neither side)"
            ),
            Notice::NotClosed { status } => {
                format!("表决尚未截止, 结果可能变化 (campaign is {status:?}, not closed)")
            }
            Notice::Advisory => {
                "本次为征求意见, 仅统计不作决定 (advisory: counts only)".to_string()
            }
            Notice::SeatsOpen {
                question,
                open_seats,
                tied,
            } if tied.is_empty() => format!(
                "第 {question} 题通过的候选人少于应选席位, {open_seats} 席空缺 ({open_seats} seats open: fewer candidates passed than seats)"
            ),
            Notice::SeatsOpen {
                question,
                open_seats,
                tied,
            } => format!(
                "第 {question} 题 {} 得票相同, 并列于最后席位, {open_seats} 席暂不当选; {SEAT_TIE_NOTE} ({open_seats} seats stay open: a tie at the last seat)",
                tied.join("、")
            ),
            Notice::NoSeats { question, seats } => {
                format!("第 {question} 题应选席位数为 {seats}, 无人当选 (no seats to fill)")
            }
        }
    }
}

/// The tally of one campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub schema: u32,
    pub campaign: String,
    pub title: String,
    pub kind: CampaignKind,
    pub binding: bool,
    pub scope: Scope,
    /// Hash of the roll counted ([`Roll::hash`]).
    pub roll_hash: String,
    /// SHA-256 of the canonical inputs (see [`tally`]); the 公示 cites it.
    pub inputs_hash: String,
    /// The frozen rules as configured.
    pub rules: Rules,
    /// The silence policy actually applied (strict when a non-strict one was not announced).
    pub silence_applied: SilencePolicy,
    pub closed_at: Option<Millis>,
    /// Area, headcount and units inside the scope.
    pub totals: Totals,
    /// Voter keys in scope with an effective ballot.
    pub returned: Measure,
    /// Silent voter keys in scope with a recorded delivery, whether or not the policy counts them.
    pub silent_delivered: Measure,
    /// True when no decision is made (roll mismatch or invalid roll).
    pub decisions_withheld: bool,
    /// True when closed, no conflict waits and decisions are made.
    pub is_final: bool,
    /// In question order (`order`, then id).
    pub questions: Vec<QuestionTally>,
    /// In-scope conflicts waiting for adjudication.
    pub conflicts: Vec<BallotConflict>,
    /// In-scope conflicts a counting officer settled.
    pub adjudicated: Vec<AdjudicatedConflict>,
    /// Ballot ids replaced by a correction (in scope).
    pub superseded: Vec<String>,
    /// Ballots that take no part, with the reason.
    pub invalid: Vec<InvalidBallot>,
    /// Ballot ids of voter keys on the roll but outside the scope: ignored.
    pub out_of_scope: Vec<String>,
    /// Adjudications that decided nothing, with the reason.
    pub unused_adjudications: Vec<UnusedAdjudication>,
    pub notices: Vec<Notice>,
}

/// What [`Tally::inputs_hash`] is taken over: compact serde_json of this struct, fields in this
/// order, maps sorted by key, lists sorted as documented per field. [`CanonicalInputs::write`]
/// writes these bytes fast; the derived `Serialize` is their definition.
#[derive(Serialize)]
struct CanonicalInputs<'a> {
    format: &'static str,
    campaign: &'a str,
    kind: CampaignKind,
    binding: bool,
    scope: &'a Scope,
    closed_at: Option<Millis>,
    roll_hash: &'a str,
    rules: &'a Rules,
    questions: &'a BTreeMap<String, Question>,
    /// In-scope effective ballots by voter key.
    effective_ballots: EffectiveBallots<'a>,
    /// Deliveries that made a silent owner count, sorted by id then content, duplicates removed.
    deliveries_used: Vec<&'a Delivery>,
    /// Every distinct adjudication given, sorted by id then content.
    adjudications: Vec<&'a Adjudication>,
}

/// One in-scope effective ballot: its voter key and the key's in-scope area.
#[derive(Clone, Copy)]
struct Returned<'a> {
    voter_key: &'a str,
    ballot: &'a Ballot,
    area: i64,
}

/// Effective ballots sorted by voter key (distinct keys), serialized as the JSON object a
/// `BTreeMap<&str, &Ballot>` of them gives, without building one.
#[derive(Clone, Copy)]
struct EffectiveBallots<'a>(&'a [Returned<'a>]);

impl Serialize for EffectiveBallots<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|r| (r.voter_key, r.ballot)))
    }
}

impl CanonicalInputs<'_> {
    /// Write exactly the bytes `serde_json::to_vec(self)` gives, into `sink`. Every field but the
    /// effective ballots goes through serde_json as is; the ballots, nearly all of the bytes,
    /// through [`write_ballot`], which writes the same JSON without serde's per-field work. A
    /// test holds the two to the same bytes.
    ///
    /// `each_ballot` sees every effective ballot right after it is written, while it is still in
    /// cache: the questions are counted there, so the ballots are walked once, not twice.
    fn write(&self, sink: &mut InputsSink, mut each_ballot: impl FnMut(&Returned<'_>)) {
        let CanonicalInputs {
            format,
            campaign,
            kind,
            binding,
            scope,
            closed_at,
            roll_hash,
            rules,
            questions,
            effective_ballots,
            deliveries_used,
            adjudications,
        } = self;
        sink.raw(b"{\"format\":");
        sink.json(format);
        sink.raw(b",\"campaign\":");
        sink.json(campaign);
        sink.raw(b",\"kind\":");
        sink.json(kind);
        sink.raw(b",\"binding\":");
        sink.json(binding);
        sink.raw(b",\"scope\":");
        sink.json(scope);
        sink.raw(b",\"closed_at\":");
        sink.json(closed_at);
        sink.raw(b",\"roll_hash\":");
        sink.json(roll_hash);
        sink.raw(b",\"rules\":");
        sink.json(rules);
        sink.raw(b",\"questions\":");
        sink.json(questions);
        sink.raw(b",\"effective_ballots\":{");
        for (i, returned) in effective_ballots.0.iter().enumerate() {
            if i > 0 {
                sink.pending.push(b',');
            }
            // The ballot's own copy of its voter key (the same string): read with the ballot,
            // rather than fetched from the roll.
            write_str(&mut sink.pending, &returned.ballot.voter_key);
            sink.pending.push(b':');
            write_ballot(&mut sink.pending, returned.ballot);
            each_ballot(returned);
            sink.settle();
        }
        sink.raw(b"},\"deliveries_used\":[");
        for (i, delivery) in deliveries_used.iter().enumerate() {
            if i > 0 {
                sink.pending.push(b',');
            }
            write_delivery(&mut sink.pending, delivery);
            sink.settle();
        }
        sink.raw(b"]");
        sink.raw(b",\"adjudications\":");
        sink.json(adjudications);
        sink.raw(b"}");
    }
}

/// A string as serde_json writes it: quoted, and escaped by serde_json itself whenever any byte
/// needs escaping.
fn write_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, s)
            .expect("invariant: writing a string into memory cannot fail");
    }
}

/// An integer as serde_json writes it.
fn write_i64(out: &mut Vec<u8>, n: i64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[start..]);
}

fn write_choice(out: &mut Vec<u8>, choice: Choice) {
    out.extend_from_slice(match choice {
        Choice::Yes => b"\"yes\"".as_slice(),
        Choice::No => b"\"no\"".as_slice(),
        Choice::Abstain => b"\"abstain\"".as_slice(),
    });
}

/// A ballot as its derived `Serialize` writes it with serde_json, compact. The destructuring
/// names every field, so a field added to [`Ballot`] or [`crate::model::Answer`] does not
/// compile here until it is written too.
fn write_ballot(out: &mut Vec<u8>, ballot: &Ballot) {
    let Ballot {
        id,
        voter_key,
        unit,
        answers,
        collected_at,
        by,
        supersedes,
        method,
    } = ballot;
    out.extend_from_slice(b"{\"id\":");
    write_str(out, id);
    out.extend_from_slice(b",\"voter_key\":");
    write_str(out, voter_key);
    out.extend_from_slice(b",\"unit\":");
    write_str(out, unit);
    out.extend_from_slice(b",\"answers\":{");
    for (i, (question, answer)) in answers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, question);
        out.push(b':');
        let crate::model::Answer {
            choice,
            candidates,
            options,
        } = answer;
        out.extend_from_slice(b"{\"choice\":");
        match choice {
            Some(choice) => write_choice(out, *choice),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"candidates\":{");
        for (j, (candidate, choice)) in candidates.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            write_str(out, candidate);
            out.push(b':');
            write_choice(out, *choice);
        }
        out.extend_from_slice(b"},\"options\":[");
        for (j, option) in options.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            write_str(out, option);
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"},\"collected_at\":");
    write_i64(out, *collected_at);
    out.extend_from_slice(b",\"by\":");
    write_str(out, by);
    out.extend_from_slice(b",\"supersedes\":");
    match supersedes {
        Some(s) => write_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
    // Absent, not null, when not recorded: a schema-1 ballot's inputs keep their bytes (and
    // the 公示's inputs hash) after the upgrade.
    if let Some(method) = method {
        out.extend_from_slice(b",\"method\":");
        out.extend_from_slice(match method {
            CollectionMethod::Door => b"\"door\"".as_slice(),
            CollectionMethod::Proxy => b"\"proxy\"".as_slice(),
            CollectionMethod::Station => b"\"station\"".as_slice(),
            CollectionMethod::Returned => b"\"returned\"".as_slice(),
        });
    }
    out.push(b'}');
}

/// A delivery as its derived `Serialize` writes it with serde_json, compact (every field named,
/// as in [`write_ballot`]).
fn write_delivery(out: &mut Vec<u8>, delivery: &Delivery) {
    let Delivery {
        id,
        voter_key,
        unit,
        at,
        by,
    } = delivery;
    out.extend_from_slice(b"{\"id\":");
    write_str(out, id);
    out.extend_from_slice(b",\"voter_key\":");
    write_str(out, voter_key);
    out.extend_from_slice(b",\"unit\":");
    write_str(out, unit);
    out.extend_from_slice(b",\"at\":");
    write_i64(out, *at);
    out.extend_from_slice(b",\"by\":");
    write_str(out, by);
    out.push(b'}');
}

/// The hashing end of the canonical inputs: blocks, in order, into SHA-256, and into `kept` when
/// the caller wants the bytes themselves.
struct InputsDigest {
    hasher: Sha256,
    kept: Option<Vec<u8>>,
}

impl InputsDigest {
    fn new(keep: bool) -> InputsDigest {
        InputsDigest {
            hasher: Sha256::new(),
            kept: keep.then(Vec::new),
        }
    }

    fn take(&mut self, block: &[u8]) {
        self.hasher.update(block);
        if let Some(kept) = &mut self.kept {
            kept.extend_from_slice(block);
        }
    }

    /// The lowercase hex SHA-256 of every block taken, and the bytes when they were kept.
    fn finish(self) -> (String, Option<Vec<u8>>) {
        (hex::encode(self.hasher.finalize()), self.kept)
    }
}

/// Where full blocks go: hashed here, or sent to a hashing thread (which hands the buffers
/// back to be filled again).
enum BlockOut {
    Inline(InputsDigest),
    Thread {
        blocks: std::sync::mpsc::SyncSender<Vec<u8>>,
        spare: std::sync::mpsc::Receiver<Vec<u8>>,
    },
}

/// Where the canonical inputs' bytes go: gathered into blocks of about [`InputsSink::BUFFER`]
/// bytes, each hashed as soon as it is full — while it is still in cache, or on another core.
struct InputsSink {
    pending: Vec<u8>,
    out: BlockOut,
}

impl InputsSink {
    /// How many bytes are gathered before the hasher takes them.
    const BUFFER: usize = 64 * 1024;

    fn buffer() -> Vec<u8> {
        Vec::with_capacity(Self::BUFFER + 4 * 1024)
    }

    fn new(keep: bool) -> InputsSink {
        InputsSink {
            pending: Self::buffer(),
            out: BlockOut::Inline(InputsDigest::new(keep)),
        }
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// `value` as compact serde_json.
    fn json<T: Serialize + ?Sized>(&mut self, value: &T) {
        serde_json::to_writer(&mut self.pending, value)
            .expect("invariant: canonical tally inputs have string keys only and always serialize");
        self.settle();
    }

    /// Hash the pending bytes once there are enough of them.
    fn settle(&mut self) {
        if self.pending.len() >= Self::BUFFER {
            self.drain();
        }
    }

    fn drain(&mut self) {
        match &mut self.out {
            BlockOut::Inline(digest) => {
                digest.take(&self.pending);
                self.pending.clear();
            }
            BlockOut::Thread { blocks, spare } => {
                let mut next = spare.try_recv().unwrap_or_else(|_| Self::buffer());
                next.clear();
                let full = std::mem::replace(&mut self.pending, next);
                blocks
                    .send(full)
                    .expect("invariant: the hashing thread takes blocks until the sink closes");
            }
        }
    }

    /// The lowercase hex SHA-256 of every byte written, and the bytes when they were kept
    /// (hashed inline).
    fn finish(mut self) -> (String, Option<Vec<u8>>) {
        self.drain();
        match self.out {
            BlockOut::Inline(digest) => digest.finish(),
            BlockOut::Thread { .. } => {
                unreachable!("invariant: a threaded sink is closed with `close`")
            }
        }
    }

    /// Send the last block to the hashing thread and let it finish.
    fn close(mut self) {
        if !self.pending.is_empty() {
            self.drain();
        }
    }
}

/// How many effective ballots make hashing on a second core worth starting a thread: the
/// sample community's 300 take 0.25 ms in all, a district's 85,000 spend ~20 ms in SHA-256.
const THREADED_HASH_BALLOTS: usize = 5_000;

/// The canonical inputs' hash, and their bytes when `keep`. `each_ballot` sees every effective
/// ballot as it is written (see [`CanonicalInputs::write`]). Large inputs are hashed on a
/// second thread while the next block is written, when the machine has a second core.
fn canonical_json(
    inputs: &CanonicalInputs<'_>,
    keep: bool,
    each_ballot: impl FnMut(&Returned<'_>),
) -> (String, Option<Vec<u8>>) {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threaded = inputs.effective_ballots.0.len() >= THREADED_HASH_BALLOTS && cores >= 2;
    hash_written(keep, threaded, |sink| inputs.write(sink, each_ballot))
}

/// The hash (and the bytes when `keep`) of what `write` puts into a sink, hashed on a second
/// thread when `threaded`.
fn hash_written(
    keep: bool,
    threaded: bool,
    write: impl FnOnce(&mut InputsSink),
) -> (String, Option<Vec<u8>>) {
    if !threaded {
        let mut sink = InputsSink::new(keep);
        write(&mut sink);
        return sink.finish();
    }
    std::thread::scope(|scope| {
        let (to_hasher, blocks) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let (to_writer, spare) = std::sync::mpsc::channel::<Vec<u8>>();
        let hasher = scope.spawn(move || {
            let mut digest = InputsDigest::new(keep);
            for block in blocks {
                digest.take(&block);
                // The writer may have finished already; then the buffer is simply dropped.
                let _ = to_writer.send(block);
            }
            digest.finish()
        });
        let mut sink = InputsSink {
            pending: InputsSink::buffer(),
            out: BlockOut::Thread {
                blocks: to_hasher,
                spare,
            },
        };
        write(&mut sink);
        sink.close();
        hasher
            .join()
            .expect("invariant: hashing the canonical inputs does not panic")
    })
}

/// Everything the questions need about who counts, computed once.
struct Electorate<'a> {
    /// In-scope voter keys with an effective ballot, on both dimensions.
    returned: Measure,
    /// Silent delivered owners, counted only when `policy` is not strict.
    silent: Measure,
    policy: SilencePolicy,
    decide: bool,
    totals: &'a Totals,
}

impl Electorate<'_> {
    fn passed(&self, quorum: &Quorum, check: &ThresholdCheck, counts: &VoteCounts) -> Option<bool> {
        self.decide
            .then_some(quorum.met && check.met && counts.participating.headcount > 0)
    }
}

/// Tally one campaign. Pure and deterministic: the order and duplication of `ballots`,
/// `deliveries` and `adjudications` do not change a single output byte.
///
/// `inputs_hash` is the lowercase hex SHA-256 of the canonical inputs: the tally schema tag, the
/// campaign id, kind, binding flag, scope and close time, the roll hash, the rules, the
/// questions, the in-scope effective ballots (by voter key), the deliveries that made a silent
/// owner count, and every distinct adjudication, serialized as compact JSON in that order.
pub fn tally(
    roll: &Roll,
    campaign: &Campaign,
    ballots: &[Ballot],
    deliveries: &[Delivery],
    adjudications: &[Adjudication],
) -> Tally {
    tally_inner(roll, campaign, ballots, deliveries, adjudications, false).0
}

/// [`tally`], and the canonical inputs' exact bytes: the file (`tally-inputs.json`) whose
/// SHA-256 is [`Tally::inputs_hash`], so anyone holding it can recompute the hash the 公示 cites.
pub fn tally_with_inputs(
    roll: &Roll,
    campaign: &Campaign,
    ballots: &[Ballot],
    deliveries: &[Delivery],
    adjudications: &[Adjudication],
) -> (Tally, Vec<u8>) {
    let (tally, inputs) = tally_inner(roll, campaign, ballots, deliveries, adjudications, true);
    (tally, inputs.unwrap_or_default())
}

/// What the tally knows about one voter key of the roll, by its number.
const DELIVERED: u8 = 1;
const EFFECTIVE: u8 = 2;
const CONTESTED: u8 = 4;

/// The tally, and the canonical inputs' bytes when `keep_inputs` (otherwise they are only
/// hashed, as they are written).
fn tally_inner(
    roll: &Roll,
    campaign: &Campaign,
    ballots: &[Ballot],
    deliveries: &[Delivery],
    adjudications: &[Adjudication],
    keep_inputs: bool,
) -> (Tally, Option<Vec<u8>>) {
    let scope = &campaign.scope;
    // The roll's hash, its check, and every voter key numbered in key order with its in-scope
    // area (`Roll::voters` and `Roll::totals` as arrays), in one pass over the roll.
    let (roll_hash, roll_valid, index) = roll.survey(scope);
    let mut notices = Vec::new();
    let mut withheld = false;
    if let Some(frozen) = &campaign.roll_hash
        && *frozen != roll_hash
    {
        withheld = true;
        notices.push(Notice::RollNotFrozen {
            frozen: frozen.clone(),
            given: roll_hash.clone(),
        });
    }
    if let Err(e) = roll_valid {
        withheld = true;
        notices.push(Notice::RollInvalid {
            problem: e.to_string(),
        });
    }

    let totals = index.totals();
    let closed_at = campaign.closed_at();
    // Every ballot's voter key number, found at once.
    let ballot_numbers = index.numbers(ballots.iter().map(|b| b.voter_key.as_str()));
    let resolution = resolve_indexed(&index, ballots, &ballot_numbers, adjudications, closed_at);

    // Ballots of voter keys on the roll but outside the scope are ignored, and listed. Ballots
    // off the roll are already invalid, so "valid and not in scope" is exactly that set.
    let invalid_ids: BTreeSet<&str> = resolution
        .invalid
        .iter()
        .map(|i| i.ballot.as_str())
        .collect();
    let mut out_of_scope: Vec<&str> = ballots
        .iter()
        .zip(&ballot_numbers)
        .filter(|(_, n)| !n.is_some_and(|n| index.in_scope(n)))
        .map(|(b, _)| b.id.as_str())
        .filter(|id| !invalid_ids.contains(id))
        .collect();
    // Sorted and distinct, as a set of them would be.
    out_of_scope.sort_unstable();
    out_of_scope.dedup();

    // By voter key number, what decides whether the key is silent.
    let mut status = vec![0u8; index.len()];
    // In voter-key order, with each key's in-scope area.
    let effective: Vec<Returned<'_>> = resolution
        .effective
        .iter()
        .filter(|(n, _)| index.in_scope(*n))
        .map(|&(n, ballot)| {
            status[n as usize] |= EFFECTIVE;
            Returned {
                voter_key: index.key(n),
                ballot,
                area: index.area(n),
            }
        })
        .collect();
    let conflicts: Vec<BallotConflict> = resolution
        .conflicts
        .iter()
        .filter(|c| index.key_in_scope(&c.voter_key))
        .cloned()
        .collect();
    let adjudicated: Vec<AdjudicatedConflict> = resolution
        .adjudicated
        .iter()
        .filter(|a| index.key_in_scope(&a.voter_key))
        .cloned()
        .collect();
    let superseded: Vec<String> = resolution
        .superseded
        .iter()
        .filter(|id| out_of_scope.binary_search(&id.as_str()).is_err())
        .cloned()
        .collect();

    let mut returned = Measure::default();
    for r in &effective {
        returned.add_voter(r.area);
    }

    let rules = &campaign.rules;
    let policy = match rules.silence {
        SilencePolicy::Strict => SilencePolicy::Strict,
        configured if rules.silence_announced => configured,
        configured => {
            notices.push(Notice::SilencePolicyNotAnnounced { configured });
            SilencePolicy::Strict
        }
    };

    // Silent: in scope, no effective ballot, and no contested ballots either.
    for key in resolution.contested_voter_keys() {
        if let Some(n) = index.number(key) {
            status[n as usize] |= CONTESTED;
        }
    }
    // Each delivery's voter key number (none when off the roll), looked up once.
    let delivery_numbers = index.numbers(deliveries.iter().map(|d| d.voter_key.as_str()));
    for n in delivery_numbers.iter().flatten() {
        status[*n as usize] |= DELIVERED;
    }
    let is_silent_delivered = |n: u32| {
        index.in_scope(n) && status[n as usize] & (DELIVERED | EFFECTIVE | CONTESTED) == DELIVERED
    };
    let mut silent = Measure::default();
    for n in 0..index.len() as u32 {
        if is_silent_delivered(n) {
            silent.add_voter(index.area(n));
        }
    }
    let mut deliveries_used: Vec<(Keyed<'_>, &Delivery)> = if policy == SilencePolicy::Strict {
        Vec::new()
    } else {
        deliveries
            .iter()
            .zip(&delivery_numbers)
            .filter(|(_, n)| n.is_some_and(is_silent_delivered))
            .map(|(d, _)| (keyed(&d.id), d))
            .collect()
    };
    // By id (its first bytes held beside it), then content. Equal under this order means equal
    // in every field, so an unstable sort leaves the same list once duplicates are removed.
    deliveries_used.sort_unstable_by(|(ka, a), (kb, b)| {
        cmp_keyed(ka, kb).then_with(|| delivery_order(a).cmp(&delivery_order(b)))
    });
    deliveries_used.dedup_by(|(_, a), (_, b)| a == b);
    let deliveries_used: Vec<&Delivery> = deliveries_used.into_iter().map(|(_, d)| d).collect();
    let mut distinct_adjudications: Vec<&Adjudication> = adjudications.iter().collect();
    distinct_adjudications
        .sort_unstable_by(|a, b| adjudication_order(a).cmp(&adjudication_order(b)));
    distinct_adjudications.dedup();

    if !campaign.binding {
        notices.push(Notice::Advisory);
    }
    if !conflicts.is_empty() {
        notices.push(Notice::OpenConflicts {
            count: i64::try_from(conflicts.len()).unwrap_or(i64::MAX),
        });
    }
    let closed = campaign.status >= CampaignStatus::Closed;
    if !closed {
        notices.push(Notice::NotClosed {
            status: campaign.status,
        });
    }

    let electorate = Electorate {
        returned,
        silent,
        policy,
        decide: campaign.binding && !withheld,
        totals: &totals,
    };

    // The canonical inputs are written and hashed, and every question counted, in one pass
    // over the effective ballots; then each question is decided.
    let mut counters = QuestionCounters::new(&campaign.questions);
    let (inputs_hash, inputs) = canonical_json(
        &CanonicalInputs {
            format: "doorstep/tally-inputs/v2",
            campaign: &campaign.id,
            kind: campaign.kind,
            binding: campaign.binding,
            scope,
            closed_at,
            roll_hash: &roll_hash,
            rules,
            questions: &campaign.questions,
            effective_ballots: EffectiveBallots(&effective),
            deliveries_used,
            adjudications: distinct_adjudications,
        },
        keep_inputs,
        |returned| counters.count(returned),
    );

    let mut counted = counters.finish();
    counted.sort_by(|(a, _), (b, _)| (a.order, &a.id).cmp(&(b.order, &b.id)));
    let questions: Vec<QuestionTally> = counted
        .into_iter()
        .map(|(q, counter)| QuestionTally {
            question: q.id.clone(),
            order: q.order,
            text: q.text.clone(),
            outcome: match counter {
                Counter::Resolution { matter, counts } => {
                    QuestionOutcome::Resolution(tally_resolution(&electorate, counts, matter))
                }
                Counter::Election(counter) => {
                    QuestionOutcome::Election(tally_election(&electorate, q, counter, &mut notices))
                }
                Counter::Survey(counter) => {
                    QuestionOutcome::Survey(tally_survey(&electorate, counter))
                }
            },
        })
        .collect();

    let tally = Tally {
        schema: TALLY_SCHEMA,
        campaign: campaign.id.clone(),
        title: campaign.title.clone(),
        kind: campaign.kind,
        binding: campaign.binding,
        scope: scope.clone(),
        roll_hash,
        inputs_hash,
        rules: rules.clone(),
        silence_applied: policy,
        closed_at,
        totals,
        returned,
        silent_delivered: silent,
        decisions_withheld: withheld,
        is_final: closed && conflicts.is_empty() && !withheld,
        questions,
        conflicts,
        adjudicated,
        superseded,
        invalid: resolution.invalid,
        out_of_scope: out_of_scope.into_iter().map(str::to_string).collect(),
        unused_adjudications: resolution.unused_adjudications,
        notices,
    };
    (tally, inputs)
}

type DeliveryKey<'a> = (&'a str, &'a str, &'a str, Millis, &'a str);

fn delivery_order(d: &Delivery) -> DeliveryKey<'_> {
    (&d.id, &d.voter_key, &d.unit, d.at, &d.by)
}

type AdjudicationKey<'a> = (
    &'a str,
    &'a str,
    Millis,
    &'a str,
    Option<&'a str>,
    &'a str,
    &'a [String],
);

fn adjudication_order(a: &Adjudication) -> AdjudicationKey<'_> {
    (
        &a.id,
        &a.voter_key,
        a.at,
        &a.by,
        a.chosen.as_deref(),
        &a.reason,
        &a.considered,
    )
}

/// One question's running count over the returned ballots.
enum Counter<'q> {
    Resolution {
        matter: MatterItem,
        counts: VoteCounts,
    },
    Election(ElectionCounter<'q>),
    Survey(SurveyCounter<'q>),
}

/// An election's count: every candidate's votes.
struct ElectionCounter<'q> {
    seats: i64,
    candidates: &'q BTreeMap<String, crate::model::Candidate>,
    /// Candidate ids in id order (the candidate map's order), the order answers list them in.
    ids: Vec<&'q str>,
    /// Per candidate in id order: its place in list order (`order`, then id).
    place: Vec<usize>,
    /// Per candidate in list order.
    counts: Vec<VoteCounts>,
}

/// A survey's count: the respondents per option, and those who chose none or too many.
struct SurveyCounter<'q> {
    options: &'q BTreeMap<String, crate::model::SurveyOption>,
    max_choices: i64,
    /// Option ids in id order.
    ids: Vec<&'q str>,
    /// Per option in id order.
    chosen: Vec<Measure>,
    blank: Measure,
    over_chosen: Measure,
    /// `max_choices` as a count; 0 means no limit.
    limit: usize,
    /// The options one ballot picked (places in `ids`), and for each option the last ballot
    /// that picked it, so a repeated option counts once.
    picked: Vec<usize>,
    seen: Vec<usize>,
}

/// `a.cmp(b)`, without a library call for the short ids of questions and candidates.
fn cmp_id(a: &str, b: &str) -> std::cmp::Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() > 8 || b.len() > 8 {
        return a.cmp(b);
    }
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// The first of `entries` (sorted by key, advanced past the keys below `key`) whose key is `key`.
fn next_match<'m, K: AsRef<str> + 'm, V: 'm>(
    entries: &mut std::iter::Peekable<impl Iterator<Item = (&'m K, &'m V)>>,
    key: &str,
) -> Option<&'m V> {
    while let Some((k, v)) = entries.peek() {
        match cmp_id(k.as_ref(), key) {
            std::cmp::Ordering::Less => {
                entries.next();
            }
            std::cmp::Ordering::Equal => {
                let v = *v;
                entries.next();
                return Some(v);
            }
            std::cmp::Ordering::Greater => return None,
        }
    }
    None
}

/// Every question's running count, fed one returned ballot at a time. Each ballot's answers
/// are walked once alongside the questions (both in id order). A question left blank counts as
/// abstain, a candidate left out as abstain, a survey left blank as blank: as each question
/// alone would count it.
struct QuestionCounters<'q> {
    /// In the questions' id order.
    counters: Vec<(&'q Question, Counter<'q>)>,
    /// How many ballots were counted.
    ballots: usize,
}

impl<'q> QuestionCounters<'q> {
    fn new(questions: &'q BTreeMap<String, Question>) -> QuestionCounters<'q> {
        let counters = questions
            .values()
            .map(|q| {
                let counter = match &q.kind {
                    QuestionKind::Resolution { matter } => Counter::Resolution {
                        matter: *matter,
                        counts: VoteCounts::default(),
                    },
                    QuestionKind::Election { seats, candidates } => {
                        let mut listed: Vec<(usize, &crate::model::Candidate)> =
                            candidates.values().enumerate().collect();
                        listed.sort_by(|(_, a), (_, b)| (a.order, &a.id).cmp(&(b.order, &b.id)));
                        let mut place = vec![0; listed.len()];
                        for (at, (by_id, _)) in listed.iter().enumerate() {
                            place[*by_id] = at;
                        }
                        Counter::Election(ElectionCounter {
                            seats: *seats,
                            candidates,
                            ids: candidates.keys().map(String::as_str).collect(),
                            place,
                            counts: vec![VoteCounts::default(); listed.len()],
                        })
                    }
                    QuestionKind::Survey {
                        options,
                        max_choices,
                    } => Counter::Survey(SurveyCounter {
                        options,
                        max_choices: *max_choices,
                        ids: options.keys().map(String::as_str).collect(),
                        chosen: vec![Measure::default(); options.len()],
                        blank: Measure::default(),
                        over_chosen: Measure::default(),
                        limit: usize::try_from(*max_choices).unwrap_or(0),
                        picked: Vec::new(),
                        seen: vec![usize::MAX; options.len()],
                    }),
                };
                (q, counter)
            })
            .collect();
        QuestionCounters {
            counters,
            ballots: 0,
        }
    }

    /// Count one returned ballot in every question.
    fn count(&mut self, returned: &Returned<'_>) {
        let (ballot, area) = (returned.ballot, returned.area);
        let ballot_no = self.ballots;
        self.ballots += 1;
        let mut answers = ballot.answers.iter().peekable();
        for (q, counter) in &mut self.counters {
            let answer = next_match(&mut answers, &q.id);
            match counter {
                Counter::Resolution { counts, .. } => {
                    let choice = answer.and_then(|a| a.choice).unwrap_or(Choice::Abstain);
                    counts.add(choice, area);
                }
                Counter::Election(el) => {
                    let mut given = answer.map(|a| a.candidates.iter().peekable());
                    for (id, place) in el.ids.iter().zip(&el.place) {
                        let choice = given
                            .as_mut()
                            .and_then(|given| next_match(given, id).copied())
                            .unwrap_or(Choice::Abstain);
                        el.counts[*place].add(choice, area);
                    }
                }
                Counter::Survey(sv) => {
                    // Unknown option ids are ignored and a repeated option counts once.
                    sv.picked.clear();
                    for option in answer.map(|a| a.options.as_slice()).unwrap_or_default() {
                        if let Ok(at) = sv.ids.binary_search(&option.as_str())
                            && sv.seen[at] != ballot_no
                        {
                            sv.seen[at] = ballot_no;
                            sv.picked.push(at);
                        }
                    }
                    if sv.picked.is_empty() {
                        sv.blank.add_voter(area);
                    } else if sv.limit > 0 && sv.picked.len() > sv.limit {
                        sv.over_chosen.add_voter(area);
                    } else {
                        for &at in &sv.picked {
                            sv.chosen[at].add_voter(area);
                        }
                    }
                }
            }
        }
    }

    /// The counts, in the questions' id order.
    fn finish(self) -> Vec<(&'q Question, Counter<'q>)> {
        self.counters
    }
}

fn tally_resolution(
    e: &Electorate<'_>,
    mut counts: VoteCounts,
    matter: MatterItem,
) -> ResolutionResult {
    let needed = Threshold::for_matter(matter);
    let silence = counts.apply_silence(e.policy, e.silent, needed);
    let quorum = Quorum::of(counts.participating, e.totals);
    let threshold = ThresholdCheck::of(needed, &counts);
    let passed = e.passed(&quorum, &threshold, &counts);
    ResolutionResult {
        matter,
        counts,
        quorum,
        threshold,
        passed,
        silence,
    }
}

fn tally_election(
    e: &Electorate<'_>,
    question: &Question,
    counter: ElectionCounter<'_>,
    notices: &mut Vec<Notice>,
) -> ElectionResult {
    let ElectionCounter {
        seats,
        candidates,
        counts: counted,
        ..
    } = counter;
    let mut participating = e.returned;
    let mut silent_moved = Measure::default();
    if e.policy != SilencePolicy::Strict {
        participating.add(e.silent);
        silent_moved = e.silent;
    }
    let quorum = Quorum::of(participating, e.totals);

    let mut listed: Vec<&crate::model::Candidate> = candidates.values().collect();
    listed.sort_by(|a, b| (a.order, &a.id).cmp(&(b.order, &b.id)));
    // `counted` holds each candidate's votes in this list order (see `count_answers`).
    let results: Vec<CandidateResult> = listed
        .into_iter()
        .zip(counted)
        .map(|(c, mut counts)| {
            let silence = counts.apply_silence(e.policy, e.silent, Threshold::MoreThanHalf);
            let threshold = ThresholdCheck::of(Threshold::MoreThanHalf, &counts);
            let passed = e.passed(&quorum, &threshold, &counts);
            CandidateResult {
                candidate: c.id.clone(),
                name: c.name.clone(),
                order: c.order,
                counts,
                threshold,
                passed,
                silence,
            }
        })
        .collect();

    let seating = e.decide.then(|| {
        if seats <= 0 {
            notices.push(Notice::NoSeats {
                question: question.id.clone(),
                seats,
            });
        }
        let seating = seat(&results, seats);
        if seating.open_seats > 0 {
            notices.push(Notice::SeatsOpen {
                question: question.id.clone(),
                open_seats: seating.open_seats,
                tied: seating
                    .tie
                    .as_ref()
                    .map(|t| t.candidates.clone())
                    .unwrap_or_default(),
            });
        }
        seating
    });

    ElectionResult {
        seats,
        participating,
        quorum,
        silence_policy: e.policy,
        silent_moved,
        candidates: results,
        seating,
    }
}

/// Fill `seats` from the passing candidates (`results` in list order): rank them by
/// yes-headcount, then yes-area, into groups of equal votes; elect whole groups while they fit;
/// a group that straddles the last seat elects nobody and leaves its seats open; every group
/// below is alternates.
fn seat(results: &[CandidateResult], seats: i64) -> Seating {
    let votes = |c: &CandidateResult| (c.counts.yes.headcount, c.counts.yes.area);
    let mut passing: Vec<&CandidateResult> =
        results.iter().filter(|c| c.passed == Some(true)).collect();
    // Stable: equal candidates stay in list order, which is only how they are listed.
    passing.sort_by_key(|c| Reverse(votes(c)));
    let mut groups: Vec<Vec<&CandidateResult>> = Vec::new();
    for c in passing {
        match groups.last_mut() {
            Some(group) if group.first().is_some_and(|g| votes(g) == votes(c)) => group.push(c),
            _ => groups.push(vec![c]),
        }
    }
    let seat_count = usize::try_from(seats).unwrap_or(0);
    let ids = |group: &[&CandidateResult]| -> Vec<String> {
        group.iter().map(|c| c.candidate.clone()).collect()
    };
    let mut elected: Vec<String> = Vec::new();
    let mut tie: Option<SeatTie> = None;
    let mut alternate_groups: Vec<Vec<String>> = Vec::new();
    // Seating stops at the first group that does not fit: everything below is alternates.
    let mut filling = true;
    for group in groups {
        let free = seat_count - elected.len();
        if filling && group.len() <= free {
            elected.extend(ids(&group));
            continue;
        }
        if filling && free > 0 {
            tie = Some(SeatTie {
                seats: i64::try_from(free).unwrap_or(i64::MAX),
                candidates: ids(&group),
                yes: group.first().map(|c| c.counts.yes).unwrap_or_default(),
                note: SEAT_TIE_NOTE.to_string(),
            });
        } else {
            alternate_groups.push(ids(&group));
        }
        filling = false;
    }
    let open_seats = i64::try_from(seat_count - elected.len()).unwrap_or(i64::MAX);
    Seating {
        elected,
        alternates: alternate_groups.concat(),
        alternate_groups,
        open_seats,
        tie,
    }
}

fn tally_survey(e: &Electorate<'_>, counter: SurveyCounter<'_>) -> SurveyResult {
    let SurveyCounter {
        options,
        max_choices,
        ids,
        chosen,
        blank,
        over_chosen,
        ..
    } = counter;
    let chosen: BTreeMap<&str, Measure> = ids.into_iter().zip(chosen).collect();
    let mut listed: Vec<&crate::model::SurveyOption> = options.values().collect();
    listed.sort_by(|a, b| (a.order, &a.id).cmp(&(b.order, &b.id)));
    let respondents = e.returned;
    SurveyResult {
        max_choices,
        respondents,
        blank,
        over_chosen,
        options: listed
            .into_iter()
            .map(|o| {
                let m = chosen.get(o.id.as_str()).copied().unwrap_or_default();
                OptionResult {
                    option: o.id.clone(),
                    label: o.label.clone(),
                    order: o.order,
                    chosen: m,
                    share_of_headcount: Fraction::new(m.headcount, respondents.headcount),
                    share_of_area: Fraction::new(m.area, respondents.area),
                }
            })
            .collect(),
    }
}

/// `numerator / denominator` as a percentage with two decimals, rounded half up, in integers;
/// `—` when the denominator is not positive.
pub fn percent(numerator: i64, denominator: i64) -> String {
    if denominator <= 0 {
        return "—".to_string();
    }
    let (n, d) = (i128::from(numerator), i128::from(denominator));
    // Basis points, rounded half away from zero.
    let scaled = n * 20_000;
    let bp = if scaled >= 0 {
        (scaled + d) / (2 * d)
    } else {
        -((-scaled + d) / (2 * d))
    };
    let sign = if bp < 0 { "-" } else { "" };
    let bp = bp.abs();
    format!("{sign}{}.{:02}%", bp / 100, bp % 100)
}

/// An area in 0.01 m² as square metres with two decimals, e.g. `28965.59`.
pub fn format_area(area: i64) -> String {
    let sign = if area < 0 { "-" } else { "" };
    let a = area.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

fn scope_label(scope: &Scope) -> String {
    match scope {
        Scope::Whole => "全体业主 whole property".to_string(),
        Scope::Building { building } => format!("{building}号楼 building {building}"),
        Scope::Entrance { entrance } => format!("单元 entrance {entrance}"),
    }
}

fn silence_label(policy: SilencePolicy) -> &'static str {
    match policy {
        SilencePolicy::Strict => "未表决不计入 strict",
        SilencePolicy::DeliveredCountsAsAbstain => {
            "已送达未表决视为弃权 delivered counts as abstain"
        }
        SilencePolicy::FollowsMajority => "已送达未表决随多数 follows the majority",
    }
}

fn choice_label(choice: Choice) -> &'static str {
    match choice {
        Choice::Yes => "同意 yes",
        Choice::No => "反对 no",
        Choice::Abstain => "弃权 abstain",
    }
}

/// The 公示 line of one matter's silence policy: which, how many it moved, and to which side.
fn silence_line(effect: &SilenceEffect) -> String {
    let mut line = format!(
        "   未表决业主 Silence: {}; 计入 moved {} 人, 面积 {} m²",
        silence_label(effect.policy),
        effect.moved.headcount,
        format_area(effect.moved.area)
    );
    if let Some(side) = effect.joined {
        line.push_str(&format!(", 计为 counted as {}", choice_label(side)));
    }
    if let Some(r) = &effect.returned_alone {
        line.push_str(&format!(
            " (收回票本身 returned ballots alone: 同意 yes 面积 {}/{} m², 人数 {}/{}, {}{} {})",
            format_area(r.yes.area),
            format_area(r.participating.area),
            r.yes.headcount,
            r.participating.headcount,
            if r.passes { "达到" } else { "未达到" },
            r.threshold.threshold.label_zh(),
            if r.passes { "pass" } else { "do not pass" }
        ));
    }
    line
}

fn met(ok: bool) -> &'static str {
    if ok {
        "达到 met"
    } else {
        "未达到 not met"
    }
}

fn decision(passed: Option<bool>, withheld: bool) -> &'static str {
    match passed {
        Some(true) => "通过 passed",
        Some(false) => "未通过 not passed",
        None if withheld => "不作决定 withheld",
        None => "仅供参考 advisory",
    }
}

impl Tally {
    /// The JSON a 公示 and an export carry: compact, byte-stable for the same inputs.
    pub fn to_json(&self) -> String {
        // Plain structs with string keys: serialization cannot fail. An empty object stands in
        // should it ever, rather than a panic.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }

    /// Lines a 公示 page can print, Chinese first, with every number a lawyer needs to recompute
    /// the result by hand. Voter keys and names other than candidates' are never printed.
    pub fn summary_lines(&self) -> Vec<String> {
        let t = &self.totals;
        let mut lines = vec![
            format!("{} 计票结果 Tally ({})", self.title, self.campaign),
            format!("范围 Scope: {}", scope_label(&self.scope)),
            format!(
                "总数 Totals: 专有面积 area {} m², 业主人数 headcount {} ({} 户 units)",
                format_area(t.area),
                t.headcount,
                t.units
            ),
            format!(
                "收回有效票 Returned: 面积 area {} m², 人数 headcount {}",
                format_area(self.returned.area),
                self.returned.headcount
            ),
            format!(
                "未表决业主规则 Silence: {}",
                silence_label(self.silence_applied)
            ),
            format!("名册哈希 Roll SHA-256: {}", self.roll_hash),
            format!("输入哈希 Inputs SHA-256: {}", self.inputs_hash),
        ];
        for (i, q) in self.questions.iter().enumerate() {
            let n = i + 1;
            match &q.outcome {
                QuestionOutcome::Resolution(r) => {
                    lines.push(format!(
                        "{n}. {} (第{}项 matter {}; 同意须达参与表决的{} of participating)",
                        q.text,
                        r.matter,
                        r.matter,
                        r.threshold.threshold.label_zh()
                    ));
                    self.push_counts(&mut lines, &r.counts, &r.quorum);
                    lines.push(silence_line(&r.silence));
                    lines.push(format!(
                        "   结果 Result: {}",
                        decision(r.passed, self.decisions_withheld)
                    ));
                }
                QuestionOutcome::Election(el) => {
                    lines.push(format!(
                        "{n}. {} (选举 election, {} 席 seats)",
                        q.text, el.seats
                    ));
                    lines.push(format!(
                        "   参与 Participating: 面积 {} m² ({}), 人数 {} ({}); 2/3 面积 {}, 人数 {}",
                        format_area(el.participating.area),
                        percent(el.participating.area, t.area),
                        el.participating.headcount,
                        percent(el.participating.headcount, t.headcount),
                        met(el.quorum.area),
                        met(el.quorum.headcount)
                    ));
                    lines.push(format!(
                        "   未表决业主 Silence: {}; 计入 moved {} 人, 面积 {} m²{}",
                        silence_label(el.silence_policy),
                        el.silent_moved.headcount,
                        format_area(el.silent_moved.area),
                        if el.silence_policy == SilencePolicy::FollowsMajority
                            && el.silent_moved.headcount > 0
                        {
                            " (逐一候选人: 收回票本身过半数者计为同意, 否则计为反对 per candidate: yes where the returned ballots alone pass, otherwise no)"
                        } else {
                            ""
                        }
                    ));
                    for c in &el.candidates {
                        let joined = match c.silence.joined {
                            Some(side) => format!(", 未表决计为 silent as {}", choice_label(side)),
                            None => String::new(),
                        };
                        lines.push(format!(
                            "   {}: 同意 yes {} m² / {} 人, 反对 no {} m² / {} 人, 弃权 abstain {} m² / {} 人{} — {}",
                            c.name,
                            format_area(c.counts.yes.area),
                            c.counts.yes.headcount,
                            format_area(c.counts.no.area),
                            c.counts.no.headcount,
                            format_area(c.counts.abstain.area),
                            c.counts.abstain.headcount,
                            joined,
                            decision(c.passed, self.decisions_withheld)
                        ));
                    }
                    if let Some(s) = &el.seating {
                        let name = |id: &String| -> String {
                            el.candidates
                                .iter()
                                .find(|c| &c.candidate == id)
                                .map_or(id.as_str(), |c| c.name.as_str())
                                .to_string()
                        };
                        let names = |ids: &[String]| -> String {
                            if ids.is_empty() {
                                "无 none".to_string()
                            } else {
                                ids.iter().map(name).collect::<Vec<_>>().join("、")
                            }
                        };
                        lines.push(format!("   当选 Elected: {}", names(&s.elected)));
                        if let Some(tie) = &s.tie {
                            lines.push(format!(
                                "   并列 Tied at the last seat ({} 席 seats open, 各得同意 yes {} m² / {} 人): {} — {}",
                                tie.seats,
                                format_area(tie.yes.area),
                                tie.yes.headcount,
                                names(&tie.candidates),
                                tie.note
                            ));
                        }
                        if s.open_seats > 0 {
                            lines.push(format!("   空缺 Open seats: {}", s.open_seats));
                        }
                        let alternates = if s.alternate_groups.is_empty() {
                            "无 none".to_string()
                        } else {
                            s.alternate_groups
                                .iter()
                                .map(|g| match g.as_slice() {
                                    [one] => name(one),
                                    group => format!("（{} 并列 tied）", names(group)),
                                })
                                .collect::<Vec<_>>()
                                .join("、")
                        };
                        lines.push(format!("   候补 Alternates: {alternates}"));
                    }
                }
                QuestionOutcome::Survey(s) => {
                    lines.push(format!("{n}. {} (意见征集 survey)", q.text));
                    lines.push(format!(
                        "   回复 Respondents: 面积 {} m², 人数 {}; 未选 blank {} 人; 超选 over-chosen {} 人",
                        format_area(s.respondents.area),
                        s.respondents.headcount,
                        s.blank.headcount,
                        s.over_chosen.headcount
                    ));
                    for o in &s.options {
                        lines.push(format!(
                            "   {}: 人数 headcount {}/{} ({}), 面积 area {}/{} m² ({})",
                            o.label,
                            o.chosen.headcount,
                            s.respondents.headcount,
                            percent(o.chosen.headcount, s.respondents.headcount),
                            format_area(o.chosen.area),
                            format_area(s.respondents.area),
                            percent(o.chosen.area, s.respondents.area)
                        ));
                    }
                }
            }
        }
        lines.push(format!(
            "待裁决冲突 Open conflicts: {}; 已裁决 adjudicated: {}; 无效票 invalid: {}; 范围外 out of scope: {}",
            self.conflicts.len(),
            self.adjudicated.len(),
            self.invalid.len(),
            self.out_of_scope.len()
        ));
        lines.extend(
            self.notices
                .iter()
                .map(|n| format!("注意 Notice: {}", n.describe())),
        );
        lines.push(if self.is_final {
            "本结果为最终计票结果 This tally is final.".to_string()
        } else {
            "本结果非最终结果 This tally is provisional.".to_string()
        });
        lines
    }

    fn push_counts(&self, lines: &mut Vec<String>, c: &VoteCounts, q: &Quorum) {
        let t = &self.totals;
        let p = c.participating;
        lines.push(format!(
            "   参与 Participating: 面积 {} m² ({}), 人数 {} ({}); 2/3 面积 {}, 人数 {}",
            format_area(p.area),
            percent(p.area, t.area),
            p.headcount,
            percent(p.headcount, t.headcount),
            met(q.area),
            met(q.headcount)
        ));
        for (label, m) in [
            ("同意 Yes", c.yes),
            ("反对 No", c.no),
            ("弃权 Abstain", c.abstain),
        ] {
            lines.push(format!(
                "   {label}: 面积 {} m² ({}), 人数 {} ({})",
                format_area(m.area),
                percent(m.area, p.area),
                m.headcount,
                percent(m.headcount, p.headcount)
            ));
        }
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in self.summary_lines() {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_at_their_edges() {
        assert!(!Threshold::MoreThanHalf.is_met(50, 100));
        assert!(Threshold::MoreThanHalf.is_met(51, 100));
        assert!(Threshold::AtLeastThreeQuarters.is_met(75, 100));
        assert!(!Threshold::AtLeastThreeQuarters.is_met(74, 100));
        assert!(quorum_met(2, 3));
        assert!(!quorum_met(199, 300));
        assert!(quorum_met(200, 300));
        assert!(quorum_met(i64::MAX, i64::MAX));
    }

    #[test]
    fn percentages_round_half_up_in_integers() {
        assert_eq!(percent(1, 3), "33.33%");
        assert_eq!(percent(2, 3), "66.67%");
        assert_eq!(percent(1, 8), "12.50%");
        assert_eq!(percent(1, 0), "—");
        assert_eq!(percent(-1, 3), "-33.33%");
        assert_eq!(format_area(2_896_559), "28965.59");
        assert_eq!(format_area(5), "0.05");
        assert_eq!(format_area(-105), "-1.05");
    }

    fn returned(choices: &[(Choice, i64)]) -> VoteCounts {
        let mut c = VoteCounts::default();
        for &(choice, area) in choices {
            c.add(choice, area);
        }
        c
    }

    #[test]
    fn follows_majority_joins_the_returned_outcome_on_both_dimensions() {
        let silent = Measure {
            area: 100,
            headcount: 1,
        };
        // Headcount says yes (2 of 3), area says no (200 of 450): the returned ballots do not
        // pass, so the silent owner is a no, not a yes that would tip the area.
        let mut c = returned(&[(Choice::Yes, 100), (Choice::Yes, 100), (Choice::No, 250)]);
        let effect = c.apply_silence(
            SilencePolicy::FollowsMajority,
            silent,
            Threshold::MoreThanHalf,
        );
        assert_eq!(effect.joined, Some(Choice::No));
        assert_eq!(effect.returned_alone.map(|r| r.passes), Some(false));
        assert_eq!(c.no.headcount, 2);
        // Nobody returned: the silent owner is a no.
        let mut c = VoteCounts::default();
        let effect = c.apply_silence(
            SilencePolicy::FollowsMajority,
            silent,
            Threshold::AtLeastThreeQuarters,
        );
        assert_eq!(effect.joined, Some(Choice::No));
        assert_eq!(c.yes, Measure::default());
        // Strict moves nobody and names no side.
        let mut c = returned(&[(Choice::Yes, 100)]);
        let effect = c.apply_silence(SilencePolicy::Strict, silent, Threshold::MoreThanHalf);
        assert_eq!(effect.moved, Measure::default());
        assert_eq!(effect.joined, None);
        assert_eq!(c.participating.headcount, 1);
    }

    fn tricky_ballot(id: &str, text: &str, supersedes: Option<&str>) -> Ballot {
        let mut answers = BTreeMap::new();
        answers.insert(
            format!("q{text}"),
            crate::model::Answer {
                choice: Some(Choice::No),
                candidates: [
                    (format!("c{text}"), Choice::Yes),
                    ("c2".to_string(), Choice::Abstain),
                ]
                .into_iter()
                .collect(),
                options: vec![text.to_string(), String::new(), "a".to_string()],
            },
        );
        answers.insert("e".to_string(), crate::model::Answer::default());
        Ballot {
            id: id.to_string(),
            voter_key: format!("P{text}"),
            unit: text.to_string(),
            answers,
            collected_at: -1_234_567,
            by: text.to_string(),
            supersedes: supersedes.map(str::to_string),
            method: None,
        }
    }

    /// The bytes `CanonicalInputs::write` gives, and those serde_json gives for the struct.
    fn both_ways(inputs: &CanonicalInputs<'_>) -> (Vec<u8>, Vec<u8>, String) {
        let (hash, fast) = canonical_json(inputs, true, |_| {});
        let reference = serde_json::to_vec(inputs).unwrap_or_else(|e| panic!("serializes: {e}"));
        (fast.unwrap_or_default(), reference, hash)
    }

    #[test]
    fn canonical_inputs_are_written_exactly_as_serde_json_writes_them() {
        let texts = [
            "plain",
            "quote \" backslash \\ slash /",
            "controls \u{0} \u{1f} \n \r \t \u{8} \u{c} \u{7f}",
            "汉字 ünïcödé 🗳️",
            "",
        ];
        let ballots: Vec<Ballot> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| tricky_ballot(&format!("b{i}{t}"), t, (i % 2 == 0).then_some(*t)))
            .collect();
        let keys: Vec<String> = texts.iter().map(|t| format!("P{t}")).collect();
        let mut effective: Vec<Returned<'_>> = keys
            .iter()
            .zip(&ballots)
            .map(|(key, ballot)| Returned {
                voter_key: key,
                ballot,
                area: 100,
            })
            .collect();
        effective.sort_by(|a, b| a.voter_key.cmp(b.voter_key));
        let deliveries: Vec<Delivery> = texts
            .iter()
            .map(|t| Delivery {
                id: format!("d{t}"),
                voter_key: format!("P{t}"),
                unit: t.to_string(),
                at: i64::MIN,
                by: t.to_string(),
            })
            .collect();
        let adjudications = [Adjudication {
            id: "j\"1".into(),
            voter_key: "P\n".into(),
            considered: vec!["b0".into(), "b\\1".into()],
            chosen: Some("b0".into()),
            reason: "核实 \u{1}".into(),
            at: i64::MAX,
            by: "officer".into(),
        }];
        let campaign = Campaign {
            id: "c\"1".into(),
            community: "x".into(),
            title: "t".into(),
            kind: CampaignKind::Resolution,
            binding: true,
            scope: Scope::Building {
                building: "1\\".into(),
            },
            rules: Rules::default(),
            questions: BTreeMap::new(),
            status: CampaignStatus::Closed,
            status_times: BTreeMap::new(),
            roll_hash: None,
            rules_hash: None,
        };
        for (effective, deliveries, adjudications) in [
            (
                &effective[..],
                deliveries.iter().collect(),
                adjudications.iter().collect(),
            ),
            (&effective[..0], Vec::new(), Vec::new()),
        ] {
            let inputs = CanonicalInputs {
                format: "doorstep/tally-inputs/v2",
                campaign: &campaign.id,
                kind: campaign.kind,
                binding: campaign.binding,
                scope: &campaign.scope,
                closed_at: Some(-5),
                roll_hash: "abc",
                rules: &campaign.rules,
                questions: &campaign.questions,
                effective_ballots: EffectiveBallots(effective),
                deliveries_used: deliveries,
                adjudications,
            };
            let (fast, reference, hash) = both_ways(&inputs);
            assert_eq!(
                String::from_utf8_lossy(&fast),
                String::from_utf8_lossy(&reference)
            );
            assert_eq!(fast, reference);
            assert_eq!(hash, hex::encode(Sha256::digest(&reference)));
        }
    }

    #[test]
    fn hashing_on_a_second_thread_gives_the_same_hash_and_bytes() {
        // 3 MB in pieces of every size up to 5 KB, so blocks end at every kind of place.
        let mut reference = Vec::new();
        let mut pieces = Vec::new();
        let mut x: u32 = 7;
        while reference.len() < 3_000_000 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let piece: Vec<u8> = (0..(x % 5_000)).map(|i| (i ^ x) as u8).collect();
            reference.extend_from_slice(&piece);
            pieces.push(piece);
        }
        let write = |sink: &mut InputsSink| {
            for piece in &pieces {
                sink.raw(piece);
                sink.settle();
            }
        };
        let expected = hex::encode(Sha256::digest(&reference));
        for threaded in [false, true] {
            let (hash, kept) = hash_written(true, threaded, write);
            assert_eq!(hash, expected, "threaded: {threaded}");
            assert_eq!(kept.as_deref(), Some(reference.as_slice()));
            let (hash, kept) = hash_written(false, threaded, write);
            assert_eq!(hash, expected);
            assert!(kept.is_none());
        }
        let (empty, _) = hash_written(false, true, |_| {});
        assert_eq!(empty, hex::encode(Sha256::digest(b"")));
    }

    #[test]
    fn numbers_are_written_as_serde_json_writes_them() {
        for n in [0, 1, -1, 9, 10, -10, 1_900_000_000_000, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            write_i64(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }

    proptest::proptest! {
        #[test]
        fn any_ballot_is_written_as_serde_json_writes_it(
            id in ".*",
            text in "\\PC*|[\\x00-\\x7f]{0,12}",
            collected_at in proptest::num::i64::ANY,
            supersedes in proptest::option::of(".*"),
        ) {
            let mut ballot = tricky_ballot(&id, &text, supersedes.as_deref());
            ballot.collected_at = collected_at;
            let mut fast = Vec::new();
            write_ballot(&mut fast, &ballot);
            let reference = serde_json::to_vec(&ballot).unwrap_or_default();
            proptest::prop_assert_eq!(fast, reference);
        }
    }
}

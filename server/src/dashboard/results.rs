//! A tally as the dashboard and the 公示 print it: every number formatted the way the law counts
//! (area in m² with two decimals, headcount as integers, shares of the participating), read from
//! core's [`Tally`] and nothing else.

use doorstep_core::model::{CampaignKind, CampaignStatus, Choice, Scope, SilencePolicy};
use doorstep_core::tally::{
    QuestionOutcome, SilenceEffect, Tally, Threshold, ThresholdCheck, VoteCounts,
};

use super::format::{area, share};

/// One row of a count: a label and both dimensions with their shares.
#[derive(Debug, Clone)]
pub struct CountRow {
    pub label: &'static str,
    pub headcount: i64,
    pub area: String,
    /// Share of the participating (for yes / no / abstain) or of the totals (participating).
    pub headcount_share: String,
    pub area_share: String,
}

/// A yes/no/abstain result (a resolution, or one candidate of an election).
#[derive(Debug, Clone)]
pub struct VoteView {
    pub rows: Vec<CountRow>,
    pub threshold: &'static str,
    pub threshold_area: bool,
    pub threshold_headcount: bool,
    /// "通过", "未通过", or "仅供参考" / "不作决定".
    pub decision: String,
    /// Silent owners counted by the announced policy, when any.
    pub silent: Option<String>,
}

/// One candidate's line.
#[derive(Debug, Clone)]
pub struct CandidateView {
    pub name: String,
    pub yes_headcount: i64,
    pub yes_area: String,
    pub yes_headcount_share: String,
    pub yes_area_share: String,
    pub met: bool,
    /// "当选", "候补", "未当选", "并列（待议事规则决定）" …
    pub place: String,
}

/// A survey option's line.
#[derive(Debug, Clone)]
pub struct OptionView {
    pub label: String,
    pub headcount: i64,
    pub area: String,
    pub headcount_share: String,
    pub area_share: String,
}

/// One question with its result.
#[derive(Debug, Clone)]
pub struct QuestionView {
    pub number: usize,
    pub text: String,
    /// "第 6 项（四分之三以上）" for a resolution.
    pub matter: Option<String>,
    pub quorum_area: bool,
    pub quorum_headcount: bool,
    pub participating: CountRow,
    pub vote: Option<VoteView>,
    pub seats: Option<i64>,
    /// Seats left open (a tie at the last seat, or too few passing), said in words.
    pub open_seats: Option<String>,
    pub candidates: Vec<CandidateView>,
    pub options: Vec<OptionView>,
    /// The sentence on 民法典 art 278 the result meets or misses.
    pub law: String,
}

/// The whole tally, ready for a template.
#[derive(Debug, Clone)]
pub struct TallyView {
    pub scope: String,
    pub total_headcount: i64,
    pub total_area: String,
    pub total_units: i64,
    pub returned_headcount: i64,
    pub returned_area: String,
    pub silence: String,
    pub is_final: bool,
    pub questions: Vec<QuestionView>,
    pub notices: Vec<String>,
    pub inputs_hash: String,
    pub roll_hash: String,
    pub open_conflicts: usize,
}

pub fn kind_zh(kind: CampaignKind) -> &'static str {
    match kind {
        CampaignKind::Election => "选举",
        CampaignKind::Resolution => "表决",
        CampaignKind::Survey => "意见征集",
        CampaignKind::Hearing => "听证",
    }
}

pub fn status_zh(status: CampaignStatus) -> &'static str {
    match status {
        CampaignStatus::Draft => "草稿",
        CampaignStatus::Published => "已发布",
        CampaignStatus::Open => "投票中",
        CampaignStatus::Closed => "已截止",
        CampaignStatus::Tallied => "已计票",
        CampaignStatus::Publicised => "已公示",
        CampaignStatus::Archived => "已归档",
    }
}

/// The status stored in projections (`snake_case`) in Chinese.
pub fn status_name_zh(name: &str) -> &'static str {
    match name {
        "draft" => "草稿",
        "published" => "已发布",
        "open" => "投票中",
        "closed" => "已截止",
        "tallied" => "已计票",
        "publicised" => "已公示",
        "archived" => "已归档",
        _ => "未知状态",
    }
}

pub fn scope_zh(scope: &Scope) -> String {
    match scope {
        Scope::Whole => "全体业主".to_string(),
        Scope::Building { building } => format!("{building} 号楼业主"),
        Scope::Entrance { entrance } => format!("{entrance} 单元业主"),
    }
}

fn threshold_zh(t: Threshold) -> &'static str {
    match t {
        Threshold::MoreThanHalf => "过半数",
        Threshold::AtLeastThreeQuarters => "四分之三以上",
    }
}

fn row(label: &'static str, headcount: i64, area_v: i64, of_head: i64, of_area: i64) -> CountRow {
    CountRow {
        label,
        headcount,
        area: area(area_v),
        headcount_share: share(headcount, of_head),
        area_share: share(area_v, of_area),
    }
}

fn decision_zh(passed: Option<bool>, withheld: bool) -> &'static str {
    match passed {
        Some(true) => "通过",
        Some(false) => "未通过",
        None if withheld => "不作决定",
        None => "仅供参考",
    }
}

fn policy_zh(policy: SilencePolicy) -> &'static str {
    match policy {
        SilencePolicy::Strict => "未表决的业主不计入",
        SilencePolicy::DeliveredCountsAsAbstain => "已送达未表决的业主视为弃权",
        SilencePolicy::FollowsMajority => "已送达未表决的业主随已表决的多数",
    }
}

fn vote_view(
    counts: &VoteCounts,
    check: &ThresholdCheck,
    passed: Option<bool>,
    withheld: bool,
    silence: &SilenceEffect,
) -> VoteView {
    let p = counts.participating;
    VoteView {
        rows: vec![
            row(
                "同意",
                counts.yes.headcount,
                counts.yes.area,
                p.headcount,
                p.area,
            ),
            row(
                "反对",
                counts.no.headcount,
                counts.no.area,
                p.headcount,
                p.area,
            ),
            row(
                "弃权",
                counts.abstain.headcount,
                counts.abstain.area,
                p.headcount,
                p.area,
            ),
        ],
        threshold: threshold_zh(check.threshold),
        threshold_area: check.area,
        threshold_headcount: check.headcount,
        decision: decision_zh(passed, withheld).to_string(),
        silent: Some(match silence.joined {
            Some(side) if silence.moved.headcount > 0 => format!(
                "按议事规则（{}），已送达未表决的 {} 位业主（{} m²）计为{}",
                policy_zh(silence.policy),
                silence.moved.headcount,
                area(silence.moved.area),
                match side {
                    Choice::Yes => "同意",
                    Choice::No => "反对",
                    Choice::Abstain => "弃权",
                }
            ),
            _ => format!(
                "按议事规则（{}），没有业主因未表决被计入",
                policy_zh(silence.policy)
            ),
        }),
    }
}

fn yes_no(ok: bool) -> &'static str {
    if ok { "达到" } else { "未达到" }
}

impl TallyView {
    pub fn of(tally: &Tally) -> TallyView {
        let t = &tally.totals;
        let questions = tally
            .questions
            .iter()
            .enumerate()
            .map(|(i, q)| question_view(tally, i + 1, q))
            .collect();
        TallyView {
            scope: scope_zh(&tally.scope),
            total_headcount: t.headcount,
            total_area: area(t.area),
            total_units: t.units,
            returned_headcount: tally.returned.headcount,
            returned_area: area(tally.returned.area),
            silence: silence_zh(tally).to_string(),
            is_final: tally.is_final,
            questions,
            notices: tally.notices.iter().map(|n| n.describe()).collect(),
            inputs_hash: tally.inputs_hash.clone(),
            roll_hash: tally.roll_hash.clone(),
            open_conflicts: tally.conflicts.len(),
        }
    }
}

fn silence_zh(tally: &Tally) -> &'static str {
    policy_zh(tally.silence_applied)
}

fn question_view(
    tally: &Tally,
    number: usize,
    q: &doorstep_core::tally::QuestionTally,
) -> QuestionView {
    let t = &tally.totals;
    let withheld = tally.decisions_withheld;
    let mut view = QuestionView {
        number,
        text: q.text.clone(),
        matter: None,
        quorum_area: false,
        quorum_headcount: false,
        participating: row("参与表决", 0, 0, t.headcount, t.area),
        vote: None,
        seats: None,
        open_seats: None,
        candidates: Vec::new(),
        options: Vec::new(),
        law: String::new(),
    };
    match &q.outcome {
        QuestionOutcome::Resolution(r) => {
            let p = r.counts.participating;
            view.matter = Some(format!(
                "民法典第二百七十八条第 {} 项（须{}同意）",
                r.matter,
                threshold_zh(r.threshold.threshold)
            ));
            view.quorum_area = r.quorum.area;
            view.quorum_headcount = r.quorum.headcount;
            view.participating = row("参与表决", p.headcount, p.area, t.headcount, t.area);
            let vote = vote_view(&r.counts, &r.threshold, r.passed, withheld, &r.silence);
            view.law = format!(
                "参与表决的专有部分面积占比 {}、人数占比 {}，{}三分之二；同意的面积 {}、人数 {}参与表决{}，本事项{}。",
                share(p.area, t.area),
                share(p.headcount, t.headcount),
                if r.quorum.met {
                    "均达到"
                } else {
                    "未均达到"
                },
                yes_no(r.threshold.area),
                yes_no(r.threshold.headcount),
                threshold_zh(r.threshold.threshold),
                vote.decision
            );
            view.vote = Some(vote);
        }
        QuestionOutcome::Election(e) => {
            let p = e.participating;
            view.quorum_area = e.quorum.area;
            view.quorum_headcount = e.quorum.headcount;
            view.participating = row("参与表决", p.headcount, p.area, t.headcount, t.area);
            view.seats = Some(e.seats);
            let seating = e.seating.as_ref();
            view.candidates = e
                .candidates
                .iter()
                .map(|c| {
                    let cp = c.counts.participating;
                    let place = match seating {
                        Some(s) if s.elected.contains(&c.candidate) => "当选",
                        Some(s)
                            if s.tie
                                .as_ref()
                                .is_some_and(|t| t.candidates.contains(&c.candidate)) =>
                        {
                            "并列，待定"
                        }
                        Some(s) if s.alternates.contains(&c.candidate) => "候补",
                        Some(_) => "未当选",
                        None => decision_zh(c.passed, withheld),
                    };
                    CandidateView {
                        name: c.name.clone(),
                        yes_headcount: c.counts.yes.headcount,
                        yes_area: area(c.counts.yes.area),
                        yes_headcount_share: share(c.counts.yes.headcount, cp.headcount),
                        yes_area_share: share(c.counts.yes.area, cp.area),
                        met: c.threshold.met,
                        place: place.to_string(),
                    }
                })
                .collect();
            let elected = seating.map(|s| s.elected.len()).unwrap_or(0);
            view.open_seats = seating.filter(|s| s.open_seats > 0).map(|s| {
                let tie = s.tie.as_ref().map(|t| {
                    let names: Vec<&str> = t
                        .candidates
                        .iter()
                        .filter_map(|id| {
                            e.candidates
                                .iter()
                                .find(|c| &c.candidate == id)
                                .map(|c| c.name.as_str())
                        })
                        .collect();
                    format!(
                        "{}得票相同（同意 {} 人、{} m²），争 {} 个席位：{}",
                        names.join("、"),
                        t.yes.headcount,
                        area(t.yes.area),
                        t.seats,
                        t.note
                    )
                });
                match tie {
                    Some(tie) => format!("空缺 {} 席。{tie}", s.open_seats),
                    None => format!(
                        "空缺 {} 席：获得过半数同意的候选人少于应选席位。",
                        s.open_seats
                    ),
                }
            });
            view.law = format!(
                "参与表决的专有部分面积占比 {}、人数占比 {}，{}三分之二；候选人须获参与表决的面积和人数均过半数同意方可当选；应选 {} 名，当选 {} 名。",
                share(p.area, t.area),
                share(p.headcount, t.headcount),
                if e.quorum.met {
                    "均达到"
                } else {
                    "未均达到"
                },
                e.seats,
                elected
            );
        }
        QuestionOutcome::Survey(s) => {
            let r = s.respondents;
            view.participating = row("参与", r.headcount, r.area, t.headcount, t.area);
            view.options = s
                .options
                .iter()
                .map(|o| OptionView {
                    label: o.label.clone(),
                    headcount: o.chosen.headcount,
                    area: area(o.chosen.area),
                    headcount_share: share(o.chosen.headcount, r.headcount),
                    area_share: share(o.chosen.area, r.area),
                })
                .collect();
            view.law = "本题为意见征集，仅统计，不作决定。".to_string();
        }
    }
    view
}

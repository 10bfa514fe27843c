//! How the dashboard writes numbers and times: area in m² with two decimals and headcount as
//! integers (as the law counts them, through core's own formatters), times in China Standard
//! Time (UTC+8, no daylight saving), and the bars drawn against the 2/3 line.

use doorstep_core::model::Millis;
use doorstep_core::tally::{format_area, percent};

/// China Standard Time, in milliseconds east of UTC.
const CST_OFFSET_MS: i64 = 8 * 3600 * 1000;
const DAY_MS: i64 = 24 * 3600 * 1000;

/// Area in 0.01 m² as `28965.59`.
pub fn area(area: i64) -> String {
    format_area(area)
}

/// `part / whole` as a percentage with two decimals (`—` when `whole` is 0).
pub fn share(part: i64, whole: i64) -> String {
    percent(part, whole)
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's civil-from-days).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn local(at: Millis) -> (i64, i64) {
    let t = at + CST_OFFSET_MS;
    (t.div_euclid(DAY_MS), t.rem_euclid(DAY_MS) / 1000)
}

/// `HH:MM:SS` in China Standard Time.
pub fn clock(at: Millis) -> String {
    let (_, secs) = local(at);
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// `YYYY-MM-DD` in China Standard Time.
pub fn date(at: Millis) -> String {
    let (days, _) = local(at);
    let (y, m, d) = civil(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD HH:MM` in China Standard Time.
pub fn datetime(at: Millis) -> String {
    let (_, secs) = local(at);
    format!("{} {:02}:{:02}", date(at), secs / 3600, secs / 60 % 60)
}

/// `YYYY年M月D日` for the printed notices.
pub fn date_zh(at: Millis) -> String {
    let (days, _) = local(at);
    let (y, m, d) = civil(days);
    format!("{y}年{m}月{d}日")
}

/// The first millisecond of the China Standard Time day containing `at`.
pub fn start_of_day(at: Millis) -> Millis {
    let (days, _) = local(at);
    days * DAY_MS - CST_OFFSET_MS
}

/// "3 分钟前", "2 小时前", "5 天前", or "从未同步" for none.
pub fn ago(at: Option<Millis>, now: Millis) -> String {
    let Some(at) = at else {
        return "从未同步".to_string();
    };
    let secs = (now - at).max(0) / 1000;
    match secs {
        0..60 => "刚刚".to_string(),
        60..3600 => format!("{} 分钟前", secs / 60),
        3600..86_400 => format!("{} 小时前", secs / 3600),
        _ => format!("{} 天前", secs / 86_400),
    }
}

/// One meter: a value against a total with the 2/3 line, drawn as an SVG bar by the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meter {
    /// What it measures, e.g. "按面积".
    pub label: &'static str,
    /// The value as people read it, e.g. "19310.40 / 28965.59 m²".
    pub text: String,
    /// The share as a percentage string, e.g. "66.67%".
    pub share: String,
    /// Filled width in thirds-of-a-thousandth of the bar (0–3000), so that the 2/3 line sits
    /// exactly at 2000 and a value exactly at the quorum touches it.
    pub fill: i64,
    /// Where the 2/3 line sits: 2000 of 3000.
    pub line: i64,
    /// The value reaches the 2/3 line (3·v ≥ 2·t).
    pub met: bool,
}

impl Meter {
    pub fn new(label: &'static str, value: i64, total: i64, text: String) -> Meter {
        let fill = if total > 0 {
            (i128::from(value) * 3000 / i128::from(total)).clamp(0, 3000) as i64
        } else {
            0
        };
        Meter {
            label,
            text,
            share: share(value, total),
            fill,
            line: 2000,
            met: total > 0 && doorstep_core::tally::quorum_met(value, total),
        }
    }

    /// By area in m².
    pub fn area(value: i64, total: i64) -> Meter {
        Meter::new(
            "按专有面积",
            value,
            total,
            format!("{} / {} m²", area(value), area(total)),
        )
    }

    /// By headcount of owners.
    pub fn headcount(value: i64, total: i64) -> Meter {
        Meter::new("按业主人数", value, total, format!("{value} / {total} 人"))
    }
}

/// The Chinese sentence for a refusal by one of core's write rules, for admins and officers on
/// the dashboard (the phone app has its own words for building heads).
pub fn rule_zh(rule: doorstep_core::rules::Rule) -> &'static str {
    use doorstep_core::rules::Rule as R;
    match rule {
        R::ForeignActor => "这条修改带着另一台手机的身份，已拒绝。",
        R::MalformedChange => "这条修改无法在现有数据上读懂，已拒绝。",
        R::AdminOnly => "只有管理员可以修改这部分内容。",
        R::NotAssigned => "这栋楼没有分配给您的账号。",
        R::CampaignBackwards => "投票/议题只能向前推进，不能退回之前的状态。",
        R::CampaignFrozen => "发布后名册、规则和议题已冻结，不能再修改。",
        R::NoHousehold => "这一户还没有住户信息可以更正。",
        R::HouseholdFieldsOnly => "楼栋长只能更正住户信息。",
        R::InvalidHousehold => "住户信息不合规（例如人数须在 0 到 99 之间）。",
        R::AppendOnly => "已记录的走访、送达、选票和裁决只能追加，不能修改或删除；更正请另记一条。",
        R::OfficersOnly => "只有计票人可以裁决冲突。",
        R::RollFrozen => "表决名册已冻结。",
        R::ForbiddenPath => "这部分数据不允许这样写入。",
        R::WrongCampaign => "这条记录属于另一项投票/议题。",
        R::OwnerMismatch => "记录中的业主与表决名册不一致。",
        R::UnknownCampaign => "找不到这项投票/议题。",
        R::InvalidAdjudication => "裁决须从所列选票中选定一张（或都不选），并写明理由。",
        R::InvalidRecord => "记录的编号或记录人不正确。",
        R::NotOnRoll => "这一户不在本楼的表决名册上。",
        R::CampaignClosed => "这项投票/议题当前不接受这项工作（未开始或已截止）。",
        R::GracePeriodEnded => "截止前收回选票的补交期限已过。",
        R::InvalidAnswer => "选票的填写不符合议题要求（选项不存在或选择过多）。",
        R::OrderFieldsLocked => "心愿提交后只能改变状态和接单人。",
        R::OrderTransition => "当前状态不能进行这一步。",
        R::DispatcherOnly => "只有派单员（支部）可以审核、发布、派单和指定接单人。",
        R::AssigneeOnly => "只有接单的楼栋长可以开始办理和标记办结。",
        R::AssigneeRequired => "派单时请选择一位楼栋长。",
        R::ConfirmationRequired => "居民尚未确认办好就关闭，须由管理员填写关闭原因。",
        R::TooLarge => "内容超出长度上限（每项最多 2000 字），已拒绝。",
    }
}

/// [`rule_zh`] for a machine code, when it is a rule's.
pub fn rule_code_zh(code: &str) -> Option<&'static str> {
    doorstep_core::rules::Rule::from_code(code).map(rule_zh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_china_standard_time() {
        // 2025-01-01T00:00:00Z is 08:00 in Beijing.
        let at = 1_735_689_600_000;
        assert_eq!(clock(at), "08:00:00");
        assert_eq!(date(at), "2025-01-01");
        assert_eq!(date_zh(at), "2025年1月1日");
        // 16:30 UTC on Dec 31 is already Jan 1 in Beijing.
        assert_eq!(date(at - 7 * 3600 * 1000 - 1800 * 1000), "2025-01-01");
        assert_eq!(start_of_day(at + 5000), at - 8 * 3600 * 1000);
    }

    #[test]
    fn meters_mark_the_two_thirds_line() {
        let m = Meter::headcount(2, 3);
        assert!(m.met);
        assert_eq!(m.fill, m.line, "exactly 2/3 touches the line");
        assert!(!Meter::headcount(1, 3).met);
        assert!(!Meter::area(0, 0).met);
        assert_eq!(Meter::area(150, 300).text, "1.50 / 3.00 m²");
    }

    #[test]
    fn ago_reads_as_people_say_it() {
        assert_eq!(ago(None, 0), "从未同步");
        assert_eq!(ago(Some(0), 90_000), "1 分钟前");
        assert_eq!(ago(Some(0), 2 * 86_400_000), "2 天前");
    }
}

//! Resolving returned ballots (表决票) into at most one effective ballot per voter key.
//!
//! Ballots arrive from many field documents, so the same ballot may be seen more than once; its
//! client-made id collapses the copies. Then, per voter key:
//!
//! - A correction names the ballot it replaces (`supersedes`); the replaced ballot no longer
//!   counts. Chains are followed to their end.
//! - When more than one ballot is left that nothing replaces (two collectors met the same owner,
//!   or two corrections of one ballot were made concurrently), that is a [`BallotConflict`] and
//!   **none of them counts** — a second ballot is never silently chosen (PRODUCT.md).
//! - A counting officer (计票人) settles a conflict with an [`Adjudication`] whose `considered`
//!   list covers every competing ballot: it picks one, or voids them all. A ballot that arrives
//!   after the adjudication and competes again reopens the conflict, because the officer never
//!   saw it. When several adjudications cover the same conflict, the latest (by time, then id)
//!   decides and the others are listed as overridden, so the record of every choice stays visible.
//!
//! Ballots that cannot take part at all are listed as invalid with a reason: a voter key not on
//! the roll, a ballot collected after the close, a correction of another voter key's ballot, a
//! ballot that supersedes itself or sits on a supersede cycle, and two different contents under
//! one ballot id.
//!
//! Architecture Invariant: [`resolve`] is deterministic. Any order of the same ballots and
//! adjudications, with any number of identical copies, gives the same `Resolution`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{Adjudication, Ballot, Millis};
use crate::roll::Roll;

/// Competing ballots of one voter key that nothing resolves yet; none of them counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BallotConflict {
    pub voter_key: String,
    /// The competing ballot ids (the ends of the supersede chains), sorted.
    pub ballots: Vec<String>,
}

/// A conflict a counting officer settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdjudicatedConflict {
    pub voter_key: String,
    /// The competing ballot ids, sorted.
    pub ballots: Vec<String>,
    /// The adjudication that decided.
    pub adjudication: String,
    /// The ballot that counts, or `None` when all were voided.
    pub chosen: Option<String>,
    /// Earlier adjudications of the same conflict that the deciding one replaced, sorted.
    pub overridden: Vec<String>,
}

/// Why a ballot takes no part in the tally.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum InvalidReason {
    /// Copies of one ballot id carry different contents; no copy can be trusted.
    DivergentCopies,
    /// The voter key is not on the frozen roll.
    NotOnRoll,
    /// Collected (by the collector's record) after the campaign closed.
    CollectedAfterClose {
        collected_at: Millis,
        closed_at: Millis,
    },
    /// The ballot names itself as the one it replaces.
    SupersedesItself,
    /// The ballot claims to correct a ballot of a different voter key.
    SupersedesOtherVoter {
        superseded: String,
        other_voter_key: String,
    },
    /// The ballot is part of a loop of corrections, so no end of the chain exists.
    SupersedeCycle,
}

impl fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidReason::DivergentCopies => {
                write!(f, "copies of this ballot id carry different contents")
            }
            InvalidReason::NotOnRoll => write!(f, "the voter key is not on the frozen roll"),
            InvalidReason::CollectedAfterClose {
                collected_at,
                closed_at,
            } => write!(
                f,
                "collected at {collected_at}, after the close at {closed_at}"
            ),
            InvalidReason::SupersedesItself => write!(f, "the ballot supersedes itself"),
            InvalidReason::SupersedesOtherVoter {
                superseded,
                other_voter_key,
            } => write!(
                f,
                "supersedes ballot {superseded} of another voter key ({other_voter_key})"
            ),
            InvalidReason::SupersedeCycle => write!(f, "the ballot is on a cycle of corrections"),
        }
    }
}

/// A ballot that takes no part, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InvalidBallot {
    pub ballot: String,
    pub voter_key: String,
    pub reason: InvalidReason,
}

/// Why an adjudication decided nothing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum UnusedReason {
    /// Copies of one adjudication id carry different contents.
    DivergentCopies,
    /// The voter key has no conflict (any more): at most one ballot competes.
    NoConflict,
    /// Competing ballots the officer did not consider (they arrived later).
    DoesNotCoverAllCompeting { missing: Vec<String> },
    /// The chosen ballot is not one of the competing ones.
    ChoiceNotCompeting { chosen: String },
}

/// An adjudication that decided nothing, and why, so the officer can look again.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UnusedAdjudication {
    pub adjudication: String,
    pub voter_key: String,
    pub reason: UnusedReason,
}

/// The outcome of resolving one campaign's ballots. Every list is sorted.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Resolution {
    /// Voter key → the one ballot that counts for it.
    pub effective: BTreeMap<String, Ballot>,
    /// Unsettled conflicts, by voter key.
    pub conflicts: Vec<BallotConflict>,
    /// Settled conflicts, by voter key (voided ones included, with `chosen: None`).
    pub adjudicated: Vec<AdjudicatedConflict>,
    /// Ballot ids replaced by a correction of the same voter key.
    pub superseded: Vec<String>,
    /// Ballots that take no part, by ballot id.
    pub invalid: Vec<InvalidBallot>,
    /// Adjudications that decided nothing, by adjudication id.
    pub unused_adjudications: Vec<UnusedAdjudication>,
}

impl Resolution {
    /// True when the voter key returned ballots that do not count: an unsettled conflict or a
    /// conflict voided by adjudication. Such an owner is not silent.
    pub fn is_contested(&self, voter_key: &str) -> bool {
        self.conflicts.iter().any(|c| c.voter_key == voter_key)
            || self
                .adjudicated
                .iter()
                .any(|a| a.voter_key == voter_key && a.chosen.is_none())
    }

    /// Voter keys with an unsettled conflict or a voided one (see [`Resolution::is_contested`]).
    pub fn contested_voter_keys(&self) -> BTreeSet<&str> {
        let open = self.conflicts.iter().map(|c| c.voter_key.as_str());
        let voided = self
            .adjudicated
            .iter()
            .filter(|a| a.chosen.is_none())
            .map(|a| a.voter_key.as_str());
        open.chain(voided).collect()
    }
}

/// Collapse copies by id: identical copies become one; ids whose copies differ are returned apart
/// with the smallest voter key among their copies (a deterministic label for the report).
fn collapse<T: PartialEq>(
    records: &[T],
    id: impl Fn(&T) -> &str,
    voter_key: impl Fn(&T) -> &str,
) -> (BTreeMap<&str, &T>, BTreeMap<&str, &str>) {
    let mut clean: BTreeMap<&str, &T> = BTreeMap::new();
    let mut divergent: BTreeMap<&str, &str> = BTreeMap::new();
    for r in records {
        let key = id(r);
        match clean.get(key) {
            None => {
                clean.insert(key, r);
            }
            Some(first) if *first == r => {}
            Some(first) => {
                let label = voter_key(first).min(voter_key(r));
                let entry = divergent.entry(key).or_insert(label);
                *entry = (*entry).min(label);
            }
        }
    }
    for key in divergent.keys() {
        clean.remove(key);
    }
    (clean, divergent)
}

/// The ballots on a supersede cycle among `next` (ballot id → the id it supersedes, when that
/// ballot is among the keys). Each ballot has at most one successor, so following the pointers
/// from every unvisited ballot finds each cycle once, in linear time.
fn cycle_members<'a>(next: &BTreeMap<&'a str, Option<&'a str>>) -> BTreeSet<&'a str> {
    #[derive(Clone, Copy, PartialEq)]
    enum Seen {
        OnPath,
        Done,
    }
    let mut seen: BTreeMap<&str, Seen> = BTreeMap::new();
    let mut members = BTreeSet::new();
    for &start in next.keys() {
        let mut path: Vec<&str> = Vec::new();
        let mut cur = Some(start);
        while let Some(id) = cur {
            match seen.get(id) {
                Some(Seen::Done) => break,
                Some(Seen::OnPath) => {
                    if let Some(pos) = path.iter().position(|p| *p == id) {
                        members.extend(path[pos..].iter().copied());
                    }
                    break;
                }
                None => {
                    seen.insert(id, Seen::OnPath);
                    path.push(id);
                    cur = next.get(id).copied().flatten();
                }
            }
        }
        for id in path {
            seen.insert(id, Seen::Done);
        }
    }
    members
}

/// Resolve all ballots and adjudications of one campaign against its frozen roll.
///
/// `closed_at` is when the campaign closed, if it has: ballots collected after it are invalid
/// (ones collected before it but synced late are not this function's concern; they count).
pub fn resolve(
    roll: &Roll,
    ballots: &[Ballot],
    adjudications: &[Adjudication],
    closed_at: Option<Millis>,
) -> Resolution {
    let on_roll = roll.voter_keys();
    let mut out = Resolution::default();

    let (clean, divergent) = collapse(ballots, |b| &b.id, |b| &b.voter_key);
    for (id, voter_key) in &divergent {
        out.invalid.push(InvalidBallot {
            ballot: id.to_string(),
            voter_key: voter_key.to_string(),
            reason: InvalidReason::DivergentCopies,
        });
    }

    // Per voter key, the ballots that may take part.
    let mut by_voter: BTreeMap<&str, Vec<&Ballot>> = BTreeMap::new();
    for (&id, &b) in &clean {
        let reason = if !on_roll.contains(b.voter_key.as_str()) {
            Some(InvalidReason::NotOnRoll)
        } else if let Some(closed) = closed_at.filter(|c| b.collected_at > *c) {
            Some(InvalidReason::CollectedAfterClose {
                collected_at: b.collected_at,
                closed_at: closed,
            })
        } else if b.supersedes.as_deref() == Some(id) {
            Some(InvalidReason::SupersedesItself)
        } else {
            b.supersedes
                .as_deref()
                .and_then(|s| clean.get(s))
                .filter(|target| target.voter_key != b.voter_key)
                .map(|target| InvalidReason::SupersedesOtherVoter {
                    superseded: target.id.clone(),
                    other_voter_key: target.voter_key.clone(),
                })
        };
        match reason {
            Some(reason) => out.invalid.push(InvalidBallot {
                ballot: id.to_string(),
                voter_key: b.voter_key.clone(),
                reason,
            }),
            None => by_voter.entry(b.voter_key.as_str()).or_default().push(b),
        }
    }

    let (clean_adj, divergent_adj) = collapse(adjudications, |a| &a.id, |a| &a.voter_key);
    for (id, voter_key) in &divergent_adj {
        out.unused_adjudications.push(UnusedAdjudication {
            adjudication: id.to_string(),
            voter_key: voter_key.to_string(),
            reason: UnusedReason::DivergentCopies,
        });
    }
    let mut adj_by_voter: BTreeMap<&str, Vec<&Adjudication>> = BTreeMap::new();
    for a in clean_adj.values() {
        adj_by_voter
            .entry(a.voter_key.as_str())
            .or_default()
            .push(a);
    }

    for (voter_key, list) in &by_voter {
        let adjs = adj_by_voter.remove(voter_key).unwrap_or_default();
        // The common case: one ballot, nothing to follow (a self-supersede is already invalid).
        if let [only] = list.as_slice() {
            out.effective.insert(voter_key.to_string(), (*only).clone());
            out.unused_adjudications.extend(no_conflict(adjs));
            continue;
        }
        let ids: BTreeSet<&str> = list.iter().map(|b| b.id.as_str()).collect();
        let next: BTreeMap<&str, Option<&str>> = list
            .iter()
            .map(|b| {
                let target = b.supersedes.as_deref().filter(|s| ids.contains(s));
                (b.id.as_str(), target)
            })
            .collect();
        let cycle = cycle_members(&next);
        for &id in &cycle {
            out.invalid.push(InvalidBallot {
                ballot: id.to_string(),
                voter_key: voter_key.to_string(),
                reason: InvalidReason::SupersedeCycle,
            });
        }
        // A correction pointing into a cycle keeps its place as the end of its own chain.
        let superseded: BTreeSet<&str> = next
            .iter()
            .filter(|(id, _)| !cycle.contains(*id))
            .filter_map(|(_, target)| *target)
            .filter(|t| !cycle.contains(t))
            .collect();
        out.superseded
            .extend(superseded.iter().map(|s| s.to_string()));
        let heads: Vec<&Ballot> = list
            .iter()
            .copied()
            .filter(|b| !cycle.contains(b.id.as_str()) && !superseded.contains(b.id.as_str()))
            .collect();
        match heads.as_slice() {
            [] => out.unused_adjudications.extend(no_conflict(adjs)),
            [only] => {
                out.effective.insert(voter_key.to_string(), (*only).clone());
                out.unused_adjudications.extend(no_conflict(adjs));
            }
            competing => settle(voter_key, competing, adjs, &mut out),
        }
    }
    // Adjudications for voter keys without any ballot that takes part.
    for adjs in adj_by_voter.into_values() {
        out.unused_adjudications.extend(no_conflict(adjs));
    }

    out.superseded.sort();
    out.invalid.sort();
    out.unused_adjudications.sort();
    out
}

/// Adjudications of a voter key that has no conflict to settle.
fn no_conflict(adjs: Vec<&Adjudication>) -> impl Iterator<Item = UnusedAdjudication> + '_ {
    adjs.into_iter().map(|a| UnusedAdjudication {
        adjudication: a.id.clone(),
        voter_key: a.voter_key.clone(),
        reason: UnusedReason::NoConflict,
    })
}

/// Settle (or not) the competing ballots of one voter key with its adjudications.
fn settle(voter_key: &str, competing: &[&Ballot], adjs: Vec<&Adjudication>, out: &mut Resolution) {
    let mut ids: Vec<String> = competing.iter().map(|b| b.id.clone()).collect();
    ids.sort();
    let mut applicable: Vec<&Adjudication> = Vec::new();
    for a in adjs {
        let considered: BTreeSet<&str> = a.considered.iter().map(String::as_str).collect();
        let missing: Vec<String> = ids
            .iter()
            .filter(|id| !considered.contains(id.as_str()))
            .cloned()
            .collect();
        let reason = if !missing.is_empty() {
            Some(UnusedReason::DoesNotCoverAllCompeting { missing })
        } else {
            a.chosen
                .as_ref()
                .filter(|c| !ids.contains(c))
                .map(|c| UnusedReason::ChoiceNotCompeting { chosen: c.clone() })
        };
        match reason {
            Some(reason) => out.unused_adjudications.push(UnusedAdjudication {
                adjudication: a.id.clone(),
                voter_key: voter_key.to_string(),
                reason,
            }),
            None => applicable.push(a),
        }
    }
    // The latest adjudication decides; ties in time fall to the larger id so that the choice
    // never depends on input order.
    applicable.sort_by(|x, y| x.at.cmp(&y.at).then_with(|| x.id.cmp(&y.id)));
    let Some(deciding) = applicable.pop() else {
        out.conflicts.push(BallotConflict {
            voter_key: voter_key.to_string(),
            ballots: ids,
        });
        return;
    };
    if let Some(chosen) = &deciding.chosen
        && let Some(ballot) = competing.iter().find(|b| &b.id == chosen)
    {
        out.effective
            .insert(voter_key.to_string(), (*ballot).clone());
    }
    let mut overridden: Vec<String> = applicable.iter().map(|a| a.id.clone()).collect();
    overridden.sort();
    out.adjudicated.push(AdjudicatedConflict {
        voter_key: voter_key.to_string(),
        ballots: ids,
        adjudication: deciding.id.clone(),
        chosen: deciding.chosen.clone(),
        overridden,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RollEntry;

    fn roll() -> Roll {
        let entry = |unit: &str, key: &str| RollEntry {
            unit: unit.into(),
            building: "1".into(),
            entrance: "1-1".into(),
            voter_key: key.into(),
            area: 10000,
        };
        Roll::from_entries([entry("1-1-0101", "A"), entry("1-1-0102", "B")]).unwrap_or_default()
    }

    fn ballot(id: &str, key: &str, supersedes: Option<&str>) -> Ballot {
        Ballot {
            id: id.into(),
            voter_key: key.into(),
            unit: "1-1-0101".into(),
            answers: BTreeMap::new(),
            collected_at: 1000,
            by: "head".into(),
            supersedes: supersedes.map(str::to_string),
        }
    }

    fn adjudication(
        id: &str,
        key: &str,
        considered: &[&str],
        chosen: Option<&str>,
        at: i64,
    ) -> Adjudication {
        Adjudication {
            id: id.into(),
            voter_key: key.into(),
            considered: considered.iter().map(|s| s.to_string()).collect(),
            chosen: chosen.map(str::to_string),
            reason: "checked with the owner".into(),
            at,
            by: "officer".into(),
        }
    }

    #[test]
    fn duplicate_copies_collapse() {
        let b = ballot("b1", "A", None);
        let r = resolve(&roll(), &[b.clone(), b.clone()], &[], None);
        assert_eq!(r.effective.len(), 1);
        assert!(r.conflicts.is_empty() && r.invalid.is_empty());
    }

    #[test]
    fn divergent_copies_are_invalid() {
        let b = ballot("b1", "A", None);
        let mut c = b.clone();
        c.by = "someone else".into();
        let r = resolve(&roll(), &[b, c], &[], None);
        assert!(r.effective.is_empty());
        assert_eq!(r.invalid[0].reason, InvalidReason::DivergentCopies);
    }

    #[test]
    fn supersede_chain_keeps_the_last_correction() {
        let bs = [
            ballot("b3", "A", Some("b2")),
            ballot("b1", "A", None),
            ballot("b2", "A", Some("b1")),
        ];
        let r = resolve(&roll(), &bs, &[], None);
        assert_eq!(r.effective.get("A").map(|b| b.id.as_str()), Some("b3"));
        assert_eq!(r.superseded, vec!["b1".to_string(), "b2".to_string()]);
    }

    #[test]
    fn concurrent_corrections_conflict() {
        let bs = [
            ballot("b1", "A", None),
            ballot("b2", "A", Some("b1")),
            ballot("b3", "A", Some("b1")),
        ];
        let r = resolve(&roll(), &bs, &[], None);
        assert!(r.effective.is_empty());
        assert_eq!(
            r.conflicts,
            vec![BallotConflict {
                voter_key: "A".into(),
                ballots: vec!["b2".into(), "b3".into()]
            }]
        );
    }

    #[test]
    fn cycles_and_foreign_supersedes_are_invalid() {
        let bs = [
            ballot("c1", "A", Some("c2")),
            ballot("c2", "A", Some("c1")),
            ballot("x", "B", Some("c1")),
            ballot("self", "B", Some("self")),
        ];
        let r = resolve(&roll(), &bs, &[], None);
        let reasons: Vec<(&str, &InvalidReason)> = r
            .invalid
            .iter()
            .map(|i| (i.ballot.as_str(), &i.reason))
            .collect();
        assert_eq!(reasons.len(), 4);
        assert!(reasons.contains(&("c1", &InvalidReason::SupersedeCycle)));
        assert!(reasons.contains(&("self", &InvalidReason::SupersedesItself)));
        assert!(r.effective.is_empty());
    }

    #[test]
    fn latest_adjudication_decides_and_later_ballots_reopen() {
        let bs = [ballot("b1", "A", None), ballot("b2", "A", None)];
        let adjs = [
            adjudication("j1", "A", &["b1", "b2"], Some("b1"), 10),
            adjudication("j2", "A", &["b1", "b2"], Some("b2"), 20),
        ];
        let r = resolve(&roll(), &bs, &adjs, None);
        assert_eq!(r.effective.get("A").map(|b| b.id.as_str()), Some("b2"));
        assert_eq!(r.adjudicated[0].overridden, vec!["j1".to_string()]);

        let mut more = bs.to_vec();
        more.push(ballot("b4", "A", None));
        let r = resolve(&roll(), &more, &adjs, None);
        assert!(r.effective.is_empty());
        assert_eq!(r.conflicts.len(), 1);
        assert_eq!(r.unused_adjudications.len(), 2);
    }

    #[test]
    fn after_close_and_off_roll_ballots_are_invalid() {
        let mut late = ballot("late", "A", None);
        late.collected_at = 5000;
        let bs = [late, ballot("stranger", "Z", None)];
        let r = resolve(&roll(), &bs, &[], Some(2000));
        assert!(r.effective.is_empty());
        assert_eq!(r.invalid.len(), 2);
    }
}

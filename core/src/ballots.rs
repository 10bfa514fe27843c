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

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{Adjudication, Ballot, Millis};
use crate::roll::{Roll, VoterIndex};

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

/// Records collapsed by id (see [`collapse`]).
struct Collapsed<'a> {
    /// Each clean id → the position of its first copy. A lookup table (keyed by the standard
    /// library's randomly seeded hash, as ids come from phones): its order decides nothing.
    by_id: HashMap<&'a str, usize>,
    /// Per position: the first copy of a clean id.
    kept: Vec<bool>,
    /// Ids whose copies differ → the smallest voter key among their copies.
    divergent: BTreeMap<&'a str, &'a str>,
}

/// Collapse copies by id: identical copies become one; ids whose copies differ are set apart
/// with the smallest voter key among their copies (a deterministic label for the report).
fn collapse<'a, T: PartialEq>(
    records: &'a [T],
    id: impl Fn(&'a T) -> &'a str,
    voter_key: impl Fn(&'a T) -> &'a str,
) -> Collapsed<'a> {
    let mut by_id: HashMap<&str, usize> = HashMap::with_capacity(records.len());
    let mut kept = vec![false; records.len()];
    let mut divergent: BTreeMap<&str, &str> = BTreeMap::new();
    for (at, r) in records.iter().enumerate() {
        match by_id.entry(id(r)) {
            Entry::Vacant(slot) => {
                slot.insert(at);
                kept[at] = true;
            }
            Entry::Occupied(slot) => {
                let first = &records[*slot.get()];
                if first != r {
                    let label = voter_key(first).min(voter_key(r));
                    let entry = divergent.entry(*slot.key()).or_insert(label);
                    *entry = (*entry).min(label);
                }
            }
        }
    }
    for key in divergent.keys() {
        if let Some(at) = by_id.remove(key) {
            kept[at] = false;
        }
    }
    Collapsed {
        by_id,
        kept,
        divergent,
    }
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
    let index = VoterIndex::new(roll, None);
    let numbers = index.numbers(ballots.iter().map(|b| b.voter_key.as_str()));
    let resolved = resolve_indexed(&index, ballots, &numbers, adjudications, closed_at);
    Resolution {
        effective: resolved
            .effective
            .into_iter()
            .map(|(n, b)| (index.key(n).to_string(), b.clone()))
            .collect(),
        conflicts: resolved.conflicts,
        adjudicated: resolved.adjudicated,
        superseded: resolved.superseded,
        invalid: resolved.invalid,
        unused_adjudications: resolved.unused_adjudications,
    }
}

/// A [`Resolution`] that borrows the effective ballots instead of copying them: what the tally
/// works from.
#[derive(Debug, Default)]
pub(crate) struct Resolved<'a> {
    /// The one ballot that counts per voter key, by the key's number in the [`VoterIndex`]
    /// (so in voter-key order).
    pub(crate) effective: Vec<(u32, &'a Ballot)>,
    pub(crate) conflicts: Vec<BallotConflict>,
    pub(crate) adjudicated: Vec<AdjudicatedConflict>,
    pub(crate) superseded: Vec<String>,
    pub(crate) invalid: Vec<InvalidBallot>,
    pub(crate) unused_adjudications: Vec<UnusedAdjudication>,
}

impl Resolved<'_> {
    /// [`Resolution::contested_voter_keys`].
    pub(crate) fn contested_voter_keys(&self) -> BTreeSet<&str> {
        let open = self.conflicts.iter().map(|c| c.voter_key.as_str());
        let voided = self
            .adjudicated
            .iter()
            .filter(|a| a.chosen.is_none())
            .map(|a| a.voter_key.as_str());
        open.chain(voided).collect()
    }
}

/// [`resolve`] against a roll already indexed, borrowing the ballots. `numbers` holds each
/// ballot's voter key number ([`VoterIndex::numbers`]), `None` when off the roll.
pub(crate) fn resolve_indexed<'a>(
    index: &VoterIndex<'_>,
    ballots: &'a [Ballot],
    numbers: &[Option<u32>],
    adjudications: &'a [Adjudication],
    closed_at: Option<Millis>,
) -> Resolved<'a> {
    let mut out = Resolved::default();

    let clean = collapse(ballots, |b| &b.id, |b| &b.voter_key);
    for (id, voter_key) in &clean.divergent {
        out.invalid.push(InvalidBallot {
            ballot: id.to_string(),
            voter_key: voter_key.to_string(),
            reason: InvalidReason::DivergentCopies,
        });
    }

    // The ballots that may take part, chained per voter key number: `first[n]` is the latest
    // of key `n` (or `NONE`), `earlier[i]` the one taken before `taking_part[i]`.
    const NONE: u32 = u32::MAX;
    let mut first: Vec<u32> = vec![NONE; index.len()];
    let mut earlier: Vec<u32> = Vec::with_capacity(ballots.len());
    let mut taking_part: Vec<&Ballot> = Vec::with_capacity(ballots.len());
    for ((b, _), number) in ballots
        .iter()
        .zip(&clean.kept)
        .zip(numbers)
        .filter(|((_, kept), _)| **kept)
    {
        let id = b.id.as_str();
        let Some(number) = *number else {
            out.invalid.push(InvalidBallot {
                ballot: id.to_string(),
                voter_key: b.voter_key.clone(),
                reason: InvalidReason::NotOnRoll,
            });
            continue;
        };
        let reason = if let Some(closed) = closed_at.filter(|c| b.collected_at > *c) {
            Some(InvalidReason::CollectedAfterClose {
                collected_at: b.collected_at,
                closed_at: closed,
            })
        } else if b.supersedes.as_deref() == Some(id) {
            Some(InvalidReason::SupersedesItself)
        } else {
            b.supersedes
                .as_deref()
                .and_then(|s| clean.by_id.get(s))
                .map(|&at| &ballots[at])
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
            None => {
                let n = number as usize;
                earlier.push(first[n]);
                first[n] = taking_part.len() as u32;
                taking_part.push(b);
            }
        }
    }

    let clean_adj = collapse(adjudications, |a| &a.id, |a| &a.voter_key);
    for (id, voter_key) in &clean_adj.divergent {
        out.unused_adjudications.push(UnusedAdjudication {
            adjudication: id.to_string(),
            voter_key: voter_key.to_string(),
            reason: UnusedReason::DivergentCopies,
        });
    }
    // Adjudications by voter key number, each list in id order; those of keys off the roll
    // can have no ballot taking part.
    let mut adj_by_voter: BTreeMap<u32, Vec<&Adjudication>> = BTreeMap::new();
    let mut kept_adj: Vec<&Adjudication> = adjudications
        .iter()
        .zip(&clean_adj.kept)
        .filter(|(_, kept)| **kept)
        .map(|(a, _)| a)
        .collect();
    kept_adj.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    for a in kept_adj {
        match index.number(&a.voter_key) {
            Some(n) => adj_by_voter.entry(n).or_default().push(a),
            None => out.unused_adjudications.extend(no_conflict(vec![a])),
        }
    }

    // Voter keys in key order, so effective ballots, conflicts and adjudicated conflicts come
    // out in voter-key order.
    for (number, &latest) in first.iter().enumerate() {
        if latest == NONE {
            continue;
        }
        let number = number as u32;
        let voter_key = index.key(number);
        let adjs = if adj_by_voter.is_empty() {
            Vec::new()
        } else {
            adj_by_voter.remove(&number).unwrap_or_default()
        };
        // The common case: one ballot, nothing to follow (a self-supersede is already invalid).
        if earlier[latest as usize] == NONE {
            out.effective.push((number, taking_part[latest as usize]));
            out.unused_adjudications.extend(no_conflict(adjs));
            continue;
        }
        // Several: in id order (the order decides nothing; every step below sorts or looks up
        // by id, and ids are distinct).
        let mut list: Vec<&Ballot> = Vec::new();
        let mut at = latest;
        while at != NONE {
            list.push(taking_part[at as usize]);
            at = earlier[at as usize];
        }
        list.sort_unstable_by(|a, b| a.id.cmp(&b.id));
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
                out.effective.push((number, *only));
                out.unused_adjudications.extend(no_conflict(adjs));
            }
            competing => settle(number, voter_key, competing, adjs, &mut out),
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
fn settle<'a>(
    number: u32,
    voter_key: &str,
    competing: &[&'a Ballot],
    adjs: Vec<&Adjudication>,
    out: &mut Resolved<'a>,
) {
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
        out.effective.push((number, *ballot));
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
            method: None,
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

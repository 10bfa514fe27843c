//! The frozen voter roll (表决权名册): every exclusive unit of the property area with the voter key
//! it counts under, frozen when a campaign is published and cited by its hash on the 公示.
//!
//! A roll is a list of [`RollEntry`], one per unit, sorted by unit code. Headcount and area are
//! derived from it by grouping units into voter keys (SPC arts 8–9): an owner with several units
//! counts once with their areas added, the developer's unsold or undelivered units count once
//! under [`DEVELOPER_VOTER_KEY`], co-owners of one unit count once because they share an owner key.
//!
//! **Scope rule for a voter key whose units straddle the scope** (e.g. owner P0041 of the sample
//! register holds `2-1-0701` and `3-1-0702`, and a campaign covers building 2 only): the voter key
//! counts once in the headcount as soon as any one of its units lies inside the scope, and only
//! the area of its units inside the scope counts. Units outside the scope add nothing.
//!
//! Architecture Invariant: a `Roll`'s entries are sorted and exact duplicates are collapsed, so
//! the same units in any order give the same roll and the same hash.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{RollEntry, Scope, Unit};

/// The first bytes of the canonical serialization, so a roll hash can never be mistaken for
/// the hash of anything else and a future format gets a new tag.
pub const ROLL_HASH_TAG: &[u8] = b"doorstep/roll/v1\n";

/// The largest area one unit may have, in 0.01 m² (one million m²). Nothing real comes near it;
/// the bound keeps every sum over a district-sized roll far inside `i64`.
pub const MAX_UNIT_AREA: i64 = 100_000_000;

/// Headcount, area and units of a roll inside one scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Totals {
    /// Sum of the in-scope units' exclusive areas, 0.01 m².
    pub area: i64,
    /// Distinct voter keys with at least one unit in scope.
    pub headcount: i64,
    /// Units in scope.
    pub units: i64,
}

/// Why a roll cannot be trusted for a tally.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollError {
    /// Two different entries claim the same unit code.
    #[error("unit {unit} appears twice in the roll with different details")]
    DuplicateUnit { unit: String },
    /// A field document's roll map files an entry under another unit's code.
    #[error("roll slice key {key} holds the entry of unit {unit}")]
    MisfiledEntry { key: String, unit: String },
    /// A unit's area is negative or beyond [`MAX_UNIT_AREA`].
    #[error("unit {unit} has an impossible area of {area} (0.01 m²)")]
    ImpossibleArea { unit: String, area: i64 },
    /// A unit has no voter key, so it could not be counted.
    #[error("unit {unit} has no voter key")]
    MissingVoterKey { unit: String },
}

impl From<RollError> for crate::Error {
    fn from(e: RollError) -> Self {
        crate::Error::Invalid(e.to_string())
    }
}

/// The frozen voter roll: one entry per unit, sorted by unit code.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Roll {
    entries: Vec<RollEntry>,
}

impl Roll {
    /// The roll of these units, each under [`Unit::voter_key`].
    ///
    /// Never fails: the register import guarantees unique unit codes. Should two different units
    /// share a code anyway, both are kept (the order stays deterministic) and [`Roll::validate`]
    /// reports it; the tally refuses to decide on such a roll.
    pub fn from_units<'a>(units: impl IntoIterator<Item = &'a Unit>) -> Roll {
        let entries = units
            .into_iter()
            .map(|u| RollEntry {
                unit: u.code.clone(),
                building: u.building.clone(),
                entrance: u.entrance.clone(),
                voter_key: u.voter_key(),
                area: u.area,
            })
            .collect();
        Roll::normalized(entries)
    }

    /// A roll from entries already made (e.g. read back from storage), checked with
    /// [`Roll::validate`].
    pub fn from_entries(entries: impl IntoIterator<Item = RollEntry>) -> Result<Roll, RollError> {
        let roll = Roll::normalized(entries.into_iter().collect());
        roll.validate()?;
        Ok(roll)
    }

    /// Reassemble the whole roll from the per-building slices written into field documents at
    /// publication (`FieldDoc::roll`: unit code → entry).
    ///
    /// The same unit in two slices is fine when both say the same; two different entries for one
    /// unit, or an entry filed under another unit's code, mean the slices were tampered with or
    /// mixed up, and the roll is refused.
    pub fn from_slices<'a>(
        slices: impl IntoIterator<Item = &'a BTreeMap<String, RollEntry>>,
    ) -> Result<Roll, RollError> {
        let mut entries = Vec::new();
        for slice in slices {
            for (key, entry) in slice {
                if *key != entry.unit {
                    return Err(RollError::MisfiledEntry {
                        key: key.clone(),
                        unit: entry.unit.clone(),
                    });
                }
                entries.push(entry.clone());
            }
        }
        Roll::from_entries(entries)
    }

    /// Sort, then collapse exact duplicates (the same unit read from two places).
    fn normalized(mut entries: Vec<RollEntry>) -> Roll {
        entries.sort();
        entries.dedup();
        Roll { entries }
    }

    /// Check what a tally relies on: unit codes are unique, every unit has a voter key, every
    /// area lies in `0..=MAX_UNIT_AREA`. The first problem found (in unit order) is returned.
    pub fn validate(&self) -> Result<(), RollError> {
        let mut previous = None;
        for e in &self.entries {
            check_entry(previous, e)?;
            previous = Some(e);
        }
        Ok(())
    }

    /// Every entry, sorted by unit code.
    pub fn entries(&self) -> &[RollEntry] {
        &self.entries
    }

    /// Number of units on the roll.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the roll has no units.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every voter key on the roll, whatever the scope.
    pub fn voter_keys(&self) -> BTreeSet<&str> {
        self.entries.iter().map(|e| e.voter_key.as_str()).collect()
    }

    /// The entries of one building, keyed by unit code: what a field document's `roll` holds.
    pub fn slice(&self, building: &str) -> BTreeMap<String, RollEntry> {
        self.entries
            .iter()
            .filter(|e| e.building == building)
            .map(|e| (e.unit.clone(), e.clone()))
            .collect()
    }

    /// The entries inside a scope.
    pub fn in_scope<'a>(&'a self, scope: &'a Scope) -> impl Iterator<Item = &'a RollEntry> + 'a {
        self.entries
            .iter()
            .filter(move |e| scope.contains(&e.building, &e.entrance))
    }

    /// Each voter key with at least one unit in `scope`, mapped to its area inside the scope
    /// (0.01 m²). A voter key whose units straddle the scope appears once with only its in-scope
    /// area (see the module comment).
    pub fn voters(&self, scope: &Scope) -> BTreeMap<String, i64> {
        let mut voters: BTreeMap<String, i64> = BTreeMap::new();
        for e in self.in_scope(scope) {
            let area = voters.entry(e.voter_key.clone()).or_insert(0);
            // Saturating keeps an invalid roll from panicking; `validate` bounds real ones far
            // below the limit.
            *area = area.saturating_add(e.area);
        }
        voters
    }

    /// Area, headcount and units inside `scope`: the denominators of the quorum.
    pub fn totals(&self, scope: &Scope) -> Totals {
        let mut keys = BTreeSet::new();
        let mut totals = Totals::default();
        for e in self.in_scope(scope) {
            totals.area = totals.area.saturating_add(e.area);
            totals.units += 1;
            keys.insert(e.voter_key.as_str());
        }
        totals.headcount = i64::try_from(keys.len()).unwrap_or(i64::MAX);
        totals
    }

    /// The canonical bytes the hash is taken over, so anyone can recompute it:
    ///
    /// 1. the tag `doorstep/roll/v1\n` ([`ROLL_HASH_TAG`]);
    /// 2. the number of entries as an unsigned 64-bit big-endian integer;
    /// 3. for each entry in roll order (unit code, then building, entrance, voter key, area):
    ///    the unit code, building, entrance and voter key, each as its UTF-8 byte length
    ///    (unsigned 64-bit big-endian) followed by its UTF-8 bytes; then the area in 0.01 m² as a
    ///    signed 64-bit big-endian integer.
    ///
    /// Length prefixes make the encoding unambiguous whatever characters the strings hold.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ROLL_HASH_TAG.len() + 8 + self.entries.len() * 64);
        self.write_canonical(|bytes| out.extend_from_slice(bytes));
        out
    }

    /// Hand [`Roll::canonical_bytes`] to `sink` piece by piece, without holding them all.
    fn write_canonical(&self, mut sink: impl FnMut(&[u8])) {
        sink(ROLL_HASH_TAG);
        sink(&(self.entries.len() as u64).to_be_bytes());
        for e in &self.entries {
            write_entry(e, &mut sink);
        }
    }

    /// The roll's hash: lowercase hex SHA-256 of [`Roll::canonical_bytes`]. Frozen into the
    /// campaign at publication and cited by the tally.
    pub fn hash(&self) -> String {
        let mut hasher = RollHasher::new();
        self.write_canonical(|bytes| hasher.take(bytes));
        hasher.finish()
    }

    /// [`Roll::hash`], [`Roll::validate`] and the [`VoterIndex`] for `scope`, in one pass over
    /// the entries: what the tally needs of the roll, each entry read once.
    pub(crate) fn survey(&self, scope: &Scope) -> (String, Result<(), RollError>, VoterIndex<'_>) {
        let mut hasher = RollHasher::new();
        hasher.take(ROLL_HASH_TAG);
        hasher.take(&(self.entries.len() as u64).to_be_bytes());
        let mut valid = Ok(());
        let mut previous = None;
        let index = VoterIndex::build(self, Some(scope), |e| {
            write_entry(e, &mut |bytes| hasher.take(bytes));
            if valid.is_ok() {
                valid = check_entry(previous, e);
            }
            previous = Some(e);
        });
        (hasher.finish(), valid, index)
    }
}

/// One entry's part of [`Roll::canonical_bytes`].
fn write_entry(e: &RollEntry, sink: &mut impl FnMut(&[u8])) {
    for field in [&e.unit, &e.building, &e.entrance, &e.voter_key] {
        sink(&(field.len() as u64).to_be_bytes());
        sink(field.as_bytes());
    }
    sink(&e.area.to_be_bytes());
}

/// What [`Roll::validate`] checks of one entry, given the one before it.
fn check_entry(previous: Option<&RollEntry>, e: &RollEntry) -> Result<(), RollError> {
    if previous.is_some_and(|p| p.unit == e.unit) {
        return Err(RollError::DuplicateUnit {
            unit: e.unit.clone(),
        });
    }
    if e.voter_key.is_empty() {
        return Err(RollError::MissingVoterKey {
            unit: e.unit.clone(),
        });
    }
    if !(0..=MAX_UNIT_AREA).contains(&e.area) {
        return Err(RollError::ImpossibleArea {
            unit: e.unit.clone(),
            area: e.area,
        });
    }
    Ok(())
}

/// SHA-256 over bytes gathered into blocks of [`RollHasher::BUFFER`]: a district's roll is never
/// held whole, and the hasher sees large blocks rather than one call per field.
struct RollHasher {
    hasher: Sha256,
    buf: Vec<u8>,
}

impl RollHasher {
    const BUFFER: usize = 64 * 1024;

    fn new() -> RollHasher {
        RollHasher {
            hasher: Sha256::new(),
            buf: Vec::with_capacity(Self::BUFFER),
        }
    }

    fn take(&mut self, bytes: &[u8]) {
        if self.buf.len() + bytes.len() > Self::BUFFER {
            self.hasher.update(&self.buf);
            self.buf.clear();
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Lowercase hex of the digest.
    fn finish(mut self) -> String {
        self.hasher.update(&self.buf);
        hex::encode(self.hasher.finalize())
    }
}

/// A key with its first 8 bytes as a big-endian number beside it (zero-padded): compared by
/// [`cmp_keyed`], keys order exactly as the strings do, and keys of up to 8 bytes (voter keys
/// such as `P0001`) are compared without reading the strings at all.
pub(crate) type Keyed<'a> = (u64, &'a str);

pub(crate) fn keyed(key: &str) -> Keyed<'_> {
    let mut word = [0u8; 8];
    let n = key.len().min(8);
    word[..n].copy_from_slice(&key.as_bytes()[..n]);
    (u64::from_be_bytes(word), key)
}

/// The order of the strings: the first 8 bytes decide unless equal; then two keys of up to 8
/// bytes agree on every byte they both have (the rest is padding), so the shorter comes first;
/// longer keys are compared in full.
pub(crate) fn cmp_keyed(a: &Keyed<'_>, b: &Keyed<'_>) -> std::cmp::Ordering {
    a.0.cmp(&b.0).then_with(|| {
        if a.1.len() <= 8 && b.1.len() <= 8 {
            a.1.len().cmp(&b.1.len())
        } else {
            a.1.cmp(b.1)
        }
    })
}

/// Every voter key of a roll, numbered in key order, with each key's area inside one scope:
/// what [`Roll::voter_keys`] and [`Roll::voters`] give, as flat arrays the tally indexes instead
/// of ordered maps it searches. Many keys are found at once by sorting them and walking them
/// alongside the roll's ([`VoterIndex::numbers`]), which reads memory in order, where a hash
/// table would be read at random.
#[derive(Debug)]
pub(crate) struct VoterIndex<'a> {
    /// Voter keys, sorted and distinct; a key's position is its number.
    keys: Vec<Keyed<'a>>,
    /// Per number: the area of the key's units inside the scope, summed in roll order.
    area: Vec<i64>,
    /// Per number: at least one of the key's units lies inside the scope.
    in_scope: Vec<bool>,
    /// Area, headcount and units inside the scope, as [`Roll::totals`] gives them.
    totals: Totals,
}

impl<'a> VoterIndex<'a> {
    /// The index of `roll` for `scope` (`None`: numbering only, nothing is in scope).
    pub(crate) fn new(roll: &'a Roll, scope: Option<&Scope>) -> VoterIndex<'a> {
        VoterIndex::build(roll, scope, |_| {})
    }

    /// [`VoterIndex::new`], showing every entry to `visit` in roll order on the way.
    fn build(
        roll: &'a Roll,
        scope: Option<&Scope>,
        mut visit: impl FnMut(&'a RollEntry),
    ) -> VoterIndex<'a> {
        // Per entry, in roll order: its area and whether it lies inside the scope; and each
        // entry's key with its place, to be sorted so that each key's entries stay in roll order
        // behind it (ties on the key fall to the place) and areas are summed in roll order.
        let mut totals = Totals::default();
        let mut placed: Vec<(i64, bool)> = Vec::with_capacity(roll.entries.len());
        let mut sorted: Vec<(Keyed<'a>, usize)> = Vec::with_capacity(roll.entries.len());
        for (at, e) in roll.entries.iter().enumerate() {
            visit(e);
            let inside = scope.is_some_and(|s| s.contains(&e.building, &e.entrance));
            if inside {
                // Saturating, in roll order, exactly as `Roll::totals` sums.
                totals.area = totals.area.saturating_add(e.area);
                totals.units += 1;
            }
            placed.push((e.area, inside));
            sorted.push((keyed(&e.voter_key), at));
        }
        sorted.sort_unstable_by(|(a, at_a), (b, at_b)| cmp_keyed(a, b).then(at_a.cmp(at_b)));
        let mut keys: Vec<Keyed<'a>> = Vec::new();
        let mut area: Vec<i64> = Vec::new();
        let mut in_scope: Vec<bool> = Vec::new();
        for (key, at) in sorted {
            if keys.last().is_none_or(|last| cmp_keyed(last, &key).is_ne()) {
                keys.push(key);
                area.push(0);
                in_scope.push(false);
            }
            let (entry_area, inside) = placed[at];
            if inside && let (Some(sum), Some(flag)) = (area.last_mut(), in_scope.last_mut()) {
                // Saturating, in roll order, exactly as `Roll::voters` sums.
                *sum = sum.saturating_add(entry_area);
                *flag = true;
            }
        }
        totals.headcount =
            i64::try_from(in_scope.iter().filter(|inside| **inside).count()).unwrap_or(i64::MAX);
        VoterIndex {
            keys,
            area,
            in_scope,
            totals,
        }
    }

    /// The number of a voter key on the roll.
    pub(crate) fn number(&self, voter_key: &str) -> Option<u32> {
        let key = keyed(voter_key);
        self.keys
            .binary_search_by(|probe| cmp_keyed(probe, &key))
            .ok()
            .map(|n| n as u32)
    }

    /// The numbers of many voter keys at once, in the order given (`None` for a key off the
    /// roll): the keys are sorted, then walked alongside the roll's.
    pub(crate) fn numbers<'q>(
        &self,
        voter_keys: impl IntoIterator<Item = &'q str>,
    ) -> Vec<Option<u32>> {
        let mut wanted: Vec<(Keyed<'q>, usize)> = voter_keys
            .into_iter()
            .enumerate()
            .map(|(i, key)| (keyed(key), i))
            .collect();
        wanted.sort_unstable_by(|(a, _), (b, _)| cmp_keyed(a, b));
        let mut found = vec![None; wanted.len()];
        let mut roll_keys = self.keys.iter().enumerate().peekable();
        for (key, i) in wanted {
            while let Some((n, roll_key)) = roll_keys.peek() {
                match cmp_keyed(roll_key, &key) {
                    std::cmp::Ordering::Less => {
                        roll_keys.next();
                    }
                    std::cmp::Ordering::Equal => {
                        found[i] = Some(*n as u32);
                        break;
                    }
                    std::cmp::Ordering::Greater => break,
                }
            }
        }
        found
    }

    /// The voter key of a number.
    pub(crate) fn key(&self, n: u32) -> &'a str {
        self.keys[n as usize].1
    }

    /// How many voter keys the roll has.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when the voter key numbered `n` has a unit inside the scope.
    pub(crate) fn in_scope(&self, n: u32) -> bool {
        self.in_scope[n as usize]
    }

    /// True when `voter_key` is on the roll with a unit inside the scope.
    pub(crate) fn key_in_scope(&self, voter_key: &str) -> bool {
        self.number(voter_key).is_some_and(|n| self.in_scope(n))
    }

    /// The in-scope area of the voter key numbered `n` (0 when it is outside the scope).
    pub(crate) fn area(&self, n: u32) -> i64 {
        self.area[n as usize]
    }

    /// Area, headcount and units inside the scope.
    pub(crate) fn totals(&self) -> Totals {
        self.totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AreaSource, SaleStatus};

    fn unit(code: &str, area: i64, owner: &str, sale: SaleStatus) -> Unit {
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
            sale_status: sale,
            owner_key: owner.to_string(),
            owner_names: vec![owner.to_string()],
        }
    }

    fn sample() -> Vec<Unit> {
        vec![
            unit("1-1-0101", 8603, "P1", SaleStatus::Sold),
            unit("1-2-0101", 9000, "P2", SaleStatus::Sold),
            unit("2-1-0101", 7000, "P1", SaleStatus::Sold),
            unit("2-1-0102", 5000, "DEV", SaleStatus::DeveloperUnsold),
            unit("2-2-0101", 6000, "DEV2", SaleStatus::DeveloperUndelivered),
        ]
    }

    #[test]
    fn groups_units_into_voter_keys() {
        let units = sample();
        let roll = Roll::from_units(&units);
        let whole = roll.totals(&Scope::Whole);
        assert_eq!(
            whole,
            Totals {
                area: 35603,
                headcount: 3,
                units: 5
            }
        );
        let voters = roll.voters(&Scope::Whole);
        assert_eq!(voters.get("P1"), Some(&15603));
        assert_eq!(voters.get(crate::model::DEVELOPER_VOTER_KEY), Some(&11000));
    }

    #[test]
    fn straddling_owner_counts_once_with_in_scope_area_only() {
        let units = sample();
        let roll = Roll::from_units(&units);
        let b2 = Scope::Building {
            building: "2".into(),
        };
        assert_eq!(roll.voters(&b2).get("P1"), Some(&7000));
        assert_eq!(
            roll.totals(&b2),
            Totals {
                area: 18000,
                headcount: 2,
                units: 3
            }
        );
        let e = Scope::Entrance {
            entrance: "1-2".into(),
        };
        assert_eq!(
            roll.totals(&e),
            Totals {
                area: 9000,
                headcount: 1,
                units: 1
            }
        );
    }

    #[test]
    fn hash_ignores_input_order_and_duplicates() {
        let units = sample();
        let mut reversed = units.clone();
        reversed.reverse();
        reversed.push(units[0].clone());
        assert_eq!(
            Roll::from_units(&units).hash(),
            Roll::from_units(&reversed).hash()
        );
        let mut changed = units.clone();
        changed[0].area += 1;
        assert_ne!(
            Roll::from_units(&units).hash(),
            Roll::from_units(&changed).hash()
        );
    }

    #[test]
    fn empty_roll_has_a_fixed_hash() {
        // sha256("doorstep/roll/v1\n" ++ 0u64 BE), pinned so the format cannot drift silently.
        let expected = hex::encode(Sha256::digest(
            [ROLL_HASH_TAG, &0u64.to_be_bytes()[..]].concat(),
        ));
        assert_eq!(Roll::default().hash(), expected);
    }

    #[test]
    fn slices_reassemble_the_roll() {
        let roll = Roll::from_units(&sample());
        let slices = [roll.slice("1"), roll.slice("2"), roll.slice("1")];
        let back = Roll::from_slices(&slices);
        assert_eq!(back.as_ref().map(Roll::hash), Ok(roll.hash()));
    }

    #[test]
    fn slices_that_disagree_are_refused() {
        let roll = Roll::from_units(&sample());
        let mut other = roll.slice("1");
        if let Some(e) = other.get_mut("1-1-0101") {
            e.area += 1;
        }
        let err = Roll::from_slices([&roll.slice("1"), &other]);
        assert_eq!(
            err,
            Err(RollError::DuplicateUnit {
                unit: "1-1-0101".into()
            })
        );
        let mut misfiled = roll.slice("1");
        if let Some(e) = misfiled.remove("1-1-0101") {
            misfiled.insert("9-9-9999".into(), e);
        }
        assert!(matches!(
            Roll::from_slices([&misfiled]),
            Err(RollError::MisfiledEntry { .. })
        ));
    }

    #[test]
    fn validate_catches_impossible_areas() {
        let mut units = sample();
        units[1].area = -1;
        assert!(matches!(
            Roll::from_units(&units).validate(),
            Err(RollError::ImpossibleArea { .. })
        ));
    }

    /// The index the tally uses agrees with `voter_keys`, `voters`, `totals`, `hash` and
    /// `validate`, whatever the keys look like (short, long, sharing their first 8 bytes, ending
    /// in zero bytes) and whatever the scope.
    fn index_agrees(entries: Vec<RollEntry>, lookups: &[String]) {
        let roll = Roll::normalized(entries);
        for scope in [
            Scope::Whole,
            Scope::Building {
                building: "1".into(),
            },
            Scope::Entrance {
                entrance: "2-1".into(),
            },
        ] {
            let (hash, valid, index) = roll.survey(&scope);
            assert_eq!(hash, roll.hash());
            assert_eq!(valid, roll.validate());
            let keys: Vec<&str> = (0..index.len() as u32).map(|n| index.key(n)).collect();
            assert_eq!(keys, roll.voter_keys().into_iter().collect::<Vec<_>>());
            let voters = roll.voters(&scope);
            for n in 0..index.len() as u32 {
                assert_eq!(
                    voters.get(index.key(n)).copied(),
                    index.in_scope(n).then(|| index.area(n))
                );
            }
            assert_eq!(index.totals(), roll.totals(&scope));
            let found = index.numbers(lookups.iter().map(String::as_str));
            for (key, n) in lookups.iter().zip(found) {
                assert_eq!(
                    n,
                    keys.iter().position(|k| k == key).map(|n| n as u32),
                    "{key:?}"
                );
                assert_eq!(index.number(key), n);
                assert_eq!(index.key_in_scope(key), voters.contains_key(key));
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn the_tally_index_agrees_with_the_roll(
            units in proptest::collection::vec(
                ("[12]", "[12]", "P0{0,3}[0-9\u{0}]{0,3}|ID1101011990[0-9]{0,3}|DEVELOPER|", -5i64..20_000),
                0..40,
            ),
            extra in proptest::collection::vec("P0{0,3}[0-9\u{0}]{0,3}|ID1101011990[0-9]{0,3}|x", 0..10),
        ) {
            let entries: Vec<RollEntry> = units
                .iter()
                .enumerate()
                .map(|(i, (building, entrance, key, area))| RollEntry {
                    unit: format!("{building}-{entrance}-{:04}", i % 30),
                    building: building.clone(),
                    entrance: format!("{building}-{entrance}"),
                    voter_key: key.clone(),
                    area: *area,
                })
                .collect();
            let mut lookups: Vec<String> = entries.iter().map(|e| e.voter_key.clone()).collect();
            lookups.extend(extra);
            index_agrees(entries, &lookups);
        }
    }
}

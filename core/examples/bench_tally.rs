//! Benchmark of the legal tally: the sample register (306 units, 303 voter keys, every voter key
//! returning a ballot) and a synthetic district-sized campaign of 100,000 households. Prints a
//! table and writes `target/bench/tally.json`.
//!
//! Run: `cargo run --release -p doorstep-core --example bench_tally`

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use doorstep_core::ballots::resolve;
use doorstep_core::model::{
    Adjudication, Answer, AreaSource, Ballot, Campaign, CampaignKind, CampaignStatus, Candidate,
    Choice, Delivery, Question, QuestionKind, Rules, SaleStatus, Scope, SilencePolicy,
    SurveyOption, Unit,
};
use doorstep_core::roll::Roll;
use doorstep_core::tally::{Tally, tally};
use sha2::{Digest, Sha256};

const SAMPLE_RUNS: usize = 101;
const DISTRICT_RUNS: usize = 7;
const DISTRICT_HOUSEHOLDS: usize = 100_000;

/// A small deterministic generator (xorshift64), so every run tallies the same campaign.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// "86.03" → 8603 without floats.
fn parse_area(s: &str) -> Result<i64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let whole: i64 = whole.parse().with_context(|| format!("area {s}"))?;
    let frac: i64 = format!("{frac:0<2}")
        .get(..2)
        .unwrap_or("00")
        .parse()
        .with_context(|| format!("area {s}"))?;
    Ok(whole * 100 + frac)
}

fn sample_units() -> Result<Vec<Unit>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/taipingyang-garden.csv");
    let mut reader = csv::Reader::from_path(&path).with_context(|| path.display().to_string())?;
    let mut units = Vec::new();
    for row in reader.records() {
        let row = row?;
        let code = row[0].to_string();
        let mut parts = code.split('-');
        let building = parts.next().unwrap_or_default().to_string();
        let entrance = format!("{building}-{}", parts.next().unwrap_or_default());
        units.push(Unit {
            code,
            building,
            entrance,
            floor: row[3].parse().unwrap_or(0),
            room: row[4].to_string(),
            area: parse_area(&row[5])?,
            area_source: AreaSource::Registered,
            sale_status: if &row[10] == "developer_unsold" {
                SaleStatus::DeveloperUnsold
            } else {
                SaleStatus::Sold
            },
            owner_key: row[6].to_string(),
            owner_names: row[7].split('、').map(str::to_string).collect(),
        });
    }
    Ok(units)
}

/// `households` units, 28 to a building in two entrances; about 1% of owners hold a second unit
/// elsewhere and 0.5% of units are the developer's.
fn district_units(households: usize, rng: &mut Rng) -> Vec<Unit> {
    (0..households)
        .map(|i| {
            let building = i / 28 + 1;
            let entrance = (i % 28) / 14 + 1;
            let floor = (i % 14) / 2 + 1;
            let room = i % 2 + 1;
            let developer = rng.below(200) == 0;
            let owner = if i > 100 && rng.below(100) == 0 {
                // A second unit of an earlier owner.
                format!("P{:06}", rng.below(i as u64 - 1))
            } else {
                format!("P{i:06}")
            };
            Unit {
                code: format!("{building}-{entrance}-{floor:02}{room:02}"),
                building: building.to_string(),
                entrance: format!("{building}-{entrance}"),
                floor: floor as i64,
                room: format!("{floor:02}{room:02}"),
                area: 6_000 + rng.below(9_000) as i64,
                area_source: AreaSource::Registered,
                sale_status: if developer {
                    SaleStatus::DeveloperUnsold
                } else {
                    SaleStatus::Sold
                },
                owner_key: owner,
                owner_names: vec![format!("业主{i}")],
            }
        })
        .collect()
}

/// A binding assembly: one ordinary matter, one matter 6 (maintenance funds), a committee
/// election of 5 seats from 7 candidates, and an advisory survey question.
fn campaign(scope: Scope) -> Campaign {
    let candidates: BTreeMap<String, Candidate> = (1..=7)
        .map(|i| {
            let c = Candidate {
                id: format!("c{i}"),
                name: format!("候选人{i}"),
                order: i,
            };
            (c.id.clone(), c)
        })
        .collect();
    let options: BTreeMap<String, SurveyOption> = ["a", "b", "c"]
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
    let questions = [
        Question {
            id: "q1".into(),
            order: 1,
            text: "选聘物业服务企业".into(),
            kind: QuestionKind::Resolution { matter: 4 },
        },
        Question {
            id: "q6".into(),
            order: 2,
            text: "使用专项维修资金".into(),
            kind: QuestionKind::Resolution { matter: 6 },
        },
        Question {
            id: "e".into(),
            order: 3,
            text: "选举业主委员会委员".into(),
            kind: QuestionKind::Election {
                seats: 5,
                candidates,
            },
        },
        Question {
            id: "s".into(),
            order: 4,
            text: "电梯供应商意见".into(),
            kind: QuestionKind::Survey {
                options,
                max_choices: 1,
            },
        },
    ];
    Campaign {
        id: "bench".into(),
        community: "bench".into(),
        title: "基准测试".into(),
        kind: CampaignKind::Resolution,
        binding: true,
        scope,
        rules: Rules {
            silence: SilencePolicy::DeliveredCountsAsAbstain,
            silence_announced: true,
            ..Rules::default()
        },
        questions: questions.into_iter().map(|q| (q.id.clone(), q)).collect(),
        status: CampaignStatus::Closed,
        status_times: BTreeMap::from([("closed".to_string(), 2_000_000_000_000)]),
        roll_hash: None,
        rules_hash: None,
    }
}

fn choice(rng: &mut Rng) -> Choice {
    match rng.below(10) {
        0..=6 => Choice::Yes,
        7 | 8 => Choice::No,
        _ => Choice::Abstain,
    }
}

fn ballot(id: String, voter_key: &str, rng: &mut Rng) -> Ballot {
    let mut answers = BTreeMap::new();
    for q in ["q1", "q6"] {
        answers.insert(
            q.to_string(),
            Answer {
                choice: Some(choice(rng)),
                ..Answer::default()
            },
        );
    }
    answers.insert(
        "e".to_string(),
        Answer {
            candidates: (1..=7).map(|i| (format!("c{i}"), choice(rng))).collect(),
            ..Answer::default()
        },
    );
    answers.insert(
        "s".to_string(),
        Answer {
            options: vec![["a", "b", "c"][rng.below(3) as usize].to_string()],
            ..Answer::default()
        },
    );
    Ballot {
        id,
        voter_key: voter_key.to_string(),
        unit: String::new(),
        answers,
        collected_at: 1_900_000_000_000,
        by: "head".into(),
        supersedes: None,
        method: None,
    }
}

/// Field records for `roll`: `returned_pct` percent of voter keys return a ballot; of those 2%
/// correct it once and 0.5% meet a second collector (half of those conflicts adjudicated);
/// every voter key has a recorded delivery.
fn field_records(
    roll: &Roll,
    returned_pct: u64,
    rng: &mut Rng,
) -> (Vec<Ballot>, Vec<Delivery>, Vec<Adjudication>) {
    let mut ballots = Vec::new();
    let mut deliveries = Vec::new();
    let mut adjudications = Vec::new();
    for (i, key) in roll.voter_keys().into_iter().enumerate() {
        deliveries.push(Delivery {
            id: format!("d{i}"),
            voter_key: key.to_string(),
            unit: String::new(),
            at: 1_800_000_000_000,
            by: "head".into(),
        });
        if rng.below(100) >= returned_pct {
            continue;
        }
        let first = ballot(format!("b{i}"), key, rng);
        let roll_die = rng.below(1000);
        if roll_die < 20 {
            let mut correction = ballot(format!("b{i}-fix"), key, rng);
            correction.supersedes = Some(first.id.clone());
            ballots.push(correction);
        } else if roll_die < 25 {
            let second = ballot(format!("b{i}-deputy"), key, rng);
            if roll_die < 23 {
                adjudications.push(Adjudication {
                    id: format!("j{i}"),
                    voter_key: key.to_string(),
                    considered: vec![first.id.clone(), second.id.clone()],
                    chosen: Some(second.id.clone()),
                    reason: "核实".into(),
                    at: 2_100_000_000_000,
                    by: "officer".into(),
                });
            }
            ballots.push(second);
        }
        ballots.push(first);
    }
    (ballots, deliveries, adjudications)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

struct Measured {
    tally: Tally,
    median: Duration,
    min: Duration,
    json_bytes: usize,
    /// SHA-256 of the tally's JSON: a change in any output byte shows here.
    json_sha256: String,
}

fn measure(
    roll: &Roll,
    campaign: &Campaign,
    records: &(Vec<Ballot>, Vec<Delivery>, Vec<Adjudication>),
    runs: usize,
) -> Measured {
    let (ballots, deliveries, adjudications) = records;
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let t = tally(roll, campaign, ballots, deliveries, adjudications);
        times.push(start.elapsed());
        last = Some(t);
    }
    let tally = last.unwrap_or_else(|| tally(roll, campaign, ballots, deliveries, adjudications));
    let json = tally.to_json();
    let json_bytes = json.len();
    let json_sha256 = hex::encode(Sha256::digest(json.as_bytes()));
    let min = times.iter().min().copied().unwrap_or_default();
    Measured {
        tally,
        median: median(times),
        min,
        json_bytes,
        json_sha256,
    }
}

fn main() -> Result<()> {
    let mut rng = Rng(0x5eed_d00d_0000_0001);

    // The sample register: every voter key returns a ballot.
    let units = sample_units()?;
    let start = Instant::now();
    let sample_roll = Roll::from_units(&units);
    let sample_roll_ms = ms(start.elapsed());
    let sample_campaign = campaign(Scope::Whole);
    let sample_records = field_records(&sample_roll, 100, &mut rng);
    let sample = measure(&sample_roll, &sample_campaign, &sample_records, SAMPLE_RUNS);

    // The district: 100,000 households, 85% return a ballot.
    let units = district_units(DISTRICT_HOUSEHOLDS, &mut rng);
    let start = Instant::now();
    let roll = Roll::from_units(&units);
    let roll_build = start.elapsed();
    let start = Instant::now();
    let roll_hash = roll.hash();
    let roll_hash_time = start.elapsed();
    let district_campaign = campaign(Scope::Whole);
    let records = field_records(&roll, 85, &mut rng);
    let district = measure(&roll, &district_campaign, &records, DISTRICT_RUNS);
    // Public helpers the tally used to call and no longer does (it indexes the roll and borrows
    // the ballots instead): `resolve` copies every effective ballot into its map.
    let start = Instant::now();
    let resolution = resolve(&roll, &records.0, &records.2, district_campaign.closed_at());
    let resolve_time = start.elapsed();
    let start = Instant::now();
    let scope_voters = roll.voters(&district_campaign.scope).len();
    let _ = roll.totals(&district_campaign.scope);
    let scope_time = start.elapsed();

    let totals = district.tally.totals;
    println!("tally benchmark (release build, median of runs)");
    println!(
        "{:<34} {:>10} {:>10} {:>9} {:>12} {:>12}",
        "case", "voter keys", "ballots", "runs", "median ms", "min ms"
    );
    for (name, m, records, runs) in [
        (
            "sample register (306 units)",
            &sample,
            &sample_records,
            SAMPLE_RUNS,
        ),
        (
            "district (100,000 households)",
            &district,
            &records,
            DISTRICT_RUNS,
        ),
    ] {
        println!(
            "{:<34} {:>10} {:>10} {:>9} {:>12.3} {:>12.3}",
            name,
            m.tally.totals.headcount,
            records.0.len(),
            runs,
            ms(m.median),
            ms(m.min)
        );
    }
    println!(
        "district roll: build {:.1} ms, hash {:.1} ms ({}), {} units, {} voter keys",
        ms(roll_build),
        ms(roll_hash_time),
        &roll_hash[..16],
        totals.units,
        totals.headcount
    );
    println!(
        "public helpers (not on the tally's path): resolve() {:.1} ms ({} effective, copied), Roll::voters + Roll::totals {:.1} ms ({} keys)",
        ms(resolve_time),
        resolution.effective.len(),
        ms(scope_time),
        scope_voters
    );
    println!(
        "tally JSON: sample {} bytes, district {} bytes",
        sample.json_bytes, district.json_bytes
    );
    println!(
        "tally JSON SHA-256: sample {}, district {}",
        &sample.json_sha256[..16],
        &district.json_sha256[..16]
    );
    println!(
        "inputs hash: sample {}, district {}",
        &sample.tally.inputs_hash[..16],
        &district.tally.inputs_hash[..16]
    );

    let json = serde_json::json!({
        "bench": "tally",
        "sample_register": {
            "units": sample.tally.totals.units,
            "voter_keys": sample.tally.totals.headcount,
            "ballots": sample_records.0.len(),
            "returned_headcount": sample.tally.returned.headcount,
            "runs": SAMPLE_RUNS,
            "roll_build_ms": sample_roll_ms,
            "tally_median_ms": ms(sample.median),
            "tally_min_ms": ms(sample.min),
            "tally_json_bytes": sample.json_bytes,
            "tally_json_sha256": sample.json_sha256,
            "inputs_hash": sample.tally.inputs_hash,
        },
        "district_100k": {
            "units": totals.units,
            "voter_keys": totals.headcount,
            "ballots": records.0.len(),
            "deliveries": records.1.len(),
            "adjudications": records.2.len(),
            "open_conflicts": district.tally.conflicts.len(),
            "returned_headcount": district.tally.returned.headcount,
            "runs": DISTRICT_RUNS,
            "roll_build_ms": ms(roll_build),
            "roll_hash_ms": ms(roll_hash_time),
            "resolve_ms": ms(resolve_time),
            "scope_voters_and_totals_ms": ms(scope_time),
            "tally_median_ms": ms(district.median),
            "tally_min_ms": ms(district.min),
            "tally_json_bytes": district.json_bytes,
            "tally_json_sha256": district.json_sha256,
            "inputs_hash": district.tally.inputs_hash,
        },
    });
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&out).with_context(|| out.display().to_string())?;
    let file = out.join("tally.json");
    std::fs::write(&file, serde_json::to_string_pretty(&json)? + "\n")?;
    println!("wrote {}", file.display());
    Ok(())
}

//! [`Views`] over the projection tables, written once for every SQL backend: a backend lends
//! a connection ([`SqlRead`]) and the queries here run on it through [`Sql`].

use std::collections::{BTreeMap, HashMap};

use doorstep_core::conflicts::FieldConflict;
use doorstep_core::model::Millis;

use super::sql::{Dialect, Lite, Sql, args};
use super::views::{
    AreaHeadcount, BallotRecordRow, BuildingProgress, BuildingRow, CampaignRow, ExportRows,
    ExportSnapshot, FiguresSnapshot, HouseholdRow, OrderRow, UnitEvent, UnitRow, Views, VisitRow,
};
use super::{SqliteStorage, StorageError, StorageResult};

/// A SQL backend that lends a connection for reads.
pub trait SqlRead: Send + Sync {
    /// Run `f` on a connection that sees the last committed state.
    fn read_sql<T>(&self, f: impl FnOnce(&mut dyn Sql) -> StorageResult<T>) -> StorageResult<T>;
    /// Run `f` inside one read transaction, so several queries see one consistent state.
    fn snapshot_sql<T>(&self, f: impl FnOnce(&mut dyn Sql) -> StorageResult<T>)
    -> StorageResult<T>;
}

impl SqlRead for SqliteStorage {
    fn read_sql<T>(&self, f: impl FnOnce(&mut dyn Sql) -> StorageResult<T>) -> StorageResult<T> {
        self.read(|c| f(&mut Lite(c)))
    }

    fn snapshot_sql<T>(
        &self,
        f: impl FnOnce(&mut dyn Sql) -> StorageResult<T>,
    ) -> StorageResult<T> {
        self.read(|c| {
            // A read transaction on the reader: every query in it sees one WAL snapshot.
            let tx = c.unchecked_transaction()?;
            let value = f(&mut Lite(&tx))?;
            tx.finish()?;
            Ok(value)
        })
    }
}

impl<B: SqlRead> Views for B {
    fn campaign_rows(&self) -> StorageResult<Vec<CampaignRow>> {
        self.read_sql(|db| {
            db.query(
                "SELECT campaign, community, title, kind, status, closed_at, roll_hash
                 FROM p_campaigns ORDER BY campaign",
                args![],
            )?
            .iter()
            .map(|r| {
                Ok(CampaignRow {
                    campaign: r.get(0)?,
                    community: r.get(1)?,
                    title: r.get(2)?,
                    kind: r.get(3)?,
                    status: r.get(4)?,
                    closed_at: r.get(5)?,
                    roll_hash: r.get(6)?,
                })
            })
            .collect()
        })
    }

    fn campaign_community(&self, id: &str) -> StorageResult<Option<String>> {
        self.read_sql(|db| {
            match db.query_opt(
                "SELECT community FROM p_campaigns WHERE campaign = ?1",
                args![id],
            )? {
                Some(row) => Ok(Some(row.get(0)?)),
                None => Ok(None),
            }
        })
    }

    fn order_rows(
        &self,
        community: Option<&str>,
        building: Option<&str>,
    ) -> StorageResult<Vec<OrderRow>> {
        self.read_sql(|db| order_rows_in(db, community, building))
    }

    fn building_of_unit(&self, community: &str, unit: &str) -> StorageResult<Option<String>> {
        self.read_sql(|db| {
            match db.query_opt(
                "SELECT building FROM p_units WHERE community = ?1 AND unit = ?2",
                args![community, unit],
            )? {
                Some(row) => Ok(Some(row.get(0)?)),
                None => Ok(None),
            }
        })
    }

    fn ballot_receipts(&self, campaign: &str) -> StorageResult<BTreeMap<String, Millis>> {
        self.read_sql(|db| {
            db.query(
                "SELECT ballot, received_at FROM ballot_receipts WHERE campaign = ?1",
                args![campaign],
            )?
            .iter()
            .map(|r| Ok((r.get(0)?, r.get(1)?)))
            .collect()
        })
    }

    fn unit_visits(
        &self,
        community: &str,
        building: &str,
    ) -> StorageResult<Vec<(String, String, Millis)>> {
        self.read_sql(|db| {
            db.query(
                "SELECT v.unit, v.outcome, v.at FROM p_visits v
                 JOIN p_campaigns k ON k.campaign = v.campaign
                 WHERE k.community = ?1 AND v.building = ?2 ORDER BY v.at, v.id, v.campaign",
                args![community, building],
            )?
            .iter()
            .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .collect()
        })
    }

    fn visit_times_by_account(&self) -> StorageResult<HashMap<String, Vec<Millis>>> {
        self.read_sql(|db| {
            let mut out: HashMap<String, Vec<Millis>> = HashMap::new();
            for r in db.query("SELECT by, at FROM p_visits", args![])? {
                out.entry(r.get(0)?).or_default().push(r.get(1)?);
            }
            Ok(out)
        })
    }

    /// Every branch is an index lookup (`p_visits_unit`, `p_deliveries_voter`,
    /// `p_ballots_unit`, `p_ballots_voter`, `p_adjudications_voter`): ≈2 ms at 100,000
    /// households, where scans took 8.7 s. A ballot is found by its unit or, when collected
    /// for another unit, by its owner's voter key: each ballot once.
    fn unit_timeline(&self, community: &str, unit: &str) -> StorageResult<Vec<UnitEvent>> {
        self.read_sql(|db| {
            db.query(
                "SELECT v.at, v.campaign, 'visit', v.by, v.outcome, NULL FROM p_visits v
                   JOIN p_campaigns k ON k.campaign = v.campaign
                  WHERE k.community = ?1 AND v.unit = ?2
                 UNION ALL
                 SELECT d.at, d.campaign, 'delivery', d.by, d.unit, NULL FROM p_deliveries d
                   JOIN p_campaigns k ON k.campaign = d.campaign
                  WHERE k.community = ?1 AND d.voter_key =
                        (SELECT voter_key FROM p_units WHERE community = ?1 AND unit = ?2)
                 UNION ALL
                 SELECT b.collected_at, b.campaign,
                        CASE WHEN b.supersedes IS NULL THEN 'ballot' ELSE 'correction' END,
                        b.by, b.id, COALESCE(b.method, 'door') FROM p_ballots b
                   JOIN p_campaigns k ON k.campaign = b.campaign
                  WHERE k.community = ?1 AND b.unit = ?2
                 UNION ALL
                 SELECT b.collected_at, b.campaign,
                        CASE WHEN b.supersedes IS NULL THEN 'ballot' ELSE 'correction' END,
                        b.by, b.id, COALESCE(b.method, 'door') FROM p_ballots b
                   JOIN p_campaigns k ON k.campaign = b.campaign
                  WHERE k.community = ?1 AND b.unit <> ?2 AND b.voter_key =
                        (SELECT voter_key FROM p_units WHERE community = ?1 AND unit = ?2)
                 UNION ALL
                 SELECT a.at, a.campaign, 'adjudication', a.by, a.reason, NULL FROM p_adjudications a
                   JOIN p_campaigns k ON k.campaign = a.campaign
                  WHERE k.community = ?1 AND a.voter_key =
                        (SELECT voter_key FROM p_units WHERE community = ?1 AND unit = ?2)
                 ORDER BY 1, 3, 2, 4, 5",
                args![community, unit],
            )?
            .iter()
            .map(|r| {
                let kind: String = r.get(2)?;
                Ok(UnitEvent {
                    at: r.get(0)?,
                    campaign: r.get(1)?,
                    kind: match kind.as_str() {
                        "visit" => "visit",
                        "delivery" => "delivery",
                        "ballot" => "ballot",
                        "correction" => "correction",
                        _ => "adjudication",
                    },
                    by: r.get(3)?,
                    detail: r.get(4)?,
                    method: r.get(5)?,
                })
            })
            .collect()
        })
    }

    fn building_rows(&self, community: Option<&str>) -> StorageResult<Vec<BuildingRow>> {
        self.read_sql(|db| {
            db.query(
                "SELECT b.community, b.building, b.label, b.entrances,
                        COUNT(u.unit), CAST(COALESCE(SUM(u.area), 0) AS BIGINT)
                 FROM p_buildings b
                 LEFT JOIN p_units u ON u.community = b.community AND u.building = b.building
                 WHERE CAST(?1 AS TEXT) IS NULL OR b.community = ?1
                 GROUP BY b.community, b.building, b.label, b.entrances
                 ORDER BY b.community, b.building",
                args![community],
            )?
            .iter()
            .map(|r| {
                Ok(BuildingRow {
                    community: r.get(0)?,
                    building: r.get(1)?,
                    label: r.get(2)?,
                    entrances: r.get(3)?,
                    units: r.get(4)?,
                    area: r.get(5)?,
                    assigned: Vec::new(),
                })
            })
            .collect()
        })
    }

    fn unit_rows(&self, community: &str, building: &str) -> StorageResult<Vec<UnitRow>> {
        self.read_sql(|db| {
            db.query(
                "SELECT unit, building, entrance, floor, room, area, area_source, sale_status,
                        voter_key
                 FROM p_units WHERE community = ?1 AND building = ?2 ORDER BY unit",
                args![community, building],
            )?
            .iter()
            .map(|r| {
                Ok(UnitRow {
                    unit: r.get(0)?,
                    building: r.get(1)?,
                    entrance: r.get(2)?,
                    floor: r.get(3)?,
                    room: r.get(4)?,
                    area: r.get(5)?,
                    area_source: r.get(6)?,
                    sale_status: r.get(7)?,
                    voter_key: r.get(8)?,
                })
            })
            .collect()
        })
    }

    fn household_rows(&self, community: &str, building: &str) -> StorageResult<Vec<HouseholdRow>> {
        self.read_sql(|db| {
            db.query(
                "SELECT unit, contact_name, phone, occupancy, residents FROM p_households
                 WHERE community = ?1 AND building = ?2 ORDER BY unit",
                args![community, building],
            )?
            .iter()
            .map(|r| {
                Ok(HouseholdRow {
                    unit: r.get(0)?,
                    contact_name: r.get(1)?,
                    phone: r.get(2)?,
                    occupancy: r.get(3)?,
                    residents: r.get(4)?,
                })
            })
            .collect()
        })
    }

    fn household_conflicts(
        &self,
        community: Option<&str>,
        building: Option<&str>,
    ) -> StorageResult<Vec<FieldConflict>> {
        self.read_sql(|db| {
            crate::projections::household_conflicts(db, community, building).map_err(projection)
        })
    }

    fn campaign_version(&self, campaign: &str) -> StorageResult<i64> {
        self.read_sql(|db| crate::projections::campaign_version(db, campaign).map_err(projection))
    }

    fn figures_snapshot(&self, campaign: &str) -> StorageResult<Option<FiguresSnapshot>> {
        // One snapshot: the counter and every table read agree.
        self.snapshot_sql(|db| {
            let version = crate::projections::campaign_version(db, campaign).map_err(projection)?;
            let Some(inputs) =
                crate::projections::tally_inputs(db, campaign).map_err(projection)?
            else {
                return Ok(None);
            };
            let status: String = db
                .query_one(
                    "SELECT status FROM p_campaigns WHERE campaign = ?1",
                    args![campaign],
                )?
                .get(0)?;
            let buildings = building_progress(db, campaign)?;
            let ballot_buildings = db
                .query(
                    "SELECT id, building FROM p_ballots WHERE campaign = ?1",
                    args![campaign],
                )?
                .iter()
                .map(|r| Ok((r.get(0)?, r.get(1)?)))
                .collect::<StorageResult<HashMap<String, String>>>()?;
            Ok(Some(FiguresSnapshot {
                version,
                inputs,
                status,
                buildings,
                ballot_buildings,
            }))
        })
    }

    fn export_snapshot(
        &self,
        campaign: &str,
        rows: ExportRows,
    ) -> StorageResult<Option<ExportSnapshot>> {
        self.snapshot_sql(|db| {
            let Some(inputs) =
                crate::projections::tally_inputs(db, campaign).map_err(projection)?
            else {
                return Ok(None);
            };
            let mut snapshot = ExportSnapshot {
                inputs,
                ballots: Vec::new(),
                visits: Vec::new(),
                orders: Vec::new(),
            };
            match rows {
                ExportRows::None => {}
                ExportRows::Ballots => {
                    snapshot.ballots = db
                        .query(
                            "SELECT id, building, unit, voter_key, collected_at, by,
                                    COALESCE(method, 'door'), COALESCE(supersedes, ''),
                                    received_at, late_synced, answers
                             FROM p_ballots WHERE campaign = ?1 ORDER BY id, building",
                            args![campaign],
                        )?
                        .iter()
                        .map(|r| {
                            Ok(BallotRecordRow {
                                id: r.get(0)?,
                                building: r.get(1)?,
                                unit: r.get(2)?,
                                voter_key: r.get(3)?,
                                collected_at: r.get(4)?,
                                by: r.get(5)?,
                                method: r.get(6)?,
                                supersedes: r.get(7)?,
                                received_at: r.get(8)?,
                                late_synced: r.get::<i64>(9)? != 0,
                                answers: r.get(10)?,
                            })
                        })
                        .collect::<StorageResult<Vec<_>>>()?;
                }
                ExportRows::Visits => {
                    snapshot.visits = db
                        .query(
                            "SELECT id, building, unit, outcome, at, by FROM p_visits
                             WHERE campaign = ?1 ORDER BY at, id, building",
                            args![campaign],
                        )?
                        .iter()
                        .map(|r| {
                            Ok(VisitRow {
                                id: r.get(0)?,
                                building: r.get(1)?,
                                unit: r.get(2)?,
                                outcome: r.get(3)?,
                                at: r.get(4)?,
                                by: r.get(5)?,
                            })
                        })
                        .collect::<StorageResult<Vec<_>>>()?;
                }
                ExportRows::Orders => {
                    let community = snapshot.inputs.campaign.community.clone();
                    snapshot.orders = order_rows_in(db, Some(community.as_str()), None)?;
                }
            }
            Ok(Some(snapshot))
        })
    }
}

fn projection(e: crate::projections::ProjectionError) -> StorageError {
    StorageError::Projection(e.to_string())
}

/// The area of the owners with a ballot collected in a building (their units there). SQLite is
/// told which index to use; PostgreSQL's planner needs no hint (and has no such syntax).
const BALLOT_AREAS_SQLITE: &str = "SELECT x.building, CAST(SUM(x.area) AS BIGINT), 0 FROM p_roll x
  WHERE x.campaign = ?1 AND EXISTS (
        SELECT 1 FROM p_ballots b INDEXED BY p_ballots_voter
         WHERE b.campaign = x.campaign AND b.voter_key = x.voter_key
           AND b.building = x.building)
  GROUP BY x.building";
const BALLOT_AREAS_POSTGRES: &str =
    "SELECT x.building, CAST(SUM(x.area) AS BIGINT), 0 FROM p_roll x
  WHERE x.campaign = ?1 AND EXISTS (
        SELECT 1 FROM p_ballots b
         WHERE b.campaign = x.campaign AND b.voter_key = x.voter_key
           AND b.building = x.building)
  GROUP BY x.building";

/// Field progress per building of the roll: one grouped query per table over the campaign's
/// rows, merged here by building. Each query is a plain index range scan whatever SQLite's
/// planner decides (correlated subqueries ran once per roll row: 8.7 s at 100,000 units; one
/// joined statement of CTEs was planned into a nested scan by the bundled SQLite).
fn building_progress(db: &mut dyn Sql, campaign: &str) -> StorageResult<Vec<BuildingProgress>> {
    let ballot_areas = match db.dialect() {
        Dialect::Sqlite => BALLOT_AREAS_SQLITE,
        Dialect::Postgres => BALLOT_AREAS_POSTGRES,
    };
    let mut grouped = |sql: &str| -> StorageResult<HashMap<String, (i64, i64)>> {
        db.query(sql, args![campaign])?
            .iter()
            .map(|r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
            .collect()
    };
    let visits = grouped(
        "SELECT building, COUNT(DISTINCT unit), COUNT(*) FROM p_visits
          WHERE campaign = ?1 GROUP BY building",
    )?;
    let deliveries = grouped(
        "SELECT building, COUNT(*), 0 FROM p_deliveries WHERE campaign = ?1 GROUP BY building",
    )?;
    let ballots = grouped(
        "SELECT building, COUNT(DISTINCT voter_key), CAST(SUM(late_synced) AS BIGINT)
           FROM p_ballots WHERE campaign = ?1 GROUP BY building",
    )?;
    let areas = grouped(ballot_areas)?;
    let rows = db
        .query(
            "SELECT building, COUNT(*) FROM p_roll WHERE campaign = ?1
              GROUP BY building ORDER BY building",
            args![campaign],
        )?
        .iter()
        .map(|r| Ok((r.get::<String>(0)?, r.get::<i64>(1)?)))
        .collect::<StorageResult<Vec<_>>>()?;
    let of = |map: &HashMap<String, (i64, i64)>, building: &str| {
        map.get(building).copied().unwrap_or((0, 0))
    };
    Ok(rows
        .into_iter()
        .map(|(building, units)| {
            let (visited_units, visits_n) = of(&visits, &building);
            let (owners, late_synced) = of(&ballots, &building);
            BuildingProgress {
                units,
                visited_units,
                visits: visits_n,
                deliveries: of(&deliveries, &building).0,
                ballots_collected: AreaHeadcount {
                    headcount: owners,
                    area: of(&areas, &building).0,
                },
                late_synced,
                building,
            }
        })
        .collect())
}

/// The work orders of `community` and `building` (each when given), oldest first.
fn order_rows_in(
    db: &mut dyn Sql,
    community: Option<&str>,
    building: Option<&str>,
) -> StorageResult<Vec<OrderRow>> {
    db.query(
        "SELECT community, building, id, unit, title, status, assignee, created_at,
                created_by, events
         FROM p_orders WHERE (CAST(?1 AS TEXT) IS NULL OR community = ?1)
           AND (CAST(?2 AS TEXT) IS NULL OR building = ?2)
         ORDER BY created_at, id, community, building",
        args![community, building],
    )?
    .iter()
    .map(|r| {
        Ok(OrderRow {
            community: r.get(0)?,
            building: r.get(1)?,
            id: r.get(2)?,
            unit: r.get(3)?,
            title: r.get(4)?,
            status: r.get(5)?,
            assignee: r.get(6)?,
            created_at: r.get(7)?,
            created_by: r.get(8)?,
            events: r.get(9)?,
        })
    })
    .collect()
}

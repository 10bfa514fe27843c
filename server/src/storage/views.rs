//! What the admin API and the dashboard read from the projections: campaigns, work orders,
//! buildings, units, households and their conflicts, the field activity of units and accounts,
//! and what a campaign's figures and exports are made from. A backend answers these from its
//! own tables, so no handler runs SQL (issue 12's seam).

use std::collections::{BTreeMap, HashMap};

use doorstep_core::conflicts::FieldConflict;
use doorstep_core::model::Millis;
use serde::Serialize;

use super::StorageResult;

/// One campaign in the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CampaignRow {
    pub campaign: String,
    pub community: String,
    pub title: String,
    pub kind: String,
    pub status: String,
    pub closed_at: Option<Millis>,
    pub roll_hash: Option<String>,
}

/// One 微心愿 work order as projected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderRow {
    pub community: String,
    pub building: String,
    pub id: String,
    pub unit: String,
    pub title: String,
    pub status: String,
    pub assignee: Option<String>,
    pub created_at: i64,
    pub created_by: String,
    pub events: i64,
}

/// One event in a unit's field history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitEvent {
    pub at: Millis,
    pub campaign: String,
    /// `visit`, `delivery`, `ballot`, `correction` (a ballot superseding another) or
    /// `adjudication`.
    pub kind: &'static str,
    /// The account that recorded it (an officer for adjudications).
    pub by: String,
    /// The visit's outcome, the ballot's id, or the adjudication's reason.
    pub detail: String,
    /// How a ballot came back (`door`, `proxy`, `station`, `returned`; schema-1 ballots read
    /// as `door`); `None` for the other kinds.
    pub method: Option<String>,
}

/// One building with its counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildingRow {
    pub community: String,
    pub building: String,
    pub label: String,
    pub entrances: i64,
    pub units: i64,
    /// Sum of unit areas, 0.01 m².
    pub area: i64,
    /// Account ids of the building heads assigned.
    pub assigned: Vec<String>,
}

/// One unit of the register as projected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitRow {
    pub unit: String,
    pub building: String,
    pub entrance: String,
    pub floor: i64,
    pub room: String,
    pub area: i64,
    pub area_source: String,
    pub sale_status: String,
    pub voter_key: String,
}

/// One household as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HouseholdRow {
    pub unit: String,
    pub contact_name: String,
    /// Whole here; the admin API masks it (`138****0945`) for everyone but admins.
    pub phone: String,
    pub occupancy: String,
    pub residents: i64,
}

/// Area and headcount.
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct AreaHeadcount {
    pub area: i64,
    pub headcount: i64,
}

/// One building's field progress.
#[derive(Debug, Clone, Serialize)]
pub struct BuildingProgress {
    pub building: String,
    pub units: i64,
    pub visited_units: i64,
    pub visits: i64,
    pub deliveries: i64,
    /// Owners (voter keys) of this building with at least one ballot collected here, and the
    /// area of their units in this building.
    pub ballots_collected: AreaHeadcount,
    pub late_synced: i64,
}

/// What a campaign's figures are computed from, read in one snapshot.
#[derive(Debug)]
pub struct FiguresSnapshot {
    /// The campaign's change counter when read.
    pub version: i64,
    pub inputs: crate::projections::TallyInputs,
    /// The lifecycle status as projected (`draft`, `open`, …).
    pub status: String,
    /// Field progress per building of the roll.
    pub buildings: Vec<BuildingProgress>,
    /// Ballot id → building of the field document holding it.
    pub ballot_buildings: HashMap<String, String>,
}

/// One stored ballot as the ballots export lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BallotRecordRow {
    pub id: String,
    pub building: String,
    pub unit: String,
    pub voter_key: String,
    pub collected_at: Millis,
    pub by: String,
    /// How it came back; schema-1 ballots (no method) read `door`.
    pub method: String,
    /// The ballot it corrects, or empty.
    pub supersedes: String,
    pub received_at: Millis,
    pub late_synced: bool,
    /// The answers as stored JSON.
    pub answers: String,
}

/// One visit as the visits export lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitRow {
    pub id: String,
    pub building: String,
    pub unit: String,
    pub outcome: String,
    pub at: Millis,
    pub by: String,
}

/// Which rows an export reads beside the tally inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportRows {
    None,
    /// The campaign's ballots.
    Ballots,
    /// The campaign's visits, oldest first.
    Visits,
    /// The work orders of the campaign's community, oldest first.
    Orders,
}

/// What one export is made from, read in one snapshot (the rows and the inputs hash agree);
/// the lists not asked for are empty.
#[derive(Debug)]
pub struct ExportSnapshot {
    pub inputs: crate::projections::TallyInputs,
    pub ballots: Vec<BallotRecordRow>,
    pub visits: Vec<VisitRow>,
    pub orders: Vec<OrderRow>,
}

/// Reads over the projections. Every method is blocking; call it off the async runtime.
pub trait Views: Send + Sync {
    /// Every campaign of the server, by id.
    fn campaign_rows(&self) -> StorageResult<Vec<CampaignRow>>;
    /// The community of campaign `id`, when it exists.
    fn campaign_community(&self, id: &str) -> StorageResult<Option<String>>;
    /// The work orders of `community` and `building` (each when given), oldest first.
    fn order_rows(
        &self,
        community: Option<&str>,
        building: Option<&str>,
    ) -> StorageResult<Vec<OrderRow>>;
    /// The building of `unit` in `community`, when the register has the unit.
    fn building_of_unit(&self, community: &str, unit: &str) -> StorageResult<Option<String>>;
    /// Ballot id → when the server first received it, for one campaign.
    fn ballot_receipts(&self, campaign: &str) -> StorageResult<BTreeMap<String, Millis>>;
    /// (unit, outcome, at) of every visit to a unit of `building` in `community`, in any
    /// campaign, oldest first.
    fn unit_visits(
        &self,
        community: &str,
        building: &str,
    ) -> StorageResult<Vec<(String, String, Millis)>>;
    /// Account id → the times of every visit it recorded.
    fn visit_times_by_account(&self) -> StorageResult<HashMap<String, Vec<Millis>>>;
    /// Everything recorded in the field about one unit of `community`, oldest first: visits at
    /// its door, deliveries and ballots of its owner (by voter key, wherever they were
    /// collected), and officers' decisions on them.
    fn unit_timeline(&self, community: &str, unit: &str) -> StorageResult<Vec<UnitEvent>>;
    /// The buildings of `community` (every community when `None`) with their unit counts and
    /// areas; `assigned` is left empty (assignments belong to the directory).
    fn building_rows(&self, community: Option<&str>) -> StorageResult<Vec<BuildingRow>>;
    /// The units of one building, by unit code.
    fn unit_rows(&self, community: &str, building: &str) -> StorageResult<Vec<UnitRow>>;
    /// The households of one building, by unit code, names and phones whole.
    fn household_rows(&self, community: &str, building: &str) -> StorageResult<Vec<HouseholdRow>>;
    /// Household fields edited concurrently (every value kept), in `community` and `building`
    /// when given.
    fn household_conflicts(
        &self,
        community: Option<&str>,
        building: Option<&str>,
    ) -> StorageResult<Vec<FieldConflict>>;
    /// Campaign `campaign`'s change counter: bumped in the transaction that stores any change
    /// to its campaign or field documents.
    fn campaign_version(&self, campaign: &str) -> StorageResult<i64>;
    /// Everything a campaign's figures are computed from, in one snapshot (the counter and
    /// every table read agree); `None` when the campaign does not exist.
    fn figures_snapshot(&self, campaign: &str) -> StorageResult<Option<FiguresSnapshot>>;
    /// The tally inputs of `campaign` and the `rows` an export needs, in one snapshot; `None`
    /// when the campaign does not exist.
    fn export_snapshot(
        &self,
        campaign: &str,
        rows: ExportRows,
    ) -> StorageResult<Option<ExportSnapshot>>;
}

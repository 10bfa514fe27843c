//! Projections: plain tables derived from documents (units, voter keys, households, campaigns,
//! the frozen roll, visits, deliveries, ballots, adjudications, work orders), updated inside the
//! same transaction that stores a document change, so the tally and the dashboard read tables.
//! They can be rebuilt from documents at any time (`doorstep-server rebuild-projections`).
//!
//! The storage layer calls [`migrate`] when it opens the database, [`document_changed`] for
//! every document it writes, and [`clear`] before a rebuild.
//!
//! A change is projected record by record: the paths it wrote (core's `rules::touches`, which
//! the rules already walked) name the records it added or changed, and only their rows are
//! written, so the cost follows the change, not the document. A document being created, a
//! rebuild, or a change that writes outside the record collections (the roll at publication,
//! a register edit) replaces the document's rows whole. The "projection == rebuild" tests keep
//! both paths honest. The one thing a document cannot tell is *when the server first saw* a
//! ballot, which decides whether it was synced late; that lives in `ballot_receipts`, a server
//! fact that a rebuild keeps (see [`clear`]), and `late_synced` is decided per ballot as it is
//! written (and again for the whole campaign when its close time changes).

use std::collections::{BTreeSet, HashMap};

use automerge::{AutoCommit, ObjType, ROOT, ReadDoc, Value};
use autosurgeon::{Hydrate, hydrate, hydrate_prop};
use doorstep_core::doc::{BuildingDoc, CampaignDoc, DocId, FieldDoc, OrdersDoc, RegisterDoc};
use doorstep_core::model::{Adjudication, Ballot, Delivery, Household, Visit, WorkOrder};
use doorstep_core::rules::{Checked, Records, Touch, Written};
use serde::Serialize;

use crate::args;
use crate::storage::sql::{Dialect, Param, Sql, SqlError, insert_rows, query_in};

/// Why a projection could not be updated; the surrounding transaction rolls back.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("database: {0}")]
    Sql(#[from] SqlError),
    #[error("document shape: {0}")]
    Shape(String),
}

/// The projection tables, written once for both databases: `{int}` and `{text}` stand for the
/// column types [`schema`] gives them. `ballot_receipts` is not a projection but the server's
/// own record of when each ballot first arrived; it is created here because only projections
/// read it.
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS p_buildings (
    community {text} NOT NULL,
    building  {text} NOT NULL,
    label     {text} NOT NULL,
    entrances {int} NOT NULL,
    PRIMARY KEY (community, building)
);
CREATE TABLE IF NOT EXISTS p_units (
    community   {text} NOT NULL,
    unit        {text} NOT NULL,
    building    {text} NOT NULL,
    entrance    {text} NOT NULL,
    floor       {int} NOT NULL,
    room        {text} NOT NULL,
    area        {int} NOT NULL,
    area_source {text} NOT NULL,
    sale_status {text} NOT NULL,
    voter_key   {text} NOT NULL,
    PRIMARY KEY (community, unit)
);
CREATE INDEX IF NOT EXISTS p_units_building ON p_units(community, building);
CREATE TABLE IF NOT EXISTS p_voter_keys (
    community {text} NOT NULL,
    voter_key {text} NOT NULL,
    units     {int} NOT NULL,
    area      {int} NOT NULL,
    PRIMARY KEY (community, voter_key)
);
CREATE TABLE IF NOT EXISTS p_households (
    community    {text} NOT NULL,
    unit         {text} NOT NULL,
    building     {text} NOT NULL,
    contact_name {text} NOT NULL,
    phone        {text} NOT NULL,
    occupancy    {text} NOT NULL,
    residents    {int} NOT NULL,
    PRIMARY KEY (community, unit)
);
CREATE TABLE IF NOT EXISTS p_campaigns (
    campaign   {text} PRIMARY KEY,
    community  {text} NOT NULL,
    title      {text} NOT NULL,
    kind       {text} NOT NULL,
    status     {text} NOT NULL,
    closed_at  {int},
    roll_hash  {text},
    definition {text} NOT NULL
);
CREATE TABLE IF NOT EXISTS p_roll (
    campaign  {text} NOT NULL,
    building  {text} NOT NULL,
    unit      {text} NOT NULL,
    entrance  {text} NOT NULL,
    voter_key {text} NOT NULL,
    area      {int} NOT NULL,
    PRIMARY KEY (campaign, building, unit)
);
CREATE TABLE IF NOT EXISTS p_visits (
    campaign {text} NOT NULL,
    building {text} NOT NULL,
    id       {text} NOT NULL,
    unit     {text} NOT NULL,
    outcome  {text} NOT NULL,
    at       {int} NOT NULL,
    by       {text} NOT NULL,
    PRIMARY KEY (campaign, building, id)
);
CREATE TABLE IF NOT EXISTS p_deliveries (
    campaign  {text} NOT NULL,
    building  {text} NOT NULL,
    id        {text} NOT NULL,
    voter_key {text} NOT NULL,
    unit      {text} NOT NULL,
    at        {int} NOT NULL,
    by        {text} NOT NULL,
    PRIMARY KEY (campaign, building, id)
);
CREATE TABLE IF NOT EXISTS p_ballots (
    campaign     {text} NOT NULL,
    building     {text} NOT NULL,
    id           {text} NOT NULL,
    voter_key    {text} NOT NULL,
    unit         {text} NOT NULL,
    collected_at {int} NOT NULL,
    by           {text} NOT NULL,
    supersedes   {text},
    answers      {text} NOT NULL,
    received_at  {int} NOT NULL,
    late_synced  {int} NOT NULL,
    method       {text},
    PRIMARY KEY (campaign, building, id)
);
CREATE INDEX IF NOT EXISTS p_ballots_voter ON p_ballots(campaign, voter_key);
CREATE TABLE IF NOT EXISTS p_adjudications (
    campaign   {text} NOT NULL,
    building   {text} NOT NULL,
    id         {text} NOT NULL,
    voter_key  {text} NOT NULL,
    considered {text} NOT NULL,
    chosen     {text},
    reason     {text} NOT NULL,
    at         {int} NOT NULL,
    by         {text} NOT NULL,
    PRIMARY KEY (campaign, building, id)
);
CREATE TABLE IF NOT EXISTS p_orders (
    community  {text} NOT NULL,
    building   {text} NOT NULL,
    id         {text} NOT NULL,
    unit       {text} NOT NULL,
    title      {text} NOT NULL,
    status     {text} NOT NULL,
    assignee   {text},
    created_at {int} NOT NULL,
    created_by {text} NOT NULL,
    events     {int} NOT NULL,
    PRIMARY KEY (community, building, id)
);
CREATE INDEX IF NOT EXISTS p_visits_unit ON p_visits(unit);
CREATE INDEX IF NOT EXISTS p_deliveries_voter ON p_deliveries(voter_key);
CREATE INDEX IF NOT EXISTS p_ballots_unit ON p_ballots(unit);
CREATE INDEX IF NOT EXISTS p_adjudications_voter ON p_adjudications(voter_key);
CREATE TABLE IF NOT EXISTS p_household_conflicts (
    community {text} NOT NULL,
    building  {text} NOT NULL,
    unit      {text} NOT NULL,
    field     {text} NOT NULL,
    doc       {text} NOT NULL,
    shown     {text} NOT NULL,
    vals      {text} NOT NULL,
    PRIMARY KEY (community, building, unit, field)
);
CREATE TABLE IF NOT EXISTS p_campaign_changes (
    campaign {text} NOT NULL,
    building {text} NOT NULL,
    changes  {int} NOT NULL,
    PRIMARY KEY (campaign, building)
);
CREATE TABLE IF NOT EXISTS p_meta (
    key   {text} PRIMARY KEY,
    value {int} NOT NULL
);
CREATE TABLE IF NOT EXISTS ballot_receipts (
    campaign    {text} NOT NULL,
    ballot      {text} NOT NULL,
    received_at {int} NOT NULL,
    PRIMARY KEY (campaign, ballot)
);
"#;

/// The p_meta table, which records the projections' shape; in the same notation as [`SCHEMA`].
const META: &str =
    "CREATE TABLE IF NOT EXISTS p_meta (key {text} PRIMARY KEY, value {int} NOT NULL);";

/// DDL in the notation of [`SCHEMA`] for `dialect`. PostgreSQL's integers are all `BIGINT`
/// (SQLite's are 64-bit), and its text compares and sorts by byte (`COLLATE "C"`), as SQLite's
/// `BINARY` does, so `ORDER BY` answers the same rows in the same order on both.
fn schema(ddl: &str, dialect: Dialect) -> String {
    let (int, text) = match dialect {
        Dialect::Sqlite => ("INTEGER", "TEXT"),
        Dialect::Postgres => ("BIGINT", "TEXT COLLATE \"C\""),
    };
    ddl.replace("{int}", int).replace("{text}", text)
}

/// The shape of the projection tables. Raise it whenever a table, column or index is added or
/// what a document projects to changes: on open, a database projected by another version is
/// rebuilt from its documents (see [`migrate`]), so no table is ever silently left empty or
/// short of a column.
pub const PROJECTION_VERSION: i64 = 4;

/// Every projection table, in the order [`clear`] empties them. `p_campaign_versions` is not
/// among them: a campaign's change counter only ever grows, across rebuilds too, so a cache
/// keyed by it can never mistake new figures for old ones.
pub const TABLES: [&str; 12] = [
    "p_buildings",
    "p_units",
    "p_voter_keys",
    "p_households",
    "p_campaigns",
    "p_roll",
    "p_visits",
    "p_deliveries",
    "p_ballots",
    "p_adjudications",
    "p_orders",
    "p_household_conflicts",
];

/// Create the projection tables when missing. Called on every open, inside the migration
/// transaction. Returns true when the stored projections were made by another
/// [`PROJECTION_VERSION`] (or none is recorded) and must be rebuilt from the documents; the
/// caller rebuilds and then calls [`mark_current`].
pub fn migrate(db: &mut dyn Sql) -> Result<bool, ProjectionError> {
    let dialect = db.dialect();
    db.batch(&schema(META, dialect))?;
    let stored: Option<i64> =
        match db.query_opt("SELECT value FROM p_meta WHERE key = 'version'", args![])? {
            Some(row) => Some(row.get(0)?),
            None => None,
        };
    let stale = stored != Some(PROJECTION_VERSION);
    if stale {
        // Another shape: the tables are made again (`CREATE TABLE IF NOT EXISTS` alone would
        // keep an old table without a new column) and the caller rebuilds them.
        for table in TABLES {
            db.batch(&format!("DROP TABLE IF EXISTS {table};"))?;
        }
        // Version 3 counted a campaign's changes in one row, which every sync of the
        // campaign's field documents updated: on PostgreSQL, a row lock held to the commit
        // by syncs of different buildings.
        db.batch("DROP TABLE IF EXISTS p_campaign_versions;")?;
    }
    db.batch(&schema(SCHEMA, dialect))?;
    Ok(stale)
}

/// Record that the projections now have this code's shape.
pub fn mark_current(db: &mut dyn Sql) -> Result<(), ProjectionError> {
    db.execute(
        "INSERT INTO p_meta (key, value) VALUES ('version', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        args![PROJECTION_VERSION],
    )?;
    Ok(())
}

/// Count one more change to what `campaign`'s figures are computed from: a change to its
/// field document of `building`, or to the campaign document itself (`building` empty). One
/// counter per document, so syncs of different buildings never wait for each other's row (on
/// PostgreSQL a row updated in a transaction stays locked until it commits); a document's own
/// writes are serialised by its lock already.
fn bump_campaign_version(
    db: &mut dyn Sql,
    campaign: &str,
    building: &str,
) -> Result<(), ProjectionError> {
    db.execute(
        "INSERT INTO p_campaign_changes (campaign, building, changes) VALUES (?1, ?2, 1)
         ON CONFLICT (campaign, building)
         DO UPDATE SET changes = p_campaign_changes.changes + 1",
        args![campaign, building],
    )?;
    Ok(())
}

/// How many changes `campaign`'s campaign and field documents have had (0 before the first),
/// summed over its documents' counters. Each counter only grows, so the sum grows with every
/// change: equal numbers mean equal tally inputs and progress, and the dashboard caches by it.
pub fn campaign_version(db: &mut dyn Sql, campaign: &str) -> Result<i64, ProjectionError> {
    Ok(db
        .query_one(
            "SELECT CAST(COALESCE(SUM(changes), 0) AS BIGINT) FROM p_campaign_changes
             WHERE campaign = ?1",
            args![campaign],
        )?
        .get(0)?)
}

/// Bring the projections of one document up to date with `doc` (its state after the change).
/// `checked` is what the rules found the change wrote (its paths, and the records they read);
/// `None` (a new document, a rebuild) projects the whole document.
pub fn document_changed(
    db: &mut dyn Sql,
    id: &DocId,
    doc: &AutoCommit,
    checked: Option<&Checked>,
    now: i64,
) -> Result<(), ProjectionError> {
    let touched = checked.map(|c| c.touches.as_slice());
    let reader = Reader {
        id,
        doc,
        known: checked.map(|c| &c.records),
    };
    match id {
        DocId::Register { .. } => {
            // Buildings are projected from the register so a building without units shows too.
            let register: RegisterDoc = read(id, doc)?;
            project_register(db, &register)
        }
        DocId::Building {
            community,
            building,
        } => match touched.and_then(|t| records_of(t, &["households"])) {
            Some(edited) => {
                let units: Vec<&str> = edited.iter().map(|(_, unit)| *unit).collect();
                for unit in &units {
                    match reader.household(unit)? {
                        Some(h) => upsert_household(db, community, building, unit, &h)?,
                        None => {
                            db.execute(
                                "DELETE FROM p_households WHERE community = ?1 AND unit = ?2",
                                args![community, unit],
                            )?;
                        }
                    }
                }
                project_household_conflicts(db, id, (community, building), doc, Some(&units))
            }
            None => {
                let value: BuildingDoc = read(id, doc)?;
                project_building(db, community, &value)?;
                project_household_conflicts(db, id, (community, building), doc, None)
            }
        },
        DocId::Campaign { campaign } => {
            let value: CampaignDoc = read(id, doc)?;
            project_campaign(db, campaign, &value)?;
            bump_campaign_version(db, campaign, "")
        }
        DocId::Field { campaign, building } => {
            match touched.and_then(|t| records_of(t, &FIELD_RECORDS)) {
                Some(records) => {
                    project_field_records(db, &reader, (campaign, building), &records, now)?
                }
                None => {
                    let field: FieldDoc = read(id, doc)?;
                    project_field(db, campaign, building, &field, now)?;
                }
            }
            bump_campaign_version(db, campaign, building)
        }
        DocId::Orders {
            community,
            building,
        } => match touched.and_then(|t| records_of(t, &["orders"])) {
            Some(orders) => {
                let mut present = Vec::with_capacity(orders.len());
                for (_, key) in orders {
                    match reader.order(key)? {
                        Some(o) => present.push(o),
                        None => {
                            db.execute(
                                "DELETE FROM p_orders WHERE community = ?1 AND building = ?2
                                 AND id = ?3",
                                args![community, building, key],
                            )?;
                        }
                    }
                }
                keep_last_per_id(&mut present, |o| &o.id);
                upsert_orders(db, community, building, &present)
            }
            None => {
                let orders: OrdersDoc = read(id, doc)?;
                project_orders(db, community, building, &orders)
            }
        },
    }
}

/// The record collections of a field document, projected record by record.
const FIELD_RECORDS: [&str; 4] = ["visits", "deliveries", "ballots", "adjudications"];

/// The `(collection, key)` records the touches wrote into, when every touch lies inside a
/// record of one of `collections`; `None` when something else was written too.
fn records_of<'t>(
    touches: &'t [Touch],
    collections: &[&str],
) -> Option<BTreeSet<(&'t str, &'t str)>> {
    let mut out = BTreeSet::new();
    for touch in touches {
        match touch.path.as_slice() {
            [collection, key, ..] if collections.contains(&collection.as_str()) => {
                out.insert((collection.as_str(), key.as_str()));
            }
            _ => return None,
        }
    }
    Some(out)
}

/// One record `collection/key` of `doc`; `None` when it is not there (any more).
fn record<T: Hydrate>(
    id: &DocId,
    doc: &AutoCommit,
    collection: &str,
    key: &str,
) -> Result<Option<T>, ProjectionError> {
    let shape = |e: String| ProjectionError::Shape(format!("{id} {collection}/{key}: {e}"));
    let map = match doc
        .get(ROOT, collection)
        .map_err(|e| shape(e.to_string()))?
    {
        Some((Value::Object(ObjType::Map), map)) => map,
        _ => return Ok(None),
    };
    if doc
        .get(&map, key)
        .map_err(|e| shape(e.to_string()))?
        .is_none()
    {
        return Ok(None);
    }
    hydrate_prop(doc, &map, key)
        .map(Some)
        .map_err(|e| shape(e.to_string()))
}

/// Reads touched records: the rules' copy when they read it, else the document.
struct Reader<'a> {
    id: &'a DocId,
    doc: &'a AutoCommit,
    known: Option<&'a Records>,
}

impl Reader<'_> {
    fn known(&self, collection: &str, key: &str) -> Option<&Written> {
        self.known?.get(&(collection.to_string(), key.to_string()))
    }

    fn household(&self, key: &str) -> Result<Option<Household>, ProjectionError> {
        match self.known("households", key) {
            Some(Written::Household(h)) => Ok(Some(h.clone())),
            _ => record(self.id, self.doc, "households", key),
        }
    }

    fn order(&self, key: &str) -> Result<Option<WorkOrder>, ProjectionError> {
        match self.known("orders", key) {
            Some(Written::Order(o)) => Ok(Some(o.clone())),
            _ => record(self.id, self.doc, "orders", key),
        }
    }

    fn field(&self, collection: &str, key: &str) -> Result<Option<Written>, ProjectionError> {
        if let Some(known) = self.known(collection, key) {
            return Ok(Some(known.clone()));
        }
        let (id, doc) = (self.id, self.doc);
        Ok(match collection {
            "visits" => record::<Visit>(id, doc, collection, key)?.map(Written::Visit),
            "deliveries" => record::<Delivery>(id, doc, collection, key)?.map(Written::Delivery),
            "ballots" => record::<Ballot>(id, doc, collection, key)?.map(Written::Ballot),
            _ => record::<Adjudication>(id, doc, collection, key)?.map(Written::Adjudication),
        })
    }
}

/// The rows of field records, gathered so each table is written in a few multi-row statements
/// (a day's sync brings dozens of records; on PostgreSQL every statement is a round trip).
#[derive(Default)]
struct FieldRows {
    visits: Vec<Visit>,
    deliveries: Vec<Delivery>,
    ballots: Vec<Ballot>,
    adjudications: Vec<Adjudication>,
}

impl FieldRows {
    fn write(
        mut self,
        db: &mut dyn Sql,
        (campaign, building): (&str, &str),
        now: i64,
    ) -> Result<(), ProjectionError> {
        keep_last_per_id(&mut self.visits, |v| &v.id);
        keep_last_per_id(&mut self.deliveries, |d| &d.id);
        keep_last_per_id(&mut self.ballots, |b| &b.id);
        keep_last_per_id(&mut self.adjudications, |a| &a.id);
        upsert_visits(db, campaign, building, &self.visits)?;
        upsert_deliveries(db, campaign, building, &self.deliveries)?;
        upsert_ballots(db, campaign, building, &self.ballots, now)?;
        upsert_adjudications(db, campaign, building, &self.adjudications)
    }
}

/// Where two records of one upsert carry the same id (stored under different keys: the rules
/// refuse that for new records, so only an old document can hold it), keep the later one, as
/// one upsert after the other would have left the row. A multi-row statement must not name a
/// row twice: PostgreSQL refuses to update one row twice in one statement.
fn keep_last_per_id<T>(items: &mut Vec<T>, id: impl Fn(&T) -> &str) {
    let mut last: HashMap<String, usize> = HashMap::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        last.insert(id(item).to_string(), i);
    }
    if last.len() == items.len() {
        return;
    }
    let mut i = 0;
    items.retain(|item| {
        let keep = last.get(id(item)) == Some(&i);
        i += 1;
        keep
    });
}

/// Write (or remove) the rows of the field records `records` (collection, key) of a change.
fn project_field_records(
    db: &mut dyn Sql,
    read: &Reader<'_>,
    (campaign, building): (&str, &str),
    records: &BTreeSet<(&str, &str)>,
    now: i64,
) -> Result<(), ProjectionError> {
    let mut rows = FieldRows::default();
    for &(collection, key) in records {
        match read.field(collection, key)? {
            Some(Written::Visit(v)) => rows.visits.push(v),
            Some(Written::Delivery(d)) => rows.deliveries.push(d),
            Some(Written::Ballot(b)) => rows.ballots.push(b),
            Some(Written::Adjudication(a)) => rows.adjudications.push(a),
            Some(other) => {
                return Err(ProjectionError::Shape(format!(
                    "{}: {collection}/{key} is not a field record: {other:?}",
                    read.id
                )));
            }
            None => {
                let sql = match collection {
                    "visits" => {
                        "DELETE FROM p_visits WHERE campaign = ?1 AND building = ?2 AND id = ?3"
                    }
                    "deliveries" => {
                        "DELETE FROM p_deliveries WHERE campaign = ?1 AND building = ?2 AND id = ?3"
                    }
                    "ballots" => {
                        "DELETE FROM p_ballots WHERE campaign = ?1 AND building = ?2 AND id = ?3"
                    }
                    "adjudications" => {
                        "DELETE FROM p_adjudications WHERE campaign = ?1 AND building = ?2
                         AND id = ?3"
                    }
                    other => {
                        return Err(ProjectionError::Shape(format!(
                            "{}: {other} is not a field record collection",
                            read.id
                        )));
                    }
                };
                db.execute(sql, args![campaign, building, key])?;
            }
        }
    }
    rows.write(db, (campaign, building), now)
}

/// Empty every projection table before a rebuild. `ballot_receipts` is kept: when a ballot
/// first reached the server is history, not something a document can tell again.
pub fn clear(db: &mut dyn Sql) -> Result<(), ProjectionError> {
    for table in TABLES {
        db.execute(&format!("DELETE FROM {table}"), args![])?;
    }
    Ok(())
}

fn read<T: autosurgeon::Hydrate>(id: &DocId, doc: &AutoCommit) -> Result<T, ProjectionError> {
    hydrate(doc).map_err(|e| ProjectionError::Shape(format!("{id}: {e}")))
}

/// The snake_case name serde gives a unit enum variant (`not_home`, `developer_unsold`).
pub fn enum_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<String, ProjectionError> {
    serde_json::to_string(value).map_err(|e| ProjectionError::Shape(e.to_string()))
}

fn project_register(db: &mut dyn Sql, register: &RegisterDoc) -> Result<(), ProjectionError> {
    db.execute(
        "DELETE FROM p_buildings WHERE community = ?1",
        args![register.community],
    )?;
    for b in register.buildings.values() {
        db.execute(
            "INSERT INTO p_buildings (community, building, label, entrances)
             VALUES (?1, ?2, ?3, ?4)",
            args![register.community, b.id, b.label, b.entrances.len() as i64],
        )?;
    }
    Ok(())
}

fn project_building(
    db: &mut dyn Sql,
    community: &str,
    doc: &BuildingDoc,
) -> Result<(), ProjectionError> {
    let building = &doc.building.id;
    db.execute(
        "DELETE FROM p_units WHERE community = ?1 AND building = ?2",
        args![community, building],
    )?;
    db.execute(
        "DELETE FROM p_households WHERE community = ?1 AND building = ?2",
        args![community, building],
    )?;
    for u in doc.units.values() {
        db.execute(
            "INSERT INTO p_units (community, unit, building, entrance, floor, room, area,
                 area_source, sale_status, voter_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            args![
                community,
                u.code,
                u.building,
                u.entrance,
                u.floor,
                u.room,
                u.area,
                enum_name(&u.area_source),
                enum_name(&u.sale_status),
                u.voter_key()
            ],
        )?;
    }
    for (unit, h) in &doc.households {
        upsert_household(db, community, building, unit, h)?;
    }
    // Voter keys span buildings (one owner, units in two buildings), so they are recounted for
    // the whole community from the unit rows.
    db.execute(
        "DELETE FROM p_voter_keys WHERE community = ?1",
        args![community],
    )?;
    db.execute(
        "INSERT INTO p_voter_keys (community, voter_key, units, area)
         SELECT community, voter_key, COUNT(*), CAST(SUM(area) AS BIGINT) FROM p_units
         WHERE community = ?1 GROUP BY community, voter_key",
        args![community],
    )?;
    Ok(())
}

fn upsert_household(
    db: &mut dyn Sql,
    community: &str,
    building: &str,
    unit: &str,
    h: &Household,
) -> Result<(), ProjectionError> {
    db.execute(
        "INSERT INTO p_households (community, unit, building, contact_name, phone, occupancy,
             residents)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (community, unit) DO UPDATE SET building = excluded.building,
             contact_name = excluded.contact_name, phone = excluded.phone,
             occupancy = excluded.occupancy, residents = excluded.residents",
        args![
            community,
            unit,
            building,
            h.contact_name,
            h.phone,
            enum_name(&h.occupancy),
            h.residents
        ],
    )?;
    Ok(())
}

/// The household fields of one building edited in parallel (Automerge kept every concurrent
/// value), read from the document as stored, so listing them never loads a document.
/// `units` limits it to the households a change wrote (only theirs can have changed); `None`
/// projects every household of the building.
fn project_household_conflicts(
    db: &mut dyn Sql,
    id: &DocId,
    (community, building): (&str, &str),
    doc: &AutoCommit,
    units: Option<&[&str]>,
) -> Result<(), ProjectionError> {
    let doc_id = id.to_string();
    let conflicts = match units {
        Some(units) => {
            for unit in units {
                db.execute(
                    "DELETE FROM p_household_conflicts
                     WHERE community = ?1 AND building = ?2 AND unit = ?3",
                    args![community, building, unit],
                )?;
            }
            doorstep_core::conflicts::household_conflicts_of(&doc_id, doc, units.iter().copied())
        }
        None => {
            db.execute(
                "DELETE FROM p_household_conflicts WHERE community = ?1 AND building = ?2",
                args![community, building],
            )?;
            doorstep_core::conflicts::household_conflicts_in(&doc_id, doc)
        }
    }
    .map_err(|e| ProjectionError::Shape(format!("{id}: {e}")))?;
    for c in conflicts {
        db.execute(
            "INSERT INTO p_household_conflicts (community, building, unit, field, doc, shown,
                 vals)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            args![
                community,
                building,
                c.unit,
                c.field,
                c.doc,
                c.shown,
                to_json(&c.values)?
            ],
        )?;
    }
    Ok(())
}

/// Parallel household edits of `community` (of one `building` when given), by building and
/// unit: what `GET /conflicts/households` and the dashboard list.
pub fn household_conflicts(
    db: &mut dyn Sql,
    community: Option<&str>,
    building: Option<&str>,
) -> Result<Vec<doorstep_core::conflicts::FieldConflict>, ProjectionError> {
    db.query(
        "SELECT doc, unit, field, shown, vals FROM p_household_conflicts
         WHERE (CAST(?1 AS TEXT) IS NULL OR community = ?1)
           AND (CAST(?2 AS TEXT) IS NULL OR building = ?2)
         ORDER BY community, building, unit, field",
        args![community, building],
    )?
    .iter()
    .map(|r| {
        Ok(doorstep_core::conflicts::FieldConflict {
            doc: r.get(0)?,
            unit: r.get(1)?,
            field: r.get(2)?,
            shown: r.get(3)?,
            values: json_column(&r.get::<String>(4)?)?,
        })
    })
    .collect()
}

fn project_campaign(
    db: &mut dyn Sql,
    campaign: &str,
    doc: &CampaignDoc,
) -> Result<(), ProjectionError> {
    let c = &doc.campaign;
    db.execute(
        "INSERT INTO p_campaigns (campaign, community, title, kind, status, closed_at,
             roll_hash, definition)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (campaign) DO UPDATE SET community = excluded.community,
             title = excluded.title, kind = excluded.kind, status = excluded.status,
             closed_at = excluded.closed_at, roll_hash = excluded.roll_hash,
             definition = excluded.definition",
        args![
            campaign,
            c.community,
            c.title,
            enum_name(&c.kind),
            enum_name(&c.status),
            c.closed_at(),
            c.roll_hash,
            to_json(c)?
        ],
    )?;
    mark_late(db, campaign)
}

/// A ballot is late-synced when the server first received it after the campaign closed.
fn mark_late(db: &mut dyn Sql, campaign: &str) -> Result<(), ProjectionError> {
    db.execute(
        "UPDATE p_ballots SET late_synced = COALESCE(
             (SELECT CASE WHEN p_ballots.received_at > c.closed_at THEN 1 ELSE 0 END
              FROM p_campaigns c
              WHERE c.campaign = p_ballots.campaign AND c.closed_at IS NOT NULL), 0)
         WHERE campaign = ?1",
        args![campaign],
    )?;
    Ok(())
}

fn project_field(
    db: &mut dyn Sql,
    campaign: &str,
    building: &str,
    doc: &FieldDoc,
    now: i64,
) -> Result<(), ProjectionError> {
    for sql in [
        "DELETE FROM p_roll WHERE campaign = ?1 AND building = ?2",
        "DELETE FROM p_visits WHERE campaign = ?1 AND building = ?2",
        "DELETE FROM p_deliveries WHERE campaign = ?1 AND building = ?2",
        "DELETE FROM p_ballots WHERE campaign = ?1 AND building = ?2",
        "DELETE FROM p_adjudications WHERE campaign = ?1 AND building = ?2",
    ] {
        db.execute(sql, args![campaign, building])?;
    }
    let mut roll = Vec::with_capacity(doc.roll.len() * 6);
    for e in doc.roll.values() {
        roll.extend_from_slice(args![
            campaign,
            building,
            e.unit,
            e.entrance,
            e.voter_key,
            e.area
        ]);
    }
    insert_rows(
        db,
        "INSERT INTO p_roll (campaign, building, unit, entrance, voter_key, area)",
        "",
        6,
        &roll,
    )?;
    FieldRows {
        visits: doc.visits.values().cloned().collect(),
        deliveries: doc.deliveries.values().cloned().collect(),
        ballots: doc.ballots.values().cloned().collect(),
        adjudications: doc.adjudications.values().cloned().collect(),
    }
    .write(db, (campaign, building), now)
}

fn upsert_visits(
    db: &mut dyn Sql,
    campaign: &str,
    building: &str,
    visits: &[Visit],
) -> Result<(), ProjectionError> {
    let outcomes: Vec<String> = visits.iter().map(|v| enum_name(&v.outcome)).collect();
    let mut params = Vec::with_capacity(visits.len() * 7);
    for (i, v) in visits.iter().enumerate() {
        params.extend_from_slice(args![
            campaign,
            building,
            v.id,
            v.unit,
            outcomes[i],
            v.at,
            v.by
        ]);
    }
    insert_rows(
        db,
        "INSERT INTO p_visits (campaign, building, id, unit, outcome, at, by)",
        "ON CONFLICT (campaign, building, id) DO UPDATE SET unit = excluded.unit,
             outcome = excluded.outcome, at = excluded.at, by = excluded.by",
        7,
        &params,
    )?;
    Ok(())
}

fn upsert_deliveries(
    db: &mut dyn Sql,
    campaign: &str,
    building: &str,
    deliveries: &[Delivery],
) -> Result<(), ProjectionError> {
    let mut params = Vec::with_capacity(deliveries.len() * 7);
    for d in deliveries {
        params.extend_from_slice(args![
            campaign,
            building,
            d.id,
            d.voter_key,
            d.unit,
            d.at,
            d.by
        ]);
    }
    insert_rows(
        db,
        "INSERT INTO p_deliveries (campaign, building, id, voter_key, unit, at, by)",
        "ON CONFLICT (campaign, building, id) DO UPDATE SET voter_key = excluded.voter_key,
             unit = excluded.unit, at = excluded.at, by = excluded.by",
        7,
        &params,
    )?;
    Ok(())
}

/// What a ballot's row holds beyond the ballot's own fields.
struct BallotRow {
    answers: String,
    method: Option<String>,
    received_at: i64,
    late: bool,
}

/// Ballots' rows, each with when the server first received it (kept in `ballot_receipts`,
/// `now` for a ballot seen for the first time) and whether that was after the campaign closed.
fn upsert_ballots(
    db: &mut dyn Sql,
    campaign: &str,
    building: &str,
    ballots: &[Ballot],
    now: i64,
) -> Result<(), ProjectionError> {
    if ballots.is_empty() {
        return Ok(());
    }
    let mut receipts = Vec::with_capacity(ballots.len() * 3);
    for b in ballots {
        receipts.extend_from_slice(args![campaign, b.id, now]);
    }
    insert_rows(
        db,
        "INSERT INTO ballot_receipts (campaign, ballot, received_at)",
        "ON CONFLICT (campaign, ballot) DO NOTHING",
        3,
        &receipts,
    )?;
    let ids: Vec<Param<'_>> = ballots.iter().map(|b| Param::Text(&b.id)).collect();
    let mut received = HashMap::with_capacity(ballots.len());
    for row in query_in(
        db,
        "SELECT ballot, received_at FROM ballot_receipts WHERE campaign = ?1 AND ballot",
        args![campaign],
        &ids,
    )? {
        received.insert(row.get::<String>(0)?, row.get::<i64>(1)?);
    }
    let closed_at: Option<i64> = match db.query_opt(
        "SELECT closed_at FROM p_campaigns WHERE campaign = ?1",
        args![campaign],
    )? {
        Some(row) => row.get(0)?,
        None => None,
    };
    let mut owned = Vec::with_capacity(ballots.len());
    for b in ballots {
        let at = *received.get(&b.id).unwrap_or_else(|| {
            panic!(
                "invariant: ballot {} has a receipt, inserted just above",
                b.id
            )
        });
        let late = closed_at.is_some_and(|closed| at > closed);
        owned.push(BallotRow {
            answers: to_json(&b.answers)?,
            method: b.method.as_ref().map(enum_name),
            received_at: at,
            late,
        });
    }
    let mut params = Vec::with_capacity(ballots.len() * 12);
    for (i, b) in ballots.iter().enumerate() {
        let row = &owned[i];
        params.extend_from_slice(args![
            campaign,
            building,
            b.id,
            b.voter_key,
            b.unit,
            b.collected_at,
            b.by,
            b.supersedes,
            row.answers,
            row.received_at,
            row.late,
            row.method
        ]);
    }
    insert_rows(
        db,
        "INSERT INTO p_ballots (campaign, building, id, voter_key, unit, collected_at, by,
             supersedes, answers, received_at, late_synced, method)",
        "ON CONFLICT (campaign, building, id) DO UPDATE SET voter_key = excluded.voter_key,
             unit = excluded.unit, collected_at = excluded.collected_at, by = excluded.by,
             supersedes = excluded.supersedes, answers = excluded.answers,
             received_at = excluded.received_at, late_synced = excluded.late_synced,
             method = excluded.method",
        12,
        &params,
    )?;
    Ok(())
}

fn upsert_adjudications(
    db: &mut dyn Sql,
    campaign: &str,
    building: &str,
    adjudications: &[Adjudication],
) -> Result<(), ProjectionError> {
    let mut owned = Vec::with_capacity(adjudications.len());
    for a in adjudications {
        owned.push(to_json(&a.considered)?);
    }
    let mut params = Vec::with_capacity(adjudications.len() * 9);
    for (i, a) in adjudications.iter().enumerate() {
        params.extend_from_slice(args![
            campaign,
            building,
            a.id,
            a.voter_key,
            owned[i],
            a.chosen,
            a.reason,
            a.at,
            a.by
        ]);
    }
    insert_rows(
        db,
        "INSERT INTO p_adjudications (campaign, building, id, voter_key, considered, chosen,
             reason, at, by)",
        "ON CONFLICT (campaign, building, id) DO UPDATE SET voter_key = excluded.voter_key,
             considered = excluded.considered, chosen = excluded.chosen,
             reason = excluded.reason, at = excluded.at, by = excluded.by",
        9,
        &params,
    )?;
    Ok(())
}

fn project_orders(
    db: &mut dyn Sql,
    community: &str,
    building: &str,
    doc: &OrdersDoc,
) -> Result<(), ProjectionError> {
    db.execute(
        "DELETE FROM p_orders WHERE community = ?1 AND building = ?2",
        args![community, building],
    )?;
    let mut orders: Vec<WorkOrder> = doc.orders.values().cloned().collect();
    keep_last_per_id(&mut orders, |o| &o.id);
    upsert_orders(db, community, building, &orders)
}

fn upsert_orders(
    db: &mut dyn Sql,
    community: &str,
    building: &str,
    orders: &[WorkOrder],
) -> Result<(), ProjectionError> {
    let statuses: Vec<String> = orders.iter().map(|o| enum_name(&o.status())).collect();
    let events: Vec<i64> = orders.iter().map(|o| o.events.len() as i64).collect();
    let mut params = Vec::with_capacity(orders.len() * 10);
    for (i, o) in orders.iter().enumerate() {
        params.extend_from_slice(args![
            community,
            building,
            o.id,
            o.unit,
            o.title,
            statuses[i],
            o.assignee,
            o.created_at,
            o.created_by,
            events[i]
        ]);
    }
    insert_rows(
        db,
        "INSERT INTO p_orders (community, building, id, unit, title, status, assignee,
             created_at, created_by, events)",
        "ON CONFLICT (community, building, id) DO UPDATE SET unit = excluded.unit,
             title = excluded.title, status = excluded.status, assignee = excluded.assignee,
             created_at = excluded.created_at, created_by = excluded.created_by,
             events = excluded.events",
        10,
        &params,
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reading projections back.
// ---------------------------------------------------------------------------------------------

/// Every projection row as text, table by table in primary-key order: what a rebuild must
/// reproduce exactly (the tests compare it before and after `rebuild_projections`).
pub fn dump(
    db: &mut dyn Sql,
) -> Result<std::collections::BTreeMap<String, Vec<Vec<String>>>, ProjectionError> {
    use crate::storage::sql::Value as Column;
    let mut out = std::collections::BTreeMap::new();
    for table in TABLES {
        // Every table has at least four columns, and its primary key among the first four.
        let rows = db
            .query(
                &format!("SELECT * FROM {table} ORDER BY 1, 2, 3, 4"),
                args![],
            )?
            .iter()
            .map(|row| {
                row.values()
                    .iter()
                    .map(|value| match value {
                        Column::Null => "NULL".to_string(),
                        Column::Int(n) => n.to_string(),
                        Column::Real(f) => f.to_string(),
                        Column::Text(t) => t.clone(),
                        Column::Bytes(b) => hex::encode(b),
                    })
                    .collect()
            })
            .collect();
        out.insert(table.to_string(), rows);
    }
    Ok(out)
}

/// Everything core's tally needs about one campaign, read from the projection tables only.
#[derive(Debug, Clone)]
pub struct TallyInputs {
    pub campaign: doorstep_core::model::Campaign,
    pub roll: Vec<doorstep_core::model::RollEntry>,
    pub ballots: Vec<doorstep_core::model::Ballot>,
    pub deliveries: Vec<doorstep_core::model::Delivery>,
    pub adjudications: Vec<doorstep_core::model::Adjudication>,
}

/// A JSON column read back.
fn json_column<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ProjectionError> {
    serde_json::from_str(text).map_err(|e| ProjectionError::Shape(format!("stored JSON: {e}")))
}

/// A unit enum stored by its [`enum_name`] (`proxy`), read back.
fn enum_column<T: serde::de::DeserializeOwned>(name: &str) -> Result<T, ProjectionError> {
    serde_json::from_value(serde_json::Value::String(name.to_string()))
        .map_err(|e| ProjectionError::Shape(format!("stored name {name:?}: {e}")))
}

/// The tally inputs of `campaign` from the tables, or `None` when the campaign is unknown.
pub fn tally_inputs(
    db: &mut dyn Sql,
    campaign: &str,
) -> Result<Option<TallyInputs>, ProjectionError> {
    use doorstep_core::model::{Adjudication, Ballot, Delivery, RollEntry};
    let Some(definition) = db.query_opt(
        "SELECT definition FROM p_campaigns WHERE campaign = ?1",
        args![campaign],
    )?
    else {
        return Ok(None);
    };
    let campaign_value = json_column(&definition.get::<String>(0)?)?;
    let roll = db
        .query(
            "SELECT unit, building, entrance, voter_key, area FROM p_roll WHERE campaign = ?1
             ORDER BY unit, building",
            args![campaign],
        )?
        .iter()
        .map(|r| {
            Ok(RollEntry {
                unit: r.get(0)?,
                building: r.get(1)?,
                entrance: r.get(2)?,
                voter_key: r.get(3)?,
                area: r.get(4)?,
            })
        })
        .collect::<Result<Vec<_>, ProjectionError>>()?;
    let ballots = db
        .query(
            "SELECT id, voter_key, unit, answers, collected_at, by, supersedes, method
             FROM p_ballots WHERE campaign = ?1 ORDER BY id, building",
            args![campaign],
        )?
        .iter()
        .map(|r| {
            Ok(Ballot {
                id: r.get(0)?,
                voter_key: r.get(1)?,
                unit: r.get(2)?,
                answers: json_column(&r.get::<String>(3)?)?,
                collected_at: r.get(4)?,
                by: r.get(5)?,
                supersedes: r.get(6)?,
                method: r
                    .get::<Option<String>>(7)?
                    .map(|m| enum_column(&m))
                    .transpose()?,
            })
        })
        .collect::<Result<Vec<_>, ProjectionError>>()?;
    let deliveries = db
        .query(
            "SELECT id, voter_key, unit, at, by FROM p_deliveries WHERE campaign = ?1
             ORDER BY id, building",
            args![campaign],
        )?
        .iter()
        .map(|r| {
            Ok(Delivery {
                id: r.get(0)?,
                voter_key: r.get(1)?,
                unit: r.get(2)?,
                at: r.get(3)?,
                by: r.get(4)?,
            })
        })
        .collect::<Result<Vec<_>, ProjectionError>>()?;
    let adjudications = db
        .query(
            "SELECT id, voter_key, considered, chosen, reason, at, by FROM p_adjudications
             WHERE campaign = ?1 ORDER BY id, building",
            args![campaign],
        )?
        .iter()
        .map(|r| {
            Ok(Adjudication {
                id: r.get(0)?,
                voter_key: r.get(1)?,
                considered: json_column(&r.get::<String>(2)?)?,
                chosen: r.get(3)?,
                reason: r.get(4)?,
                at: r.get(5)?,
                by: r.get(6)?,
            })
        })
        .collect::<Result<Vec<_>, ProjectionError>>()?;
    Ok(Some(TallyInputs {
        campaign: campaign_value,
        roll,
        ballots,
        deliveries,
        adjudications,
    }))
}

/// The tally of `campaign` computed from the projection tables (core's pure tally over the
/// rows), or `None` when the campaign is unknown. The roll is the frozen one the field
/// documents carry; an inconsistent roll is reported by the tally itself, never hidden.
pub fn tally(
    db: &mut dyn Sql,
    campaign: &str,
) -> Result<Option<doorstep_core::tally::Tally>, ProjectionError> {
    let Some(inputs) = tally_inputs(db, campaign)? else {
        return Ok(None);
    };
    Ok(Some(tally_of(&inputs)?))
}

/// Core's tally over inputs, whatever they were read from.
pub fn tally_of(inputs: &TallyInputs) -> Result<doorstep_core::tally::Tally, ProjectionError> {
    Ok(tally_and_inputs_of(inputs)?.0)
}

/// The frozen roll of the inputs. Publication froze a valid roll, so an invalid one means the
/// tables were damaged: refused, never counted as an empty roll.
pub fn roll_of(inputs: &TallyInputs) -> Result<doorstep_core::roll::Roll, ProjectionError> {
    doorstep_core::roll::Roll::from_entries(inputs.roll.iter().cloned()).map_err(|e| {
        ProjectionError::Shape(format!(
            "the frozen roll of {} is invalid: {e}",
            inputs.campaign.id
        ))
    })
}

/// [`tally_of`] and the canonical inputs file whose SHA-256 is the tally's `inputs_hash`.
pub fn tally_and_inputs_of(
    inputs: &TallyInputs,
) -> Result<(doorstep_core::tally::Tally, Vec<u8>), ProjectionError> {
    let roll = roll_of(inputs)?;
    Ok(doorstep_core::tally::tally_with_inputs(
        &roll,
        &inputs.campaign,
        &inputs.ballots,
        &inputs.deliveries,
        &inputs.adjudications,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_id_and_the_later_record_wins() {
        let mut rows = vec![("a", 1), ("b", 2), ("a", 3), ("c", 4)];
        keep_last_per_id(&mut rows, |r| r.0);
        assert_eq!(rows, [("b", 2), ("a", 3), ("c", 4)]);
        let mut unique = vec![("x", 1), ("y", 2)];
        keep_last_per_id(&mut unique, |r| r.0);
        assert_eq!(unique, [("x", 1), ("y", 2)]);
    }
}

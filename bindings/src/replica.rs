//! `DoorstepReplica`: the phone's replica as apps see it, one blocking call per user action.

use std::collections::HashMap;
use std::sync::Arc;

use doorstep_core::doc::DocId;
use doorstep_core::replica::Replica;

use crate::error::{ApiError, guard};
use crate::transport::{Foreign, SyncTransport};
use crate::types::{
    Answer, Attention, Building, CampaignSummary, CollectionMethod, DoorOutcome, HouseholdEdit,
    Identity, Notice, OrderStatus, SyncReport, TimelineEntry, UnitView, WorkOrder, core_answers,
    survey_answers,
};

/// The version reported to the server at enrollment and with every sync.
const APP_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The replica stored in one SQLite file on the phone.
///
/// Every call blocks until its work is done and saved, so the app calls it off the UI thread;
/// one object may be shared by any number of threads. Each recording call is one action: it is
/// checked by the same rules the server applies and saved before the call returns, or it leaves
/// no trace and returns an error.
#[derive(Debug, uniffi::Object)]
pub struct DoorstepReplica {
    pub(crate) replica: Arc<Replica>,
}

#[uniffi::export]
impl DoorstepReplica {
    /// Open (or create) the replica stored at `path`, e.g. a file in the app's private storage.
    #[uniffi::constructor]
    pub fn open(path: String) -> Result<Arc<DoorstepReplica>, ApiError> {
        guard(|| {
            Ok(Arc::new(DoorstepReplica {
                replica: Arc::new(Replica::open(path)?),
            }))
        })
    }

    /// Open (or create) the replica at `path`, encrypted at rest with `key`: 32 random bytes the
    /// app keeps in the platform's key store (Android Keystore, iOS Keychain). A plain store
    /// from an earlier app version is encrypted first, keeping every record. A key that does not
    /// open the store is `InvalidInput` with code `wrong_key`, and nothing on disk changes.
    #[uniffi::constructor]
    pub fn open_encrypted(path: String, key: Vec<u8>) -> Result<Arc<DoorstepReplica>, ApiError> {
        guard(|| {
            let key = doorstep_core::encryption::StoreKey::from_bytes(&key)?;
            Ok(Arc::new(DoorstepReplica {
                replica: Arc::new(Replica::open_encrypted(path, &key)?),
            }))
        })
    }

    /// Enroll with the server at `server_url` (e.g. `https://doorstep.example.org`) using the
    /// one-time `code` shown on the dashboard, over the built-in HTTP client. `label` names the
    /// phone on the dashboard (a model name, never a person's name). Returns who this install
    /// now works for, `None` while the account has no building (a later sync fills it in).
    pub fn enroll(
        &self,
        server_url: String,
        code: String,
        label: String,
    ) -> Result<Option<Identity>, ApiError> {
        guard(|| {
            let transport = doorstep_core::sync::HttpTransport::new(&server_url);
            let identity =
                self.replica
                    .enroll(&transport, &server_url, &code, &label, APP_VERSION)?;
            Ok(identity.map(Into::into))
        })
    }

    /// Like `enroll`, over the app's own HTTP stack (bound to the same `server_url`).
    pub fn enroll_via(
        &self,
        transport: Arc<dyn SyncTransport>,
        server_url: String,
        code: String,
        label: String,
    ) -> Result<Option<Identity>, ApiError> {
        guard(|| {
            let identity = self.replica.enroll(
                &Foreign(transport),
                &server_url,
                &code,
                &label,
                APP_VERSION,
            )?;
            Ok(identity.map(Into::into))
        })
    }

    /// Exchange every document that has news with the server, over the built-in HTTP client,
    /// until neither side has more to send. A network error (`ApiError.Network`) loses
    /// nothing: retry later.
    pub fn sync(&self) -> Result<SyncReport, ApiError> {
        guard(|| {
            let transport = self.replica.http_transport()?;
            Ok(self.replica.sync(&transport, APP_VERSION)?.into())
        })
    }

    /// Like `sync`, over the app's own HTTP stack.
    pub fn sync_via(&self, transport: Arc<dyn SyncTransport>) -> Result<SyncReport, ApiError> {
        guard(|| Ok(self.replica.sync(&Foreign(transport), APP_VERSION)?.into()))
    }

    /// Who this install works for; `None` until enrolled.
    pub fn identity(&self) -> Result<Option<Identity>, ApiError> {
        guard(|| Ok(self.replica.identity()?.map(Into::into)))
    }

    /// The buildings assigned to this install's account.
    pub fn buildings(&self) -> Result<Vec<Building>, ApiError> {
        guard(|| Ok(into_all(self.replica.buildings()?)))
    }

    /// The campaigns this phone holds, newest first, with their questions.
    pub fn campaigns(&self) -> Result<Vec<CampaignSummary>, ApiError> {
        guard(|| Ok(into_all(self.replica.campaigns()?)))
    }

    /// The units of one building with their households and, for `campaign`, their visit status.
    pub fn units(
        &self,
        building: String,
        campaign: Option<String>,
    ) -> Result<Vec<UnitView>, ApiError> {
        guard(|| {
            Ok(into_all(
                self.replica.units(&building, campaign.as_deref())?,
            ))
        })
    }

    /// The door's visits, deliveries and ballots in `campaign`, oldest first, each with whether
    /// the server has it yet (门户详情's ✓已同步 / ⏳待同步).
    pub fn unit_timeline(
        &self,
        campaign: String,
        unit: String,
    ) -> Result<Vec<TimelineEntry>, ApiError> {
        guard(|| Ok(into_all(self.replica.unit_timeline(&campaign, &unit)?)))
    }

    /// Record one door's outcome for a campaign; returns the visit's id.
    pub fn record_visit(
        &self,
        campaign: String,
        unit: String,
        outcome: DoorOutcome,
        note: String,
    ) -> Result<String, ApiError> {
        guard(|| self.replica.record_visit(&campaign, &unit, outcome, &note))
    }

    /// Record that a ballot paper was handed to the owner of `unit`; returns the delivery's id.
    pub fn record_delivery(&self, campaign: String, unit: String) -> Result<String, ApiError> {
        guard(|| self.replica.record_delivery(&campaign, &unit))
    }

    /// Record a returned ballot from the owner of `unit` (question id → answer); returns its id.
    /// A correction by the same owner names the ballot it replaces in `supersedes`. `method`
    /// says how it came back; left out, the owner signed at the door.
    #[uniffi::method(default(method = None))]
    pub fn record_ballot(
        &self,
        campaign: String,
        unit: String,
        answers: HashMap<String, Answer>,
        supersedes: Option<String>,
        method: Option<CollectionMethod>,
    ) -> Result<String, ApiError> {
        guard(|| {
            self.replica.record_ballot_by(
                &campaign,
                &unit,
                core_answers(answers),
                supersedes,
                method.unwrap_or(CollectionMethod::Door),
            )
        })
    }

    /// Record a survey or hearing answer (question id → chosen option ids); returns its id.
    /// It is stored as the owner's ballot for that campaign, so `supersedes` corrects one.
    pub fn record_survey_answer(
        &self,
        campaign: String,
        unit: String,
        answers: HashMap<String, Vec<String>>,
        supersedes: Option<String>,
    ) -> Result<String, ApiError> {
        guard(|| {
            self.replica
                .record_ballot(&campaign, &unit, survey_answers(answers), supersedes)
        })
    }

    /// Correct some household details of a unit in an assigned building.
    pub fn edit_household(&self, unit: String, edit: HouseholdEdit) -> Result<(), ApiError> {
        guard(|| self.replica.edit_household(&unit, &edit.into()))
    }

    /// Take a resident's 微心愿 request at `unit`; returns the work order's id.
    pub fn create_order(
        &self,
        unit: String,
        title: String,
        detail: String,
    ) -> Result<String, ApiError> {
        guard(|| self.replica.create_order(&unit, &title, &detail))
    }

    /// Move a work order of `building` to `to`. Claiming makes this account the assignee;
    /// dispatching names `assignee`.
    pub fn move_order(
        &self,
        building: String,
        order: String,
        to: OrderStatus,
        note: String,
        assignee: Option<String>,
    ) -> Result<(), ApiError> {
        guard(|| {
            self.replica
                .move_order(&building, &order, to, &note, assignee)
        })
    }

    /// The work orders of one building.
    pub fn orders(&self, building: String) -> Result<Vec<WorkOrder>, ApiError> {
        guard(|| Ok(into_all(self.replica.orders(&building)?)))
    }

    /// Conflicts (ballots, household fields) and server rejections that need a person.
    pub fn attention(&self) -> Result<Attention, ApiError> {
        guard(|| Ok(self.replica.attention()?.into()))
    }

    /// The officers' decisions on ballots in this phone's buildings, newest first (通知).
    pub fn notices(&self) -> Result<Vec<Notice>, ApiError> {
        guard(|| Ok(into_all(self.replica.notices()?)))
    }

    /// Marks every notice up to `at` (the newest one shown) as seen.
    pub fn mark_notices_seen(&self, at: i64) -> Result<(), ApiError> {
        guard(|| self.replica.mark_notices_seen(at))
    }

    /// How many local changes the server has not acknowledged yet.
    pub fn pending_count(&self) -> Result<u64, ApiError> {
        guard(|| Ok(u64::try_from(self.replica.pending_changes()?).unwrap_or(u64::MAX)))
    }

    /// Forget a document the server refused (its id as `Rejection.doc_id` gives it), so the
    /// next sync fetches the server's state. Other documents and their changes are untouched.
    pub fn reset_document(&self, doc_id: String) -> Result<(), ApiError> {
        guard(|| self.replica.reset_document(&doc_id.parse::<DocId>()?))
    }
}

fn into_all<T, U: From<T>>(items: Vec<T>) -> Vec<U> {
    items.into_iter().map(U::from).collect()
}

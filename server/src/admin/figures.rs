//! One campaign's figures — its tally inputs, the tally, the ballot resolution and per-building
//! progress — computed together from one snapshot of the projection tables and kept until the
//! campaign's change counter moves ([`crate::projections::campaign_version`]).
//!
//! The overview, the live card, the campaign page, the 公示, the conflicts queue and the JSON
//! API all read these, so they agree with each other and a page refresh that nothing changed
//! costs one indexed lookup instead of a re-tally (1.5 s at 100,000 households). Every change
//! to a campaign or field document bumps the counter in the same transaction that stores it,
//! so a cached value is never served past a change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use doorstep_core::ballots::{self, Resolution};
use doorstep_core::model::Ballot;
use doorstep_core::tally::Tally;

use super::campaigns::BuildingProgress;
use super::no_campaign;
use crate::auth::AdminSession;
use crate::error::AppResult;
use crate::projections::{self, ProjectionError, TallyInputs};
use crate::state::AppState;
use crate::storage::StorageError;
use crate::storage::views::FiguresSnapshot;

/// Everything derived from one version of a campaign's documents.
#[derive(Debug)]
pub(crate) struct CampaignFigures {
    pub version: i64,
    /// The lifecycle status as projected (`draft`, `open`, …).
    pub status: String,
    pub inputs: TallyInputs,
    pub tally: Tally,
    /// Duplicate ballots, adjudications and invalid ballots over the whole roll (the tally's
    /// lists are limited to the scope; officers see every conflict).
    pub resolution: Resolution,
    /// Per building of the roll, in the order of the rows (natural order is the caller's).
    pub buildings: Vec<BuildingProgress>,
    /// Ballot id → building of the field document holding it, and the ballot's index in
    /// `inputs.ballots`.
    ballot_places: HashMap<String, (String, usize)>,
}

impl CampaignFigures {
    /// The field document's building and the ballot itself.
    pub fn ballot(&self, id: &str) -> Option<(&str, &Ballot)> {
        let (building, index) = self.ballot_places.get(id)?;
        Some((building.as_str(), self.inputs.ballots.get(*index)?))
    }
}

/// The latest figures of every campaign asked for, one entry per campaign.
#[derive(Debug, Default)]
pub struct FiguresCache {
    entries: Mutex<HashMap<String, Arc<CampaignFigures>>>,
    /// One computation per campaign at a time: requests that miss together wait for it
    /// instead of each re-tallying (which, on two cores, would starve everything else).
    computing: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl FiguresCache {
    fn get(&self, campaign: &str, version: i64) -> Option<Arc<CampaignFigures>> {
        let entries = self
            .entries
            .lock()
            .expect("invariant: figures lock not poisoned");
        entries
            .get(campaign)
            .filter(|f| f.version == version)
            .cloned()
    }

    fn computing(&self, campaign: &str) -> Arc<Mutex<()>> {
        let mut computing = self
            .computing
            .lock()
            .expect("invariant: figures lock not poisoned");
        computing.entry(campaign.to_string()).or_default().clone()
    }

    fn put(&self, campaign: &str, figures: Arc<CampaignFigures>) {
        let mut entries = self
            .entries
            .lock()
            .expect("invariant: figures lock not poisoned");
        // Two requests may compute concurrently; never let the older one overwrite.
        if entries
            .get(campaign)
            .is_none_or(|f| f.version <= figures.version)
        {
            entries.insert(campaign.to_string(), figures);
        }
    }
}

fn projection(e: ProjectionError) -> StorageError {
    StorageError::Projection(e.to_string())
}

/// The figures of `campaign` as of its latest committed change, for `session` (404 unless it
/// works in the campaign's community, 403 unless it reads the dashboard there).
pub(crate) fn figures(
    st: &AppState,
    session: &AdminSession,
    campaign: &str,
) -> AppResult<Arc<CampaignFigures>> {
    super::require_campaign(st, session, super::READERS, campaign)?;
    figures_unscoped(st, campaign)
}

/// The figures of `campaign`, for whoever already checked the reader may see it (the live
/// cards, which are filtered per page).
pub(crate) fn figures_unscoped(st: &AppState, campaign: &str) -> AppResult<Arc<CampaignFigures>> {
    let version = || st.views().campaign_version(campaign);
    if let Some(hit) = st.figures().get(campaign, version()?) {
        return Ok(hit);
    }
    let gate = st.figures().computing(campaign);
    let _one_at_a_time = gate
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Whoever held the gate may have just computed this very version.
    if let Some(hit) = st.figures().get(campaign, version()?) {
        return Ok(hit);
    }
    let fresh = Arc::new(compute(st, campaign)?);
    st.figures().put(campaign, fresh.clone());
    Ok(fresh)
}

fn compute(st: &AppState, campaign: &str) -> AppResult<CampaignFigures> {
    let FiguresSnapshot {
        version,
        inputs,
        status,
        buildings,
        ballot_buildings,
    } = st
        .views()
        .figures_snapshot(campaign)?
        .ok_or_else(|| no_campaign(campaign))?;
    let roll = projections::roll_of(&inputs).map_err(projection)?;
    let tally = projections::tally_of(&inputs).map_err(projection)?;
    let ballot_places = inputs
        .ballots
        .iter()
        .enumerate()
        .filter_map(|(i, b)| Some((b.id.clone(), (ballot_buildings.get(&b.id)?.clone(), i))))
        .collect();
    let resolution = ballots::resolve(
        &roll,
        &inputs.ballots,
        &inputs.adjudications,
        inputs.campaign.closed_at(),
    );
    Ok(CampaignFigures {
        version,
        status,
        inputs,
        tally,
        resolution,
        buildings,
        ballot_places,
    })
}

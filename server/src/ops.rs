//! Server-side operations on documents that both the admin API and `demo` need: importing a
//! register, and publishing a campaign (which freezes the roll into per-building field
//! documents). Each one is a sequence of server changes checked by core's rules.
//!
//! These are blocking; call them from `spawn_blocking`.

use std::collections::BTreeSet;

use automerge::AutoCommit;
use doorstep_core::campaign;
use doorstep_core::doc::{BuildingDoc, CampaignDoc, DocId, DocKind, OrdersDoc, SCHEMA_VERSION};
use doorstep_core::import::ImportedRegister;
use doorstep_core::model::{Campaign, CampaignStatus};
use doorstep_core::rules::Writer;
use serde::Serialize;

use crate::docs::{DocCache, DocError};
use crate::storage::Account;

/// The rules' view of an account acting through the dashboard in `community` (its roles
/// there; no device prefix to check: the server itself writes these changes).
pub fn account_writer(account: &Account, community: &str, buildings: BTreeSet<String>) -> Writer {
    Writer {
        account: account.id.clone(),
        roles: account.grants.roles_in(community),
        buildings,
        device: None,
    }
}

/// Write a whole typed value into a document root.
pub fn write_all<T: autosurgeon::Reconcile>(
    doc: &mut AutoCommit,
    value: &T,
) -> Result<(), doorstep_core::Error> {
    autosurgeon::reconcile(doc, value).map_err(|e| doorstep_core::Error::Shape(e.to_string()))
}

/// What an import created or changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub community: String,
    pub buildings: usize,
    pub units: usize,
    pub documents_created: usize,
    pub documents_changed: usize,
}

/// Store an imported register: the register document, one building document per building and
/// an empty work-order document per building. A document that already exists is reconciled to
/// the imported content (a re-import), so running an import twice changes nothing.
pub fn import_register(
    docs: &DocCache,
    imported: &ImportedRegister,
    writer: &Writer,
    actor: &str,
) -> Result<ImportSummary, DocError> {
    let community = imported.register.community.clone();
    let mut summary = ImportSummary {
        community: community.clone(),
        buildings: imported.buildings.len(),
        units: imported.unit_count(),
        ..ImportSummary::default()
    };
    let mut put = |id: DocId,
                   write: &dyn Fn(&mut AutoCommit) -> Result<(), doorstep_core::Error>|
     -> Result<(), DocError> {
        let exists = docs.storage().document_meta(&id)?.is_some();
        if exists {
            docs.change(&id, writer, actor, "register import", |d| write(d))?;
            summary.documents_changed += 1;
        } else {
            docs.create(&id, &community, writer, actor, |d| write(d))?;
            summary.documents_created += 1;
        }
        Ok(())
    };
    put(
        DocId::Register {
            community: community.clone(),
        },
        &|d| write_all(d, &imported.register),
    )?;
    for building in &imported.buildings {
        put(
            DocId::Building {
                community: community.clone(),
                building: building.building.id.clone(),
            },
            &|d| write_all(d, building),
        )?;
    }
    for building in &imported.buildings {
        let id = DocId::Orders {
            community: community.clone(),
            building: building.building.id.clone(),
        };
        if docs.storage().document_meta(&id)?.is_none() {
            let orders = OrdersDoc {
                schema: SCHEMA_VERSION,
                community: community.clone(),
                building: building.building.id.clone(),
                ..OrdersDoc::default()
            };
            docs.create(&id, &community, writer, actor, |d| write_all(d, &orders))?;
            summary.documents_created += 1;
        }
    }
    Ok(summary)
}

/// Store a new draft campaign as `campaign/{id}`.
pub fn create_draft(
    docs: &DocCache,
    draft: &Campaign,
    writer: &Writer,
    actor: &str,
) -> Result<(), DocError> {
    if draft.status != CampaignStatus::Draft {
        return Err(
            doorstep_core::Error::Invalid("a new campaign starts as a draft".into()).into(),
        );
    }
    let id = DocId::Campaign {
        campaign: draft.id.clone(),
    };
    let value = CampaignDoc {
        schema: SCHEMA_VERSION,
        campaign: draft.clone(),
    };
    docs.create(&id, &draft.community, writer, actor, |d| {
        write_all(d, &value)
    })?;
    Ok(())
}

/// Publish the draft `campaign/{id}`: freeze its roll from the community's building documents,
/// write the published definition, and create one field document per building in scope.
pub fn publish_campaign(
    docs: &DocCache,
    campaign_id: &str,
    writer: &Writer,
    actor: &str,
) -> Result<Campaign, DocError> {
    let id = DocId::Campaign {
        campaign: campaign_id.to_string(),
    };
    let draft = docs
        .hydrate::<CampaignDoc>(&id)?
        .ok_or_else(|| DocError::NotFound(id.clone()))?
        .campaign;
    let mut buildings = Vec::new();
    for meta in docs.storage().documents()? {
        if meta.id.kind() == DocKind::Building
            && meta.community == draft.community
            && let Some(b) = docs.hydrate::<BuildingDoc>(&meta.id)?
        {
            buildings.push(b);
        }
    }
    let publication = campaign::publish(&draft, &buildings, docs.storage().now())?;
    let published = CampaignDoc {
        schema: SCHEMA_VERSION,
        campaign: publication.campaign.clone(),
    };
    // Field documents first: a phone that sees the published campaign finds its field record.
    for field in &publication.field_docs {
        let field_id = DocId::Field {
            campaign: campaign_id.to_string(),
            building: field.building.clone(),
        };
        docs.create(&field_id, &draft.community, writer, actor, |d| {
            write_all(d, field)
        })?;
    }
    docs.change(&id, writer, actor, "publish", |d| write_all(d, &published))?;
    Ok(publication.campaign)
}

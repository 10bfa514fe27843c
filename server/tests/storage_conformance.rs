//! The storage seam's conformance suite: every behaviour of `Storage`, `Views` and `Backend`
//! that a user of the server would notice is written once (in [`cases`]) and run against both
//! backends by `storage_conformance_tests!`: `sqlite` on a temporary file and `postgres` on a
//! fresh database of the test cluster (`DOORSTEP_TEST_POSTGRES`).
//!
//! A case that fails on one backend only is a difference between the two databases that the
//! server would show its users; it is never skipped for one backend.

mod common;

use std::sync::Arc;

use automerge::{AutoCommit, ChangeHash, LoadOptions, OnPartialLoad};
use doorstep_core::clock::{Clock, ManualClock};
use doorstep_core::doc::{BuildingDoc, DocId, RegisterDoc, SCHEMA_VERSION, fresh_actor};
use doorstep_core::model::{
    AreaSource, Building, Household, Millis, Occupancy, Role, SaleStatus, Unit,
};
use doorstep_server::storage::postgres::PoolOptions;
use doorstep_server::storage::{
    Account, Announce, Assignment, Backend, Batch, CommitReport, Communities, Device,
    DeviceSyncWrite, DocContent, DocWrite, EnrollmentCode, Grants, NewAccount, NewAuditEvent,
    NewDevice, PgStorage, QUARANTINE_SAMPLE, QuarantineWrite, SqliteStorage, StorageError, SyncRow,
    SyncStateWrite,
};
use tempfile::TempDir;
use uuid::Uuid;

/// Where every fixture's clock starts (2023-11-14), far from the system's time so a stamp
/// that did not come from the injected clock shows.
const T0: Millis = 1_700_000_000_000;

/// An opened backend and the temporary directory its file lives in (kept as long as it).
pub struct Opened {
    pub storage: Box<dyn Backend>,
    _dir: Option<TempDir>,
}

impl std::ops::Deref for Opened {
    type Target = dyn Backend;

    fn deref(&self) -> &Self::Target {
        &*self.storage
    }
}

/// SQLite on a new file in a temporary directory.
fn open_sqlite(clock: Arc<dyn Clock>) -> Opened {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let storage = SqliteStorage::open(dir.path().join("server.sqlite"))
        .expect("SQLite opens a new file")
        .with_clock(clock);
    Opened {
        storage: Box::new(storage),
        _dir: Some(dir),
    }
}

/// PostgreSQL on a new database of the test cluster.
fn open_postgres(clock: Arc<dyn Clock>) -> Opened {
    let url = common::fresh_postgres().expect("a fresh PostgreSQL database");
    let storage = PgStorage::open(&url, PoolOptions::default())
        .expect("PostgreSQL opens a new database")
        .with_clock(clock);
    Opened {
        storage: Box::new(storage),
        _dir: None,
    }
}

/// One case's world: a backend on a manual clock standing at [`T0`].
pub struct Fixture {
    pub s: Opened,
    pub clock: Arc<ManualClock>,
    /// The module the case runs in (`sqlite`, `postgres`): what the backend calls itself.
    pub backend: &'static str,
}

impl Fixture {
    pub fn new(backend: &'static str, open: fn(Arc<dyn Clock>) -> Opened) -> Fixture {
        let clock = ManualClock::new(T0);
        let s = open(clock.clone());
        Fixture { s, clock, backend }
    }
}

/// `storage_conformance_tests!(module, open)`: a module with one `#[test]` per case of
/// [`cases`], each on a backend that `open` (a `fn(Arc<dyn Clock>) -> Opened`) opens afresh.
macro_rules! storage_conformance_tests {
    ($backend:ident, $open:expr) => {
        storage_conformance_tests!(
            @cases $backend, $open,
            the_database_answers_and_counts_its_commits,
            an_account_is_read_back_by_id_and_by_trimmed_login,
            a_taken_login_is_a_conflict,
            accounts_are_listed_by_login,
            grants_and_disabled_round_trip,
            the_last_admin_of_the_server_keeps_the_role,
            the_last_admin_of_a_community_keeps_the_role,
            two_admins_demoting_each_other_at_once_leave_one,
            a_session_finds_its_account_until_it_expires,
            a_session_ends_with_the_account_or_the_password,
            assignments_are_idempotent_and_filtered,
            an_enrollment_code_redeems_once_into_a_device,
            expired_unknown_and_disabled_codes_are_refused,
            a_device_is_found_by_token_and_revoked_once,
            a_document_is_created_and_appended_to,
            a_snapshot_write_replaces_the_chunks,
            a_chunk_for_a_missing_document_is_not_found,
            a_write_on_stale_heads_changes_nothing,
            a_batch_is_one_transaction,
            a_malformed_document_id_is_refused,
            account_documents_follow_the_assignments,
            sync_rows_keep_state_and_announced_heads,
            a_sync_updates_the_device_bookkeeping,
            sync_rows_need_a_device,
            a_payload_is_quarantined_once_and_sampled,
            a_device_over_its_quarantine_budget_is_flagged_until_released,
            held_work_is_accepted_once,
            every_write_is_audited_in_one_verified_chain,
            the_audit_log_is_append_only,
            projections_equal_a_rebuild,
            times_come_from_the_injected_clock,
        );
    };
    (@cases $backend:ident, $open:expr, $($case:ident),* $(,)?) => {
        mod $backend {
            use super::*;

            $(
                #[test]
                fn $case() {
                    cases::$case(&Fixture::new(stringify!($backend), $open));
                }
            )*
        }
    };
}

storage_conformance_tests!(sqlite, open_sqlite);
storage_conformance_tests!(postgres, open_postgres);

// ---------------------------------------------------------------------------------------------
// Helpers shared by the cases.
// ---------------------------------------------------------------------------------------------

fn grants(json: &str) -> Grants {
    serde_json::from_str(json).expect("well-formed grants")
}

fn server_admin() -> Grants {
    Grants::uniform(&[Role::Admin], &Communities::All).expect("a role and a community")
}

fn building_head() -> Grants {
    Grants::uniform(&[Role::BuildingHead], &Communities::one("tpy")).expect("a role")
}

/// An account that can log in (it has a password).
fn account(f: &Fixture, login: &str, grants: Grants) -> Account {
    f.s.create_account(
        &NewAccount {
            login: login.to_string(),
            display_name: format!("{login} 的名字"),
            grants,
            password_hash: Some(format!("$argon2id$v=19$fake${login}")),
        },
        "server",
    )
    .unwrap_or_else(|e| panic!("creating account {login:?}: {e:?}"))
}

/// A new device of `account_id`, enrolled with a fresh code; its token is `token`.
fn enroll(f: &Fixture, account_id: &str, token: &[u8]) -> Device {
    let code = Uuid::new_v4().as_bytes().to_vec();
    f.s.create_enrollment_code(&code, account_id, f.clock.now() + 600_000, "server")
        .expect("an enrollment code for an existing account");
    f.s.redeem_enrollment_code(
        &code,
        f.clock.now(),
        &NewDevice {
            id: Uuid::new_v4(),
            label: "phone".into(),
            app_version: "1.0.0".into(),
            token_hash: token.to_vec(),
        },
    )
    .expect("a fresh code redeems")
}

fn building_id() -> DocId {
    DocId::Building {
        community: "tpy".into(),
        building: "1".into(),
    }
}

fn register_id() -> DocId {
    DocId::Register {
        community: "tpy".into(),
    }
}

fn building_1() -> Building {
    Building {
        id: "1".into(),
        label: "1号楼".into(),
        entrances: [("1-1".to_string(), "1单元".to_string())].into(),
    }
}

/// Building 1 of community tpy: one unit and its household of `residents`.
fn building_value(residents: i64) -> BuildingDoc {
    BuildingDoc {
        schema: SCHEMA_VERSION,
        community: "tpy".into(),
        building: building_1(),
        units: [(
            "1-1-0101".to_string(),
            Unit {
                code: "1-1-0101".into(),
                building: "1".into(),
                entrance: "1-1".into(),
                floor: 1,
                room: "0101".into(),
                area: 8_950,
                area_source: AreaSource::Registered,
                sale_status: SaleStatus::Sold,
                owner_key: "owner-0101".into(),
                owner_names: vec!["张三".into()],
            },
        )]
        .into(),
        households: [(
            "1-1-0101".to_string(),
            Household {
                unit: "1-1-0101".into(),
                contact_name: "张三".into(),
                phone: "13800000101".into(),
                occupancy: Occupancy::OwnerOccupied,
                residents,
                note: String::new(),
            },
        )]
        .into(),
    }
}

fn register_value() -> RegisterDoc {
    RegisterDoc {
        schema: SCHEMA_VERSION,
        community: "tpy".into(),
        name: "太平洋小区".into(),
        buildings: [("1".to_string(), building_1())].into(),
        total_area: 8_950,
        total_units: 1,
    }
}

/// A new Automerge document holding `value`, as the server creates one.
fn new_doc<T: autosurgeon::Reconcile>(f: &Fixture, value: &T) -> AutoCommit {
    let mut doc = AutoCommit::new().with_actor(fresh_actor(&f.s.server_device()));
    autosurgeon::reconcile(&mut doc, value).expect("the value reconciles");
    doc.commit();
    doc
}

/// Replace `doc`'s value and commit; returns the heads before.
fn edit<T: autosurgeon::Reconcile>(doc: &mut AutoCommit, value: &T) -> Vec<ChangeHash> {
    let before = doc.get_heads();
    autosurgeon::reconcile(doc, value).expect("the value reconciles");
    doc.commit();
    before
}

fn sorted(mut heads: Vec<ChangeHash>) -> Vec<ChangeHash> {
    heads.sort();
    heads
}

/// The write creating `doc` as document `id`.
fn create<'a>(id: DocId, doc: &'a mut AutoCommit) -> DocWrite<'a> {
    let heads = doc.get_heads();
    let bytes = doc.save();
    DocWrite {
        id,
        community: "tpy".into(),
        content: DocContent::Snapshot(bytes),
        heads,
        base: None,
        doc,
        checked: None,
    }
}

/// The write appending `doc`'s changes since `base` to document `id`.
fn append<'a>(id: DocId, doc: &'a mut AutoCommit, base: &[ChangeHash]) -> DocWrite<'a> {
    let heads = doc.get_heads();
    let bytes = doc.save_after(base);
    DocWrite {
        id,
        community: "tpy".into(),
        content: DocContent::Chunk(bytes),
        heads,
        base: Some(base.to_vec()),
        doc,
        checked: None,
    }
}

/// The bytes a write stores.
fn written(write: &DocWrite<'_>) -> Vec<u8> {
    match &write.content {
        DocContent::Snapshot(bytes) | DocContent::Chunk(bytes) => bytes.clone(),
    }
}

fn commit(f: &Fixture, documents: Vec<DocWrite<'_>>) -> Result<CommitReport, StorageError> {
    f.s.commit(&Batch {
        documents,
        ..Batch::default()
    })
}

/// The register and building 1 of tpy, stored; returns the building's document.
fn seed_documents(f: &Fixture) -> AutoCommit {
    let mut register = new_doc(f, &register_value());
    let mut building = new_doc(f, &building_value(2));
    commit(
        f,
        vec![
            create(register_id(), &mut register),
            create(building_id(), &mut building),
        ],
    )
    .expect("two new documents commit");
    building
}

/// Load stored bytes strictly, as the server does.
fn load(bytes: &[u8]) -> AutoCommit {
    AutoCommit::load_with_options(
        bytes,
        LoadOptions::new().on_partial_load(OnPartialLoad::Error),
    )
    .expect("the stored bytes load strictly")
}

fn audit_count(f: &Fixture) -> usize {
    f.s.audit_events(0, 100_000).expect("audit events").len()
}

fn sync_write(device: &Device, at: Millis) -> DeviceSyncWrite {
    DeviceSyncWrite {
        device: device.id,
        account_id: device.account_id.clone(),
        at,
        app_version: "1.0.0".into(),
        pending: 0,
        bytes_up: 0,
        bytes_down: 0,
        reset_announced: false,
        manifest_digest: None,
        quarantine_budget: 1 << 20,
    }
}

fn quarantined(doc: &DocId, payload: Vec<u8>, keep_whole: bool) -> QuarantineWrite {
    QuarantineWrite {
        doc: doc.clone(),
        code: "rules",
        reason: "refused by the rules".into(),
        payload,
        keep_whole,
        audit: NewAuditEvent::new(
            "server",
            "sync.rejected",
            doc.to_string(),
            serde_json::json!({}),
        ),
    }
}

/// Sync rows by document id (their order is not part of the seam).
fn sorted_rows(mut rows: Vec<SyncRow>) -> Vec<SyncRow> {
    rows.sort_by_key(|r| r.doc.to_string());
    rows
}

#[track_caller]
fn assert_empty<T: std::fmt::Debug>(rows: Vec<T>, what: &str) {
    assert!(rows.is_empty(), "{what}: expected none, got {rows:?}");
}

fn hash(n: u8) -> ChangeHash {
    ChangeHash([n; 32])
}

// ---------------------------------------------------------------------------------------------
// The cases: each written once, run on every backend.
// ---------------------------------------------------------------------------------------------

pub mod cases {
    use super::*;

    pub fn the_database_answers_and_counts_its_commits(f: &Fixture) {
        assert_eq!(f.s.name(), f.backend, "the backend names itself");
        f.s.ping().expect("the database answers a ping");
        assert_eq!(f.s.now(), T0, "now() is the injected clock's");
        let before = f.s.durability().commits;
        account(f, "alice", server_admin());
        assert_eq!(
            f.s.durability().commits,
            before + 1,
            "one write is one more durable commit"
        );
        let _ = f.s.create_account(
            &NewAccount {
                login: "alice".into(),
                display_name: String::new(),
                grants: server_admin(),
                password_hash: None,
            },
            "server",
        );
        assert_eq!(
            f.s.durability().commits,
            before + 1,
            "a refused write is not counted as a commit"
        );
    }

    pub fn an_account_is_read_back_by_id_and_by_trimmed_login(f: &Fixture) {
        let created = account(f, "  alice \t", server_admin());
        assert_eq!(created.login, "alice", "the login is stored trimmed");
        assert!(!created.disabled, "a new account is enabled");
        assert_eq!(created.display_name, "  alice \t 的名字");
        assert_eq!(
            f.s.account(&created.id).expect("read by id"),
            Some(created.clone()),
            "the account reads back by id as created"
        );
        assert_eq!(
            f.s.account_by_login(" alice ").expect("read by login"),
            Some(created.clone()),
            "the account reads back by its login, whatever spaces surround it"
        );
        assert_eq!(f.s.account("no-such-id").expect("read by id"), None);
        assert_eq!(f.s.account_by_login("bob").expect("read by login"), None);
        let phone_only =
            f.s.create_account(
                &NewAccount {
                    login: "phone-only".into(),
                    display_name: "楼栋长".into(),
                    grants: building_head(),
                    password_hash: None,
                },
                "server",
            )
            .expect("an account without a password");
        assert_eq!(
            f.s.account(&phone_only.id).expect("read by id"),
            Some(phone_only),
            "an account without a password reads back without one"
        );
        for bad in ["", "   ", &"x".repeat(65)] {
            let r = f.s.create_account(
                &NewAccount {
                    login: bad.to_string(),
                    display_name: String::new(),
                    grants: server_admin(),
                    password_hash: None,
                },
                "server",
            );
            assert!(
                matches!(r, Err(StorageError::Invalid(_))),
                "login {bad:?} is Invalid, got {r:?}"
            );
        }
    }

    pub fn a_taken_login_is_a_conflict(f: &Fixture) {
        let alice = account(f, "alice", server_admin());
        for taken in ["alice", " alice "] {
            let r = f.s.create_account(
                &NewAccount {
                    login: taken.into(),
                    display_name: "another".into(),
                    grants: building_head(),
                    password_hash: None,
                },
                "server",
            );
            assert!(
                matches!(r, Err(StorageError::Conflict(_))),
                "login {taken:?} is taken: Conflict, got {r:?}"
            );
        }
        assert_eq!(
            f.s.accounts().expect("accounts"),
            vec![alice],
            "a refused account is not stored"
        );
    }

    pub fn accounts_are_listed_by_login(f: &Fixture) {
        for login in ["carol", "alice", "Zed", "bob", "bo"] {
            account(f, login, building_head());
        }
        let logins: Vec<String> =
            f.s.accounts()
                .expect("accounts")
                .into_iter()
                .map(|a| a.login)
                .collect();
        assert_eq!(
            logins,
            ["Zed", "alice", "bo", "bob", "carol"],
            "accounts are ordered by login, byte-wise"
        );
    }

    pub fn grants_and_disabled_round_trip(f: &Fixture) {
        account(f, "root", server_admin());
        let bob = account(f, "bob", building_head());
        let mixed = grants(
            r#"{"tpy": ["building_head", "dispatcher"], "hx": ["counting_officer"], "*": ["dispatcher"]}"#,
        );
        let updated =
            f.s.update_account(&bob.id, &mixed, true, "account:root")
                .expect("a non-admin is updated");
        assert_eq!(updated.grants, mixed, "the grants are returned as given");
        assert!(updated.disabled, "the account is returned disabled");
        assert_eq!(
            f.s.account(&bob.id).expect("read").as_ref(),
            Some(&updated),
            "the update is stored"
        );
        assert_eq!(
            updated,
            Account {
                grants: mixed.clone(),
                disabled: true,
                ..bob.clone()
            },
            "nothing else changes"
        );
        let enabled =
            f.s.update_account(&bob.id, &building_head(), false, "account:root")
                .expect("enabled again");
        assert!(!enabled.disabled);
        assert_eq!(
            f.s.account_by_login("bob").expect("read"),
            Some(Account {
                grants: building_head(),
                disabled: false,
                ..bob
            })
        );
        let r =
            f.s.update_account("no-such-id", &mixed, false, "account:root");
        assert!(
            matches!(r, Err(StorageError::NotFound(_))),
            "updating an unknown account is NotFound, got {r:?}"
        );
    }

    pub fn the_last_admin_of_the_server_keeps_the_role(f: &Fixture) {
        let root = account(f, "root", server_admin());
        let refused = |grants: &Grants, disabled: bool, why: &str| {
            let r =
                f.s.update_account(&root.id, grants, disabled, "account:root");
            assert!(
                matches!(r, Err(StorageError::LastAdmin)),
                "{why}: LastAdmin, got {r:?}"
            );
            assert_eq!(
                f.s.account(&root.id).expect("read"),
                Some(root.clone()),
                "{why}: the refused update changed nothing"
            );
        };
        refused(&server_admin(), true, "the only admin cannot be disabled");
        refused(
            &building_head(),
            false,
            "the only admin cannot lose the role",
        );
        refused(
            &grants(r#"{"tpy": ["admin"]}"#),
            false,
            "the only server-wide admin cannot be narrowed to one community",
        );
        // Admins who cannot log in do not count: one without a password, one disabled.
        f.s.create_account(
            &NewAccount {
                login: "no-password".into(),
                display_name: String::new(),
                grants: server_admin(),
                password_hash: None,
            },
            "server",
        )
        .expect("an admin without a password");
        let second = account(f, "second", server_admin());
        f.s.update_account(&second.id, &server_admin(), true, "account:root")
            .expect("one of two admins can be disabled");
        refused(
            &server_admin(),
            true,
            "the only admin who can log in cannot be disabled",
        );
        f.s.update_account(&second.id, &server_admin(), false, "account:root")
            .expect("enabled again");
        let demoted =
            f.s.update_account(&root.id, &building_head(), false, "account:second")
                .expect("with a second admin, the first can lose the role");
        assert_eq!(demoted.grants, building_head());
        let r =
            f.s.update_account(&second.id, &server_admin(), true, "account:second");
        assert!(
            matches!(r, Err(StorageError::LastAdmin)),
            "now the second is the last admin: LastAdmin, got {r:?}"
        );
        f.s.update_account(&root.id, &server_admin(), false, "account:second")
            .expect("an admin is made again");
        f.s.update_account(&second.id, &server_admin(), true, "account:root")
            .expect("with two admins again, one can be disabled");
    }

    pub fn the_last_admin_of_a_community_keeps_the_role(f: &Fixture) {
        let t1 = account(f, "t1", grants(r#"{"tpy": ["admin"]}"#));
        let h1 = account(f, "h1", grants(r#"{"hx": ["admin"]}"#));
        let r =
            f.s.update_account(&t1.id, &building_head(), false, "account:t1");
        assert!(
            matches!(r, Err(StorageError::LastAdmin)),
            "tpy's only admin cannot lose the role, whoever runs hx: LastAdmin, got {r:?}"
        );
        f.s.update_account(
            &h1.id,
            &grants(r#"{"hx": ["admin"], "tpy": ["admin"]}"#),
            false,
            "account:h1",
        )
        .expect("a second admin for tpy");
        f.s.update_account(&t1.id, &building_head(), false, "account:h1")
            .expect("tpy keeps an admin, so t1 can lose the role");
        let r = f.s.update_account(
            &h1.id,
            &grants(r#"{"hx": ["admin"], "tpy": ["dispatcher"]}"#),
            false,
            "account:h1",
        );
        assert!(
            matches!(r, Err(StorageError::LastAdmin)),
            "h1 is now tpy's last admin: LastAdmin, got {r:?}"
        );
    }

    /// Two admins of a community demote each other at the same moment: one of them must stay
    /// (on a database with several connections, the check must not miss the other's write).
    pub fn two_admins_demoting_each_other_at_once_leave_one(f: &Fixture) {
        const ROUNDS: usize = 25;
        let mut both_succeeded = Vec::new();
        for round in 0..ROUNDS {
            let community = format!("c{round}");
            let admin = grants(&format!(r#"{{"{community}": ["admin"]}}"#));
            let head = grants(&format!(r#"{{"{community}": ["building_head"]}}"#));
            let a = account(f, &format!("a{round}"), admin.clone());
            let b = account(f, &format!("b{round}"), admin);
            let barrier = std::sync::Barrier::new(2);
            let demote = |who: &Account, by: &Account| {
                barrier.wait();
                f.s.update_account(&who.id, &head, false, &format!("account:{}", by.id))
            };
            let (ra, rb) = std::thread::scope(|scope| {
                let ta = scope.spawn(|| demote(&a, &b));
                let tb = scope.spawn(|| demote(&b, &a));
                (ta.join().expect("no panic"), tb.join().expect("no panic"))
            });
            for r in [&ra, &rb] {
                assert!(
                    matches!(r, Ok(_) | Err(StorageError::LastAdmin)),
                    "round {round}: a demotion succeeds or is LastAdmin, got {r:?}"
                );
            }
            if ra.is_ok() && rb.is_ok() {
                both_succeeded.push(round);
            }
        }
        assert!(
            both_succeeded.is_empty(),
            "two concurrent demotions both succeeded in rounds {both_succeeded:?} of \
             {ROUNDS}: those communities were left with no admin"
        );
        for round in 0..ROUNDS {
            let admins =
                f.s.accounts()
                    .expect("accounts")
                    .into_iter()
                    .filter(|a| a.grants.administers(&format!("c{round}")))
                    .count();
            assert_eq!(admins, 1, "community c{round} keeps exactly one admin");
        }
    }

    pub fn a_session_finds_its_account_until_it_expires(f: &Fixture) {
        let bob = account(f, "bob", building_head());
        f.s.create_session(b"token-1", &bob.id, T0 + 60_000)
            .expect("a session");
        let found = f.s.session_account(b"token-1", T0).expect("lookup");
        assert_eq!(found, Some(bob.clone()), "a live session finds its account");
        assert_eq!(
            f.s.session_account(b"token-1", T0 + 59_999)
                .expect("lookup")
                .map(|a| a.id),
            Some(bob.id.clone()),
            "still live a millisecond before it expires"
        );
        assert_eq!(
            f.s.session_account(b"token-1", T0 + 60_000)
                .expect("lookup"),
            None,
            "a session is over when it expires"
        );
        assert_eq!(
            f.s.session_account(b"no-such-token", T0).expect("lookup"),
            None,
            "an unknown token finds nothing"
        );
        // Expired sessions are swept when another one is created; live ones stay.
        f.s.create_session(b"token-2", &bob.id, T0 + 120_000)
            .expect("a second session");
        assert!(
            f.s.session_account(b"token-2", T0)
                .expect("lookup")
                .is_some()
        );
        assert!(
            f.s.session_account(b"token-1", T0)
                .expect("lookup")
                .is_some()
        );
        f.s.delete_session(b"token-1").expect("logout");
        assert_eq!(
            f.s.session_account(b"token-1", T0).expect("lookup"),
            None,
            "a deleted session finds nothing"
        );
        assert!(
            f.s.session_account(b"token-2", T0)
                .expect("lookup")
                .is_some(),
            "deleting one session leaves the others"
        );
        f.s.delete_session(b"token-1")
            .expect("deleting a session twice is harmless");
    }

    pub fn a_session_ends_with_the_account_or_the_password(f: &Fixture) {
        account(f, "root", server_admin());
        let bob = account(f, "bob", building_head());
        let carol = account(f, "carol", building_head());
        let later = T0 + 3_600_000;
        f.s.create_session(b"bob-1", &bob.id, later)
            .expect("session");
        f.s.create_session(b"bob-2", &bob.id, later)
            .expect("session");
        f.s.create_session(b"carol", &carol.id, later)
            .expect("session");
        f.s.update_account(&bob.id, &building_head(), true, "account:root")
            .expect("disable bob");
        assert_eq!(
            f.s.session_account(b"bob-1", T0).expect("lookup"),
            None,
            "a disabled account's session finds nothing"
        );
        f.s.update_account(&bob.id, &building_head(), false, "account:root")
            .expect("enable bob");
        assert!(
            f.s.session_account(b"bob-1", T0).expect("lookup").is_some(),
            "enabled again, the session works again"
        );
        f.s.set_password(&bob.id, "$argon2id$new", "account:bob")
            .expect("a new password");
        for token in [&b"bob-1"[..], b"bob-2"] {
            assert_eq!(
                f.s.session_account(token, T0).expect("lookup"),
                None,
                "a new password ends every session of the account"
            );
        }
        assert!(
            f.s.session_account(b"carol", T0).expect("lookup").is_some(),
            "another account's session is untouched"
        );
        assert_eq!(
            f.s.account(&bob.id)
                .expect("read")
                .and_then(|a| a.password_hash),
            Some("$argon2id$new".to_string()),
            "the new hash is stored"
        );
        let r = f.s.set_password("no-such-id", "x", "server");
        assert!(
            matches!(r, Err(StorageError::NotFound(_))),
            "a password for an unknown account is NotFound, got {r:?}"
        );
    }

    pub fn assignments_are_idempotent_and_filtered(f: &Fixture) {
        let bob = account(f, "bob", building_head());
        let carol = account(f, "carol", building_head());
        let at = |who: &Account, community: &str, building: &str| Assignment {
            account_id: who.id.clone(),
            community: community.into(),
            building: building.into(),
        };
        let bob_1 = at(&bob, "tpy", "1");
        let events = audit_count(f);
        f.s.assign(&bob_1, "account:root").expect("assign");
        f.s.assign(&bob_1, "account:root")
            .expect("assigning again is harmless");
        assert_eq!(
            f.s.assignments(Some(&bob.id)).expect("assignments"),
            vec![bob_1.clone()],
            "assigning twice keeps one row"
        );
        assert_eq!(
            audit_count(f),
            events + 1,
            "only the first assignment is audited"
        );
        f.s.assign(&at(&bob, "tpy", "2"), "account:root")
            .expect("assign");
        f.s.assign(&at(&carol, "tpy", "1"), "account:root")
            .expect("assign");
        f.s.assign(&at(&carol, "hx", "9"), "account:root")
            .expect("assign");
        assert_eq!(
            f.s.assignments(Some(&bob.id)).expect("assignments"),
            vec![at(&bob, "tpy", "1"), at(&bob, "tpy", "2")],
            "one account's assignments only"
        );
        let mut everyone = vec![
            at(&bob, "tpy", "1"),
            at(&bob, "tpy", "2"),
            at(&carol, "tpy", "1"),
            at(&carol, "hx", "9"),
        ];
        everyone.sort_by(|a, b| {
            (&a.community, &a.building, &a.account_id).cmp(&(
                &b.community,
                &b.building,
                &b.account_id,
            ))
        });
        assert_eq!(
            f.s.assignments(None).expect("assignments"),
            everyone,
            "everyone's, by community, building and account"
        );
        f.s.unassign(&bob_1, "account:root").expect("unassign");
        let r = f.s.unassign(&bob_1, "account:root");
        assert!(
            matches!(r, Err(StorageError::NotFound(_))),
            "removing a missing assignment is NotFound, got {r:?}"
        );
        assert_eq!(
            f.s.assignments(Some(&bob.id)).expect("assignments"),
            vec![at(&bob, "tpy", "2")]
        );
        let ghost = Assignment {
            account_id: "no-such-account".into(),
            community: "tpy".into(),
            building: "1".into(),
        };
        let r = f.s.assign(&ghost, "account:root");
        assert!(
            matches!(r, Err(StorageError::NotFound(_))),
            "assigning to an unknown account is NotFound, got {r:?}"
        );
        assert_empty(
            f.s.assignments(Some("no-such-account")).expect("read"),
            "an unknown account has no assignments",
        );
    }

    pub fn an_enrollment_code_redeems_once_into_a_device(f: &Fixture) {
        let bob = account(f, "bob", building_head());
        let carol = account(f, "carol", building_head());
        let code_hash = [7u8; 32];
        let code =
            f.s.create_enrollment_code(&code_hash, &bob.id, T0 + 600_000, "account:root")
                .expect("a code");
        assert_eq!(code.handle, hex::encode(&code_hash[..6]));
        assert_eq!(
            (
                code.created_at,
                code.expires_at,
                code.used_at,
                code.device_id
            ),
            (T0, T0 + 600_000, None, None)
        );
        assert_eq!(
            f.s.enrollment_codes(Some(&bob.id)).expect("codes"),
            vec![code.clone()],
            "the code is listed as created"
        );
        assert_empty(
            f.s.enrollment_codes(Some(&carol.id)).expect("codes"),
            "another account's codes are not listed",
        );
        let new = NewDevice {
            id: Uuid::new_v4(),
            label: "红米".into(),
            app_version: "1.2.3".into(),
            token_hash: vec![9; 32],
        };
        let device =
            f.s.redeem_enrollment_code(&code_hash, T0 + 5, &new)
                .expect("a fresh code redeems");
        assert_eq!(
            (
                device.id,
                device.account_id.as_str(),
                device.label.as_str(),
                device.app_version.as_str(),
                device.enrolled_at,
                device.revoked_at,
            ),
            (new.id, bob.id.as_str(), "红米", "1.2.3", T0 + 5, None),
            "the device is created for the code's account"
        );
        assert_eq!(
            (device.syncs, device.pending, device.quarantined_bytes),
            (0, 0, 0)
        );
        let again = NewDevice {
            id: Uuid::new_v4(),
            token_hash: vec![8; 32],
            ..new.clone()
        };
        let r = f.s.redeem_enrollment_code(&code_hash, T0 + 6, &again);
        assert!(
            matches!(r, Err(StorageError::Conflict(_))),
            "a used code is Conflict, got {r:?}"
        );
        assert_eq!(
            f.s.devices().expect("devices"),
            vec![device.clone()],
            "the second redeem created no device"
        );
        assert_eq!(f.s.device(&again.id).expect("device"), None);
        let used = f.s.enrollment_codes(None).expect("codes");
        assert_eq!(
            used,
            vec![EnrollmentCode {
                used_at: Some(T0 + 5),
                device_id: Some(new.id),
                ..code
            }],
            "the code records when and into which device it was used"
        );
        assert_eq!(f.s.device(&new.id).expect("device"), Some(device));
    }

    pub fn expired_unknown_and_disabled_codes_are_refused(f: &Fixture) {
        account(f, "root", server_admin());
        let bob = account(f, "bob", building_head());
        let device = |n: u8| NewDevice {
            id: Uuid::new_v4(),
            label: "phone".into(),
            app_version: "1.0.0".into(),
            token_hash: vec![n; 32],
        };
        f.s.create_enrollment_code(b"short", &bob.id, T0 + 10, "account:root")
            .expect("a code");
        let r = f.s.redeem_enrollment_code(b"short", T0 + 10, &device(1));
        assert!(
            matches!(r, Err(StorageError::Conflict(_))),
            "a code is expired at its expiry: Conflict, got {r:?}"
        );
        let r = f.s.redeem_enrollment_code(b"never-issued", T0, &device(2));
        assert!(
            matches!(r, Err(StorageError::NotFound(_))),
            "an unknown code is NotFound, got {r:?}"
        );
        f.s.create_enrollment_code(b"disabled", &bob.id, T0 + 600_000, "account:root")
            .expect("a code");
        f.s.update_account(&bob.id, &building_head(), true, "account:root")
            .expect("disable bob");
        let r = f.s.redeem_enrollment_code(b"disabled", T0, &device(3));
        assert!(
            matches!(r, Err(StorageError::Conflict(_))),
            "a disabled account's code is Conflict, got {r:?}"
        );
        assert_empty(f.s.devices().expect("devices"), "no device was made");
        let r =
            f.s.create_enrollment_code(b"ghost", "no-such-account", T0 + 1, "account:root");
        assert!(
            matches!(r, Err(StorageError::NotFound(_))),
            "a code for an unknown account is NotFound, got {r:?}"
        );
        assert!(
            f.s.enrollment_codes(None)
                .expect("codes")
                .iter()
                .all(|c| c.used_at.is_none()),
            "no refused redeem used a code"
        );
    }

    pub fn a_device_is_found_by_token_and_revoked_once(f: &Fixture) {
        let bob = account(f, "bob", building_head());
        // Enrolled later, stored first: devices() lists by enrollment time.
        f.clock.set(T0 + 500);
        let other = enroll(f, &bob.id, b"other-token");
        f.clock.set(T0);
        let device = enroll(f, &bob.id, b"bob-token");
        assert_eq!(
            f.s.device_by_token(b"bob-token").expect("lookup"),
            Some(device.clone()),
            "the token finds its device"
        );
        assert_eq!(f.s.device_by_token(b"unknown").expect("lookup"), None);
        f.clock.set(T0 + 1_000);
        let revoked =
            f.s.revoke_device(&device.id, "account:root")
                .expect("revoke");
        assert_eq!(
            revoked.revoked_at,
            Some(T0 + 1_000),
            "revoking stamps the clock's time"
        );
        assert_eq!(
            f.s.device_by_token(b"bob-token")
                .expect("lookup")
                .and_then(|d| d.revoked_at),
            Some(T0 + 1_000),
            "the token's device reads as revoked"
        );
        f.clock.advance(1_000);
        let again =
            f.s.revoke_device(&device.id, "account:root")
                .expect("revoking twice is harmless");
        assert_eq!(
            again.revoked_at,
            Some(T0 + 1_000),
            "revoking again keeps the first time"
        );
        assert_eq!(
            f.s.device(&other.id)
                .expect("device")
                .and_then(|d| d.revoked_at),
            None,
            "the account's other device is untouched"
        );
        let r = f.s.revoke_device(&Uuid::new_v4(), "account:root");
        assert!(
            matches!(r, Err(StorageError::NotFound(_))),
            "revoking an unknown device is NotFound, got {r:?}"
        );
        let ids: Vec<Uuid> =
            f.s.devices()
                .expect("devices")
                .into_iter()
                .map(|d| d.id)
                .collect();
        assert_eq!(
            ids,
            vec![device.id, other.id],
            "devices are listed by enrollment time"
        );
    }

    pub fn a_document_is_created_and_appended_to(f: &Fixture) {
        let mut doc = new_doc(f, &building_value(2));
        let created_heads = doc.get_heads();
        let write = create(building_id(), &mut doc);
        let snapshot = written(&write);
        let report = commit(f, vec![write]).expect("create");
        assert_eq!(report, CommitReport::default());
        let meta =
            f.s.document_meta(&building_id())
                .expect("meta")
                .expect("the document exists");
        assert_eq!(meta.id, building_id());
        assert_eq!(meta.community, "tpy");
        assert_eq!(sorted(meta.heads.clone()), sorted(created_heads.clone()));
        assert_eq!(
            (meta.snapshot_bytes, meta.chunk_bytes, meta.chunks),
            (snapshot.len() as i64, 0, 0)
        );
        assert_eq!((meta.created_at, meta.updated_at), (T0, T0));

        f.clock.advance(1_000);
        let base = edit(&mut doc, &building_value(3));
        assert_eq!(base, created_heads);
        let write = append(building_id(), &mut doc, &base);
        let chunk = written(&write);
        commit(f, vec![write]).expect("a chunk appends");
        let stored =
            f.s.load_document(&building_id())
                .expect("load")
                .expect("the document exists");
        assert_eq!(
            (stored.meta.chunks, stored.meta.chunk_bytes),
            (1, chunk.len() as i64),
            "the chunk is counted"
        );
        assert_eq!(
            (stored.meta.created_at, stored.meta.updated_at),
            (T0, T0 + 1_000)
        );
        assert_eq!(
            stored.bytes,
            [snapshot.as_slice(), chunk.as_slice()].concat(),
            "the bytes are the snapshot then the chunk"
        );
        let mut loaded = load(&stored.bytes);
        assert_eq!(
            sorted(loaded.get_heads()),
            sorted(doc.get_heads()),
            "the stored bytes load to the written heads"
        );
        assert_eq!(sorted(stored.meta.heads.clone()), sorted(doc.get_heads()));
        let value: BuildingDoc = autosurgeon::hydrate(&loaded).expect("a building document");
        assert_eq!(
            value,
            building_value(3),
            "the loaded document holds the edit"
        );

        f.clock.advance(1_000);
        let base = edit(&mut doc, &building_value(4));
        commit(f, vec![append(building_id(), &mut doc, &base)]).expect("a second chunk");
        let stored =
            f.s.load_document(&building_id())
                .expect("load")
                .expect("exists");
        assert_eq!(stored.meta.chunks, 2, "two chunks");
        assert_eq!(
            sorted(load(&stored.bytes).get_heads()),
            sorted(doc.get_heads())
        );
        assert_eq!(
            f.s.documents().expect("documents"),
            vec![stored.meta],
            "documents() lists it"
        );
        assert_eq!(
            f.s.load_document(&register_id()).expect("load"),
            None,
            "a document never written is None"
        );
        assert_eq!(f.s.document_meta(&register_id()).expect("meta"), None);
    }

    pub fn a_snapshot_write_replaces_the_chunks(f: &Fixture) {
        let mut doc = seed_documents(f);
        let base = edit(&mut doc, &building_value(3));
        commit(f, vec![append(building_id(), &mut doc, &base)]).expect("a chunk");
        f.clock.advance(1_000);
        let heads = doc.get_heads();
        let compacted = doc.save();
        let write = DocWrite {
            id: building_id(),
            community: "tpy".into(),
            content: DocContent::Snapshot(compacted.clone()),
            heads: heads.clone(),
            base: Some(heads.clone()),
            doc: &doc,
            checked: None,
        };
        commit(f, vec![write]).expect("compaction");
        let stored =
            f.s.load_document(&building_id())
                .expect("load")
                .expect("exists");
        assert_eq!(stored.bytes, compacted, "only the new snapshot is kept");
        assert_eq!(
            (
                stored.meta.snapshot_bytes,
                stored.meta.chunk_bytes,
                stored.meta.chunks
            ),
            (compacted.len() as i64, 0, 0)
        );
        assert_eq!(
            (stored.meta.created_at, stored.meta.updated_at),
            (T0, T0 + 1_000)
        );
        assert_eq!(sorted(load(&stored.bytes).get_heads()), sorted(heads));
        let base = edit(&mut doc, &building_value(5));
        commit(f, vec![append(building_id(), &mut doc, &base)]).expect("a chunk after compaction");
        let stored =
            f.s.load_document(&building_id())
                .expect("load")
                .expect("exists");
        assert_eq!(stored.meta.chunks, 1, "chunks count afresh");
        assert_eq!(
            sorted(load(&stored.bytes).get_heads()),
            sorted(doc.get_heads())
        );
    }

    pub fn a_chunk_for_a_missing_document_is_not_found(f: &Fixture) {
        let mut doc = new_doc(f, &building_value(2));
        let base = edit(&mut doc, &building_value(3));
        let mut write = append(building_id(), &mut doc, &base);
        write.base = None;
        let r = commit(f, vec![write]);
        assert!(
            matches!(r, Err(StorageError::NotFound(_))),
            "a chunk needs a stored snapshot: NotFound, got {r:?}"
        );
        let r = commit(f, vec![append(building_id(), &mut doc, &base)]);
        assert!(
            matches!(r, Err(StorageError::NotFound(_))),
            "with a base too: NotFound, got {r:?}"
        );
        assert_empty(
            f.s.documents().expect("documents"),
            "a refused chunk stores no document",
        );
        assert_eq!(f.s.load_document(&building_id()).expect("load"), None);
    }

    pub fn a_write_on_stale_heads_changes_nothing(f: &Fixture) {
        let mut doc = seed_documents(f);
        let loaded_at = doc.get_heads();
        // Another process appends first…
        let mut other = doc.fork().with_actor(fresh_actor(&Uuid::new_v4()));
        let base = edit(&mut other, &building_value(7));
        commit(f, vec![append(building_id(), &mut other, &base)]).expect("the other write");
        let before =
            f.s.load_document(&building_id())
                .expect("load")
                .expect("exists");
        let projected = f.s.projection_rows().expect("projections");
        let events = audit_count(f);
        // …then this one writes on the heads it loaded.
        f.clock.advance(1_000);
        let base = edit(&mut doc, &building_value(3));
        assert_eq!(base, loaded_at);
        let r = f.s.commit(&Batch {
            documents: vec![append(building_id(), &mut doc, &base)],
            audit: vec![NewAuditEvent::new(
                "server",
                "document.changed",
                building_id().to_string(),
                serde_json::json!({}),
            )],
            ..Batch::default()
        });
        assert!(
            matches!(r, Err(StorageError::Stale(_))),
            "a write on other heads than the stored ones is Stale, got {r:?}"
        );
        assert_eq!(
            f.s.load_document(&building_id()).expect("load"),
            Some(before),
            "heads, bytes and counts are as before"
        );
        assert_eq!(
            f.s.projection_rows().expect("projections"),
            projected,
            "the projections are as before"
        );
        assert_eq!(audit_count(f), events, "nothing was audited");
        let mut snapshot_write = create(building_id(), &mut doc);
        snapshot_write.base = Some(loaded_at);
        let r = commit(f, vec![snapshot_write]);
        assert!(
            matches!(r, Err(StorageError::Stale(_))),
            "a snapshot on stale heads is Stale too, got {r:?}"
        );
    }

    pub fn a_batch_is_one_transaction(f: &Fixture) {
        let bob = account(f, "bob", building_head());
        let device = enroll(f, &bob.id, b"token");
        let mut doc = seed_documents(f);
        let stale_base = doc.get_heads();
        let base = edit(&mut doc, &building_value(3));
        commit(f, vec![append(building_id(), &mut doc, &base)]).expect("a chunk");
        let before_docs = f.s.documents().expect("documents");
        let before_device = f.s.device(&device.id).expect("device");
        let events = audit_count(f);
        let orders = DocId::Orders {
            community: "tpy".into(),
            building: "1".into(),
        };
        let mut register = new_doc(
            f,
            &RegisterDoc {
                community: "hx".into(),
                name: "和谐小区".into(),
                ..register_value()
            },
        );
        let mut new_register = create(
            DocId::Register {
                community: "hx".into(),
            },
            &mut register,
        );
        new_register.community = "hx".into();
        let mut building = doc.fork().with_actor(fresh_actor(&Uuid::new_v4()));
        let base = edit(&mut building, &building_value(9));
        let mut stale = append(building_id(), &mut building, &base);
        stale.base = Some(stale_base);
        let r = f.s.commit(&Batch {
            documents: vec![new_register, stale],
            device: Some(DeviceSyncWrite {
                bytes_up: 100,
                ..sync_write(&device, T0)
            }),
            sync_states: vec![SyncStateWrite {
                doc: orders.clone(),
                state: Some(b"state".to_vec()),
                announced: Announce::Set(vec![hash(1)]),
            }],
            quarantine: vec![quarantined(&orders, vec![1; 10], true)],
            audit: vec![NewAuditEvent::new(
                "server",
                "sync",
                "x",
                serde_json::json!({}),
            )],
        });
        assert!(
            matches!(r, Err(StorageError::Stale(_))),
            "the stale document refuses the batch, got {r:?}"
        );
        assert_eq!(
            f.s.documents().expect("documents"),
            before_docs,
            "the batch's new document was not kept"
        );
        assert_empty(
            f.s.sync_rows(&device.id).expect("rows"),
            "the batch's sync rows were not kept",
        );
        assert_empty(
            f.s.quarantine(10).expect("quarantine"),
            "the batch\'s quarantine was not kept",
        );
        assert_eq!(f.s.device(&device.id).expect("device"), before_device);
        assert_eq!(audit_count(f), events);
    }

    pub fn a_malformed_document_id_is_refused(f: &Fixture) {
        for bad in [
            DocId::Building {
                community: "t py".into(),
                building: "1".into(),
            },
            DocId::Building {
                community: "tpy".into(),
                building: "1/2".into(),
            },
            DocId::Register {
                community: String::new(),
            },
        ] {
            let mut doc = new_doc(f, &building_value(2));
            let r = commit(f, vec![create(bad.clone(), &mut doc)]);
            assert!(
                matches!(r, Err(StorageError::Invalid(_))),
                "{:?} breaks the id grammar: Invalid, got {r:?}",
                bad.to_string()
            );
        }
        assert_empty(
            f.s.documents().expect("documents"),
            "no malformed document was stored",
        );
    }

    pub fn account_documents_follow_the_assignments(f: &Fixture) {
        let bob = account(f, "bob", building_head());
        seed_documents(f);
        let mut other = new_doc(
            f,
            &BuildingDoc {
                building: Building {
                    id: "2".into(),
                    label: "2号楼".into(),
                    entrances: Default::default(),
                },
                units: Default::default(),
                households: Default::default(),
                ..building_value(0)
            },
        );
        let building_2 = DocId::Building {
            community: "tpy".into(),
            building: "2".into(),
        };
        commit(f, vec![create(building_2, &mut other)]).expect("building 2");
        assert_empty(
            f.s.account_documents(&bob.id).expect("documents"),
            "an account with no assignment holds no document",
        );
        f.s.assign(
            &Assignment {
                account_id: bob.id.clone(),
                community: "tpy".into(),
                building: "1".into(),
            },
            "account:root",
        )
        .expect("assign");
        let ids: Vec<DocId> =
            f.s.account_documents(&bob.id)
                .expect("documents")
                .into_iter()
                .map(|m| m.id)
                .collect();
        assert_eq!(
            ids,
            vec![building_id(), register_id()],
            "the assigned building and the community's register, by id"
        );
    }

    pub fn sync_rows_keep_state_and_announced_heads(f: &Fixture) {
        let bob = account(f, "bob", building_head());
        let device = enroll(f, &bob.id, b"token");
        let other = enroll(f, &bob.id, b"token-2");
        let a = building_id();
        let b = register_id();
        let sync = |reset: bool, states: Vec<SyncStateWrite>| {
            f.s.commit(&Batch {
                device: Some(DeviceSyncWrite {
                    reset_announced: reset,
                    ..sync_write(&device, f.clock.now())
                }),
                sync_states: states,
                ..Batch::default()
            })
            .expect("a sync commits")
        };
        let row = |doc: &DocId, state: Option<&str>, announced: Option<Vec<ChangeHash>>| SyncRow {
            doc: doc.clone(),
            state: state.map(|s| s.as_bytes().to_vec()),
            announced,
        };
        sync(
            false,
            vec![
                SyncStateWrite {
                    doc: a.clone(),
                    state: Some(b"state-a1".to_vec()),
                    announced: Announce::Set(vec![hash(2), hash(1)]),
                },
                SyncStateWrite {
                    doc: b.clone(),
                    state: None,
                    announced: Announce::Keep,
                },
            ],
        );
        assert_eq!(
            sorted_rows(f.s.sync_rows(&device.id).expect("rows")),
            vec![
                row(&a, Some("state-a1"), Some(vec![hash(1), hash(2)])),
                row(&b, None, None),
            ],
            "a state is set, heads announced (as a set), an untouched row is empty"
        );
        sync(
            false,
            vec![
                SyncStateWrite {
                    doc: a.clone(),
                    state: None,
                    announced: Announce::Clear,
                },
                SyncStateWrite {
                    doc: b.clone(),
                    state: Some(b"state-b1".to_vec()),
                    announced: Announce::Set(vec![hash(3)]),
                },
            ],
        );
        assert_eq!(
            sorted_rows(f.s.sync_rows(&device.id).expect("rows")),
            vec![
                row(&a, Some("state-a1"), None),
                row(&b, Some("state-b1"), Some(vec![hash(3)])),
            ],
            "no new state keeps the stored one; Clear forgets the announced heads"
        );
        sync(
            false,
            vec![SyncStateWrite {
                doc: a.clone(),
                state: Some(b"state-a2".to_vec()),
                announced: Announce::Set(vec![hash(4)]),
            }],
        );
        sync(true, vec![]);
        assert_eq!(
            sorted_rows(f.s.sync_rows(&device.id).expect("rows")),
            vec![
                row(&a, Some("state-a2"), None),
                row(&b, Some("state-b1"), None),
            ],
            "reset_announced clears every announced heads and keeps the states"
        );
        sync(
            true,
            vec![SyncStateWrite {
                doc: b.clone(),
                state: None,
                announced: Announce::Set(vec![hash(5)]),
            }],
        );
        assert_eq!(
            sorted_rows(f.s.sync_rows(&device.id).expect("rows")),
            vec![
                row(&a, Some("state-a2"), None),
                row(&b, Some("state-b1"), Some(vec![hash(5)])),
            ],
            "the reset comes before the batch's own announcements"
        );
        sync(
            false,
            vec![
                SyncStateWrite {
                    doc: a.clone(),
                    state: Some(b"state-a3".to_vec()),
                    announced: Announce::Set(vec![hash(6)]),
                },
                SyncStateWrite {
                    doc: b.clone(),
                    state: Some(b"state-b2".to_vec()),
                    announced: Announce::Keep,
                },
                SyncStateWrite {
                    doc: a.clone(),
                    state: Some(b"state-a4".to_vec()),
                    announced: Announce::Keep,
                },
            ],
        );
        assert_eq!(
            sorted_rows(f.s.sync_rows(&device.id).expect("rows")),
            vec![
                row(&a, Some("state-a4"), Some(vec![hash(6)])),
                row(&b, Some("state-b2"), Some(vec![hash(5)])),
            ],
            "a document written twice in one batch ends as the two writes in order"
        );
        assert_eq!(
            f.s.sync_rows(&other.id).expect("rows"),
            [],
            "another device's rows are its own"
        );
    }

    pub fn a_sync_updates_the_device_bookkeeping(f: &Fixture) {
        let bob = account(f, "bob", building_head());
        let device = enroll(f, &bob.id, b"token");
        f.s.commit(&Batch {
            device: Some(DeviceSyncWrite {
                app_version: "2.0.0".into(),
                pending: 3,
                bytes_up: 100,
                bytes_down: 1_000,
                manifest_digest: Some(b"digest-1".to_vec()),
                ..sync_write(&device, T0 + 10)
            }),
            ..Batch::default()
        })
        .expect("a sync");
        f.s.commit(&Batch {
            device: Some(DeviceSyncWrite {
                app_version: "2.0.1".into(),
                pending: 0,
                bytes_up: 50,
                bytes_down: 500,
                manifest_digest: None,
                ..sync_write(&device, T0 + 20)
            }),
            ..Batch::default()
        })
        .expect("a second sync");
        let after = f.s.device(&device.id).expect("device").expect("exists");
        assert_eq!(
            (
                after.last_sync_at,
                after.app_version.as_str(),
                after.pending,
                after.syncs,
                after.bytes_up,
                after.bytes_down,
                after.rejected,
            ),
            (Some(T0 + 20), "2.0.1", 0, 2, 150, 1_500, 0),
            "the last sync's time, version and pending; counters add up"
        );
        assert_eq!(
            after.manifest_digest.as_deref(),
            Some(&b"digest-1"[..]),
            "a sync without a digest keeps the last one"
        );
    }

    pub fn sync_rows_need_a_device(f: &Fixture) {
        let r = f.s.commit(&Batch {
            sync_states: vec![SyncStateWrite {
                doc: building_id(),
                state: Some(vec![1]),
                announced: Announce::Keep,
            }],
            ..Batch::default()
        });
        assert!(
            matches!(r, Err(StorageError::Invalid(_))),
            "sync rows without a device are Invalid, got {r:?}"
        );
        let r = f.s.commit(&Batch {
            quarantine: vec![quarantined(&building_id(), vec![1], true)],
            ..Batch::default()
        });
        assert!(
            matches!(r, Err(StorageError::Invalid(_))),
            "quarantine without a device is Invalid, got {r:?}"
        );
        assert_empty(
            f.s.quarantine(10).expect("quarantine"),
            "nothing was quarantined",
        );
    }

    pub fn a_payload_is_quarantined_once_and_sampled(f: &Fixture) {
        let bob = account(f, "bob", building_head());
        let device = enroll(f, &bob.id, b"token");
        let doc = building_id();
        let big: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let held: Vec<u8> = (0..6_000u32).map(|i| (i % 13) as u8).collect();
        let events = audit_count(f);
        let quarantine = |payloads: Vec<QuarantineWrite>| {
            f.s.commit(&Batch {
                device: Some(sync_write(&device, f.clock.now())),
                quarantine: payloads,
                ..Batch::default()
            })
            .expect("a sync with refused payloads commits")
        };
        let report = quarantine(vec![
            quarantined(&doc, big.clone(), false),
            quarantined(&doc, big.clone(), false),
            quarantined(&doc, held.clone(), true),
        ]);
        assert_eq!(
            report,
            CommitReport {
                quarantined: 2,
                over_budget: false
            },
            "the same payload twice in one request is kept once"
        );
        let report = quarantine(vec![quarantined(&doc, big.clone(), false)]);
        assert_eq!(
            report.quarantined, 0,
            "a payload sent again is not kept again"
        );
        assert_eq!(
            audit_count(f),
            events + 2,
            "only the kept payloads are audited"
        );
        let entries = f.s.quarantine(10).expect("quarantine");
        assert_eq!(entries.len(), 2, "two rows");
        assert!(entries[0].id > entries[1].id, "newest first");
        let sample = &entries[1];
        let whole = &entries[0];
        assert_eq!(
            (sample.payload_bytes, sample.kept_bytes),
            (big.len() as i64, QUARANTINE_SAMPLE as i64),
            "evidence keeps a sample and the whole size"
        );
        assert_eq!(
            (whole.payload_bytes, whole.kept_bytes),
            (held.len() as i64, held.len() as i64),
            "held work is kept whole"
        );
        assert_eq!(
            sample.payload_sha256,
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&big)),
            "the hash is the whole payload's"
        );
        assert_eq!(
            (
                sample.at,
                sample.device_id,
                sample.account_id.as_str(),
                sample.doc.as_str(),
                sample.code.as_deref(),
                sample.accepted_at,
            ),
            (
                T0,
                device.id,
                bob.id.as_str(),
                "building/tpy/1",
                Some("rules"),
                None
            )
        );
        assert_eq!(
            f.s.quarantine_payload(sample.id).expect("payload"),
            Some(big[..QUARANTINE_SAMPLE].to_vec()),
            "the sample is the payload's first bytes"
        );
        assert_eq!(
            f.s.quarantine_payload(whole.id).expect("payload"),
            Some(held.clone())
        );
        assert_eq!(
            f.s.quarantine_payload(whole.id + 100).expect("payload"),
            None
        );
        assert_eq!(f.s.quarantine(1).expect("quarantine").len(), 1, "limit");
        let after = f.s.device(&device.id).expect("device").expect("exists");
        assert_eq!(
            (
                after.rejected,
                after.quarantined_bytes,
                after.quarantine_full_at
            ),
            (2, (QUARANTINE_SAMPLE + held.len()) as i64, None),
            "the device counts what was kept"
        );
    }

    pub fn a_device_over_its_quarantine_budget_is_flagged_until_released(f: &Fixture) {
        let bob = account(f, "bob", building_head());
        let device = enroll(f, &bob.id, b"token");
        let doc = building_id();
        let budget = 10_000;
        let quarantine = |payload: Vec<u8>| {
            f.s.commit(&Batch {
                device: Some(DeviceSyncWrite {
                    quarantine_budget: budget,
                    ..sync_write(&device, f.clock.now())
                }),
                quarantine: vec![quarantined(&doc, payload, true)],
                ..Batch::default()
            })
            .expect("a sync with a refused payload commits")
        };
        let first = quarantine(vec![1; 6_000]);
        assert_eq!(
            first,
            CommitReport {
                quarantined: 1,
                over_budget: false
            }
        );
        let events = audit_count(f);
        f.clock.advance(1_000);
        let second = quarantine(vec![2; 6_000]);
        assert_eq!(
            second,
            CommitReport {
                quarantined: 0,
                over_budget: true
            },
            "over the budget, the payload is not kept"
        );
        assert_eq!(f.s.quarantine(10).expect("quarantine").len(), 1);
        let flagged = f.s.device(&device.id).expect("device").expect("exists");
        assert_eq!(
            (flagged.quarantine_full_at, flagged.quarantined_bytes),
            (Some(T0 + 1_000), 6_000),
            "the device is flagged when it went over"
        );
        let kinds: Vec<String> =
            f.s.audit_events(events as i64, 100)
                .expect("events")
                .into_iter()
                .map(|e| e.kind)
                .collect();
        assert_eq!(kinds, ["device.quarantine_full"], "going over is audited");
        f.clock.advance(1_000);
        let third = quarantine(vec![3; 6_000]);
        assert!(third.over_budget);
        assert_eq!(
            f.s.device(&device.id)
                .expect("device")
                .and_then(|d| d.quarantine_full_at),
            Some(T0 + 1_000),
            "still flagged from the first time"
        );
        assert_eq!(
            audit_count(f),
            events + 1,
            "being over again is not audited again"
        );
        let released =
            f.s.release_quarantine(&device.id, "account:root")
                .expect("release");
        assert_eq!(
            (released.quarantine_full_at, released.quarantined_bytes),
            (None, 0),
            "released, the budget counts afresh"
        );
        assert_eq!(
            f.s.device(&device.id).expect("device"),
            Some(released),
            "the release is stored"
        );
        assert_eq!(
            f.s.quarantine(10).expect("quarantine").len(),
            1,
            "what was kept stays kept"
        );
        let after = quarantine(vec![4; 6_000]);
        assert_eq!(
            after,
            CommitReport {
                quarantined: 1,
                over_budget: false
            },
            "after the release, a payload is kept again"
        );
        let r = f.s.release_quarantine(&Uuid::new_v4(), "account:root");
        assert!(
            matches!(r, Err(StorageError::NotFound(_))),
            "releasing an unknown device is NotFound, got {r:?}"
        );
    }

    pub fn held_work_is_accepted_once(f: &Fixture) {
        let bob = account(f, "bob", building_head());
        let device = enroll(f, &bob.id, b"token");
        f.s.commit(&Batch {
            device: Some(sync_write(&device, T0)),
            quarantine: vec![quarantined(&building_id(), vec![5; 100], true)],
            ..Batch::default()
        })
        .expect("held work");
        let id = f.s.quarantine(1).expect("quarantine")[0].id;
        assert!(
            f.s.mark_quarantine_accepted(id, "account:root", T0 + 5)
                .expect("accept"),
            "the first acceptance is true"
        );
        assert!(
            !f.s.mark_quarantine_accepted(id, "account:other", T0 + 9)
                .expect("accept"),
            "the second is false"
        );
        let entry = &f.s.quarantine(1).expect("quarantine")[0];
        assert_eq!(
            (entry.accepted_at, entry.accepted_by.as_deref()),
            (Some(T0 + 5), Some("account:root")),
            "the first acceptance is kept"
        );
        assert!(
            !f.s.mark_quarantine_accepted(id + 100, "account:root", T0)
                .expect("accept"),
            "an unknown row is not accepted"
        );
        let last = f.s.audit_events(0, 1_000).expect("events");
        assert_eq!(
            last.iter().filter(|e| e.kind == "held.accepted").count(),
            1,
            "one acceptance is audited"
        );
    }

    pub fn every_write_is_audited_in_one_verified_chain(f: &Fixture) {
        let root = account(f, "root", server_admin());
        f.clock.advance(1);
        let bob = account(f, "bob", building_head());
        f.clock.advance(1);
        f.s.update_account(&bob.id, &building_head(), false, "account:root")
            .expect("update");
        f.clock.advance(1);
        f.s.set_password(&bob.id, "$argon2id$new", "account:root")
            .expect("password");
        f.clock.advance(1);
        let assignment = Assignment {
            account_id: bob.id.clone(),
            community: "tpy".into(),
            building: "1".into(),
        };
        f.s.assign(&assignment, "account:root").expect("assign");
        f.s.assign(&assignment, "account:root").expect("again");
        f.clock.advance(1);
        f.s.unassign(&assignment, "account:root").expect("unassign");
        f.clock.advance(1);
        let device = enroll(f, &bob.id, b"token");
        f.clock.advance(1);
        f.s.revoke_device(&device.id, &format!("account:{}", root.id))
            .expect("revoke");
        f.clock.advance(1);
        let mut doc = new_doc(f, &building_value(2));
        f.s.commit(&Batch {
            documents: vec![create(building_id(), &mut doc)],
            audit: vec![NewAuditEvent::new(
                "server",
                "document.created",
                building_id().to_string(),
                serde_json::json!({ "n": 1 }),
            )],
            ..Batch::default()
        })
        .expect("a document");
        f.clock.advance(1);
        f.s.append_audit(&[
            NewAuditEvent::new(
                "server",
                "test.one",
                "a",
                serde_json::json!({ "k": [1, 2] }),
            ),
            NewAuditEvent::new("server", "test.two", "b", serde_json::json!(null)),
        ])
        .expect("append");
        f.s.append_audit(&[]).expect("appending nothing");

        let expected = [
            ("account.created", T0),
            ("account.created", T0 + 1),
            ("account.updated", T0 + 2),
            ("account.password_set", T0 + 3),
            ("assignment.added", T0 + 4),
            ("assignment.removed", T0 + 5),
            ("enrollment.code_created", T0 + 6),
            ("device.enrolled", T0 + 6),
            ("device.revoked", T0 + 7),
            ("document.created", T0 + 8),
            ("test.one", T0 + 9),
            ("test.two", T0 + 9),
        ];
        let all = f.s.audit_events(0, 1_000).expect("events");
        let got: Vec<(&str, Millis)> = all.iter().map(|e| (e.kind.as_str(), e.at)).collect();
        assert_eq!(
            got, expected,
            "every write appended its event, stamped by the clock"
        );
        assert_eq!(
            all.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=expected.len() as i64).collect::<Vec<_>>(),
            "events are numbered from 1 without gaps"
        );
        assert_eq!(
            f.s.verify_audit_chain().expect("the chain verifies"),
            expected.len() as i64
        );
        let enrolled = &all[7];
        assert_eq!(
            (enrolled.actor.as_str(), enrolled.subject.as_str()),
            (
                format!("account:{}", bob.id).as_str(),
                format!("device:{}", device.id).as_str()
            )
        );
        assert_eq!(all[10].detail, serde_json::json!({ "k": [1, 2] }));
        assert_eq!(all[11].detail, serde_json::Value::Null);
        assert!(
            all.iter().all(|e| e.hash.len() == 64),
            "hashes are hex sha256"
        );
        let mut hashes: Vec<&str> = all.iter().map(|e| e.hash.as_str()).collect();
        hashes.dedup();
        assert_eq!(hashes.len(), all.len(), "every event has its own hash");

        let mut paged = Vec::new();
        let mut after = 0;
        loop {
            let page = f.s.audit_events(after, 5).expect("a page");
            assert!(page.len() <= 5, "a page holds at most the limit");
            let Some(last) = page.last() else { break };
            after = last.seq;
            paged.extend(page);
        }
        assert_eq!(paged, all, "pages follow each other in order");
        assert_eq!(
            f.s.audit_events(3, 2)
                .expect("page")
                .iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>(),
            [4, 5]
        );
    }

    pub fn the_audit_log_is_append_only(f: &Fixture) {
        let root = account(f, "root", server_admin());
        f.s.append_audit(&[NewAuditEvent::new(
            "server",
            "test",
            "x",
            serde_json::json!({}),
        )])
        .expect("append");
        let before = f.s.audit_events(0, 100).expect("events");
        let count = f.s.verify_audit_chain().expect("verifies");
        assert_eq!(count, 2);
        let r = f.s.write_raw(&mut |db| {
            db.execute(
                "UPDATE audit_log SET kind = ?1",
                doorstep_server::args!["x"],
            )?;
            Ok(())
        });
        assert!(
            matches!(r, Err(StorageError::Sql(_))),
            "an UPDATE of the audit log fails, got {r:?}"
        );
        let r = f.s.write_raw(&mut |db| {
            db.execute(
                "DELETE FROM audit_log WHERE seq >= ?1",
                doorstep_server::args![1i64],
            )?;
            Ok(())
        });
        assert!(
            matches!(r, Err(StorageError::Sql(_))),
            "a DELETE from the audit log fails, got {r:?}"
        );
        let r = f.s.write_raw(&mut |db| {
            db.execute("DELETE FROM audit_log", &[])?;
            Ok(())
        });
        assert!(
            matches!(r, Err(StorageError::Sql(_))),
            "deleting the whole log fails, got {r:?}"
        );
        assert_eq!(
            f.s.audit_events(0, 100).expect("events"),
            before,
            "the log is as it was"
        );
        assert_eq!(
            f.s.verify_audit_chain().expect("the chain still verifies"),
            count
        );
        // write_raw itself works: the refusals came from the log.
        f.s.write_raw(&mut |db| {
            db.execute(
                "UPDATE accounts SET display_name = ?1 WHERE id = ?2",
                doorstep_server::args!["管理员", root.id],
            )?;
            Ok(())
        })
        .expect("a raw write elsewhere");
        assert_eq!(
            f.s.account(&root.id).expect("read").map(|a| a.display_name),
            Some("管理员".to_string())
        );
        f.s.append_audit(&[NewAuditEvent::new(
            "server",
            "after",
            "x",
            serde_json::json!({}),
        )])
        .expect("the chain goes on");
        assert_eq!(f.s.verify_audit_chain().expect("verifies"), count + 1);
    }

    pub fn projections_equal_a_rebuild(f: &Fixture) {
        let mut doc = seed_documents(f);
        let base = edit(&mut doc, &building_value(3));
        commit(f, vec![append(building_id(), &mut doc, &base)]).expect("a chunk");
        // Two people change one household's contact at once: the conflict is projected.
        let base = doc.get_heads();
        let mut other = doc.fork().with_actor(fresh_actor(&Uuid::new_v4()));
        let mut mine = building_value(3);
        mine.households
            .get_mut("1-1-0101")
            .expect("unit")
            .contact_name = "李四".into();
        edit(&mut doc, &mine);
        let mut theirs = building_value(3);
        theirs
            .households
            .get_mut("1-1-0101")
            .expect("unit")
            .contact_name = "王五".into();
        edit(&mut other, &theirs);
        doc.merge(&mut other).expect("merge");
        commit(f, vec![append(building_id(), &mut doc, &base)]).expect("the merge");

        let households = f.s.household_rows("tpy", "1").expect("households");
        assert_eq!(households.len(), 1);
        assert_eq!(
            households[0].residents, 3,
            "the projection follows the chunk"
        );
        let conflicts =
            f.s.household_conflicts(Some("tpy"), None)
                .expect("conflicts");
        assert_eq!(conflicts.len(), 1, "one field edited concurrently");
        assert_eq!(
            (conflicts[0].unit.as_str(), conflicts[0].field.as_str()),
            ("1-1-0101", "contact_name")
        );
        let mut values = conflicts[0].values.clone();
        values.sort();
        assert_eq!(values, ["李四", "王五"], "both values are kept");
        let buildings = f.s.building_rows(Some("tpy")).expect("buildings");
        assert_eq!(
            buildings
                .iter()
                .map(|b| (b.building.as_str(), b.units, b.area))
                .collect::<Vec<_>>(),
            [("1", 1, 8_950)],
            "the register's building with its unit"
        );
        assert_eq!(
            f.s.unit_rows("tpy", "1")
                .expect("units")
                .iter()
                .map(|u| u.unit.as_str())
                .collect::<Vec<_>>(),
            ["1-1-0101"]
        );

        let incremental = f.s.projection_rows().expect("projection rows");
        assert!(
            incremental.values().any(|rows| !rows.is_empty()),
            "the documents were projected"
        );
        f.clock.advance(60_000);
        assert_eq!(
            f.s.rebuild_projections().expect("rebuild"),
            2,
            "both documents are projected again"
        );
        let rebuilt = f.s.projection_rows().expect("projection rows");
        for (table, rows) in &rebuilt {
            assert_eq!(
                incremental.get(table),
                Some(rows),
                "table {table}: the rows kept while writing equal a rebuild's"
            );
        }
        assert_eq!(incremental, rebuilt);
    }

    pub fn times_come_from_the_injected_clock(f: &Fixture) {
        assert_eq!(f.s.now(), T0);
        let alice = account(f, "alice", server_admin());
        assert_eq!(alice.created_at, T0, "created_at is the clock's time");
        assert_eq!(
            f.s.account(&alice.id).expect("read").map(|a| a.created_at),
            Some(T0),
            "and is stored so"
        );
        f.clock.advance(5_000);
        assert_eq!(f.s.now(), T0 + 5_000, "now() follows the clock");
        let bob = account(f, "bob", building_head());
        assert_eq!(
            f.s.account(&bob.id).expect("read").map(|a| a.created_at),
            Some(T0 + 5_000)
        );
        let code =
            f.s.create_enrollment_code(b"code", &bob.id, T0 + 600_000, "account:alice")
                .expect("a code");
        assert_eq!(code.created_at, T0 + 5_000);
        assert_eq!(
            f.s.enrollment_codes(None).expect("codes")[0].created_at,
            T0 + 5_000
        );
        f.clock.set(T0 - 86_400_000);
        let mut doc = new_doc(f, &building_value(1));
        commit(f, vec![create(building_id(), &mut doc)]).expect("a document");
        let meta =
            f.s.document_meta(&building_id())
                .expect("meta")
                .expect("exists");
        assert_eq!(
            (meta.created_at, meta.updated_at),
            (T0 - 86_400_000, T0 - 86_400_000),
            "a clock set back is obeyed too"
        );
        let last =
            f.s.audit_events(0, 100)
                .expect("events")
                .into_iter()
                .map(|e| e.at)
                .collect::<Vec<_>>();
        assert_eq!(last, [T0, T0 + 5_000, T0 + 5_000]);
    }
}

//! Encryption at rest for the phone's store (SQLCipher, built into the workspace's SQLite).
//!
//! The app owns the key: 32 random bytes it keeps in the platform's key store (Android Keystore
//! wraps them, iOS keeps them in the Keychain, the desktop demo in a PKCS12 Java KeyStore). The
//! core receives them as a [`StoreKey`] and gives them to SQLCipher as a raw key, so opening costs
//! no key derivation. Every page of the database, its WAL and its temporary files is encrypted:
//! residents' names and phone numbers never sit in plain text on the device.
//!
//! A store written before encryption existed is a plain SQLite file. [`encrypt_in_place`] turns it
//! into an encrypted one without losing a record and in a way that a crash at any point leaves
//! either the plain store or the encrypted one, never neither:
//! 1. `sqlcipher_export` copies every table into `<store>.encrypting` (a stale one from an
//!    interrupted run is discarded first), which is synced to disk;
//! 2. the plain file gets a second name, `<store>.plain`;
//! 3. the encrypted copy is renamed over `<store>` (atomic);
//! 4. `<store>.plain` is overwritten with zeros and removed. A crash before this step leaves it
//!    behind; the next open finishes the job ([`remove_plain_leftover`]).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::error::{Error, Result};

/// The first 16 bytes of every unencrypted SQLite file. An encrypted file starts with its random
/// salt instead.
const PLAIN_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// The key of an encrypted store: exactly 32 bytes (256 bits) from the platform's key store.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreKey([u8; 32]);

impl StoreKey {
    pub const LEN: usize = 32;

    /// Refuses anything but 32 bytes (`invalid_input`): a short key is a bug in the app, not a
    /// weaker store.
    pub fn from_bytes(bytes: &[u8]) -> Result<StoreKey> {
        let key: [u8; 32] = bytes.try_into().map_err(|_| {
            Error::Invalid(format!(
                "a store key has {} bytes, not {}",
                StoreKey::LEN,
                bytes.len()
            ))
        })?;
        Ok(StoreKey(key))
    }

    /// SQLCipher's raw-key literal, `x'<64 hex digits>'` (no key derivation on open).
    fn literal(&self) -> String {
        format!("x'{}'", hex::encode(self.0))
    }
}

/// Never prints the key.
impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreKey(..)")
    }
}

/// Whether the file at `path` is an unencrypted SQLite database (false for a missing, empty or
/// encrypted file).
pub fn is_plain(path: &Path) -> Result<bool> {
    let mut header = [0u8; 16];
    match File::open(path) {
        Ok(mut file) => match file.read_exact(&mut header) {
            Ok(()) => Ok(&header == PLAIN_HEADER),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(io_error(path, e)),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_error(path, e)),
    }
}

/// Gives `conn` the key before its first read, and checks that this SQLite really encrypts (a
/// plain SQLite ignores `PRAGMA key` silently, which would leave the store in plain text).
pub fn apply_key(conn: &Connection, key: &StoreKey) -> Result<()> {
    conn.execute_batch(&format!("PRAGMA key = \"{}\";", key.literal()))?;
    let version: Option<String> = conn
        .query_row("PRAGMA cipher_version", [], |r| r.get(0))
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })?;
    match version {
        Some(v) if !v.is_empty() => Ok(()),
        _ => Err(Error::Invalid(
            "this build's SQLite cannot encrypt (no SQLCipher): refusing to write in plain text"
                .into(),
        )),
    }
}

/// Encrypts the plain store at `path` with `key`, in place, keeping every record (see the module
/// documentation for why a crash loses nothing).
pub fn encrypt_in_place(path: &Path, key: &StoreKey) -> Result<()> {
    let staging = sibling(path, "encrypting");
    let plain = sibling(path, "plain");
    remove_if_present(&staging)?;
    {
        let conn = Connection::open(path)?;
        // Fold the WAL into the file so the export and the rename see one complete database.
        let _: (i64, i64, i64) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        let user_version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let application_id: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
        conn.execute(
            "ATTACH DATABASE ?1 AS encrypted KEY ?2",
            rusqlite::params![staging.to_string_lossy(), key.literal()],
        )?;
        let _: Option<String> =
            conn.query_row("SELECT sqlcipher_export('encrypted')", [], |r| {
                r.get::<_, Option<String>>(0)
            })?;
        // sqlcipher_export copies tables and rows, not the header fields the store relies on.
        conn.execute_batch(&format!(
            "PRAGMA encrypted.user_version = {user_version};
             PRAGMA encrypted.application_id = {application_id};
             DETACH DATABASE encrypted;"
        ))?;
        // Leave the plain store in rollback mode with no -wal/-shm beside it.
        let _: String = conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
    }
    File::open(&staging)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_error(&staging, e))?;
    remove_if_present(&plain)?;
    fs::hard_link(path, &plain).map_err(|e| io_error(&plain, e))?;
    fs::rename(&staging, path).map_err(|e| io_error(path, e))?;
    sync_dir(path)?;
    remove_plain_leftover(path)
}

/// Overwrites and removes `<store>.plain`, the plain copy an interrupted [`encrypt_in_place`]
/// may have left behind once the encrypted store is in place.
pub fn remove_plain_leftover(path: &Path) -> Result<()> {
    let plain = sibling(path, "plain");
    let len = match fs::metadata(&plain) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(&plain, e)),
    };
    let zero = || -> std::io::Result<()> {
        let mut file = OpenOptions::new().write(true).open(&plain)?;
        let block = vec![0u8; 64 * 1024];
        let mut left = len;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            file.write_all(&block[..n])?;
            left -= n as u64;
        }
        file.sync_all()
    };
    zero().map_err(|e| io_error(&plain, e))?;
    fs::remove_file(&plain).map_err(|e| io_error(&plain, e))?;
    for suffix in ["plain-wal", "plain-shm", "plain-journal"] {
        remove_if_present(&sibling(path, suffix))?;
    }
    Ok(())
}

/// `<store>.<suffix>` beside the store.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(path, e)),
    }
}

/// Makes the rename durable (the directory entry), where the platform allows opening a folder.
fn sync_dir(path: &Path) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match File::open(dir) {
        Ok(d) => d.sync_all().map_err(|e| io_error(dir, e)),
        // Some platforms cannot open a directory for syncing; the rename itself is atomic.
        Err(_) => Ok(()),
    }
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::Storage(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
        Some(format!("{}: {e}", path.display())),
    ))
}

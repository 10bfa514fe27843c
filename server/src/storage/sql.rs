//! One set of SQL for both backends: the [`Sql`] trait that the storage aggregates
//! (`documents`, `directory`, `audit`), the projections and the read views are written against,
//! with a driver for SQLite ([`Lite`]) and one for PostgreSQL ([`Pg`]).
//!
//! Statements are written once, in the SQL both databases understand: `?1`-style placeholders
//! (rewritten to `$1` for PostgreSQL), `ON CONFLICT … DO UPDATE/NOTHING`, integers for flags
//! (0/1, never a boolean column), `CAST(SUM(…) AS BIGINT)` where PostgreSQL would answer a
//! `NUMERIC`. A statement that cannot be shared asks [`Sql::dialect`]. Parameters and columns
//! cross the seam as a handful of plain types ([`Param`], [`Value`]), so neither backend's
//! type system leaks into the queries. Both drivers keep every statement prepared, per
//! connection.

use std::collections::HashMap;

/// Which database a statement runs on, for the few statements that cannot be shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A statement failed, or a column did not hold what the code expected.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(#[from] postgres::Error),
    /// A column's value is not of the type asked for (a schema and code out of step).
    #[error("column {index}: {message}")]
    Decode { index: usize, message: String },
    /// A query that must answer one row answered none.
    #[error("no row: {0}")]
    NoRow(String),
    /// No connection could be had (the database is down or the pool exhausted).
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

impl SqlError {
    /// A uniqueness constraint refused the write (a login taken, a code used twice).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            SqlError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::ConstraintViolation
                    && matches!(e.extended_code, 1555 | 2067)
            }
            SqlError::Postgres(e) => e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION),
            _ => false,
        }
    }

    /// The database could not be reached (rather than refusing the statement): worth a retry.
    pub fn is_unavailable(&self) -> bool {
        match self {
            SqlError::Unavailable(_) => true,
            SqlError::Postgres(e) => match e.as_db_error() {
                // Connection exceptions (08…) and operator intervention (57…: shutting down,
                // not yet accepting connections).
                Some(db) => {
                    let code = db.code().code();
                    code.starts_with("08") || code.starts_with("57")
                }
                None => {
                    e.is_closed()
                        || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
                }
            },
            SqlError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                )
            }
            _ => false,
        }
    }
}

/// Shorthand for SQL results.
pub type SqlResult<T> = Result<T, SqlError>;

/// A statement parameter, borrowed from the caller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Param<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Bytes(&'a [u8]),
}

/// Values that can be bound to a statement.
pub trait ToParam {
    fn to_param(&self) -> Param<'_>;
}

impl ToParam for i64 {
    fn to_param(&self) -> Param<'_> {
        Param::Int(*self)
    }
}

impl ToParam for i32 {
    fn to_param(&self) -> Param<'_> {
        Param::Int(i64::from(*self))
    }
}

impl ToParam for u32 {
    fn to_param(&self) -> Param<'_> {
        Param::Int(i64::from(*self))
    }
}

/// Flags are stored as 0/1 on both databases.
impl ToParam for bool {
    fn to_param(&self) -> Param<'_> {
        Param::Int(i64::from(*self))
    }
}

impl ToParam for f64 {
    fn to_param(&self) -> Param<'_> {
        Param::Real(*self)
    }
}

impl ToParam for str {
    fn to_param(&self) -> Param<'_> {
        Param::Text(self)
    }
}

impl ToParam for String {
    fn to_param(&self) -> Param<'_> {
        Param::Text(self)
    }
}

impl ToParam for [u8] {
    fn to_param(&self) -> Param<'_> {
        Param::Bytes(self)
    }
}

impl ToParam for Vec<u8> {
    fn to_param(&self) -> Param<'_> {
        Param::Bytes(self)
    }
}

impl<T: ToParam + ?Sized> ToParam for &T {
    fn to_param(&self) -> Param<'_> {
        (**self).to_param()
    }
}

impl<T: ToParam> ToParam for Option<T> {
    fn to_param(&self) -> Param<'_> {
        match self {
            Some(v) => v.to_param(),
            None => Param::Null,
        }
    }
}

/// The parameters of one statement: `args![a, b, c]`.
#[macro_export]
macro_rules! args {
    ($($p:expr),* $(,)?) => {
        &[$($crate::storage::sql::ToParam::to_param(&$p)),*][..]
    };
}
pub use args;

/// A column's value as read.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
}

/// Types a column can be read as.
pub trait FromValue: Sized {
    fn from_value(value: &Value) -> Result<Self, String>;
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Int(v) => Ok(*v),
            other => Err(format!("expected an integer, found {other:?}")),
        }
    }
}

impl FromValue for u32 {
    fn from_value(value: &Value) -> Result<Self, String> {
        let v = i64::from_value(value)?;
        u32::try_from(v).map_err(|_| format!("{v} is out of range"))
    }
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Result<Self, String> {
        Ok(i64::from_value(value)? != 0)
    }
}

impl FromValue for f64 {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Real(v) => Ok(*v),
            Value::Int(v) => Ok(*v as f64),
            other => Err(format!("expected a number, found {other:?}")),
        }
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Text(v) => Ok(v.clone()),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Bytes(v) => Ok(v.clone()),
            other => Err(format!("expected bytes, found {other:?}")),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// One result row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    values: Vec<Value>,
}

impl Value {
    /// The value as a statement parameter (copying rows between databases).
    pub fn as_param(&self) -> Param<'_> {
        match self {
            Value::Null => Param::Null,
            Value::Int(v) => Param::Int(*v),
            Value::Real(v) => Param::Real(*v),
            Value::Text(v) => Param::Text(v),
            Value::Bytes(v) => Param::Bytes(v),
        }
    }
}

impl Row {
    /// Column `index` as `T`.
    pub fn get<T: FromValue>(&self, index: usize) -> SqlResult<T> {
        let value = self.values.get(index).ok_or_else(|| SqlError::Decode {
            index,
            message: format!("the row has {} columns", self.values.len()),
        })?;
        T::from_value(value).map_err(|message| SqlError::Decode { index, message })
    }

    /// Every column, in order (for code that reads rows whatever their shape).
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// Column `index` moved out of the row (for large blobs); `Null` is left behind.
    pub fn take_bytes(&mut self, index: usize) -> SqlResult<Vec<u8>> {
        match self.values.get_mut(index).map(std::mem::take) {
            Some(Value::Bytes(v)) => Ok(v),
            other => Err(SqlError::Decode {
                index,
                message: format!("expected bytes, found {other:?}"),
            }),
        }
    }
}

/// What a lock serialises, across server processes sharing one PostgreSQL (SQLite has one
/// writer, so there it is never needed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// Writes to one document.
    Document,
    /// Appends to the audit chain (one chain for the whole server).
    Audit,
    /// Account changes that must see each other (the last admin).
    Accounts,
    /// One throttled key's count.
    Throttle,
    /// Creating the schema.
    Schema,
}

/// How long transactions waited for locks another transaction held (PostgreSQL): the price of
/// coordination, for `/metrics` and the benchmarks.
#[derive(Debug, Default)]
pub struct LockStats {
    /// Document locks another transaction held, so this one waited; and for how long in all.
    pub document_waits: std::sync::atomic::AtomicU64,
    pub document_wait_us: std::sync::atomic::AtomicU64,
    /// The same for the audit chain's lock.
    pub audit_waits: std::sync::atomic::AtomicU64,
    pub audit_wait_us: std::sync::atomic::AtomicU64,
}

/// A lock key: the first 8 bytes of the SHA-256 of `what`.
pub fn lock_key(what: &str) -> i64 {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(what.as_bytes());
    let mut key = [0u8; 8];
    key.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(key)
}

/// A connection or transaction that runs statements. Everything the storage keeps in SQL
/// goes through it, so a statement is written once for both databases.
pub trait Sql {
    fn dialect(&self) -> Dialect;
    /// Run a statement; how many rows it changed.
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> SqlResult<u64>;
    /// Run a query; every row it answers.
    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> SqlResult<Vec<Row>>;
    /// Run several statements without parameters (schema changes).
    fn batch(&mut self, sql: &str) -> SqlResult<()>;
    /// Take `lock` on `key` until the transaction ends, waiting for whoever holds it (another
    /// server process). Nothing to do on a database with a single writer.
    fn lock(&mut self, _lock: Lock, _key: i64) -> SqlResult<()> {
        Ok(())
    }

    /// The first row, if any.
    fn query_opt(&mut self, sql: &str, params: &[Param<'_>]) -> SqlResult<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The one row the query must answer.
    fn query_one(&mut self, sql: &str, params: &[Param<'_>]) -> SqlResult<Row> {
        self.query_opt(sql, params)?.ok_or_else(|| {
            SqlError::NoRow(sql.split_whitespace().take(8).collect::<Vec<_>>().join(" "))
        })
    }
}

/// Most rows one multi-row statement carries ([`insert_rows`], [`query_in`]).
pub const ROWS_PER_STATEMENT: usize = 64;

/// How `n` rows are split into statements: 64 at a time, then the rest by its binary digits
/// (45 = 32 + 8 + 4 + 1), so a multi-row statement has one of seven texts and stays prepared.
fn row_chunks(mut n: usize) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if n == 0 {
            return None;
        }
        let take = if n >= ROWS_PER_STATEMENT {
            ROWS_PER_STATEMENT
        } else {
            1 << (usize::BITS - 1 - n.leading_zeros())
        };
        n -= take;
        Some(take)
    })
}

/// `(?a, ?b, …), (…)`: `rows` groups of `width` placeholders numbered from `first`.
fn placeholders(first: usize, rows: usize, width: usize) -> String {
    let mut out = String::with_capacity(rows * width * 5);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..width {
            if c > 0 {
                out.push_str(", ");
            }
            out.push('?');
            out.push_str(&(first + r * width + c).to_string());
        }
        out.push(')');
    }
    out
}

/// One `INSERT` of many rows: `{head} VALUES (…), (…) {tail}`, where `params` holds the rows
/// one after another, `width` values each, and `tail` may be an `ON CONFLICT` clause (no key
/// twice among the rows: PostgreSQL refuses to update one row twice in one statement). A
/// statement per [`row_chunks`] instead of one per row: on PostgreSQL each statement is a round
/// trip. Returns how many rows changed.
pub fn insert_rows(
    db: &mut dyn Sql,
    head: &str,
    tail: &str,
    width: usize,
    params: &[Param<'_>],
) -> SqlResult<u64> {
    assert!(
        width > 0 && params.len().is_multiple_of(width),
        "invariant: {} values are not rows of {width}",
        params.len()
    );
    let mut changed = 0;
    let mut rest = params;
    for rows in row_chunks(params.len() / width) {
        let (now, later) = rest.split_at(rows * width);
        let sql = format!("{head} VALUES {} {tail}", placeholders(1, rows, width));
        changed += db.execute(&sql, now)?;
        rest = later;
    }
    Ok(changed)
}

/// Run `{head} IN (…)` for every value of `list`, where `head` already uses the placeholders of
/// `fixed` (`?1…`), in as few statements as [`insert_rows`] and with as few statement texts.
fn each_in<'p>(
    head: &str,
    fixed: &[Param<'p>],
    list: &[Param<'p>],
    mut run: impl FnMut(&str, &[Param<'p>]) -> SqlResult<()>,
) -> SqlResult<()> {
    let mut rest = list;
    for rows in row_chunks(list.len()) {
        let (now, later) = rest.split_at(rows);
        let sql = format!("{head} IN {}", placeholders(fixed.len() + 1, 1, rows));
        let params: Vec<Param<'p>> = fixed.iter().chain(now).copied().collect();
        run(&sql, &params)?;
        rest = later;
    }
    Ok(())
}

/// The rows of `{head} IN (…)` for every value of `list` (see [`each_in`]).
pub fn query_in(
    db: &mut dyn Sql,
    head: &str,
    fixed: &[Param<'_>],
    list: &[Param<'_>],
) -> SqlResult<Vec<Row>> {
    let mut out = Vec::new();
    each_in(head, fixed, list, |sql, params| {
        out.extend(db.query(sql, params)?);
        Ok(())
    })?;
    Ok(out)
}

/// Execute `{head} IN (…)` (an `UPDATE` or `DELETE`) for every value of `list` (see
/// [`each_in`]); the rows changed.
pub fn execute_in(
    db: &mut dyn Sql,
    head: &str,
    fixed: &[Param<'_>],
    list: &[Param<'_>],
) -> SqlResult<u64> {
    let mut changed = 0;
    each_in(head, fixed, list, |sql, params| {
        changed += db.execute(sql, params)?;
        Ok(())
    })?;
    Ok(changed)
}

// ---------------------------------------------------------------------------------------------
// SQLite.
// ---------------------------------------------------------------------------------------------

/// Statements on a SQLite connection (or transaction: it derefs to its connection), through
/// rusqlite's statement cache.
pub struct Lite<'c>(pub &'c rusqlite::Connection);

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Param::Null => ValueRef::Null,
            Param::Int(v) => ValueRef::Integer(v),
            Param::Real(v) => ValueRef::Real(v),
            Param::Text(v) => ValueRef::Text(v.as_bytes()),
            Param::Bytes(v) => ValueRef::Blob(v),
        }))
    }
}

fn lite_value(value: rusqlite::types::ValueRef<'_>, index: usize) -> SqlResult<Value> {
    use rusqlite::types::ValueRef;
    Ok(match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(v) => Value::Int(v),
        ValueRef::Real(v) => Value::Real(v),
        ValueRef::Text(v) => {
            Value::Text(String::from_utf8(v.to_vec()).map_err(|e| SqlError::Decode {
                index,
                message: e.to_string(),
            })?)
        }
        ValueRef::Blob(v) => Value::Bytes(v.to_vec()),
    })
}

impl Sql for Lite<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> SqlResult<u64> {
        let changed = self
            .0
            .prepare_cached(sql)?
            .execute(rusqlite::params_from_iter(params))?;
        Ok(changed as u64)
    }

    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> SqlResult<Vec<Row>> {
        let mut stmt = self.0.prepare_cached(sql)?;
        let columns = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let values = (0..columns)
                .map(|i| lite_value(row.get_ref(i)?, i))
                .collect::<SqlResult<Vec<_>>>()?;
            out.push(Row { values });
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &str) -> SqlResult<()> {
        Ok(self.0.execute_batch(sql)?)
    }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL.
// ---------------------------------------------------------------------------------------------

/// Statements prepared on one PostgreSQL connection, by the statement's text as written.
#[derive(Default)]
pub struct PgStatements {
    prepared: HashMap<String, postgres::Statement>,
}

/// Where PostgreSQL statements run: a transaction, or the connection itself (each statement
/// its own transaction: one-statement reads, without a BEGIN and COMMIT round trip each).
pub enum PgOn<'a, 't> {
    Client(&'a mut postgres::Client),
    Transaction(&'a mut postgres::Transaction<'t>),
}

/// Statements on one PostgreSQL connection, prepared once per connection.
pub struct Pg<'a, 't> {
    pub on: PgOn<'a, 't>,
    pub statements: &'a mut PgStatements,
    pub locks: &'a LockStats,
}

/// `?1` placeholders as PostgreSQL's `$1` (outside string literals).
pub fn to_postgres(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut in_string = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_string = !in_string;
                out.push(c);
            }
            '?' if !in_string && chars.peek().is_some_and(|n| n.is_ascii_digit()) => out.push('$'),
            _ => out.push(c),
        }
    }
    out
}

impl postgres::types::ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::Type;
        match *self {
            Param::Null => Ok(postgres::types::IsNull::Yes),
            Param::Int(v) => match *ty {
                Type::INT8 => v.to_sql(ty, out),
                Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
                Type::BOOL => (v != 0).to_sql(ty, out),
                Type::FLOAT8 => (v as f64).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => v.to_string().to_sql(ty, out),
                _ => Err(format!("an integer cannot be bound as {ty}").into()),
            },
            Param::Real(v) => match *ty {
                Type::FLOAT8 => v.to_sql(ty, out),
                Type::FLOAT4 => (v as f32).to_sql(ty, out),
                _ => Err(format!("a number cannot be bound as {ty}").into()),
            },
            Param::Text(v) => v.to_sql(ty, out),
            Param::Bytes(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

impl<'a> postgres::types::FromSql<'a> for Value {
    fn from_sql(
        ty: &postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::Type;
        Ok(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT2 => Value::Int(i64::from(i16::from_sql(ty, raw)?)),
            Type::BOOL => Value::Int(i64::from(bool::from_sql(ty, raw)?)),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::BYTEA => Value::Bytes(Vec::<u8>::from_sql(ty, raw)?),
            _ => Value::Text(String::from_sql(ty, raw)?),
        })
    }

    fn from_sql_null(
        _: &postgres::types::Type,
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Value::Null)
    }

    fn accepts(ty: &postgres::types::Type) -> bool {
        use postgres::types::Type;
        matches!(
            *ty,
            Type::INT8
                | Type::INT4
                | Type::INT2
                | Type::BOOL
                | Type::FLOAT8
                | Type::FLOAT4
                | Type::BYTEA
                | Type::TEXT
                | Type::VARCHAR
                | Type::BPCHAR
                | Type::NAME
        )
    }
}

impl Pg<'_, '_> {
    fn statement(&mut self, sql: &str) -> SqlResult<postgres::Statement> {
        if let Some(statement) = self.statements.prepared.get(sql) {
            return Ok(statement.clone());
        }
        let text = to_postgres(sql);
        let statement = match &mut self.on {
            PgOn::Client(c) => c.prepare(&text)?,
            PgOn::Transaction(t) => t.prepare(&text)?,
        };
        self.statements
            .prepared
            .insert(sql.to_string(), statement.clone());
        Ok(statement)
    }
}

fn pg_params<'p>(params: &'p [Param<'_>]) -> Vec<&'p (dyn postgres::types::ToSql + Sync)> {
    params
        .iter()
        .map(|p| p as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

impl Sql for Pg<'_, '_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> SqlResult<u64> {
        let statement = self.statement(sql)?;
        let params = pg_params(params);
        Ok(match &mut self.on {
            PgOn::Client(c) => c.execute(&statement, &params)?,
            PgOn::Transaction(t) => t.execute(&statement, &params)?,
        })
    }

    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> SqlResult<Vec<Row>> {
        let statement = self.statement(sql)?;
        let params = pg_params(params);
        let rows = match &mut self.on {
            PgOn::Client(c) => c.query(&statement, &params)?,
            PgOn::Transaction(t) => t.query(&statement, &params)?,
        };
        rows.iter()
            .map(|row| {
                let values = (0..row.len())
                    .map(|i| {
                        row.try_get::<_, Value>(i).map_err(|e| SqlError::Decode {
                            index: i,
                            message: e.to_string(),
                        })
                    })
                    .collect::<SqlResult<Vec<_>>>()?;
                Ok(Row { values })
            })
            .collect()
    }

    fn batch(&mut self, sql: &str) -> SqlResult<()> {
        match &mut self.on {
            PgOn::Client(c) => c.batch_execute(sql)?,
            PgOn::Transaction(t) => t.batch_execute(sql)?,
        }
        Ok(())
    }

    fn lock(&mut self, lock: Lock, key: i64) -> SqlResult<()> {
        use std::sync::atomic::Ordering::Relaxed;
        // Try first: a lock nobody holds costs one statement and counts no wait; only a lock
        // another transaction holds is waited for, and that wait is what the counters show.
        let free: bool = self
            .query_one("SELECT pg_try_advisory_xact_lock(?1)", &[Param::Int(key)])?
            .get(0)?;
        if free {
            return Ok(());
        }
        let started = std::time::Instant::now();
        self.execute("SELECT pg_advisory_xact_lock(?1)", &[Param::Int(key)])?;
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let (count, total) = match lock {
            Lock::Document => (&self.locks.document_waits, &self.locks.document_wait_us),
            Lock::Audit => (&self.locks.audit_waits, &self.locks.audit_wait_us),
            _ => return Ok(()),
        };
        count.fetch_add(1, Relaxed);
        total.fetch_add(us, Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_go_in_a_few_statement_shapes() {
        let sizes: Vec<usize> = row_chunks(45).collect();
        assert_eq!(sizes, [32, 8, 4, 1]);
        let sizes: Vec<usize> = row_chunks(130).collect();
        assert_eq!(sizes, [64, 64, 2]);
        assert_eq!(row_chunks(0).count(), 0);
        assert_eq!(placeholders(3, 2, 2), "(?3, ?4), (?5, ?6)");
    }

    #[test]
    fn many_rows_insert_and_read_back_in_chunks() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
            .unwrap();
        let db: &mut dyn Sql = &mut Lite(&conn);
        let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
        let mut params = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            params.push(Param::Text(k));
            params.push(Param::Int(i as i64));
        }
        let head = "INSERT INTO t (k, v)";
        let tail = "ON CONFLICT (k) DO UPDATE SET v = excluded.v + 1000";
        assert_eq!(insert_rows(db, head, tail, 2, &params).unwrap(), 100);
        // Again: every row conflicts and is updated.
        assert_eq!(insert_rows(db, head, tail, 2, &params).unwrap(), 100);
        let list: Vec<Param<'_>> = keys.iter().step_by(3).map(|k| Param::Text(k)).collect();
        let rows = query_in(
            db,
            "SELECT k, v FROM t WHERE v > ?1 AND k",
            &[Param::Int(1030)],
            &list,
        )
        .unwrap();
        // Keys k0, k3, … k99 whose value is above 1030: k33 and on, every third.
        assert_eq!(rows.len(), (33..100).step_by(3).count());
        assert!(rows.iter().all(|r| r.get::<i64>(1).unwrap() > 1030));
        // Delete those same 34 keys, in chunks of 32 and 2, but only where v is odd.
        let deleted = execute_in(
            db,
            "DELETE FROM t WHERE v % 2 = ?1 AND k",
            &[Param::Int(1)],
            &list,
        )
        .unwrap();
        assert_eq!(
            deleted,
            keys.iter()
                .step_by(3)
                .filter(|k| k[1..].parse::<i64>().unwrap() % 2 == 1)
                .count() as u64
        );
        let left = db.query("SELECT COUNT(*) FROM t", &[]).unwrap();
        assert_eq!(left[0].get::<i64>(0).unwrap(), 100 - deleted as i64);
    }

    #[test]
    fn placeholders_become_dollars_outside_string_literals() {
        assert_eq!(
            to_postgres("SELECT a FROM t WHERE b = ?1 AND c = '?2' AND d = ?12"),
            "SELECT a FROM t WHERE b = $1 AND c = '?2' AND d = $12"
        );
    }

    #[test]
    fn sqlite_rows_read_back_as_the_types_written() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut db = Lite(&conn);
        db.batch("CREATE TABLE t (i INTEGER, s TEXT, b BLOB, n INTEGER)")
            .unwrap();
        let blob = vec![1u8, 2, 3];
        let none: Option<i64> = None;
        assert_eq!(
            db.execute(
                "INSERT INTO t VALUES (?1, ?2, ?3, ?4)",
                args![7i64, "x", blob, none]
            )
            .unwrap(),
            1
        );
        let row = db.query_one("SELECT i, s, b, n FROM t", &[]).unwrap();
        assert_eq!(row.get::<i64>(0).unwrap(), 7);
        assert_eq!(row.get::<String>(1).unwrap(), "x");
        assert_eq!(row.get::<Vec<u8>>(2).unwrap(), blob);
        assert_eq!(row.get::<Option<i64>>(3).unwrap(), None);
        assert!(matches!(
            row.get::<String>(0),
            Err(SqlError::Decode { index: 0, .. })
        ));
        assert!(matches!(
            db.query_one("SELECT i FROM t WHERE i = 8", &[]),
            Err(SqlError::NoRow(_))
        ));
    }
}

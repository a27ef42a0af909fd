//! The one face both backends show the store's methods: a connection (`Db`) that runs a
//! statement with parameters and hands back rows, whichever database holds it.
//!
//! Why one face and not two implementations of every method: the store's ~85 methods are the
//! product's promises (a slot fires once, a reply is stored with its turns), and writing each
//! twice would let the two drift. The SQL they use is the common subset of SQLite and
//! PostgreSQL (`ON CONFLICT`, `RETURNING`, `CAST(… AS BIGINT)`), numbered `?N` placeholders
//! (rewritten to `$N` for PostgreSQL), and integers for flags. The few places that differ (the
//! full-text search) ask [`Db::dialect`]. Each backend owns its schema and migrations; the
//! store contract tests run every method on both.

use super::{Result, StoreError};
use std::cell::RefCell;
use std::collections::HashMap;

/// Which database a [`Db`] talks to, for the statements that must differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A value going into or coming out of a statement, borrowed where it can be.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Val<'a> {
    Null,
    Int(i64),
    Real(f64),
    Bool(bool),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// A statement parameter: anything that can be seen as a [`Val`].
pub(crate) trait Param {
    fn val(&self) -> Val<'_>;
}

macro_rules! int_param {
    ($($t:ty),*) => {$(
        impl Param for $t {
            fn val(&self) -> Val<'_> {
                Val::Int(*self as i64)
            }
        }
    )*};
}
int_param!(i64, i32, u32, usize);

impl Param for u64 {
    fn val(&self) -> Val<'_> {
        // Counts and tokens; nothing stored comes near i64::MAX, and clamping beats wrapping.
        Val::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}
impl Param for bool {
    fn val(&self) -> Val<'_> {
        Val::Bool(*self)
    }
}
impl Param for f64 {
    fn val(&self) -> Val<'_> {
        Val::Real(*self)
    }
}
impl Param for str {
    fn val(&self) -> Val<'_> {
        Val::Text(self)
    }
}
impl Param for String {
    fn val(&self) -> Val<'_> {
        Val::Text(self)
    }
}
impl Param for [u8] {
    fn val(&self) -> Val<'_> {
        Val::Blob(self)
    }
}
impl<T: Param + ?Sized> Param for &T {
    fn val(&self) -> Val<'_> {
        (**self).val()
    }
}
impl<T: Param> Param for Option<T> {
    fn val(&self) -> Val<'_> {
        self.as_ref().map_or(Val::Null, Param::val)
    }
}

/// `p![a, b]`: the parameters of a statement, `?1` and `?2`.
macro_rules! p {
    ($($x:expr),* $(,)?) => {
        &[$(&$x as &dyn $crate::store::sql::Param),*] as &[&dyn $crate::store::sql::Param]
    };
}
pub(crate) use p;

/// A column value read into a Rust type.
pub(crate) trait Col: Sized {
    fn col(v: Val<'_>) -> std::result::Result<Self, String>;
}

impl Col for i64 {
    fn col(v: Val<'_>) -> std::result::Result<Self, String> {
        match v {
            Val::Int(i) => Ok(i),
            Val::Bool(b) => Ok(b as i64),
            other => Err(format!("expected an integer, found {other:?}")),
        }
    }
}
impl Col for bool {
    fn col(v: Val<'_>) -> std::result::Result<Self, String> {
        match v {
            Val::Int(i) => Ok(i != 0),
            Val::Bool(b) => Ok(b),
            other => Err(format!("expected a flag, found {other:?}")),
        }
    }
}
impl Col for f64 {
    fn col(v: Val<'_>) -> std::result::Result<Self, String> {
        match v {
            Val::Real(f) => Ok(f),
            Val::Int(i) => Ok(i as f64),
            other => Err(format!("expected a number, found {other:?}")),
        }
    }
}
impl Col for String {
    fn col(v: Val<'_>) -> std::result::Result<Self, String> {
        match v {
            Val::Text(s) => Ok(s.to_owned()),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}
impl Col for Vec<u8> {
    fn col(v: Val<'_>) -> std::result::Result<Self, String> {
        match v {
            Val::Blob(b) => Ok(b.to_vec()),
            Val::Text(s) => Ok(s.as_bytes().to_vec()),
            other => Err(format!("expected bytes, found {other:?}")),
        }
    }
}
impl<T: Col> Col for Option<T> {
    fn col(v: Val<'_>) -> std::result::Result<Self, String> {
        match v {
            Val::Null => Ok(None),
            v => T::col(v).map(Some),
        }
    }
}

/// One row of a result.
pub(crate) enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Postgres(&'a postgres::Row),
}

impl Row<'_> {
    /// Column `i` as a `T`; a value of another type is a corrupt record, not a panic.
    pub(crate) fn get<T: Col>(&self, i: usize) -> Result<T> {
        let bad = |why: String| StoreError::Corrupt(format!("column {i}: {why}"));
        match self {
            Row::Sqlite(r) => {
                use rusqlite::types::ValueRef;
                let v = match r.get_ref(i)? {
                    ValueRef::Null => Val::Null,
                    ValueRef::Integer(n) => Val::Int(n),
                    ValueRef::Real(f) => Val::Real(f),
                    ValueRef::Text(t) => {
                        Val::Text(std::str::from_utf8(t).map_err(|e| bad(e.to_string()))?)
                    }
                    ValueRef::Blob(b) => Val::Blob(b),
                };
                T::col(v).map_err(bad)
            }
            Row::Postgres(r) => {
                let v: super::postgres::Owned = r.try_get(i)?;
                T::col(v.val()).map_err(bad)
            }
        }
    }
}

/// A connection as a store method sees it: inside the write's transaction for a write, outside
/// any for a read.
pub(crate) struct Db<'a> {
    conn: Conn<'a>,
    /// The gateway instance this store belongs to: what it stores is delivered and run by it.
    me: &'a str,
}

enum Conn<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres(&'a PgConn),
}

/// A PostgreSQL connection with its prepared statements (by the store's SQL text: each is
/// parsed and planned once per connection, as SQLite's statement cache does).
pub(crate) struct PgConn {
    pub(crate) client: RefCell<postgres::Client>,
    statements: RefCell<HashMap<String, postgres::Statement>>,
}

impl PgConn {
    pub(crate) fn new(client: postgres::Client) -> Self {
        PgConn {
            client: RefCell::new(client),
            statements: RefCell::new(HashMap::new()),
        }
    }

    fn query(&self, sql: &str, params: &[&dyn Param]) -> Result<Vec<postgres::Row>> {
        let st = self.statement(sql)?;
        let binds = pg_params(params);
        Ok(self.client.borrow_mut().query(&st, &pg_refs(&binds))?)
    }

    fn statement(&self, sql: &str) -> Result<postgres::Statement> {
        ROUND_TRIPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(st) = self.statements.borrow().get(sql) {
            return Ok(st.clone());
        }
        let st = self.client.borrow_mut().prepare(&dollar_params(sql))?;
        self.statements
            .borrow_mut()
            .insert(sql.to_owned(), st.clone());
        Ok(st)
    }
}

/// Statements sent to PostgreSQL by this process (each a round trip to the server), for the
/// benchmarks' "round trips per message".
pub(crate) static ROUND_TRIPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// `?1` → `$1`, outside quoted strings.
pub(crate) fn dollar_params(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    for ch in sql.chars() {
        match ch {
            '\'' => {
                quoted = !quoted;
                out.push(ch);
            }
            '?' if !quoted => out.push('$'),
            _ => out.push(ch),
        }
    }
    out
}

fn lite_params<'p>(
    params: &'p [&'p dyn Param],
) -> rusqlite::ParamsFromIter<impl Iterator<Item = LiteVal<'p>>> {
    rusqlite::params_from_iter(params.iter().map(|p| LiteVal(p.val())))
}

struct LiteVal<'a>(Val<'a>);

impl rusqlite::ToSql for LiteVal<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput::Borrowed, ValueRef};
        Ok(Borrowed(match self.0 {
            Val::Null => ValueRef::Null,
            Val::Int(i) => ValueRef::Integer(i),
            Val::Bool(b) => ValueRef::Integer(b as i64),
            Val::Real(f) => ValueRef::Real(f),
            Val::Text(s) => ValueRef::Text(s.as_bytes()),
            Val::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn pg_refs<'b>(
    binds: &'b [super::postgres::Bind<'_>],
) -> Vec<&'b (dyn postgres::types::ToSql + Sync)> {
    binds
        .iter()
        .map(|b| b as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

fn pg_params<'p>(params: &'p [&'p dyn Param]) -> Vec<super::postgres::Bind<'p>> {
    params
        .iter()
        .map(|p| super::postgres::Bind(p.val()))
        .collect()
}

impl<'a> Db<'a> {
    pub(crate) fn sqlite(c: &'a rusqlite::Connection, me: &'a str) -> Self {
        Db {
            conn: Conn::Sqlite(c),
            me,
        }
    }

    pub(crate) fn postgres(c: &'a PgConn, me: &'a str) -> Self {
        Db {
            conn: Conn::Postgres(c),
            me,
        }
    }

    /// This gateway's instance id (see `store::cluster`).
    pub(crate) fn me(&self) -> &'a str {
        self.me
    }

    /// The database's clock in milliseconds since the epoch, as SQL: several gateways compare
    /// times against one clock, not each against its own.
    pub(crate) fn now_sql(&self) -> &'static str {
        match self.conn {
            Conn::Sqlite(_) => "CAST(unixepoch('subsec') * 1000 AS INTEGER)",
            Conn::Postgres(_) => "CAST(extract(epoch FROM clock_timestamp()) * 1000 AS BIGINT)",
        }
    }

    /// `FOR UPDATE SKIP LOCKED` where there are row locks (PostgreSQL): several gateways claiming
    /// work each take different rows instead of waiting for one another. SQLite has one writer.
    pub(crate) fn skip_locked(&self) -> &'static str {
        match self.conn {
            Conn::Sqlite(_) => "",
            Conn::Postgres(_) => "FOR UPDATE SKIP LOCKED",
        }
    }

    pub(crate) fn dialect(&self) -> Dialect {
        match self.conn {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs a statement; returns how many rows it changed.
    pub(crate) fn run(&self, sql: &str, params: &[&dyn Param]) -> Result<usize> {
        match self.conn {
            Conn::Sqlite(c) => Ok(c.prepare_cached(sql)?.execute(lite_params(params))?),
            Conn::Postgres(c) => {
                let st = c.statement(sql)?;
                let binds = pg_params(params);
                Ok(c.client.borrow_mut().execute(&st, &pg_refs(&binds))? as usize)
            }
        }
    }

    /// Every row of a query, each made into a `T` by `f`.
    pub(crate) fn all<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        match self.conn {
            Conn::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let mut rows = st.query(lite_params(params))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(f(&Row::Sqlite(r))?);
                }
                Ok(out)
            }
            Conn::Postgres(c) => {
                let rows = c.query(sql, params)?;
                rows.iter().map(|r| f(&Row::Postgres(r))).collect()
            }
        }
    }

    /// The first row of a query, if there is one.
    pub(crate) fn opt<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        f: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<Option<T>> {
        match self.conn {
            Conn::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let mut rows = st.query(lite_params(params))?;
                match rows.next()? {
                    Some(r) => f(&Row::Sqlite(r)).map(Some),
                    None => Ok(None),
                }
            }
            Conn::Postgres(c) => {
                let rows = c.query(sql, params)?;
                rows.first().map(|r| f(&Row::Postgres(r))).transpose()
            }
        }
    }

    /// The one row a query always returns (an aggregate, a row just written).
    pub(crate) fn one<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        f: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<T> {
        self.opt(sql, params, f)?
            .ok_or_else(|| StoreError::Corrupt(format!("no row for: {}", first_line(sql))))
    }

    /// A single value: `one` with the first column.
    pub(crate) fn value<T: Col>(&self, sql: &str, params: &[&dyn Param]) -> Result<T> {
        self.one(sql, params, |r| r.get(0))
    }

    /// Runs statements that take no parameters (schema changes).
    #[cfg(test)]
    pub(crate) fn batch(&self, sql: &str) -> Result<()> {
        match self.conn {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Postgres(c) => Ok(c.client.borrow_mut().batch_execute(sql)?),
        }
    }
}

fn first_line(sql: &str) -> &str {
    sql.trim().lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollars_outside_strings() {
        assert_eq!(
            dollar_params("SELECT '?' || x FROM t WHERE a = ?1 AND b = ?12"),
            "SELECT '?' || x FROM t WHERE a = $1 AND b = $12"
        );
    }
}

//! Values across the PostgreSQL wire: the store's SQL binds plain integers, text and flags, and
//! PostgreSQL is strict about types, so a parameter is converted to whatever type the server
//! inferred for it (an integer for an INT4 column, a flag for a `CASE WHEN ?3`), and a column
//! is read whatever its integer width.

use super::super::sql::Val;
use bytes::BytesMut;
use postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use std::error::Error;

type BoxError = Box<dyn Error + Sync + Send>;

/// A parameter, bound as the type the statement expects.
#[derive(Debug)]
pub(crate) struct Bind<'a>(pub(crate) Val<'a>);

impl ToSql for Bind<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let int = |i: i64, out: &mut BytesMut| -> Result<IsNull, BoxError> {
            match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::BOOL => (i != 0).to_sql(ty, out),
                Type::FLOAT8 => (i as f64).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => i.to_string().to_sql(ty, out),
                _ => Err(format!("an integer cannot be stored as {ty}").into()),
            }
        };
        match self.0 {
            Val::Null => Ok(IsNull::Yes),
            Val::Int(i) => int(i, out),
            Val::Bool(b) if *ty == Type::BOOL => b.to_sql(ty, out),
            Val::Bool(b) => int(b as i64, out),
            Val::Real(f) => match *ty {
                Type::FLOAT4 => (f as f32).to_sql(ty, out),
                _ => f.to_sql(ty, out),
            },
            Val::Text(s) => s.to_sql(ty, out),
            Val::Blob(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A column's value, read whatever its type, to be turned into the Rust type asked for.
#[derive(Debug)]
pub(crate) enum Owned {
    Null,
    Int(i64),
    Real(f64),
    Bool(bool),
    Text(String),
    Blob(Vec<u8>),
}

impl Owned {
    pub(crate) fn val(&self) -> Val<'_> {
        match self {
            Owned::Null => Val::Null,
            Owned::Int(i) => Val::Int(*i),
            Owned::Real(f) => Val::Real(*f),
            Owned::Bool(b) => Val::Bool(*b),
            Owned::Text(s) => Val::Text(s),
            Owned::Blob(b) => Val::Blob(b),
        }
    }
}

impl<'a> FromSql<'a> for Owned {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(match *ty {
            Type::INT8 => Owned::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Owned::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => Owned::Int(i16::from_sql(ty, raw)?.into()),
            Type::BOOL => Owned::Bool(bool::from_sql(ty, raw)?),
            Type::FLOAT8 => Owned::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Owned::Real(f32::from_sql(ty, raw)?.into()),
            Type::BYTEA => Owned::Blob(Vec::<u8>::from_sql(ty, raw)?),
            _ if <&str as FromSql>::accepts(ty) => Owned::Text(String::from_sql(ty, raw)?),
            _ => return Err(format!("a column of type {ty} is not read by the store").into()),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Owned::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

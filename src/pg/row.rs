//! A prepared statement as the server described it, and the rows it answers with.

use std::rc::Rc;

use bytes::{Buf, Bytes};
use postgres_types::{FromSql, Kind, Type, WrongType};

use super::{DbError, PgError};

/// A statement prepared on one connection: its name there and the types the server
/// gave for its parameters and columns.
pub(crate) struct Statement {
    pub(crate) name: String,
    pub(crate) params: Vec<Type>,
    pub(crate) columns: Rc<[Type]>,
}

/// The type with this OID: a built-in one, or one named by its OID (a value of a
/// user-defined type converts only with a [`FromSql`] that accepts it by OID).
pub(crate) fn type_of(oid: u32) -> Type {
    Type::from_oid(oid)
        .unwrap_or_else(|| Type::new(format!("oid {oid}"), oid, Kind::Simple, String::new()))
}

/// One row of an answer. It holds the row's bytes as they came from the server (a slice
/// of the connection's read buffer: no copy, no allocation per row or per column);
/// values are decoded when asked for, with `postgres-types`' [`FromSql`].
pub struct Row {
    columns: Rc<[Type]>,
    /// The DataRow message after its column count: per column, a big-endian `i32`
    /// length (-1 for NULL) and that many bytes. Checked when the row arrived.
    body: Bytes,
}

impl Row {
    /// A row of `body` (a DataRow message's contents) for a statement with `columns`;
    /// `None` when the message does not hold exactly that many well-formed values.
    pub(crate) fn new(columns: &Rc<[Type]>, body: Bytes) -> Option<Row> {
        let count = u16::from_be_bytes(body.get(..2)?.try_into().ok()?);
        if usize::from(count) != columns.len() {
            return None;
        }
        let mut at = 2;
        for _ in 0..count {
            let (len, next) = value_at(&body, at)?;
            at = next + len.unwrap_or(0);
        }
        if at != body.len() {
            return None;
        }
        let mut body = body;
        body.advance(2);
        Some(Row {
            columns: columns.clone(),
            body,
        })
    }

    /// How many columns the row has.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// Whether the row has no columns.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The type of column `idx`, if there is one.
    pub fn column_type(&self, idx: usize) -> Option<&Type> {
        self.columns.get(idx)
    }

    /// The value of column `idx` (from 0) as a `T`. Panics when there is no such column
    /// or it does not convert to `T` (a NULL into a non-`Option`, an `i64` column into
    /// an `i32`); [`Row::try_get`] says so instead.
    pub fn get<'a, T: FromSql<'a>>(&'a self, idx: usize) -> T {
        match self.try_get(idx) {
            Ok(value) => value,
            Err(e) => panic!("Row::get({idx}): {e}"),
        }
    }

    /// The value of column `idx` (from 0) as a `T`, or why it is not one.
    pub fn try_get<'a, T: FromSql<'a>>(&'a self, idx: usize) -> Result<T, PgError> {
        let Some(ty) = self.columns.get(idx) else {
            return Err(PgError::Query(DbError::client(format!(
                "no column {idx} in a row of {}",
                self.columns.len()
            ))));
        };
        if !T::accepts(ty) {
            return Err(conversion(idx, &WrongType::new::<T>(ty.clone())));
        }
        T::from_sql_nullable(ty, self.raw(idx)).map_err(|e| conversion(idx, &*e))
    }

    /// Column `idx`'s bytes, `None` for NULL (or no such column).
    fn raw(&self, idx: usize) -> Option<&[u8]> {
        // Walks the lengths before it: a handful of reads for the narrow rows that
        // handlers read, where a table of offsets would cost an allocation per row.
        let mut at = 0;
        for _ in 0..idx {
            let (len, next) = value_at(&self.body, at)?;
            at = next + len.unwrap_or(0);
        }
        let (len, start) = value_at(&self.body, at)?;
        self.body.get(start..start + len?)
    }
}

impl std::fmt::Debug for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Row")
            .field("columns", &self.columns)
            .finish_non_exhaustive()
    }
}

/// The length prefix at `at` (`None` inside for NULL) and where the value starts;
/// `None` when the bytes end early.
fn value_at(body: &[u8], at: usize) -> Option<(Option<usize>, usize)> {
    let len = i32::from_be_bytes(body.get(at..at + 4)?.try_into().ok()?);
    let start = at + 4;
    match usize::try_from(len) {
        Ok(len) if body.len() - start >= len => Some((Some(len), start)),
        Ok(_) => None,
        Err(_) => Some((None, start)),
    }
}

fn conversion(idx: usize, e: &dyn std::error::Error) -> PgError {
    PgError::Query(DbError::client(format!("column {idx}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(types: &[Type]) -> Rc<[Type]> {
        types.to_vec().into()
    }

    /// A DataRow body: the count, then each value (None = NULL).
    fn body(values: &[Option<&[u8]>]) -> Bytes {
        let mut out = (values.len() as u16).to_be_bytes().to_vec();
        for value in values {
            match value {
                Some(v) => {
                    out.extend((v.len() as i32).to_be_bytes());
                    out.extend(*v);
                }
                None => out.extend((-1i32).to_be_bytes()),
            }
        }
        out.into()
    }

    #[test]
    fn values_convert_by_column_type() {
        let types = columns(&[Type::INT4, Type::TEXT, Type::INT8]);
        let row = Row::new(
            &types,
            body(&[Some(&7i32.to_be_bytes()), Some(b"hello"), None]),
        )
        .unwrap();
        assert_eq!(row.len(), 3);
        assert_eq!(row.get::<i32>(0), 7);
        assert_eq!(row.get::<&str>(1), "hello");
        assert_eq!(row.get::<String>(1), "hello");
        assert_eq!(row.get::<Option<i64>>(2), None);
        // A NULL into a non-Option, the wrong type, a column past the end: errors.
        assert!(row.try_get::<i64>(2).is_err());
        assert!(row
            .try_get::<i64>(0)
            .unwrap_err()
            .to_string()
            .contains("column 0"));
        assert!(matches!(row.try_get::<i32>(3), Err(PgError::Query(_))));
    }

    #[test]
    fn malformed_rows_are_refused() {
        let types = columns(&[Type::INT4, Type::INT4]);
        let four = 1i32.to_be_bytes();
        assert!(
            Row::new(&types, body(&[Some(&four)])).is_none(),
            "too few columns"
        );
        let mut long = body(&[Some(&four), Some(&four)]).to_vec();
        long.push(0);
        assert!(Row::new(&types, long.into()).is_none(), "trailing bytes");
        let short = body(&[Some(&four), Some(&four)]);
        assert!(
            Row::new(&types, short.slice(..short.len() - 1)).is_none(),
            "cut short"
        );
        assert!(
            Row::new(&types, Bytes::from_static(&[0])).is_none(),
            "no count"
        );
    }
}

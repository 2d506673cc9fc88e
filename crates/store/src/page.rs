//! Keyset pagination and list filters. Ids are UUID v7, so ordering by id is
//! ordering by creation, and a cursor is the last id of a page.

use sqlx::{Database, Encode, QueryBuilder, Type};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

/// Which page to read.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// Return records after this id (the previous page's `next_cursor`).
    pub after: Option<String>,
    pub limit: Option<u32>,
}

impl PageRequest {
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
    }
}

/// One page of records.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

/// A condition on a list. Columns are fixed by the code, never taken from input.
#[derive(Debug, Clone)]
pub enum Filter {
    Eq(&'static str, String),
    Bool(&'static str, bool),
    /// Case-insensitive equality (email addresses).
    EqIgnoreCase(&'static str, String),
    /// Case-insensitive substring match on any of the columns.
    Search(&'static [&'static str], String),
    /// A condition written by the code around one bound value:
    /// `before <value> after`, e.g. an `EXISTS` sub-query.
    Around(&'static str, String, &'static str),
    /// The same around two uses of one value: `before <v> middle <v> after`.
    AroundTwice(&'static str, String, &'static str, &'static str),
    /// A condition written by the code without a value, e.g. `t.deleted_at IS NULL`.
    Sql(&'static str),
}

pub(crate) fn push_filters<DB>(qb: &mut QueryBuilder<DB>, filters: &[Filter])
where
    DB: Database,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> bool: Encode<'t, DB> + Type<DB>,
{
    for f in filters {
        match f {
            Filter::Eq(col, v) => {
                qb.push(format!(" AND {col} = ")).push_bind(v.clone());
            }
            Filter::Bool(col, v) => {
                qb.push(format!(" AND {col} = ")).push_bind(*v);
            }
            Filter::EqIgnoreCase(col, v) => {
                qb.push(format!(" AND lower({col}) = "))
                    .push_bind(v.to_lowercase());
            }
            Filter::Search(cols, v) => {
                let pattern = format!("%{}%", v.to_lowercase().replace(['%', '_'], ""));
                qb.push(" AND (");
                for (i, col) in cols.iter().enumerate() {
                    if i > 0 {
                        qb.push(" OR ");
                    }
                    qb.push(format!("lower(COALESCE({col}, '')) LIKE "))
                        .push_bind(pattern.clone());
                }
                qb.push(")");
            }
            Filter::AroundTwice(before, v, middle, after) => {
                qb.push(format!(" AND {before}"))
                    .push_bind(v.clone())
                    .push(*middle)
                    .push_bind(v.clone())
                    .push(*after);
            }
            Filter::Sql(condition) => {
                qb.push(format!(" AND {condition}"));
            }
            Filter::Around(before, v, after) => {
                qb.push(format!(" AND {before}"))
                    .push_bind(v.clone())
                    .push(*after);
            }
        }
    }
}

/// Splits the extra row fetched to learn whether another page follows.
pub(crate) fn into_page<T>(mut rows: Vec<T>, limit: u32, id: impl Fn(&T) -> &str) -> Page<T> {
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|r| id(r).to_owned())
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

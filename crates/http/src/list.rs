//! List answers and paging parameters.

use mailbridge_domain::ids::is_valid_id;
use mailbridge_store::{Page, PageRequest};
use serde::Serialize;

use crate::ApiError;

/// One page of records.
#[derive(Serialize, utoipa::ToSchema)]
pub struct List<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> List<T> {
    /// A complete answer that is not paged (the records a bulk operation changed).
    pub fn of(items: Vec<T>) -> Self {
        List {
            items,
            next_cursor: None,
        }
    }
}

impl<T> From<Page<T>> for List<T> {
    fn from(p: Page<T>) -> Self {
        List {
            items: p.items,
            next_cursor: p.next_cursor,
        }
    }
}

/// Checks the paging parameters every list takes.
pub fn page_request(cursor: Option<String>, limit: Option<u32>) -> Result<PageRequest, ApiError> {
    if let Some(c) = &cursor
        && !is_valid_id(c)
    {
        return Err(ApiError::field(
            "invalid_value",
            "cursor",
            "cursor must be a next_cursor value from a previous page",
        ));
    }
    if let Some(l) = limit
        && !(1..=500).contains(&l)
    {
        return Err(ApiError::field(
            "invalid_value",
            "limit",
            format!("limit must be between 1 and 500, got {l}"),
        ));
    }
    Ok(PageRequest {
        after: cursor,
        limit,
    })
}

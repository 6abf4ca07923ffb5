//! Keyset pagination: `?limit=` (default 100, max 500) and an opaque `?cursor=`; answers are
//! `{data: […], next_cursor}`.

use super::problem::{ApiError, ProblemCode};
use patchbay_store::{Page, Paged};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Query parameters of every list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size, 1 to 500 (larger values are clamped); default 100.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListQuery {
    /// The store page this query asks for.
    pub fn page(&self) -> Result<Page, ApiError> {
        let after =
            match self.cursor.as_deref().filter(|c| !c.is_empty()) {
                Some(cursor) => Some(uuid::Uuid::parse_str(cursor).map_err(|_| {
                    ApiError::new(ProblemCode::InvalidQuery, "`cursor` is not a cursor this API returned")
                })?),
                None => None,
            };
        Ok(Page::new(self.limit, after))
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListOut<T: ToSchema> {
    pub data: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> ListOut<T> {
    pub fn from_page<S>(page: Paged<S>, map: impl Fn(S) -> T) -> Self {
        Self { data: page.items.into_iter().map(map).collect(), next_cursor: page.next_cursor.map(|c| c.to_string()) }
    }
}

//! Paging of list routes: `?limit=&offset=` in, `X-Total-Count` out.

use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::repository::Page;
use crate::validation::{Fields, Invalid};

/// Lists return at most this many rows per page.
pub const MAX_LIMIT: i64 = 1000;
const DEFAULT_LIMIT: i64 = 100;

/// `?limit=&offset=` of a list route.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1–1000, default 100.
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Rows to skip, default 0.
    #[serde(default)]
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

impl PageQuery {
    pub fn validate(self, fields: &mut Fields) -> Option<Page> {
        let limit = fields.check(
            "limit",
            u32::try_from(self.limit.unwrap_or(DEFAULT_LIMIT))
                .ok()
                .filter(|l| (1..=MAX_LIMIT).contains(&i64::from(*l)))
                .ok_or_else(|| format!("must be between 1 and {MAX_LIMIT}")),
        );
        let offset = fields.check(
            "offset",
            Some(self.offset.unwrap_or(0))
                .filter(|offset| *offset >= 0)
                .ok_or_else(|| "must not be negative".to_string()),
        );
        Some(Page {
            limit: limit?,
            offset: offset?,
        })
    }

    pub fn into_page(self) -> Result<Page, Invalid> {
        let mut fields = Fields::default();
        let page = self.validate(&mut fields);
        fields.finish(|| page)
    }
}

/// A page of a list, with the total number of rows in `X-Total-Count`.
pub fn with_total_count(total: u64, page: impl IntoResponse) -> Response {
    let mut response = page.into_response();
    response
        .headers_mut()
        .insert("x-total-count", HeaderValue::from(total));
    response
}

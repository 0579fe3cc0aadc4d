//! Bounds for the page, limit and offset numbers clients send. Every listing checks its
//! numbers here, so no client-chosen number sizes an allocation or a walk.

use crate::error::{Error, Result};

/// Highest page number any listing serves.
pub const MAX_PAGE: u64 = 10_000;
/// Most items one page may hold.
pub const MAX_LIMIT: u64 = 100;

/// A checked page request: 1-based page and items per page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub page: usize,
    pub per_page: usize,
}

impl Paging {
    /// Checks a requested page (default 1) and limit (default `default_limit`) against
    /// `max_page` and [`MAX_LIMIT`]; out of range is a `BadRequest` saying what is allowed.
    pub fn new(
        page: Option<u64>,
        limit: Option<u64>,
        default_limit: u64,
        max_page: u64,
    ) -> Result<Self> {
        let page = page.unwrap_or(1);
        let max_page = max_page.min(MAX_PAGE);
        if page == 0 || page > max_page {
            return Err(Error::bad_request(format!(
                "page must be between 1 and {max_page}"
            )));
        }
        let limit = limit.unwrap_or(default_limit);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(Error::bad_request(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        Ok(Self {
            page: usize::try_from(page).map_err(|_| Error::bad_request("page out of range"))?,
            per_page: usize::try_from(limit)
                .map_err(|_| Error::bad_request("limit out of range"))?,
        })
    }

    /// Items to skip before this page (cannot overflow: both factors are bounded).
    pub fn offset(&self) -> usize {
        (self.page - 1).saturating_mul(self.per_page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert_eq!(Paging::new(None, None, 20, 50).unwrap().offset(), 0);
        assert_eq!(Paging::new(Some(3), Some(10), 20, 50).unwrap().offset(), 20);
        for (page, limit) in [
            (Some(0), None),
            (Some(51), None),
            (Some(u64::MAX), None),
            (None, Some(0)),
            (None, Some(101)),
        ] {
            let e = Paging::new(page, limit, 20, 50).unwrap_err();
            assert!(matches!(e, Error::BadRequest(_)), "{e}");
        }
        assert!(Paging::new(Some(10_001), None, 20, u64::MAX).is_err());
    }
}

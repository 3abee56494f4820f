//! What every repository trait speaks and every backend answers in: the
//! errors of storage and the page of a list. The domain modules (their
//! traits) and the backends (`db`) both import it; it imports neither.

/// What can go wrong in a repository, in terms the services understand.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RepoError {
    /// No connection could be had in time, the database is locked, or a
    /// statement ran past its timeout: worth trying again later.
    #[error("database unavailable")]
    Unavailable,
    /// A unique constraint refused the write.
    #[error("duplicate")]
    Duplicate,
    /// The write would leave no active admin.
    #[error("last active admin")]
    LastAdmin,
    #[error("{0}")]
    Internal(String),
}

/// One page of a list: `limit` rows after skipping `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    pub offset: i64,
}

impl Page {
    /// The listing's total when a page of `rows` rows tells it: a page that
    /// is not full is the last one, unless it is empty past the start (the
    /// offset may have overshot). Saves a count on the common request.
    pub fn total_if_last(&self, rows: usize) -> Option<u64> {
        let rows = u64::try_from(rows).ok()?;
        let offset = u64::try_from(self.offset).ok()?;
        let last_page = rows < u64::from(self.limit) && (rows > 0 || offset == 0);
        last_page.then(|| offset + rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(limit: u32, offset: i64) -> Page {
        Page { limit, offset }
    }

    #[test]
    fn a_page_that_is_not_full_tells_the_total() {
        assert_eq!(page(100, 0).total_if_last(20), Some(20));
        assert_eq!(page(10, 30).total_if_last(4), Some(34));
        assert_eq!(page(10, 0).total_if_last(0), Some(0));
    }

    #[test]
    fn a_full_page_or_an_empty_one_past_the_start_needs_a_count() {
        assert_eq!(page(10, 0).total_if_last(10), None);
        assert_eq!(page(10, 50).total_if_last(0), None);
    }
}

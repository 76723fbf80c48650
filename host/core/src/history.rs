//! Reading the invocation history (`syncplane_store::history`) through the
//! same authorization as objects.
//!
//! An object's history is shown to whoever may read the object; the
//! history of a step or of the whole host spans every tenant's objects,
//! so it is shown to administrators only.

use syncplane_store::{HistoryEntry, HistoryQuery};

use crate::authz::Principal;
use crate::core::Core;
use crate::error::{Error, Result};

/// The most rows one read returns.
pub const MAX_HISTORY_ROWS: u32 = 500;

/// An object's history, with its first and latest failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHistory {
    /// Its invocations, newest first, as the query selected them.
    pub entries: Vec<HistoryEntry>,
    /// Its first and latest failure, kept however old (`None` when it
    /// never failed).
    pub failures: Option<(HistoryEntry, HistoryEntry)>,
}

impl Core {
    /// The invocations `query` selects, newest first, at most
    /// [`MAX_HISTORY_ROWS`].
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] when `query` names no object and `who` is not
    /// an administrator; a database failure.
    pub async fn history_as(
        &self,
        who: &Principal,
        query: &HistoryQuery,
    ) -> Result<Vec<HistoryEntry>> {
        if query.object.is_none() && !who.is_admin() {
            return Err(Error::Forbidden(
                "the history of a step or service is shown to administrators only".into(),
            ));
        }
        let mut query = query.clone();
        query.limit = query.limit.min(MAX_HISTORY_ROWS);
        Ok(self.store.history(&query).await?)
    }

    /// The history of object `id` (`query.object` is set to it).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the object does not exist or `who` may not
    /// read it (administrators may read the history of a purged object);
    /// a database failure.
    pub async fn object_history_as(
        &self,
        who: &Principal,
        id: i64,
        query: &HistoryQuery,
    ) -> Result<ObjectHistory> {
        if !who.is_admin() && self.get_as(who, id).await?.is_none() {
            return Err(Error::NotFound {
                model: "object".into(),
                id,
            });
        }
        let mut query = query.clone();
        query.object = Some(id);
        query.limit = query.limit.min(MAX_HISTORY_ROWS);
        Ok(ObjectHistory {
            entries: self.store.history(&query).await?,
            failures: self.store.failures_of(id).await?,
        })
    }
}

//! Announcements of committed changes between hosts sharing a PostgreSQL
//! store (`LISTEN`/`NOTIFY`).
//!
//! A transaction that logs changes also sends a notification naming its
//! host, delivered by PostgreSQL when (and only if) it commits. Each host
//! listens on one connection of its own; what it hears from the others
//! tells it to read the change log on from where it was. Notifications
//! are hints, not data: one lost while the listener reconnects costs
//! nothing, since the reader catches up from the log's sequence numbers.

use sqlx::postgres::PgListener;

use crate::backend::{Dialect, Pool};
use crate::error::{Result, query_error};
use crate::store::{Store, StoreTx};

/// The channel changes are announced on. A notification's payload is
/// `<store instance>|<what>`: nothing for changes, [`ACTIVATED`].
const CHANNEL: &str = "syncplane_changes";

/// The payload's `<what>` of [`Notice::Activated`].
const ACTIVATED: &str = "activated";

/// The payload's `<what>` of [`Notice::Outcomes`].
const OUTCOMES: &str = "outcomes";

/// What [`ChangeNotices::next`] heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Another host committed changes.
    Changes,
    /// Another host changed the installed services (models and host
    /// records, [`StoreTx::announce_activation`]).
    Activated,
    /// Another host committed outcomes of work it held leases on
    /// ([`StoreTx::end_leases`]): work linked to those objects may go on.
    Outcomes,
    /// The listening connection was lost and is back: notifications may
    /// have been missed in between.
    Reconnected,
}

/// Notifications of changes other hosts commit to the store.
pub struct ChangeNotices {
    listener: PgListener,
    me: String,
}

impl std::fmt::Debug for ChangeNotices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeNotices")
            .field("me", &self.me)
            .finish()
    }
}

impl ChangeNotices {
    /// Waits for the next notification of another host, or for the
    /// connection to come back after it was lost; `None` once the store
    /// is closed.
    ///
    /// # Errors
    ///
    /// When the connection cannot be made again: the caller waits and
    /// calls again.
    pub async fn next(&mut self) -> Result<Option<Notice>> {
        loop {
            match self.listener.try_recv().await {
                Ok(Some(notice)) => {
                    let (from, what) = notice
                        .payload()
                        .split_once('|')
                        .unwrap_or((notice.payload(), ""));
                    if from == self.me {
                        continue;
                    }
                    return Ok(Some(match what {
                        ACTIVATED => Notice::Activated,
                        OUTCOMES => Notice::Outcomes,
                        _ => Notice::Changes,
                    }));
                }
                Ok(None) => return Ok(Some(Notice::Reconnected)),
                Err(sqlx::Error::PoolClosed) => return Ok(None),
                Err(error) => return Err(query_error("LISTEN")(error)),
            }
        }
    }
}

impl Store {
    /// Starts listening for changes other hosts commit, on a connection of
    /// its own; `None` on a store only one host uses (SQLite).
    ///
    /// # Errors
    ///
    /// When the database cannot be reached.
    pub async fn change_notices(&self) -> Result<Option<ChangeNotices>> {
        let Pool::Postgres(pool, _) = &self.pool else {
            return Ok(None);
        };
        let mut listener = PgListener::connect_with(pool)
            .await
            .map_err(query_error("LISTEN"))?;
        listener
            .listen(CHANNEL)
            .await
            .map_err(query_error("LISTEN"))?;
        Ok(Some(ChangeNotices {
            listener,
            me: self.instance.to_string(),
        }))
    }
}

impl StoreTx {
    /// Announces this transaction's changes to the other hosts when it
    /// commits (PostgreSQL; nothing on SQLite).
    pub(crate) async fn announce_changes(&mut self) -> Result<()> {
        self.announce("").await
    }

    /// Announces to the other hosts, when this transaction commits, that
    /// it changes the installed services: they load them again from the
    /// store (PostgreSQL; nothing on SQLite).
    ///
    /// # Errors
    ///
    /// When the statement fails.
    pub async fn announce_activation(&mut self) -> Result<()> {
        self.announce(ACTIVATED).await
    }

    /// Announces to the other hosts, when this transaction commits, that
    /// it writes outcomes of leased work (PostgreSQL; nothing on SQLite).
    pub(crate) async fn announce_outcomes(&mut self) -> Result<()> {
        self.announce(OUTCOMES).await
    }

    async fn announce(&mut self, what: &str) -> Result<()> {
        if self.dialect() == Dialect::Postgres {
            // The connection's application name carries the host's store
            // instance (`Store::connect_postgres`).
            self.conn
                .execute(
                    &format!(
                        "SELECT pg_notify('{CHANNEL}', current_setting('application_name') || '|{what}')"
                    ),
                    &[],
                )
                .await?;
        }
        Ok(())
    }
}

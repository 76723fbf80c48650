//! `GET /ui/events[?model=M][&id=N][&since=SEQ]`: what changed, as
//! Server-Sent Events, for the page's script to refresh what it shows.
//!
//! Two sources: the change log (users' creates, updates and deletes), whose
//! events carry their change sequence as the event id, so a reconnecting
//! `EventSource` resumes after `Last-Event-ID` with no gap; and the
//! in-memory change feed's synchronizer changes (bookkeeping, policed,
//! purged), sent without an id, since a missed one is healed by the next
//! refresh. Each event's data is `{"seq", "kind", "model", "id"}`, never
//! the object: the script fetches the page again, rendered and escaped by
//! the server. A caller sees only the objects they may read
//! ([`syncplane_api::visible`]). A resume older than the log keeps starts
//! from now after a `resync` event.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use serde_json::json;
use syncplane_api::{AppState, kind_name, visible};
use syncplane_core::{Change, ChangeKind, ChangeWatch, LoggedChange};
use tokio::sync::broadcast;

use crate::error::GuiError;
use crate::session::Viewer;

/// The query of `/ui/events`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct EventsQuery {
    /// Only this model and its descendants.
    model: Option<String>,
    /// Only this object.
    id: Option<i64>,
    /// Changes after this sequence (a reopened stream; `Last-Event-ID`
    /// takes its place).
    since: Option<i64>,
}

struct Live {
    state: AppState,
    viewer: Viewer,
    model: Option<String>,
    id: Option<i64>,
    watch: ChangeWatch,
    feed: broadcast::Receiver<Change>,
    pending: VecDeque<Event>,
}

fn event(seq: Option<i64>, kind: ChangeKind, model: &str, id: i64) -> Event {
    let data = json!({ "seq": seq, "kind": kind_name(kind), "model": model, "id": id });
    let event = Event::default().data(data.to_string());
    match seq {
        Some(seq) => event.id(seq.to_string()),
        None => event,
    }
}

impl Live {
    /// Queues `change` if the viewer may see it.
    async fn offer(
        &mut self,
        change: LoggedChange,
        logged: bool,
    ) -> Result<(), syncplane_core::Error> {
        if self.id.is_some_and(|id| id != change.id) {
            return Ok(());
        }
        let core = self.state.host.core();
        let user = &self.viewer.user;
        let seen = visible(
            core,
            &user.principal(),
            user.is_admin(),
            self.model.as_deref(),
            change,
        )
        .await?;
        if let Some(seen) = seen {
            let c = seen.change;
            self.pending
                .push_back(event(logged.then_some(c.seq), c.kind, &c.model, c.id));
        }
        Ok(())
    }

    /// Waits for the next changes and queues those the viewer may see.
    /// Fails once the session has ended (expired, revoked, signed out),
    /// which ends the stream.
    async fn fill(&mut self) -> Result<(), syncplane_core::Error> {
        // Cached by the core until any token or user changes: cheap.
        self.state
            .host
            .core()
            .authenticate_token(&self.viewer.session)
            .await?;
        tokio::select! {
            batch = self.watch.next_batch() => {
                for change in batch? {
                    self.offer(change, true).await?;
                }
            }
            note = self.feed.recv() => {
                // A burst of synchronizer changes costs one event per
                // object: take every one already queued.
                let mut seen = BTreeMap::new();
                let mut take = |note: Result<Change, ()>, resync: &mut bool| match note {
                    Ok(change) if matches!(
                        change.kind,
                        ChangeKind::Bookkeeping | ChangeKind::Policed | ChangeKind::Purged
                    ) => {
                        seen.insert(change.id, change);
                    }
                    Ok(_) => {}
                    Err(()) => *resync = true,
                };
                let mut resync = false;
                match note {
                    Ok(change) => take(Ok(change), &mut resync),
                    Err(broadcast::error::RecvError::Lagged(_)) => take(Err(()), &mut resync),
                    Err(broadcast::error::RecvError::Closed) => {
                        // The core is gone: only the log (or nothing) is left.
                        std::future::pending::<()>().await;
                    }
                }
                loop {
                    match self.feed.try_recv() {
                        Ok(change) => take(Ok(change), &mut resync),
                        Err(broadcast::error::TryRecvError::Lagged(_)) => take(Err(()), &mut resync),
                        Err(_) => break,
                    }
                }
                if resync {
                    self.pending.push_back(Event::default().event("resync").data("{}"));
                }
                for (_, change) in seen {
                    let logged = LoggedChange {
                        seq: 0,
                        id: change.id,
                        model: change.model,
                        kind: change.kind,
                    };
                    self.offer(logged, false).await?;
                }
            }
        }
        Ok(())
    }
}

/// `GET /ui/events`: see the module docs.
pub(crate) async fn events(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, GuiError> {
    if let Some(model) = &query.model
        && state.host.core().registry().schema().model(model).is_none()
    {
        return Err(GuiError::NotFound(format!("there is no model `{model}`")));
    }
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let since = last_event_id.or(query.since);
    let core = state.host.core();
    let feed = core.subscribe();
    let mut pending = VecDeque::new();
    let watch = match core.watch(since).await {
        Ok(watch) => watch,
        Err(
            syncplane_core::Error::ChangesExpired { .. }
            | syncplane_core::Error::ChangeAhead { .. },
        ) => {
            pending.push_back(Event::default().event("resync").data("{}"));
            core.watch(None).await?
        }
        Err(e) => return Err(e.into()),
    };
    let live = Live {
        state: state.clone(),
        viewer,
        model: query.model,
        id: query.id,
        watch,
        feed,
        pending,
    };
    let stream = futures::stream::unfold(Some(live), |live| async move {
        let mut live = live?;
        loop {
            if let Some(event) = live.pending.pop_front() {
                return Some((Ok(event), Some(live)));
            }
            if let Err(error) = live.fill().await {
                tracing::debug!(%error, "GUI event stream ended");
                let event = Event::default().event("resync").data("{}");
                return Some((Ok(event), None));
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

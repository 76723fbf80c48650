//! Guest log records (and the host's warnings) of the action running now,
//! for `expect.logs` and for failure reports.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Where guest code logs (`syncplane_runtime`'s `log` interface).
const GUEST_TARGET: &str = "syncplane::guest";

/// A `tracing` layer keeping guest records of any level and host records
/// at `WARN` and above.
#[derive(Debug, Clone, Default)]
pub(crate) struct Captured {
    records: Arc<Mutex<Vec<String>>>,
}

impl Captured {
    fn records(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets what was kept.
    pub(crate) fn clear(&self) {
        self.records().clear();
    }

    /// What was kept since the last [`Captured::clear`], one line each:
    /// `INFO guest: text` or `WARN host: text`.
    pub(crate) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.records())
    }
}

#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            if !self.message.is_empty() {
                self.message.push_str(": ");
            }
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            if !self.message.is_empty() {
                self.message.push_str(": ");
            }
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for Captured {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let guest = meta.target() == GUEST_TARGET;
        if !guest && *meta.level() > Level::WARN {
            return;
        }
        let mut text = Text::default();
        event.record(&mut text);
        let source = if guest { "guest" } else { "host" };
        self.records().push(format!(
            "{} {source}: {}{}",
            meta.level(),
            text.message,
            text.fields
        ));
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[test]
    fn guest_records_and_host_warnings_are_kept_and_host_chatter_is_not() {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry().with(captured.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(target: "syncplane::guest", "hello from the guest");
            tracing::info!("the host is busy");
            tracing::warn!(service = "s", "denied guest access");
        });
        assert_eq!(
            captured.take(),
            vec![
                "DEBUG guest: hello from the guest".to_owned(),
                "WARN host: denied guest access service=\"s\"".to_owned(),
            ]
        );
        assert!(captured.take().is_empty());
    }
}

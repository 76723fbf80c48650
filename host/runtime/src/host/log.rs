//! `syncplane:plugin/log`: guest log records into `tracing`.

use crate::bindings::syncplane::plugin::log::{Host, Level};
use crate::state::StepState;

/// Records one invocation may log before the rest are dropped, so a log
/// flood from a guest stays contained.
const MAX_RECORDS_PER_INVOCATION: u32 = 200;

impl Host for StepState {
    async fn log(&mut self, level: Level, message: String, fields: Vec<(String, String)>) {
        self.log_records += 1;
        let service = self.access.service.as_str();
        let step = self.access.step.as_str();
        let object = self.access.observed;
        if self.log_records > MAX_RECORDS_PER_INVOCATION {
            if self.log_records == MAX_RECORDS_PER_INVOCATION + 1 {
                tracing::warn!(target: "syncplane::guest", service, step, object, "guest log limit reached; dropping further records of this invocation");
            }
            return;
        }
        // The engine's span around the invocation already names the service,
        // step and object; the guest's own fields go into the message.
        let mut text = message;
        for (key, value) in &fields {
            text.push_str(&format!(" {key}={value:?}"));
        }
        match level {
            Level::Trace => tracing::trace!(target: "syncplane::guest", "{text}"),
            Level::Debug => tracing::debug!(target: "syncplane::guest", "{text}"),
            Level::Info => tracing::info!(target: "syncplane::guest", "{text}"),
            Level::Warn => tracing::warn!(target: "syncplane::guest", "{text}"),
            Level::Error => tracing::error!(target: "syncplane::guest", "{text}"),
        }
    }
}

//! `log`: guest log records into `tracing`, capped and with the service's
//! secrets redacted.

use syncplane_engine::TrapCause;

use super::HostTrap;
use crate::capability::truncate;
use crate::state::StepState;

/// Records one invocation may log before the rest are dropped.
const MAX_RECORDS_PER_INVOCATION: u32 = 200;

impl StepState {
    /// Logs one record. Longer records are truncated; more than the
    /// invocation's byte budget traps (`output-limit`).
    pub(crate) fn guest_log(
        &mut self,
        level: tracing::Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> Result<(), HostTrap> {
        self.enter()?;
        let size = message.len()
            + fields
                .iter()
                .map(|(k, v)| k.len() + v.len() + 2)
                .sum::<usize>();
        self.output.log_bytes = self.output.log_bytes.saturating_add(size);
        let budget = self.access.limits.log_bytes;
        if self.output.log_bytes > budget {
            return Err(HostTrap::new(
                TrapCause::OutputLimit,
                format!("logged more than {budget} bytes in one invocation"),
            ));
        }
        self.output.log_records += 1;
        let service = self.access.service();
        let step = self.access.step.as_str();
        let object = self.access.observed;
        if self.output.log_records > MAX_RECORDS_PER_INVOCATION {
            if self.output.log_records == MAX_RECORDS_PER_INVOCATION + 1 {
                tracing::warn!(target: "syncplane::guest", service, step, object, "guest log limit reached; dropping further records of this invocation");
            }
            return Ok(());
        }
        // The engine's span around the invocation already names the service,
        // step and object; the guest's own fields go into the message.
        let mut text = message;
        for (key, value) in &fields {
            text.push_str(&format!(" {key}={value:?}"));
        }
        let text = truncate(
            self.access.ctx.redact(&text),
            self.access.limits.log_line_bytes,
        );
        syncplane_engine::capture_guest_log(level, &text);
        match level {
            tracing::Level::TRACE => tracing::trace!(target: "syncplane::guest", "{text}"),
            tracing::Level::DEBUG => tracing::debug!(target: "syncplane::guest", "{text}"),
            tracing::Level::INFO => tracing::info!(target: "syncplane::guest", "{text}"),
            tracing::Level::WARN => tracing::warn!(target: "syncplane::guest", "{text}"),
            tracing::Level::ERROR => tracing::error!(target: "syncplane::guest", "{text}"),
        }
        Ok(())
    }
}

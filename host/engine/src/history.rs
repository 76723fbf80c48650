//! What each invocation did, for the invocation history: when it ran, its
//! outcome, how long it took, its message and the first log lines the
//! guest wrote while it ran.
//!
//! Log lines reach the history through a task-local capture around each
//! invocation: the runtime hands every guest log record to
//! [`capture_guest_log`] as well as to `tracing`, and the engine collects
//! those written inside the invocation it awaits.

use std::cell::RefCell;
use std::future::Future;
use std::time::Instant;

use syncplane_core::{HistoryRow, Object};

use crate::clock::Clock;

/// Log lines kept per invocation; further lines are counted, not kept.
pub const MAX_LOG_LINES: usize = 20;

/// Bytes kept of each log line.
pub const MAX_LINE_BYTES: usize = 512;

/// Bytes kept of an invocation's message.
pub const MAX_MESSAGE_BYTES: usize = 2048;

tokio::task_local! {
    static CAPTURE: RefCell<Capture>;
}

/// The log lines of one invocation.
#[derive(Default)]
struct Capture {
    lines: Vec<String>,
    dropped: usize,
}

/// Keeps `line` (already redacted) in the history of the invocation now
/// running in this task, if any; past [`MAX_LOG_LINES`] it is counted.
pub fn capture_guest_log(level: tracing::Level, line: &str) {
    let _ = CAPTURE.try_with(|capture| {
        let mut capture = capture.borrow_mut();
        if capture.lines.len() < MAX_LOG_LINES {
            capture
                .lines
                .push(cut(&format!("{level}: {line}"), MAX_LINE_BYTES));
        } else {
            capture.dropped += 1;
        }
    });
}

/// `text` cut to at most `max` bytes on a character boundary, with a
/// visible marker when cut.
pub(crate) fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [cut]", &text[..end])
}

/// One invocation being run: call [`Invocation::run`] with its future.
pub(crate) struct Invocation<'a> {
    pub object: &'a Object,
    pub service: &'a str,
    pub step: &'a str,
    /// `sync`, `delete` or `policy`.
    pub kind: &'static str,
}

/// How an invocation ended, as the history says it.
pub(crate) struct Ended {
    /// `done`, `deferred`, `failed` or `trap`.
    pub outcome: &'static str,
    pub cause: Option<String>,
    pub message: String,
}

impl Invocation<'_> {
    /// Runs `call`, capturing the guest's log lines; returns its output and
    /// the history row that `describe` makes of it.
    pub(crate) async fn run<T>(
        self,
        clock: &dyn Clock,
        call: impl Future<Output = T>,
        describe: impl FnOnce(&T) -> Ended,
    ) -> (T, HistoryRow) {
        let at_ms = clock.now_ms();
        let started = Instant::now();
        let (output, capture) = CAPTURE
            .scope(RefCell::new(Capture::default()), async {
                let output = call.await;
                (
                    output,
                    CAPTURE.with(|c| std::mem::take(&mut *c.borrow_mut())),
                )
            })
            .await;
        let duration_us = i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX);
        let ended = describe(&output);
        let mut logs = capture.lines;
        if capture.dropped > 0 {
            logs.push(format!("… {} more lines not kept", capture.dropped));
        }
        let row = HistoryRow {
            at_ms,
            object: self.object.id,
            model: self.object.model.clone(),
            service: self.service.to_owned(),
            step: self.step.to_owned(),
            kind: self.kind.to_owned(),
            outcome: ended.outcome.to_owned(),
            cause: ended.cause,
            duration_us,
            message: cut(&ended.message, MAX_MESSAGE_BYTES),
            logs,
        };
        (output, row)
    }
}

impl Ended {
    /// A sync or delete step's outcome.
    pub(crate) fn of_step(outcome: &crate::Outcome) -> Ended {
        use crate::Outcome;
        match outcome {
            Outcome::Done => Ended::new("done", None, ""),
            Outcome::Deferred(m) => Ended::new("deferred", None, m),
            Outcome::Failed(m) => Ended::new("failed", None, m),
            Outcome::Trapped(trap) => {
                Ended::new("trap", Some(trap.cause.name().to_owned()), &trap.message)
            }
        }
    }

    /// A policy's outcome. A policy's trap reaches the engine as a failure
    /// whose message the trap wrote (`trap (<cause>): ...`); it is shown as
    /// a trap with its cause.
    pub(crate) fn of_call(outcome: &crate::CallOutcome) -> Ended {
        use crate::CallOutcome;
        match outcome {
            CallOutcome::Done => Ended::new("done", None, ""),
            CallOutcome::Deferred(m) => Ended::new("deferred", None, m),
            CallOutcome::Failed(m) => match crate::Trap::parse_status(m) {
                Some(trap) => Ended::new("trap", Some(trap.cause.name().to_owned()), &trap.message),
                None => Ended::new("failed", None, m),
            },
        }
    }

    fn new(outcome: &'static str, cause: Option<String>, message: &str) -> Ended {
        Ended {
            outcome,
            cause,
            message: message.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn object() -> Object {
        Object {
            id: 7,
            model: "Site".into(),
            fields: serde_json::Map::new(),
            sync: syncplane_core::SyncState::default(),
        }
    }

    #[tokio::test]
    async fn an_invocation_keeps_the_first_lines_it_logs_and_counts_the_rest() {
        let object = object();
        let clock = ManualClock::at(5_000);
        let invocation = Invocation {
            object: &object,
            service: "demo",
            step: "sync_site",
            kind: "sync",
        };
        let (out, row) = invocation
            .run(
                &clock,
                async {
                    for i in 0..MAX_LOG_LINES + 3 {
                        capture_guest_log(tracing::Level::INFO, &format!("line {i}"));
                    }
                    capture_guest_log(tracing::Level::WARN, &"x".repeat(4000));
                    crate::Outcome::Failed("no route".into())
                },
                Ended::of_step,
            )
            .await;
        assert_eq!(out, crate::Outcome::Failed("no route".into()));
        assert_eq!(row.at_ms, 5_000);
        assert_eq!((row.object, row.model.as_str()), (7, "Site"));
        assert_eq!(
            (row.outcome.as_str(), row.message.as_str()),
            ("failed", "no route")
        );
        assert_eq!(row.logs.len(), MAX_LOG_LINES + 1);
        assert_eq!(row.logs[0], "INFO: line 0");
        assert_eq!(row.logs[MAX_LOG_LINES], "… 4 more lines not kept");
        // Outside an invocation, nothing is captured (and nothing fails).
        capture_guest_log(tracing::Level::INFO, "stray");
    }

    #[test]
    fn a_policys_trap_is_told_from_a_failure_by_the_status_the_trap_wrote() {
        let trap = crate::Trap {
            cause: crate::TrapCause::Deadline,
            message: "policy p ran past 10s".into(),
        };
        let ended = Ended::of_call(&crate::CallOutcome::Failed(trap.to_string()));
        assert_eq!(ended.outcome, "trap");
        assert_eq!(ended.cause.as_deref(), Some("deadline"));
        assert_eq!(ended.message, "policy p ran past 10s");
        let ended = Ended::of_call(&crate::CallOutcome::Failed("trap (nonsense): x".into()));
        assert_eq!((ended.outcome, ended.cause), ("failed", None));
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary_with_a_marker() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("ééé", 3), "é… [cut]");
    }
}

//! What a run found: per test, passed or the failures; as TAP lines, a
//! summary and JUnit XML.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use quick_xml::Writer;
use quick_xml::events::{BytesCData, BytesDecl, BytesEnd, BytesStart, BytesText, Event};

/// One way a test did not do what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The line of the test file it concerns (the expectation, the
    /// exchange, the fixture), 1-based; 0 when unknown.
    pub line: usize,
    /// What differs, e.g. `objects.zone.backend_status (DnsZone 7)` then
    /// `expected:` and `actual:` lines.
    pub message: String,
}

/// What one test did.
#[derive(Debug, Clone)]
pub struct TestResult {
    /// The test file, as found under the service directory
    /// (`tests/zones.yaml`).
    pub file: PathBuf,
    /// The test's name; a file that could not be read or loaded is one
    /// failed result named `(load)`.
    pub name: String,
    /// The line the test starts at.
    pub line: usize,
    /// Empty when it passed.
    pub failures: Vec<Failure>,
    /// Guest log records (and host warnings) of its actions.
    pub logs: Vec<String>,
    /// How long it took.
    pub duration: Duration,
}

impl TestResult {
    /// Whether the test passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// A result for a file whose tests could not run at all.
    pub(crate) fn load_error(file: &Path, line: usize, message: String) -> TestResult {
        TestResult {
            file: file.to_owned(),
            name: "(load)".to_owned(),
            line,
            failures: vec![Failure { line, message }],
            logs: Vec::new(),
            duration: Duration::ZERO,
        }
    }

    /// The failures as `file:line: message` blocks, then the logs.
    pub fn details(&self) -> String {
        let mut out = String::new();
        for failure in &self.failures {
            let _ = writeln!(
                out,
                "{}:{}: {}",
                self.file.display(),
                failure.line,
                failure.message
            );
        }
        if !self.passed() && !self.logs.is_empty() {
            out.push_str("logs:\n");
            for line in &self.logs {
                let _ = writeln!(out, "  {line}");
            }
        }
        out
    }

    /// The test's TAP line (number `n`), with its failures as `#`
    /// comment lines under a failing one.
    pub fn tap(&self, n: usize) -> String {
        let status = if self.passed() { "ok" } else { "not ok" };
        let mut out = format!(
            "{status} {n} - {}: {} ({:.2}s)\n",
            self.file.display(),
            self.name,
            self.duration.as_secs_f64()
        );
        for line in self.details().lines() {
            let _ = writeln!(out, "#   {line}");
        }
        out
    }
}

/// What a run of a service's tests found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The service's name.
    pub service: String,
    /// Each test run, in order.
    pub results: Vec<TestResult>,
    /// Tests `--filter` left out.
    pub filtered_out: usize,
    /// How long the run took, the build excluded.
    pub elapsed: Duration,
}

impl Report {
    /// Tests that passed.
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.passed()).count()
    }

    /// Tests that failed (files that did not load count as one each).
    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }

    /// Whether tests ran and none failed.
    pub fn success(&self) -> bool {
        !self.results.is_empty() && self.failed() == 0
    }

    /// `N passed, M failed` (and how many were filtered out), with the
    /// time taken.
    pub fn summary(&self) -> String {
        let mut out = format!("{} passed, {} failed", self.passed(), self.failed());
        if self.filtered_out > 0 {
            let _ = write!(out, ", {} filtered out", self.filtered_out);
        }
        let _ = write!(out, " in {:.2}s", self.elapsed.as_secs_f64());
        out
    }

    /// Panics with every failure unless [`Report::success`]: for a
    /// `#[test]` running a service's tests under `cargo test`.
    ///
    /// # Panics
    ///
    /// When a test failed or none ran.
    #[track_caller]
    pub fn assert_success(&self) {
        if self.success() {
            return;
        }
        let mut out = String::new();
        for result in self.results.iter().filter(|r| !r.passed()) {
            let _ = write!(
                out,
                "\n--- {}: {}\n{}",
                result.file.display(),
                result.name,
                result.details()
            );
        }
        if self.results.is_empty() {
            out.push_str("\nno test ran");
        }
        panic!(
            "service tests of {} failed: {}{out}",
            self.service,
            self.summary()
        );
    }

    /// The report as JUnit XML: one `testsuite` per test file, one
    /// `testcase` per test, a `failure` (its text the failures and logs)
    /// for each failed one.
    pub fn junit_xml(&self) -> String {
        let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
        // Writing to a Vec cannot fail.
        let _ = self.write_junit(&mut writer);
        String::from_utf8_lossy(&writer.into_inner()).into_owned()
    }

    fn write_junit(&self, w: &mut Writer<Vec<u8>>) -> std::io::Result<()> {
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        let mut suites = BytesStart::new("testsuites");
        suites.push_attribute(("name", self.service.as_str()));
        suites.push_attribute(("tests", self.results.len().to_string().as_str()));
        suites.push_attribute(("failures", self.failed().to_string().as_str()));
        suites.push_attribute(("time", secs(self.elapsed).as_str()));
        w.write_event(Event::Start(suites))?;
        let mut files: Vec<&Path> = Vec::new();
        for result in &self.results {
            if !files.contains(&result.file.as_path()) {
                files.push(&result.file);
            }
        }
        for file in files {
            let results: Vec<&TestResult> =
                self.results.iter().filter(|r| r.file == file).collect();
            let shown = file.display().to_string();
            let mut suite = BytesStart::new("testsuite");
            suite.push_attribute(("name", shown.as_str()));
            suite.push_attribute(("tests", results.len().to_string().as_str()));
            let failed = results.iter().filter(|r| !r.passed()).count();
            suite.push_attribute(("failures", failed.to_string().as_str()));
            suite.push_attribute(("errors", "0"));
            let time: Duration = results.iter().map(|r| r.duration).sum();
            suite.push_attribute(("time", secs(time).as_str()));
            w.write_event(Event::Start(suite))?;
            for result in results {
                let mut case = BytesStart::new("testcase");
                case.push_attribute(("name", result.name.as_str()));
                case.push_attribute((
                    "classname",
                    format!("{}.{}", self.service, stem(file)).as_str(),
                ));
                case.push_attribute(("file", shown.as_str()));
                case.push_attribute(("line", result.line.to_string().as_str()));
                case.push_attribute(("time", secs(result.duration).as_str()));
                if result.passed() {
                    w.write_event(Event::Empty(case))?;
                    continue;
                }
                w.write_event(Event::Start(case))?;
                let first = result
                    .failures
                    .first()
                    .map(|f| f.message.lines().next().unwrap_or_default().to_owned())
                    .unwrap_or_default();
                let mut failure = BytesStart::new("failure");
                failure.push_attribute(("message", first.as_str()));
                failure.push_attribute(("type", "AssertionError"));
                w.write_event(Event::Start(failure))?;
                w.write_event(Event::Text(BytesText::new(&result.details())))?;
                w.write_event(Event::End(BytesEnd::new("failure")))?;
                if !result.logs.is_empty() {
                    w.write_event(Event::Start(BytesStart::new("system-out")))?;
                    let logs = result.logs.join("\n").replace("]]>", "]]]]><![CDATA[>");
                    w.write_event(Event::CData(BytesCData::new(logs)))?;
                    w.write_event(Event::End(BytesEnd::new("system-out")))?;
                }
                w.write_event(Event::End(BytesEnd::new("testcase")))?;
            }
            w.write_event(Event::End(BytesEnd::new("testsuite")))?;
        }
        w.write_event(Event::End(BytesEnd::new("testsuites")))?;
        Ok(())
    }
}

fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

fn stem(file: &Path) -> String {
    file.file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let ok = TestResult {
            file: "tests/a.yaml".into(),
            name: "greets".into(),
            line: 3,
            failures: Vec::new(),
            logs: vec!["INFO guest: hello".into()],
            duration: Duration::from_millis(120),
        };
        let failed = TestResult {
            file: "tests/a.yaml".into(),
            name: "fails <badly> & \"loudly\"".into(),
            line: 9,
            failures: vec![Failure {
                line: 14,
                message: "objects.x.backend_status (M 4)\n  expected: \"OK\"\n  actual:   \"Maybe <not>\"".into(),
            }],
            logs: vec!["WARN host: ]]> tricky".into()],
            duration: Duration::from_millis(80),
        };
        Report {
            service: "hello-world".into(),
            results: vec![ok, failed],
            filtered_out: 2,
            elapsed: Duration::from_millis(1500),
        }
    }

    #[test]
    fn the_summary_counts_passed_failed_and_filtered_out() {
        let r = report();
        assert_eq!(r.summary(), "1 passed, 1 failed, 2 filtered out in 1.50s");
        assert!(!r.success());
    }

    #[test]
    fn a_failing_tap_line_carries_the_failure_with_file_and_line() {
        let r = report();
        assert_eq!(r.results[0].tap(1), "ok 1 - tests/a.yaml: greets (0.12s)\n");
        let tap = r.results[1].tap(2);
        assert!(tap.starts_with("not ok 2 - tests/a.yaml: fails"), "{tap}");
        assert!(
            tap.contains(
                "#   tests/a.yaml:14: objects.x.backend_status (M 4)\n#     expected: \"OK\"\n"
            ),
            "{tap}"
        );
        assert!(
            tap.contains("#   logs:\n#     WARN host: ]]> tricky"),
            "{tap}"
        );
    }

    #[test]
    fn junit_xml_escapes_names_and_texts_and_reads_back() {
        let xml = report().junit_xml();
        assert!(
            xml.contains("name=\"fails &lt;badly&gt; &amp; &quot;loudly&quot;\""),
            "{xml}"
        );
        assert!(
            xml.contains("<testsuites name=\"hello-world\" tests=\"2\" failures=\"1\""),
            "{xml}"
        );
        assert!(xml.contains("Maybe &lt;not&gt;"), "{xml}");
        let mut reader = quick_xml::Reader::from_str(&xml);
        let mut depth = 0i32;
        let mut texts = String::new();
        loop {
            match reader.read_event().expect("well-formed XML") {
                Event::Start(_) => depth += 1,
                Event::End(_) => depth -= 1,
                Event::CData(c) => texts.push_str(&String::from_utf8_lossy(&c)),
                Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!(depth, 0);
        assert!(texts.contains("]]> tricky"), "{texts}");
    }
}

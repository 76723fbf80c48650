//! `syncplane xproto check`, `fmt` and `gen`.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use syncplane_xproto::{Diagnostic, File, Schema};

use syncplane_xproto_gen::{Dialect, Target};

use crate::args::{FmtArgs, GenTarget, SqlDialect, XprotoFiles};

/// What reading and checking the files found.
struct Checked {
    files: Vec<File>,
    /// The schema, when there are no errors.
    schema: Option<Schema>,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    /// File name -> text, for the snippets.
    sources: BTreeMap<String, String>,
}

impl Checked {
    /// Prints the warnings, then the errors, with snippets, to stderr.
    fn report(&self) {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let all: Vec<Diagnostic> = self.warnings.iter().chain(&self.errors).cloned().collect();
        eprint!("{}", syncplane_xproto::render(&all, &self.sources, color));
        match (self.errors.len(), self.warnings.len()) {
            (0, 0) => {}
            (0, w) => eprintln!("{w} warning(s)"),
            (e, 0) => eprintln!("{e} error(s)"),
            (e, w) => eprintln!("{e} error(s), {w} warning(s)"),
        }
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Parses every file (one syntax error per file), then validates them
/// together, resolving what they do not define to the built-in core.
fn check_files(files: &XprotoFiles) -> anyhow::Result<Checked> {
    let mut checked = Checked {
        files: Vec::new(),
        schema: None,
        errors: Vec::new(),
        warnings: Vec::new(),
        sources: BTreeMap::new(),
    };
    for path in &files.files {
        let name = path.display().to_string();
        let text = read(path)?;
        match syncplane_xproto::parse_full(&name, &text) {
            Ok(parsed) => {
                checked
                    .warnings
                    .extend(parsed.warnings.iter().map(Diagnostic::from));
                checked.files.push(parsed.file);
            }
            Err(e) => checked.errors.push(Diagnostic::from(&e)),
        }
        checked.sources.insert(name, text);
    }
    // Errors in the built-in core models (a service redefining one, say)
    // get snippets too.
    checked
        .sources
        .entry(syncplane_xproto::CORE_FILE.to_owned())
        .or_insert_with(|| syncplane_xproto::CORE_XPROTO.to_owned());
    if !checked.errors.is_empty() {
        return Ok(checked);
    }
    match Schema::resolve(&checked.files) {
        Ok(schema) => {
            checked
                .warnings
                .extend(schema.warnings().iter().map(Diagnostic::from));
            checked.schema = Some(schema);
        }
        Err(e) => checked.errors.extend(e.0.iter().map(Diagnostic::from)),
    }
    Ok(checked)
}

pub fn check(files: &XprotoFiles) -> anyhow::Result<ExitCode> {
    let checked = check_files(files)?;
    checked.report();
    if !checked.errors.is_empty() {
        return Ok(ExitCode::from(1));
    }
    let models: usize = checked.files.iter().map(|f| f.models.len()).sum();
    println!("ok: {} file(s), {models} model(s)", checked.files.len());
    Ok(ExitCode::SUCCESS)
}

/// `syncplane xproto fmt`: formats each file canonically. Without flags the
/// result goes to stdout (each file under a `==> path <==` line when there
/// are several); `--write` rewrites the files that change and lists them;
/// `--check` lists the files that would change and exits 1 if any would.
/// A file that does not parse is reported and left alone (exit 1).
pub fn fmt(args: &FmtArgs) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    let mut changed = false;
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    for path in &args.files {
        let name = path.display().to_string();
        let text = read(path)?;
        let formatted = match syncplane_xproto::format_source(&name, &text) {
            Ok(formatted) => formatted,
            Err(e) => {
                let sources = BTreeMap::from([(name, text)]);
                eprint!(
                    "{}",
                    syncplane_xproto::render(&[Diagnostic::from(&e)], &sources, color)
                );
                failed = true;
                continue;
            }
        };
        if args.check || args.write {
            if formatted != text {
                changed = true;
                println!("{name}");
                if args.write {
                    std::fs::write(path, &formatted)
                        .with_context(|| format!("cannot write {name}"))?;
                }
            }
        } else {
            if args.files.len() > 1 {
                println!("==> {name} <==");
            }
            crate::output::write_stdout(&formatted)?;
        }
    }
    Ok(if failed || (args.check && changed) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn generate(
    target: GenTarget,
    dialect: SqlDialect,
    files: &XprotoFiles,
) -> anyhow::Result<ExitCode> {
    let checked = check_files(files)?;
    checked.report();
    let (parsed, schema) = match checked.schema {
        Some(schema) if checked.errors.is_empty() => (checked.files, schema),
        _ => return Ok(ExitCode::from(1)),
    };
    let dialect = match dialect {
        SqlDialect::Sqlite => Dialect::Sqlite,
        SqlDialect::Postgres => Dialect::Postgres,
    };
    let target = match target {
        GenTarget::Deps => Target::Deps,
        GenTarget::Ir => Target::Ir,
        GenTarget::Proto => Target::Proto,
        GenTarget::Openapi => Target::Openapi,
        GenTarget::Tosca => Target::Tosca,
        GenTarget::Sql => Target::Sql(dialect),
        GenTarget::Rust => Target::Rust,
        GenTarget::Python => Target::Python,
        GenTarget::Typescript => Target::Typescript,
        GenTarget::Javascript => Target::Javascript,
        GenTarget::Dot => Target::Dot,
        GenTarget::Svg => Target::Svg,
        GenTarget::Docs => Target::Docs,
    };
    let text = syncplane_xproto_gen::generate(target, &schema, &parsed)
        .with_context(|| format!("while generating {target}"))?;
    let mut out = text;
    if !out.ends_with('\n') {
        out.push('\n');
    }
    crate::output::write_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}

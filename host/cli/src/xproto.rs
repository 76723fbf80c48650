//! `syncplane xproto check` and `syncplane xproto gen`.

use std::process::ExitCode;

use anyhow::Context as _;
use syncplane_xproto::{File, Schema};

use syncplane_xproto_gen::{Dialect, Target};

use crate::args::{GenTarget, SqlDialect, XprotoFiles};

/// The outcome of reading and checking the files.
enum Checked {
    /// Everything parsed and fits together.
    Valid { files: Vec<File>, schema: Schema },
    /// Every error found, each with file:line:column.
    Invalid(Vec<String>),
}

/// Parses every file (one syntax error per file), then validates them
/// together, resolving what they do not define to the built-in core.
fn check_files(files: &XprotoFiles) -> anyhow::Result<Checked> {
    let mut parsed = Vec::new();
    let mut errors = Vec::new();
    for path in &files.files {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        match syncplane_xproto::parse(&path.display().to_string(), &text) {
            Ok(file) => parsed.push(file),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        return Ok(Checked::Invalid(errors));
    }
    Ok(match Schema::resolve(&parsed) {
        Ok(schema) => Checked::Valid {
            files: parsed,
            schema,
        },
        Err(e) => Checked::Invalid(e.0.iter().map(ToString::to_string).collect()),
    })
}

fn report(errors: &[String]) -> ExitCode {
    for e in errors {
        eprintln!("error: {e}");
    }
    eprintln!("{} error(s)", errors.len());
    ExitCode::from(1)
}

pub fn check(files: &XprotoFiles) -> anyhow::Result<ExitCode> {
    match check_files(files)? {
        Checked::Valid { files: parsed, .. } => {
            let models: usize = parsed.iter().map(|f| f.models.len()).sum();
            println!("ok: {} file(s), {models} model(s)", parsed.len());
            Ok(ExitCode::SUCCESS)
        }
        Checked::Invalid(errors) => Ok(report(&errors)),
    }
}

pub fn generate(
    target: GenTarget,
    dialect: SqlDialect,
    files: &XprotoFiles,
) -> anyhow::Result<ExitCode> {
    let (parsed, schema) = match check_files(files)? {
        Checked::Valid { files, schema } => (files, schema),
        Checked::Invalid(errors) => return Ok(report(&errors)),
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
        GenTarget::Dot => Target::Dot,
        GenTarget::Svg => Target::Svg,
        GenTarget::Docs => Target::Docs,
    };
    let text = syncplane_xproto_gen::generate(target, &schema, &parsed)
        .with_context(|| format!("while generating {target}"))?;
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

//! `syncplane store copy`: moves a data directory's embedded store into
//! another store (PostgreSQL), everything in it, counts checked.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use syncplane_platform::StoreLocation;
use syncplane_store::Store;

use crate::args::StoreCopyArgs;

/// The embedded store's file in a data directory.
const STORE_FILE: &str = "syncplane.db";

pub async fn copy(args: StoreCopyArgs) -> anyhow::Result<ExitCode> {
    let file = args.from.join(STORE_FILE);
    if !file.is_file() {
        bail!(
            "{} holds no store ({} is missing); --from takes the data directory a server ran on",
            args.from.display(),
            file.display()
        );
    }
    if args.to == StoreLocation::File(file.clone()) {
        bail!("--to is the store being copied");
    }
    let started = Instant::now();
    let from = Store::open(&file)
        .await
        .with_context(|| format!("cannot open the store {}", file.display()))?;
    let to = Store::connect(&args.to)
        .await
        .with_context(|| format!("cannot open the store {}", args.to))?;
    eprintln!("copying {} to {} ...", file.display(), args.to);
    let tables = syncplane_store::copy(&from, &to, |table| {
        eprintln!("  {:<40} {:>10} rows", table.name, table.rows);
    })
    .await
    .with_context(|| format!("copying into {} failed; nothing was written there", args.to))?;
    from.close().await;
    to.close().await;
    let rows: u64 = tables.iter().map(|t| t.rows).sum();
    println!(
        "copied {rows} rows in {} tables to {} in {:.1} s; every table has as many rows on both sides",
        tables.len(),
        args.to,
        started.elapsed().as_secs_f64()
    );
    println!(
        "start the server on it with the same data directory (it keeps the key that seals secrets):\n  \
         SYNCPLANE_STORE='{}' syncplane serve --data-dir {}",
        args.to,
        args.from.display()
    );
    Ok(ExitCode::SUCCESS)
}

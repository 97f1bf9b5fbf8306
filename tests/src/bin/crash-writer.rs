//! Commits blocks to the store at `argv[1]` until killed, resuming from whatever the store
//! holds. After each commit returns (the synced `WriteBatch` is durable), it prints
//! `committed HEIGHT` and flushes, so the parent knows which heights must survive a crash.

use std::io::Write;

use anyhow::Context;
use pactum_storage::Store;
use pactum_storage::builder::ChainBuilder;
use pactum_tests::{CRASH_CHAIN_ID, CRASH_KEY_SEED};
use pactum_types::ChainId;

fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).context("usage: crash-writer DATA_DIR")?;
    let mut store = Store::open(&path).with_context(|| format!("cannot open {path}"))?;
    let mut builder =
        ChainBuilder::new(ChainId::new(CRASH_CHAIN_ID)?, 4, 8, CRASH_KEY_SEED).resume(&store)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "opened {}", store.last_height())?;
    out.flush()?;
    // Bounded: the parent kills this process long before it gets here.
    for round in 0..1_000_000u64 {
        // Vary the block size so kills land in blocks of different shapes.
        let transactions = 1 + (round as usize * 13 + store.last_height() as usize) % 40;
        builder.extend(&mut store, 1, transactions)?;
        writeln!(out, "committed {}", store.last_height())?;
        out.flush()?;
    }
    Ok(())
}

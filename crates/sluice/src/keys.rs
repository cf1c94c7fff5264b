//! `sluice keys rotate`: walks the messages in id order, a batch at a time, and seals
//! again every body the current key did not seal. Short batches with a pause between them
//! leave the writer to the running server most of the time.

use std::time::Duration;

use sluice_store::Store;
use tracing::info;

const BATCH: u32 = 200;
const PAUSE: Duration = Duration::from_millis(20);

/// (messages looked at, bodies rewritten).
pub async fn rotate_bodies(store: &dyn Store) -> anyhow::Result<(u64, u64)> {
    let mut after = 0;
    let (mut looked, mut rewritten) = (0u64, 0u64);
    loop {
        let (last, seen, done) = store.reseal_bodies(after, BATCH).await?;
        let Some(last) = last else { break };
        looked += seen;
        rewritten += done;
        after = last;
        if done > 0 {
            info!(up_to_message = last, rewritten, "bodies sealed again");
        }
        tokio::time::sleep(PAUSE).await;
    }
    Ok((looked, rewritten))
}

//! Background work of every shard: rate samples and threshold warnings.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::shard::Shard;

use super::*;

/// Least time between two warnings about the same condition.
pub const WARN_INTERVAL: Duration = Duration::from_secs(300);

/// Background work of every shard: rate samples every [`SAMPLE_INTERVAL`], and warnings
/// (at most one per condition per [`WARN_INTERVAL`]) when a threshold the broker knows is
/// crossed: a poisoned log (each shard, its own logs), the disk past
/// `diskMaxUsedSpaceRatio` (shard 0).
pub async fn background_loop(shard: Rc<Shard>) {
    let mut warned_poison: HashMap<u32, Instant> = HashMap::new();
    let mut warned_disk: Option<Instant> = None;
    let due = |last: Option<&Instant>| last.is_none_or(|t| t.elapsed() >= WARN_INTERVAL);
    loop {
        prune(&shard);
        shard.metrics.sample();
        for (&log, store) in &shard.logs {
            match store.poison_reason() {
                Some(reason) if due(warned_poison.get(&log)) => {
                    tracing::error!(log, %reason, "commit log poisoned: appends refused \
                        (SERVICE_NOT_AVAILABLE) until the broker restarts");
                    warned_poison.insert(log, Instant::now());
                }
                _ => {}
            }
        }
        if shard.id == 0 {
            let root = shard.config.store_path.clone();
            let (total, free, _, _) =
                glommio::executor().spawn_blocking(move || disk_facts(&root)).await;
            let max = shard.settings.borrow().disk_max_used_space_ratio;
            let ratio =
                if total == 0 { 0.0 } else { (total - free.min(total)) as f64 / total as f64 };
            if ratio * 100.0 >= f64::from(max) {
                if due(warned_disk.as_ref()) {
                    tracing::warn!(
                        ratio = format!("{ratio:.3}"),
                        max_percent = max,
                        "store disk usage past diskMaxUsedSpaceRatio"
                    );
                    warned_disk = Some(Instant::now());
                }
            } else if warned_disk.take().is_some() {
                tracing::info!(
                    ratio = format!("{ratio:.3}"),
                    "store disk usage back under the limit"
                );
            }
        }
        glommio::timer::sleep(SAMPLE_INTERVAL).await;
    }
}

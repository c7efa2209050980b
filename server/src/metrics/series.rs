//! Which topics and groups get a series of their own: the admission and pruning rules that
//! keep a shard's metrics bounded whatever names clients send.
//!
//! A series is created only after its request was answered successfully (a send stored, a
//! pull that found messages), and only for a topic in the broker's topic table and, for
//! gets, a group with a valid name that the broker knows: a live consumer of the group
//! subscribed to the topic (the subscription table every shard holds, so every shard
//! decides alike). Each shard holds at most
//! [`ShardMetrics::series_budget`] series; past it, or for anything else, counts go to the
//! folded series (`~other`) and `metricsMaxSeries` is counted as a limit hit. A series goes
//! when its topic leaves the topic table or its group is no longer known ([`prune`], at
//! every rate sample and every scrape).

use std::collections::HashSet;
use std::rc::Rc;

use crate::shard::Shard;
use crate::topic::TOPIC_NAME_BYTES_MAX;

use super::*;

/// Default of `metricsMaxSeries`: per-topic and per-(topic, group) series the page holds.
pub const METRICS_MAX_SERIES_DEFAULT: usize = 10_000;

/// True for a name that may label a series: 1..=127 bytes of `[A-Za-z0-9%_|-]`, as topic
/// names (groups made by UPDATE_AND_CREATE_SUBSCRIPTIONGROUP follow the same rule).
pub fn is_series_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= TOPIC_NAME_BYTES_MAX
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"%_|-".contains(&b))
}

impl ShardMetrics {
    /// Series this shard may hold: `metricsMaxSeries` split evenly over the shards, so the
    /// page (the union of every shard's series) stays within `metricsMaxSeries` per family.
    pub fn series_budget(shard: &Shard) -> usize {
        shard.config.metrics_limits.max_series.div_ceil(shard.shard_count.max(1))
    }
}

/// Whether a live consumer of `group` subscribes to `topic`.
fn group_known(shard: &Shard, topic: &str, group: &str) -> bool {
    shard.subscriptions.borrow().contains(group, topic)
}

/// Room for one more series, else counts the limit hit.
fn has_room(shard: &Shard) -> bool {
    if shard.metrics.series.get() < ShardMetrics::series_budget(shard) {
        true
    } else {
        crate::net::limits::count_hit(METRICS_MAX_SERIES);
        false
    }
}

/// Config key of the series bound (also its limit-hit label).
pub const METRICS_MAX_SERIES: &str = "metricsMaxSeries";

/// The put series a stored send of `topic` counts in: its own (created now if the topic
/// exists and the budget allows), else `None` (the folded series).
pub fn admit_put(shard: &Shard, topic: &str) -> Option<Rc<Series>> {
    if let Some(s) = shard.metrics.put_series(topic) {
        return Some(s);
    }
    if !is_series_name(topic) || shard.topic_table().get(topic).is_none() || !has_room(shard) {
        return None;
    }
    Some(shard.metrics.insert_put(topic))
}

/// The get series a successful pull of `(topic, group)` counts in (as [`admit_put`]).
pub fn admit_get(shard: &Shard, topic: &str, group: &str) -> Option<Rc<Series>> {
    if let Some(s) = shard.metrics.get_series(topic, group) {
        return Some(s);
    }
    if !is_series_name(topic)
        || !is_series_name(group)
        || shard.topic_table().get(topic).is_none()
        || !group_known(shard, topic, group)
        || !has_room(shard)
    {
        return None;
    }
    Some(shard.metrics.insert_get(topic, group))
}

/// Drops the series whose topic left the topic table or whose group is no longer known.
pub fn prune(shard: &Shard) {
    let table = shard.topic_table();
    let subs = shard.subscriptions.borrow().clone();
    let mut groups: HashSet<&str> = subs.keys().map(|(g, _)| g.as_str()).collect();
    let configured = shard.zero.as_ref().map(|z| z.subscription_groups.borrow());
    if let Some(c) = &configured {
        groups.extend(c.table().subscription_group_table.keys().map(String::as_str));
    }
    shard
        .metrics
        .retain(|t| table.get(t).is_some(), |t, g| table.get(t).is_some() && groups.contains(g));
}

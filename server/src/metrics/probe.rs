//! The request probe: what one request counts when its response is known (the request
//! table's stats category says put, get or other).

use std::rc::Rc;
use std::time::Instant;

use ramjet_proto::codes::{request, response};
use ramjet_proto::Header;

use crate::handler::table::Stats;
use crate::net::connection::Response;
use crate::shard::Shard;

use super::*;

/// What one request needs counted when its response is known.
///
/// Created on the accepting shard before dispatch; holds no borrows, so it may live across
/// the request's awaits. It copies a topic or group name only when the name has no series
/// yet and could have one (a valid name, at most 127 bytes); the series is chosen when the
/// response says the request was valid ([`super::series`]).
pub struct RequestProbe {
    code: i32,
    known: bool,
    stats: Stats,
    started: Instant,
    oneway: bool,
    body_bytes: u64,
    target: Target,
}

/// Where a put or get counts.
enum Target {
    /// Not a put or get, or no name in the header: the folded series.
    Other,
    /// The name's existing series.
    Series(Rc<Series>),
    /// A valid name without a series yet: admitted (or folded) at finish.
    Put(Box<str>),
    /// As `Put`, for `(topic, group)`.
    Get(Box<str>, Box<str>),
}

/// How the request table says `code` is counted, and whether it knows the code.
fn stats_of(code: i32) -> (Stats, bool) {
    crate::handler::table::entry(code).map_or((Stats::Other, false), |e| (e.stats, true))
}

impl RequestProbe {
    /// Starts timing `header`'s request.
    pub fn start(shard: &Shard, header: &Header, body_bytes: usize) -> RequestProbe {
        let code = header.code;
        let ext = &header.ext_fields;
        let (stats, known) = stats_of(code);
        let target = match stats {
            Stats::Put => {
                let topic =
                    if code == request::SEND_MESSAGE { ext.get("topic") } else { ext.get("b") };
                match topic {
                    Some(t) => match shard.metrics.put_series(t) {
                        Some(s) => Target::Series(s),
                        None if is_series_name(t) => Target::Put(t.into()),
                        None => Target::Other,
                    },
                    None => Target::Other,
                }
            }
            Stats::Get => match (ext.get("topic"), ext.get("consumerGroup")) {
                (Some(t), Some(g)) => match shard.metrics.get_series(t, g) {
                    Some(s) => Target::Series(s),
                    None if is_series_name(t) && is_series_name(g) => {
                        Target::Get(t.into(), g.into())
                    }
                    None => Target::Other,
                },
                _ => Target::Other,
            },
            Stats::Other => Target::Other,
        };
        RequestProbe {
            code,
            known,
            stats,
            started: Instant::now(),
            oneway: header.is_oneway(),
            body_bytes: body_bytes as u64,
            target,
        }
    }

    /// The series the request counts in, now that it proved valid.
    fn series(&self, shard: &Shard) -> Option<Rc<Series>> {
        match &self.target {
            Target::Other => None,
            Target::Series(s) => Some(s.clone()),
            Target::Put(topic) => admit_put(shard, topic),
            Target::Get(topic, group) => admit_get(shard, topic, group),
        }
    }

    /// Counts the request with its response.
    pub fn finish(self, shard: &Shard, response: Option<&Response>) {
        let m = &shard.metrics;
        let elapsed = self.started.elapsed().as_secs_f64();
        let code = response.map_or(-1, |r| r.header.code);
        m.count_request(self.code, self.known, code);
        if self.stats == Stats::Put {
            m.send_latency.observe(elapsed);
            let stored = response.is_some_and(|r| stored_code(r.header.code)) || self.oneway;
            if stored {
                let records = response
                    .and_then(|r| r.header.ext_fields.get("msgId"))
                    .map_or(1, |ids| ids.split(',').count() as u64);
                m.count_put(self.series(shard).as_deref(), records, self.body_bytes);
                m.append_records.observe(records as f64);
            }
        } else if self.stats == Stats::Get {
            m.pull_latency.observe(elapsed);
            if let Some(r) = response.filter(|r| r.header.code == response::SUCCESS) {
                let records: u64 = r.body_parts().map(|p| count_records(p)).sum();
                m.count_get(self.series(shard).as_deref(), records, r.body_len() as u64);
            }
        }
    }
}

/// Send codes under which the message was stored: SUCCESS and the reference's
/// FLUSH_DISK_TIMEOUT, FLUSH_SLAVE_TIMEOUT and SLAVE_NOT_AVAILABLE (stored on the master).
fn stored_code(code: i32) -> bool {
    matches!(
        code,
        response::SUCCESS
            | response::FLUSH_DISK_TIMEOUT
            | response::FLUSH_SLAVE_TIMEOUT
            | response::SLAVE_NOT_AVAILABLE
    )
}

/// Number of stored records back to back in a pull body (walks TOTALSIZE fields).
pub fn count_records(body: &[u8]) -> u64 {
    let mut n = 0;
    let mut at = 0usize;
    while let Some(size) = body.get(at..at + 4) {
        let size = i32::from_be_bytes([size[0], size[1], size[2], size[3]]);
        if size <= 0 {
            break;
        }
        n += 1;
        at += size as usize;
    }
    n
}

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
/// Created on the accepting shard before dispatch; holds only `Rc`s to counter slots, no
/// borrows, so it may live across the request's awaits.
pub struct RequestProbe {
    code: i32,
    stats: Stats,
    started: Instant,
    oneway: bool,
    body_bytes: u64,
    put: Option<Rc<PutCounters>>,
    get: Option<Rc<GetCounters>>,
}

/// How the request table says `code` is counted.
fn stats_of(code: i32) -> Stats {
    crate::handler::table::entry(code).map_or(Stats::Other, |e| e.stats)
}

impl RequestProbe {
    /// Starts timing `header`'s request.
    pub fn start(shard: &Shard, header: &Header, body_bytes: usize) -> RequestProbe {
        let code = header.code;
        let ext = &header.ext_fields;
        let stats = stats_of(code);
        let put = if stats == Stats::Put {
            let topic = if code == request::SEND_MESSAGE { ext.get("topic") } else { ext.get("b") };
            topic.map(|t| shard.metrics.put_slot(t))
        } else {
            None
        };
        let get = if stats == Stats::Get {
            match (ext.get("topic"), ext.get("consumerGroup")) {
                (Some(t), Some(g)) => Some(shard.metrics.get_slot(t, g)),
                _ => None,
            }
        } else {
            None
        };
        RequestProbe {
            code,
            stats,
            started: Instant::now(),
            oneway: header.is_oneway(),
            body_bytes: body_bytes as u64,
            put,
            get,
        }
    }

    /// Counts the request with its response.
    pub fn finish(self, shard: &Shard, response: Option<&Response>) {
        let m = &shard.metrics;
        let elapsed = self.started.elapsed().as_secs_f64();
        let code = response.map_or(-1, |r| r.header.code);
        m.count_request(self.code, code);
        if self.stats == Stats::Put {
            m.send_latency.observe(elapsed);
            let stored = response.is_some_and(|r| stored_code(r.header.code)) || self.oneway;
            if let (Some(put), true) = (&self.put, stored) {
                let records = response
                    .and_then(|r| r.header.ext_fields.get("msgId"))
                    .map_or(1, |ids| ids.split(',').count() as u64);
                put.messages.set(put.messages.get() + records);
                put.bytes.set(put.bytes.get() + self.body_bytes);
                m.append_records.observe(records as f64);
            }
        } else if self.stats == Stats::Get {
            m.pull_latency.observe(elapsed);
            if let (Some(get), Some(r)) = (&self.get, response) {
                if r.header.code == response::SUCCESS {
                    let records: u64 = r.body_parts().map(|p| count_records(p)).sum();
                    get.messages.set(get.messages.get() + records);
                    get.bytes.set(get.bytes.get() + r.body_len() as u64);
                }
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

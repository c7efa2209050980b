//! SQL92 property filtering (`ExpressionType.SQL92`, ARCHITECTURE §13): CHECK_CLIENT_CONFIG
//! (46), the compiled filters of heartbeat subscriptions, and the pull-time choice of a
//! message filter.
//!
//! A heartbeat subscription of type SQL92 is compiled once, on shard 0, when the
//! subscription table is published (a republished table reuses the compiled filter of an
//! unchanged subscription); a selector that does not compile is kept without a filter, so
//! pulls relying on it are answered FILTER_DATA_NOT_EXIST, as the reference's
//! `ConsumerFilterManager` logs and drops it. A pull that carries its own SQL92 selector
//! (PullSysFlag subscription bit) compiles it through the owner shard's [`FilterCache`]
//! (bounded). With `enablePropertyFilter` off (the reference's default) every SQL92 use is
//! answered SYSTEM_ERROR "The broker does not support consumer to filter message by SQL92".

use std::collections::HashMap;
use std::sync::Arc;

use ramjet_proto::body::{self, SubscriptionData};
use ramjet_proto::codes::response;
use ramjet_proto::filter::Filter;
use ramjet_proto::{Frame, Header};
use serde::Deserialize;

use super::{error, success};
use crate::net::connection::Response;
use crate::shard::Shard;

/// Most compiled selectors a shard keeps for pulls that carry their own selector; past it
/// the cache is emptied and refilled (each entry is at most
/// `ramjet_proto::filter::MAX_EXPRESSION_LEN` bytes of selector).
pub const FILTER_CACHE_MAX: usize = 256;

/// The reference's `ExpressionType.isTagType`: absent, empty and `TAG` are tag expressions.
pub fn is_tag_type(expression_type: Option<&str>) -> bool {
    matches!(expression_type, None | Some("") | Some("TAG"))
}

/// The remark of a SQL92 use on a broker with `enablePropertyFilter` off.
pub fn not_supported_remark(expression_type: &str) -> String {
    format!(
        "The broker does not support consumer to filter message by {}",
        ramjet_proto::text::clip_echo(expression_type)
    )
}

/// A group's subscription to one topic, as published to every shard.
#[derive(Debug, Clone)]
pub struct GroupSubscription {
    /// The expression (`*`, `TagA || TagB`, or a SQL92 selector).
    pub expression: String,
    /// Its type is not TAG (the reference's `!ExpressionType.isTagType`).
    pub sql92: bool,
    /// The compiled selector of a SQL92 subscription that compiled (with
    /// `enablePropertyFilter` on); `None` otherwise.
    pub filter: Option<Arc<Filter>>,
}

impl PartialEq for GroupSubscription {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression
            && self.sql92 == other.sql92
            && self.filter.is_some() == other.filter.is_some()
    }
}

impl GroupSubscription {
    /// The published form of `(expression, type)`: compiled when it is SQL92 and
    /// `compile` is on, reusing `previous`'s filter when the expression is the same.
    pub fn new(
        expression: String,
        expression_type: &str,
        compile: bool,
        previous: Option<&GroupSubscription>,
    ) -> GroupSubscription {
        let sql92 = !is_tag_type(Some(expression_type));
        let filter = if sql92 && compile && expression_type == "SQL92" {
            match previous.filter(|p| p.sql92 && p.expression == expression) {
                Some(p) if p.filter.is_some() => p.filter.clone(),
                _ => Filter::compile(&expression).ok().map(Arc::new),
            }
        } else {
            None
        };
        GroupSubscription { expression, sql92, filter }
    }
}

/// Compiled selectors of pulls that carry their own, by selector text (one per shard).
#[derive(Debug, Default)]
pub struct FilterCache {
    compiled: HashMap<String, Arc<Filter>>,
}

impl FilterCache {
    /// The compiled `selector`, compiling it on first use.
    ///
    /// # Errors
    /// The selector does not compile.
    pub fn get(&mut self, selector: &str) -> Result<Arc<Filter>, ramjet_proto::filter::ParseError> {
        if let Some(f) = self.compiled.get(selector) {
            return Ok(f.clone());
        }
        let filter = Arc::new(Filter::compile(selector)?);
        if self.compiled.len() >= FILTER_CACHE_MAX {
            self.compiled.clear();
        }
        self.compiled.insert(selector.to_string(), filter.clone());
        Ok(filter)
    }
}

/// How a pull filters the messages it reads.
#[derive(Debug, Clone)]
pub enum PullFilter {
    /// Every message.
    All,
    /// Tags codes, matched in the consume-queue scan.
    Tags(Vec<i64>),
    /// A SQL92 selector, evaluated against each read record's properties.
    Sql(Arc<Filter>),
}

/// The filter of a pull: the request's own subscription when `own` is `Some` (expression,
/// type), else the group's published subscription to `topic`. Errors are the reference's
/// answers (SYSTEM_ERROR with `enablePropertyFilter` off, SUBSCRIPTION_PARSE_FAILED for a
/// request selector that does not compile, FILTER_DATA_NOT_EXIST for a group selector
/// that did not).
pub fn pull_filter(
    shard: &Shard,
    h: &Header,
    own: Option<(Option<&str>, Option<&str>)>,
    group: &str,
    topic: &str,
) -> Result<PullFilter, Response> {
    let enabled = shard.config.enable_property_filter;
    if let Some((expression, expression_type)) = own {
        if is_tag_type(expression_type) {
            return Ok(tags(expression));
        }
        let kind = expression_type.unwrap_or_default();
        if !enabled {
            return Err(error(h, response::SYSTEM_ERROR, not_supported_remark(kind)));
        }
        let compiled = if kind == "SQL92" {
            shard.sql_filters.borrow_mut().get(expression.unwrap_or_default()).ok()
        } else {
            None
        };
        return match compiled {
            Some(f) => Ok(PullFilter::Sql(f)),
            None => Err(error(
                h,
                response::SUBSCRIPTION_PARSE_FAILED,
                "parse the consumer's subscription failed",
            )),
        };
    }
    let table = shard.subscriptions.borrow();
    let Some(sub) = table.get(group, topic) else {
        return Ok(PullFilter::All);
    };
    if !sub.sql92 {
        return Ok(tags(Some(&sub.expression)));
    }
    if !enabled {
        return Err(error(h, response::SYSTEM_ERROR, not_supported_remark("SQL92")));
    }
    match &sub.filter {
        Some(f) => Ok(PullFilter::Sql(f.clone())),
        None => Err(error(
            h,
            response::FILTER_DATA_NOT_EXIST,
            "The broker's consumer filter data is not exist!Your expression may be wrong!",
        )),
    }
}

fn tags(expression: Option<&str>) -> PullFilter {
    match super::pull_message::tag_filter(expression) {
        Some(codes) => PullFilter::Tags(codes),
        None => PullFilter::All,
    }
}

/// CHECK_CLIENT_CONFIG's body (`CheckClientRequestBody`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct CheckClientRequestBody {
    subscription_data: Option<SubscriptionData>,
}

/// CHECK_CLIENT_CONFIG (46): SUCCESS for a tag subscription or none; SYSTEM_ERROR with
/// `enablePropertyFilter` off; SUBSCRIPTION_PARSE_FAILED with the compile error as
/// remark for a selector that does not compile (as the reference's
/// `ClientManageProcessor.checkClientConfig`).
pub fn check_client_config(shard: &Shard, frame: &Frame) -> Response {
    let h = &frame.header;
    let body: CheckClientRequestBody = if frame.body.is_empty() {
        CheckClientRequestBody::default()
    } else {
        match body::from_json(&frame.body) {
            Ok(b) => b,
            Err(e) => {
                return error(h, response::SYSTEM_ERROR, format!("bad CheckClientRequestBody: {e}"))
            }
        }
    };
    let Some(sub) = body.subscription_data else { return Response::new(success(h)) };
    if is_tag_type(Some(&sub.expression_type)) {
        return Response::new(success(h));
    }
    if !shard.config.enable_property_filter {
        return error(h, response::SYSTEM_ERROR, not_supported_remark(&sub.expression_type));
    }
    if sub.expression_type != "SQL92" {
        return error(
            h,
            response::SUBSCRIPTION_PARSE_FAILED,
            format!(
                "unsupported expression type {}",
                ramjet_proto::text::clip_echo(&sub.expression_type)
            ),
        );
    }
    match Filter::compile(&sub.sub_string) {
        Ok(_) => Response::new(success(h)),
        Err(e) => {
            let remark = ramjet_proto::text::clip_echo(&e.to_string());
            error(h, response::SUBSCRIPTION_PARSE_FAILED, remark)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_types_are_the_references() {
        assert!(is_tag_type(None));
        assert!(is_tag_type(Some("")));
        assert!(is_tag_type(Some("TAG")));
        assert!(!is_tag_type(Some("SQL92")));
        assert!(!is_tag_type(Some("tag")));
    }

    #[test]
    fn a_republished_subscription_keeps_its_compiled_filter() {
        let first = GroupSubscription::new("a > 1".into(), "SQL92", true, None);
        let kept = GroupSubscription::new("a > 1".into(), "SQL92", true, Some(&first));
        let (Some(f1), Some(f2)) = (&first.filter, &kept.filter) else { panic!("compiled") };
        assert!(Arc::ptr_eq(f1, f2));
        let bad = GroupSubscription::new("a >".into(), "SQL92", true, None);
        assert!(bad.sql92 && bad.filter.is_none());
        let off = GroupSubscription::new("a > 1".into(), "SQL92", false, None);
        assert!(off.filter.is_none());
        let tag = GroupSubscription::new("TagA".into(), "TAG", true, None);
        assert!(!tag.sql92 && tag.filter.is_none());
    }

    #[test]
    fn the_cache_is_bounded() {
        let mut cache = FilterCache::default();
        for i in 0..FILTER_CACHE_MAX * 2 {
            cache.get(&format!("a = {i}")).expect("compiles");
            assert!(cache.compiled.len() <= FILTER_CACHE_MAX);
        }
        assert!(cache.get("a >").is_err());
    }
}

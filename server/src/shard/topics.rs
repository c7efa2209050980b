//! Topic changes, typed: shard 0 owns the topic table ([`crate::topic::TopicManager`]);
//! a change is persisted there, installed on every shard (each acknowledges, so a client
//! that created a topic can use it on any connection at once), and the NameServer
//! registration is kicked. Other shards ask shard 0 with [`ShardMsg::CreateTopic`].

use std::sync::Arc;

use ramjet_proto::body::TopicConfig;
use ramjet_proto::header::CreateTopicRequestHeader;
use tracing::{info, warn};

use super::{Shard, ShardMsg};
use crate::error::BrokerError;
use crate::topic::{validate_topic_name, TopicTable, TOPIC_QUEUES_MAX};

/// The topic configuration a create request asks for, checked as the reference checks it.
///
/// # Errors
/// A bad name, queue count or permission (SYSTEM_ERROR, as the reference answers).
pub fn checked_config(req: &CreateTopicRequestHeader) -> Result<TopicConfig, BrokerError> {
    validate_topic_name(&req.topic)?;
    let queues_ok = |n: i32| (0..=TOPIC_QUEUES_MAX).contains(&n);
    if !queues_ok(req.read_queue_nums)
        || !queues_ok(req.write_queue_nums)
        || !(0..8).contains(&req.perm)
    {
        return Err(BrokerError::System(format!(
            "invalid queue numbers {}/{} or perm {} for topic {}",
            req.read_queue_nums, req.write_queue_nums, req.perm, req.topic
        )));
    }
    Ok(TopicConfig {
        topic_name: req.topic.clone(),
        read_queue_nums: req.read_queue_nums,
        write_queue_nums: req.write_queue_nums,
        perm: req.perm,
        topic_filter_type: req.topic_filter_type.clone(),
        topic_sys_flag: req.topic_sys_flag.unwrap_or(0),
        order: req.order,
    })
}

/// The request for a system-made topic with one read and write queue (retry, DLQ).
pub fn one_queue_topic(topic: &str) -> CreateTopicRequestHeader {
    CreateTopicRequestHeader {
        topic: topic.to_string(),
        default_topic: crate::topic::TBW102.into(),
        read_queue_nums: 1,
        write_queue_nums: 1,
        perm: crate::topic::PERM_READ | crate::topic::PERM_WRITE,
        topic_filter_type: "SINGLE_TAG".into(),
        topic_sys_flag: Some(0),
        order: false,
    }
}

impl Shard {
    /// Creates (or updates) a topic from any shard: here on shard 0, else through it.
    /// Returns once every shard has the new topic table.
    ///
    /// # Errors
    /// A refused configuration, a table that cannot be persisted, or shard 0 gone.
    pub async fn create_topic(&self, req: &CreateTopicRequestHeader) -> Result<(), BrokerError> {
        let config = checked_config(req)?;
        if self.id == 0 {
            return self.create_topic_here(config).await;
        }
        let (tx, rx) = flume::bounded(1);
        self.peers[0]
            .send_async(ShardMsg::CreateTopic { config, reply: tx })
            .await
            .map_err(|_| BrokerError::ShardGone(0))?;
        rx.recv_async().await.map_err(|_| BrokerError::ShardGone(0))?
    }

    /// Creates or updates a checked topic on the topic table's owner (shard 0).
    ///
    /// # Errors
    /// Not shard 0, a new topic past `topicMaxCount`, or a table that cannot be persisted.
    pub async fn create_topic_here(&self, config: TopicConfig) -> Result<(), BrokerError> {
        let manager = self.topic_owner()?;
        let (topic, queues) = (config.topic_name.clone(), config.write_queue_nums);
        let change = manager.borrow_mut().upsert(config)?;
        match change {
            Some(seq) => {
                self.persist_topics(seq).await?;
                info!(%topic, queues, "topic created or updated");
            }
            None => {
                // Unchanged, but an earlier request may be publishing this very topic: wait
                // for it, so the answer never precedes every shard knowing the topic.
                let _ = self.persist_lock.acquire_permit(1).await;
            }
        }
        Ok(())
    }

    /// Forgets a topic's config on shard 0 (its stored data ages out).
    ///
    /// # Errors
    /// Not shard 0, or a table that cannot be persisted.
    pub async fn delete_topic_here(&self, topic: &str) -> Result<(), BrokerError> {
        let change = self.topic_owner()?.borrow_mut().remove(topic);
        if let Some(seq) = change {
            self.persist_topics(seq).await?;
            info!(%topic, "topic deleted");
        }
        Ok(())
    }

    fn topic_owner(&self) -> Result<&std::cell::RefCell<crate::topic::TopicManager>, BrokerError> {
        self.zero.as_ref().map(|z| &z.topic_manager).ok_or_else(|| {
            BrokerError::System("topic change reached a shard that does not own topics".into())
        })
    }

    /// Makes change `seq` (a number from the topic manager) durable, installs the newest
    /// table on every shard, and kicks the registration task.
    ///
    /// Changes that arrive while one persist runs share the next: it takes every pending
    /// journal line for one append and one fdatasync, and installs the newest snapshot once;
    /// the others find their change durable and installed and return at once.
    ///
    /// # Errors
    /// Not shard 0, or a table that cannot be persisted.
    pub async fn persist_topics(&self, seq: u64) -> Result<(), BrokerError> {
        let manager = self.topic_owner()?;
        let _permit = self
            .persist_lock
            .acquire_permit(1)
            .await
            .map_err(|e| BrokerError::System(e.to_string()))?;
        if manager.borrow().persisted_seq() < seq {
            let taken = manager.borrow_mut().take_persist();
            if let Some((covered, work)) = taken {
                let done = glommio::executor()
                    .spawn_blocking(move || work.run_sync())
                    .await
                    .map_err(|e| e.to_string());
                manager.borrow_mut().persisted(covered, done.is_ok());
                let path = manager.borrow().path().to_path_buf();
                done.map_err(|e| {
                    BrokerError::System(format!("persisting {}: {e}", path.display()))
                })?;
            }
        }
        let newest = manager.borrow().table();
        if Arc::ptr_eq(&self.topics.borrow(), &newest) {
            return Ok(()); // Installed everywhere by an earlier persist.
        }
        self.install_topics(newest).await;
        Ok(())
    }

    async fn install_topics(&self, table: Arc<TopicTable>) {
        // Into the replication feed before any shard can append a record of a new topic,
        // so slaves receive the change ahead of those records (replication/feed.rs).
        if let Some(feed) = &self.replica.feed {
            feed.publish_topics(table.clone());
        }
        *self.topics.borrow_mut() = table.clone();
        for (i, peer) in self.peers.iter().enumerate() {
            if i == self.id {
                continue;
            }
            let (ack, done) = flume::bounded(1);
            if peer.send_async(ShardMsg::Topics { table: table.clone(), ack }).await.is_err() {
                warn!(shard = i, "shard gone while publishing topics");
                continue;
            }
            let _ = done.recv_async().await;
        }
        if let Some(z) = self.zero.as_ref() {
            z.register_kick.notify();
        }
    }
}

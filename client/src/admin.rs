//! Admin calls: cluster info from the NameServer, topic creation on brokers.
//!
//! Lives on: the executor of its [`Client`].

use ramjet_proto::body::ClusterInfo;

use crate::client::Client;
use crate::error::ClientError;
use crate::protocol;

/// Administrative requests.
#[derive(Debug, Clone)]
pub struct Admin {
    client: Client,
}

impl Admin {
    /// Admin calls through `client`.
    pub fn new(client: Client) -> Admin {
        Admin { client }
    }

    /// The client these calls go through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Every broker and cluster the NameServer knows (GET_BROKER_CLUSTER_INFO).
    ///
    /// # Errors
    /// Refusals, transport errors, a body that does not parse.
    pub async fn cluster_info(&self) -> Result<ClusterInfo, ClientError> {
        self.client.cluster_info().await
    }

    /// Creates or updates `topic` on the broker at `broker_addr` (UPDATE_AND_CREATE_TOPIC)
    /// with read+write permission.
    ///
    /// # Errors
    /// Refusals, transport errors.
    pub async fn create_topic(
        &self,
        broker_addr: &str,
        topic: &str,
        read_queue_nums: i32,
        write_queue_nums: i32,
    ) -> Result<(), ClientError> {
        let st = self.client.config().serialize_type;
        let header = protocol::create_topic_request(topic, read_queue_nums, write_queue_nums, st);
        let reply = self.client.invoke(broker_addr, header, &[]).await?;
        protocol::check_success(reply)?;
        // The route changes once the broker re-registers; forget the cached one.
        self.client.invalidate_route(topic);
        Ok(())
    }

    /// Creates `topic` with `queue_nums` read and write queues on every master in the
    /// cluster info. Returns the master addresses it was created on.
    ///
    /// # Errors
    /// `NoRoute` when the NameServer knows no master; the first refusal or transport
    /// error.
    pub async fn create_topic_on_cluster(
        &self,
        topic: &str,
        queue_nums: i32,
    ) -> Result<Vec<String>, ClientError> {
        let info = self.cluster_info().await?;
        let mut masters: Vec<String> = info
            .broker_addr_table
            .values()
            .filter_map(|b| b.master_addr().map(str::to_string))
            .collect();
        masters.sort();
        masters.dedup();
        if masters.is_empty() {
            return Err(ClientError::NoRoute { topic: topic.to_string() });
        }
        for addr in &masters {
            self.create_topic(addr, topic, queue_nums, queue_nums).await?;
        }
        Ok(masters)
    }
}

//! The embedded broker: librdkafka's in-process mock cluster, so the
//! quickstart needs no Kafka. It keeps nothing: every record is gone when
//! the process exits. Topics are created up front, as the mock cluster
//! needs them before a consumer subscribes.

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// A running in-process broker; dropping it stops it.
pub struct EmbeddedBroker {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl EmbeddedBroker {
    /// Starts a one-broker cluster with `topics`, each of `partitions`.
    pub fn start(topics: &[&str], partitions: i32) -> anyhow::Result<Self> {
        let cluster = MockCluster::new(1)?;
        for topic in topics {
            cluster.create_topic(topic, partitions, 1)?;
        }
        Ok(EmbeddedBroker { cluster })
    }

    /// The `bootstrap.servers` to reach it.
    pub fn bootstrap(&self) -> String {
        self.cluster.bootstrap_servers()
    }
}

//! Connections by peer address, opened on first use and replaced once closed.
//!
//! Lives on: the executor of the client that owns it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::error::ClientError;
use crate::transport::connection::{Connection, ConnectionOptions};

/// One connection per address.
#[derive(Debug)]
pub struct ConnectionPool {
    options: ConnectionOptions,
    connections: RefCell<HashMap<String, Rc<Connection>>>,
}

impl ConnectionPool {
    /// An empty pool whose connections use `options`.
    pub fn new(options: ConnectionOptions) -> ConnectionPool {
        ConnectionPool { options, connections: RefCell::new(HashMap::new()) }
    }

    /// The open connection to `addr`, connecting when there is none.
    ///
    /// # Errors
    /// `Connect` when a new connection cannot be opened.
    ///
    /// # Cancel safety
    /// Cancel safe: a connection being opened when the future is dropped is discarded.
    pub async fn get(&self, addr: &str) -> Result<Rc<Connection>, ClientError> {
        if let Some(c) = self.open_connection(addr) {
            return Ok(c);
        }
        let fresh = Connection::connect(addr, self.options.clone()).await?;
        // Another task may have connected while this one waited; keep the first.
        if let Some(c) = self.open_connection(addr) {
            fresh.close();
            return Ok(c);
        }
        self.connections.borrow_mut().insert(addr.to_string(), fresh.clone());
        Ok(fresh)
    }

    fn open_connection(&self, addr: &str) -> Option<Rc<Connection>> {
        let connections = self.connections.borrow();
        connections.get(addr).filter(|c| !c.is_closed()).cloned()
    }

    /// Waits until every connection has handed its queued frames to the socket.
    /// Connections that fail meanwhile are skipped.
    pub async fn flush_all(&self) {
        let connections: Vec<_> = self.connections.borrow().values().cloned().collect();
        for c in connections {
            let _ = c.flush().await;
        }
    }

    /// Closes and forgets every connection.
    pub fn close_all(&self) {
        let drained: Vec<_> = self.connections.borrow_mut().drain().collect();
        for (_, c) in drained {
            c.close();
        }
    }
}

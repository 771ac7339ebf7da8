//! `s3logd listen`: JSON objects over TCP (s3logger's input) into the sinks.
//!
//! The listener accepts connections on `listen.address` (TLS with rustls
//! when `listen.tls_cert` and `listen.tls_key` are set; only clients from
//! `listen.allowed_networks` when that is set) and only ever reads from
//! them. Each connection is a stream of JSON objects, one a line,
//! concatenated or spanning lines ([`decode`]); malformed JSON or an
//! object over `listen.max_object_bytes` closes that connection alone,
//! counted, after what came before it is delivered.
//!
//! **Records.** Every object is parsed by the bundled `ndjson` parser, run
//! natively ([`s3logd_parser_ndjson`], the code its component is built
//! from), so a record looks exactly as one read back from an S3 object of
//! JSON lines: `_msg` is the object as sent (line breaks between its
//! tokens turned into spaces), its keys are fields (nested objects
//! flattened with `.`), and `_time` comes from `listen.time_field` read as
//! `listen.time_format` (the parser's `time_field`/`time_format` options),
//! else it is the time the object was received. An object whose time field
//! does not parse gives no record and goes to the dead-letter output. The
//! records of a connection share an origin: bucket `listen`, key
//! `tcp://<peer>`, version `<start time>-<connection number>`, so that
//! `_id`s (line numbers count objects of the connection) never repeat.
//!
//! **Backpressure.** See [`connection`]: a connection reads on only once
//! its sinks took what it read before, so a slow sink slows its senders
//! down instead of losing records.
//!
//! **Shutdown.** On the first SIGTERM/SIGINT the listener stops accepting
//! (after taking the connections the kernel already completed, whose
//! clients believe they are connected), every connection reads what its
//! client already sent (until it is idle for a moment), delivers it and
//! closes; the process exits once every delivery resolved or
//! `shutdown.grace_period_secs` expired.

pub mod connection;
pub mod decode;
pub mod metrics;
pub mod tls;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::config::listen::{ListenConfig, parse_network};
use crate::shutdown::{Drained, Shutdown};
use crate::sink::Sinks;
use crate::sink::delivery::Origin;
use connection::{End, Shared};
use metrics::ListenerMetrics;

/// A TLS handshake that takes longer than this fails.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound listener, ready to [`run`](Listener::run).
pub struct Listener {
    socket: TcpListener,
    slots: Arc<Semaphore>,
    accepted: Arc<Accepted>,
}

/// What serving an accepted connection takes.
struct Accepted {
    shared: Arc<Shared>,
    tls: Option<TlsAcceptor>,
    allowed: Vec<ipnet::IpNet>,
    /// Tells this process's connections apart in their origins.
    started: i64,
    next_connection: AtomicU64,
}

impl Listener {
    /// Binds `config.address` and prepares TLS; records go to `sinks`.
    pub async fn bind(
        config: &ListenConfig,
        sinks: Arc<Sinks>,
        metrics: Arc<ListenerMetrics>,
        shutdown: &Shutdown,
    ) -> Result<Listener> {
        let options = connection::parser_options(config);
        connection::check_options(&options)
            .map_err(|reason| anyhow::anyhow!("listen.time_format/time_field: {reason}"))?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
            _ => None,
        };
        let address: SocketAddr = config
            .address
            .parse()
            .with_context(|| format!("listen.address {:?}", config.address))?;
        let socket = TcpListener::bind(address)
            .await
            .with_context(|| format!("listening on {address}"))?;
        let accepted = Accepted {
            shared: Arc::new(Shared {
                sinks,
                metrics,
                options,
                max_object_bytes: usize::try_from(config.max_object_bytes).unwrap_or(usize::MAX),
                stop: shutdown.stop_receiving().clone(),
                abandon: shutdown.abandon().clone(),
            }),
            tls,
            allowed: config
                .allowed_networks
                .iter()
                .filter_map(|network| parse_network(network))
                .collect(),
            started: crate::sink::now_nanos(),
            next_connection: AtomicU64::new(0),
        };
        Ok(Listener {
            socket,
            slots: Arc::new(Semaphore::new(config.max_connections as usize)),
            accepted: Arc::new(accepted),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Accepts connections until `shutdown` stops receiving, then waits for
    /// the open ones to drain, at most `grace`.
    pub async fn run(self, shutdown: &Shutdown, grace: Duration) -> Drained {
        let Listener {
            socket,
            slots,
            accepted: this,
        } = self;
        let mut connections = JoinSet::new();
        let stop = shutdown.stop_receiving().clone();
        loop {
            let slot = tokio::select! {
                biased;
                () = stop.cancelled() => break,
                slot = slots.clone().acquire_owned() => slot.expect("never closed"),
            };
            let accepted = tokio::select! {
                biased;
                () = stop.cancelled() => break,
                accepted = socket.accept() => accepted,
                // Reap finished connections as they go.
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            this.spawn(&mut connections, stream, peer, slot);
        }
        // Clients whose handshake the kernel completed before the stop were
        // told they are connected and may have sent everything: serve them
        // too, then refuse new ones.
        match socket.into_std() {
            Ok(socket) => this.accept_backlog(&socket, &slots, &mut connections),
            Err(error) => tracing::warn!(%error, "reading the accept backlog failed"),
        }
        tracing::info!(
            open = connections.len(),
            "no longer accepting; reading what clients sent"
        );
        let all = async { while connections.join_next().await.is_some() {} };
        shutdown.drain(all, grace).await
    }
}

impl Accepted {
    fn spawn(
        self: &Arc<Self>,
        connections: &mut JoinSet<()>,
        stream: TcpStream,
        peer: SocketAddr,
        slot: OwnedSemaphorePermit,
    ) {
        let this = self.clone();
        connections.spawn(async move {
            this.connection(stream, peer).await;
            drop(slot);
        });
    }

    /// Takes every connection already waiting in `socket`'s backlog without
    /// waiting for new ones, closing those beyond the free slots; the
    /// socket closes when it is dropped.
    fn accept_backlog(
        self: &Arc<Self>,
        socket: &std::net::TcpListener,
        slots: &Arc<Semaphore>,
        connections: &mut JoinSet<()>,
    ) {
        loop {
            let accepted = socket.accept().and_then(|(stream, peer)| {
                stream.set_nonblocking(true)?;
                Ok((TcpStream::from_std(stream)?, peer))
            });
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(error) => {
                    tracing::warn!(%error, "accepting a waiting connection failed");
                    return;
                }
            };
            match slots.clone().try_acquire_owned() {
                Ok(slot) => self.spawn(connections, stream, peer, slot),
                Err(_) => {
                    tracing::warn!(%peer, "connection refused: every connection slot is taken")
                }
            }
        }
    }

    async fn connection(&self, stream: TcpStream, peer: SocketAddr) {
        let metrics = &self.shared.metrics;
        if !self.allows(peer.ip()) {
            metrics.connections_denied.inc();
            tracing::warn!(%peer, "connection refused: not in listen.allowed_networks");
            return;
        }
        metrics.connections_total.inc();
        metrics.connections_open.inc();
        let _ = stream.set_nodelay(true);
        let number = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let origin = Arc::new(Origin {
            bucket: "listen".to_owned(),
            key: format!("tcp://{peer}"),
            version: format!("{}-{number}", self.started),
        });
        tracing::debug!(%peer, number, "connection accepted");
        let end = match &self.tls {
            None => connection::serve(&self.shared, stream, origin).await,
            Some(acceptor) => {
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => connection::serve(&self.shared, stream, origin).await,
                    Ok(Err(error)) => {
                        metrics.tls_failures.inc();
                        End::Read(error)
                    }
                    Err(_) => {
                        metrics.tls_failures.inc();
                        End::Read(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "TLS handshake timed out",
                        ))
                    }
                }
            }
        };
        metrics.connections_open.sub(1);
        match end {
            End::Closed | End::Drained => tracing::debug!(%peer, number, ?end, "connection done"),
            End::Malformed(why, reason) => {
                tracing::warn!(%peer, number, ?why, %reason, "connection closed: malformed input");
            }
            End::Read(error) => tracing::info!(%peer, number, %error, "connection failed"),
            End::Abandoned => {
                tracing::warn!(%peer, number, "connection abandoned at the end of the grace period");
            }
        }
    }

    fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.allowed.is_empty() || self.allowed.iter().any(|network| network.contains(&ip))
    }
}

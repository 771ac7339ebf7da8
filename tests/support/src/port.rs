//! A TCP port on 127.0.0.1 served on a runtime of its own, which a test can
//! take down (connections refused, open ones ended) and bring up again on
//! the same port. The store receivers and the fault proxy are built on it;
//! each supplies only what it does with one connection.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one accepted connection until it ends or `down` turns true, when
/// it must end it (how: a FIN, an RST) and return.
pub trait Connection: Send + Sync + 'static {
    fn serve(
        self: Arc<Self>,
        stream: TcpStream,
        down: watch::Receiver<bool>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// The accept loop currently serving the port.
struct Acceptor {
    stop: oneshot::Sender<()>,
    stopped: mpsc::Receiver<()>,
}

/// A served port; it stops when dropped.
pub struct Port {
    address: SocketAddr,
    connection: Arc<dyn Connection>,
    acceptor: Mutex<Option<Acceptor>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Port {
    /// Listens on a free port, serving each connection with `connection` on
    /// `workers` threads named `name`.
    pub fn start(name: &str, workers: usize, connection: Arc<dyn Connection>) -> Port {
        // Its own runtime keeps the port serving whatever the test's
        // runtime does (blocking calls, current-thread scheduling).
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name(name)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot build the {name} runtime: {e}"));
        let mut port = Port {
            address: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            connection,
            acceptor: Mutex::new(None),
            runtime: Some(runtime),
        };
        port.address = port.listen(port.address);
        port
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Down: nothing listens on the port and open connections are ended.
    /// Up again: the same port accepts.
    pub fn set_down(&self, down: bool) {
        let mut acceptor = self.acceptor.lock().expect("acceptor lock");
        match (down, acceptor.take()) {
            (true, Some(running)) => {
                // The loop may already be gone; either way it is stopped.
                let _ = running.stop.send(());
                running
                    .stopped
                    .recv_timeout(STOP_TIMEOUT)
                    .expect("the port did not stop accepting in time");
            }
            (false, None) => {
                drop(acceptor);
                self.listen(self.address);
            }
            (_, unchanged) => *acceptor = unchanged,
        }
    }

    /// Binds `address` and serves it until [`Acceptor::stop`]; returns the bound address.
    fn listen(&self, address: SocketAddr) -> SocketAddr {
        let (bound_tx, bound_rx) = mpsc::channel();
        let (stop, stop_rx) = oneshot::channel();
        let (stopped_tx, stopped) = mpsc::channel();
        let connection = self.connection.clone();
        let runtime = self.runtime.as_ref().expect("runtime lives until drop");
        runtime.spawn(async move {
            let listener = match bind(address) {
                Ok(listener) => listener,
                Err(e) => {
                    let _ = bound_tx.send(Err(e));
                    return;
                }
            };
            let _ = bound_tx.send(listener.local_addr());
            accept_until_stopped(listener, connection, stop_rx).await;
            // The stopping side may have timed out; nothing is waiting then.
            let _ = stopped_tx.send(());
        });
        let bound = bound_rx
            .recv()
            .expect("the port's runtime is running")
            .unwrap_or_else(|e| panic!("cannot listen on {address}: {e}"));
        *self.acceptor.lock().expect("acceptor lock") = Some(Acceptor { stop, stopped });
        bound
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        // Tests drop it inside their own runtime, where blocking on a
        // shutdown is not allowed.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    // Connections ended by going down linger in TIME_WAIT on this port.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(1024)
}

async fn accept_until_stopped(
    listener: TcpListener,
    connection: Arc<dyn Connection>,
    mut stop: oneshot::Receiver<()>,
) {
    let (going_down, down) = watch::channel(false);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                connections.spawn(connection.clone().serve(stream, down.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = going_down.send(true);
    while connections.join_next().await.is_some() {}
}

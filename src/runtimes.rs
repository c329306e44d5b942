//! The serving runtimes: one single-threaded tokio runtime per core, each
//! accepting on its own `SO_REUSEPORT` socket and each with its own
//! upstream connection pools, so a forwarded call is read, relayed and
//! answered on one thread.
//!
//! Why not one multi-threaded runtime: there, every request made tokio wake
//! the idle second worker (a task woken during its own poll is rescheduled
//! as a yield, and a yield notifies a parked worker), two `futex` calls per
//! request that cost more than the gateway's own work at low concurrency
//! (README, Performance). The price of sharding is that the kernel, not a
//! work-stealing scheduler, spreads connections: a busy runtime cannot lend
//! its work to an idle one.
//!
//! Shard 0 is the thread that calls [`Shards::start`]; it also runs the
//! control plane (discovery, health checks, catalog rebuilds).

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpSocket};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

thread_local! {
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

static COUNT: AtomicUsize = AtomicUsize::new(1);

/// How many serving runtimes there are (1 until [`Shards::start`]).
pub fn count() -> usize {
    COUNT.load(Ordering::Relaxed)
}

/// The serving runtime this thread belongs to (0 outside of them).
pub fn current() -> usize {
    CURRENT.with(Cell::get)
}

/// How many runtimes to start: `TOKIO_WORKER_THREADS` when set (tokio's
/// own knob, kept for those who already use it), else the CPUs this process
/// may use (which follows a cgroup CPU limit).
pub fn wanted() -> usize {
    if cfg!(not(unix)) {
        // Sharing one port between sockets needs SO_REUSEPORT.
        return 1;
    }
    std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|n| n.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// A single-threaded runtime with every driver on.
pub fn build() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// The runtimes besides shard 0, each on its own thread, idle until given
/// work with [`Shards::handle`]; they run until [`Shards::stop`].
pub struct Shards {
    others: Vec<Shard>,
}

struct Shard {
    handle: Handle,
    stop: oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Shards {
    /// Starts `count - 1` runtimes; the calling thread becomes shard 0.
    /// Call it before any upstream client is built: clients keep one
    /// connection pool per runtime.
    pub fn start(count: usize) -> std::io::Result<Shards> {
        let count = count.max(1);
        COUNT.store(count, Ordering::Relaxed);
        let mut others = Vec::with_capacity(count - 1);
        for index in 1..count {
            let runtime = build()?;
            let handle = runtime.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("switchboard-{index}"))
                .spawn(move || {
                    CURRENT.with(|c| c.set(index));
                    // Spawned work runs while this blocks.
                    let _ = runtime.block_on(stopped);
                })?;
            others.push(Shard {
                handle,
                stop,
                thread,
            });
        }
        Ok(Shards { others })
    }

    /// The runtime of shard `index` (`1..count`).
    pub fn handle(&self, index: usize) -> &Handle {
        &self.others[index - 1].handle
    }

    /// Stops the other runtimes (dropping what still runs on them) and
    /// waits for their threads.
    pub fn stop(self) {
        for shard in self.others {
            let _ = shard.stop.send(());
            let _ = shard.thread.join();
        }
    }
}

/// Binds `count` listening sockets to one address with `SO_REUSEPORT`, so
/// the kernel spreads incoming connections over them. With port 0, the
/// first socket picks the port and the others join it. Each socket is
/// returned deregistered, to be registered by the runtime that serves it
/// ([`TcpListener::from_std`]).
pub fn bind(address: SocketAddr, count: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    let mut address = address;
    let mut sockets = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let socket = if address.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        #[cfg(unix)]
        if count > 1 {
            socket.set_reuseport(true)?;
        }
        socket.bind(address)?;
        let listener: TcpListener = socket.listen(1024)?;
        address = listener.local_addr()?;
        sockets.push(listener.into_std()?);
    }
    Ok(sockets)
}

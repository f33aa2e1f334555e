//! The local TCP relay of `port-forward`: it listens on the port the user asked for and copies
//! bytes both ways to the intermediate port kubectl forwards (picked from
//! `networking.intermediate_port_range`), counting connections and bytes for the summary.
//! Bounded: concurrent connections, one fixed buffer per direction, connect deadline, errors kept.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::cli::CmdError;
use crate::config::generated::client::key;

/// Connections relayed at once, at most; more wait to be accepted.
pub const MAX_CONNECTIONS: usize = 64;
/// Size of the buffer of each direction of a connection.
const BUFFER: usize = 16 * 1024;
/// How long a connection to kubectl's port may take.
const CONNECT_DEADLINE: Duration = Duration::from_secs(10);
/// Distinct errors kept for the summary, at most.
const MAX_ERRORS: usize = 5;

/// `networking.intermediate_port_range`: MIN-MAX, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub min: u16,
    pub max: u16,
}

impl PortRange {
    /// Parse `MIN-MAX` (1 <= MIN <= MAX <= 65535); the error names the key and the fix.
    pub fn parse(text: &str) -> Result<PortRange, CmdError> {
        let bad = |why: &str| {
            CmdError::new(format!(
                "{} is `{text}`: {why}",
                key::NETWORKING_INTERMEDIATE_PORT_RANGE
            ))
            .with_hint(format!(
                "write it as MIN-MAX with ports from 1 to 65535: vibectl config set {} 10000-11000",
                key::NETWORKING_INTERMEDIATE_PORT_RANGE
            ))
        };
        let Some((a, b)) = text.trim().split_once('-') else {
            return Err(bad("expected MIN-MAX"));
        };
        let port = |s: &str| s.trim().parse::<u16>().ok().filter(|p| *p > 0);
        match (port(a), port(b)) {
            (Some(min), Some(max)) if min <= max => Ok(PortRange { min, max }),
            (Some(_), Some(_)) => Err(bad("MIN is greater than MAX")),
            _ => Err(bad("expected MIN-MAX with ports from 1 to 65535")),
        }
    }

    /// A port of the range nothing on 127.0.0.1 listens on, starting the search at a random
    /// place; the error says the whole range is in use.
    pub fn free_port(&self, taken: &[u16]) -> Result<u16, CmdError> {
        let size = u32::from(self.max) - u32::from(self.min) + 1;
        let start = rand::random_range(0..size);
        for i in 0..size {
            let port = (u32::from(self.min) + (start + i) % size) as u16;
            if taken.contains(&port) {
                continue;
            }
            if std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return Ok(port);
            }
        }
        Err(CmdError::new(format!(
            "every port of {} ({}-{}) is in use on 127.0.0.1",
            key::NETWORKING_INTERMEDIATE_PORT_RANGE,
            self.min,
            self.max
        ))
        .with_hint(format!(
            "free a port of the range or choose a wider one: vibectl config set {} 10000-11000",
            key::NETWORKING_INTERMEDIATE_PORT_RANGE
        )))
    }
}

/// What the relay saw.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicU64,
    /// From the local clients to the forwarded port.
    pub bytes_sent: AtomicU64,
    /// From the forwarded port back to the local clients.
    pub bytes_received: AtomicU64,
    errors: Mutex<Vec<String>>,
}

impl Stats {
    fn error(&self, e: String) {
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errors.len() < MAX_ERRORS && !errors.contains(&e) {
            errors.push(e);
        }
    }

    pub fn errors(&self) -> Vec<String> {
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn get(n: &AtomicU64) -> u64 {
        n.load(Ordering::Relaxed)
    }
}

/// Listen on 127.0.0.1:`port` (0: any free port); the listener and its real address.
pub async fn listen(port: u16) -> Result<(TcpListener, SocketAddr), CmdError> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .map_err(|e| {
            CmdError::new(format!("cannot listen on 127.0.0.1:{port}: {e}"))
                .with_hint("choose another local port, or stop what listens on it")
        })?;
    let addr = l.local_addr().map_err(|e| CmdError::new(e.to_string()))?;
    Ok((l, addr))
}

/// Relay the connections `listener` accepts to 127.0.0.1:`target`, until the task set is
/// dropped or aborted.
pub fn run(tasks: &mut JoinSet<()>, listener: TcpListener, target: u16, stats: Arc<Stats>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tasks.spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let client = match listener.accept().await {
                Ok((c, _)) => c,
                Err(e) => {
                    stats.error(format!("accept: {e}"));
                    continue;
                }
            };
            stats.connections.fetch_add(1, Ordering::Relaxed);
            let stats = stats.clone();
            conns.spawn(async move {
                relay_one(client, target, &stats).await;
                drop(permit);
            });
            // Reap the finished ones so the set stays as small as the live connections.
            while conns.try_join_next().is_some() {}
        }
    });
}

async fn relay_one(client: TcpStream, target: u16, stats: &Stats) {
    let upstream = tokio::time::timeout(
        CONNECT_DEADLINE,
        TcpStream::connect((Ipv4Addr::LOCALHOST, target)),
    )
    .await;
    let upstream = match upstream {
        Ok(Ok(u)) => u,
        Ok(Err(e)) => return stats.error(format!("connecting to kubectl's port {target}: {e}")),
        Err(_) => {
            return stats.error(format!(
                "connecting to kubectl's port {target}: no answer within {CONNECT_DEADLINE:?}"
            ));
        }
    };
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = upstream.into_split();
    let up = copy(&mut cr, &mut uw, &stats.bytes_sent);
    let down = copy(&mut ur, &mut cw, &stats.bytes_received);
    let _ = tokio::join!(up, down);
}

/// Copy until end of file, counting bytes as they pass; then close the write side.
async fn copy<R, W>(r: &mut R, w: &mut W, count: &AtomicU64) -> std::io::Result<()>
where
    R: AsyncReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    let mut buf = vec![0u8; BUFFER];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return w.shutdown().await;
        }
        w.write_all(&buf[..n]).await?;
        count.fetch_add(n as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_or_name_the_key() {
        assert_eq!(
            PortRange::parse("10000-11000").expect("ok"),
            PortRange {
                min: 10000,
                max: 11000
            }
        );
        assert_eq!(PortRange::parse(" 5 - 5 ").expect("ok").max, 5);
        for bad in ["", "10000", "a-b", "0-10", "10-70000", "20-10", "1-2-3"] {
            let e = PortRange::parse(bad).expect_err(bad);
            assert!(
                e.message.contains(key::NETWORKING_INTERMEDIATE_PORT_RANGE),
                "{}",
                e.message
            );
        }
    }
}

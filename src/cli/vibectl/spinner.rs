//! A minimal spinner on stderr while waiting for the model; only when stderr is a terminal,
//! never in pipes or files. It stops (and wipes its line) when dropped.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

const FRAMES: &[char] = &['|', '/', '-', '\\'];
const TICK: Duration = Duration::from_millis(100);

pub struct Spinner {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Spinner {
    /// Start spinning with `label`, or do nothing when stderr is not a terminal.
    pub fn start(label: &str) -> Spinner {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::io::stderr().is_terminal().then(|| {
            let stop = stop.clone();
            let label = label.to_owned();
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let _ = write!(
                        std::io::stderr(),
                        "\r{} {label}...",
                        FRAMES[i % FRAMES.len()]
                    );
                    i += 1;
                    std::thread::sleep(TICK);
                }
                let _ = write!(std::io::stderr(), "\r\x1b[2K");
            })
        });
        Spinner { stop, thread }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

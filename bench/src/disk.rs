//! The disk's own fsync latency, measured beside the journal while a section runs: the
//! floor under every group commit the starter makes (synchronous=FULL).

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::stats::{Dist, dist};

/// A 4 KiB write + fdatasync every 50 ms on its own thread, until [`FsyncProbe::stop`]:
/// 20/s, little next to the journal's own commits.
pub struct FsyncProbe {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<f64>>,
}

impl FsyncProbe {
    pub fn start(dir: &Path) -> std::io::Result<FsyncProbe> {
        let path = dir.join("fsync-probe");
        let file = std::fs::OpenOptions::new().create(true).write(true).truncate(true).open(&path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let block = [0u8; 4096];
                let mut ms = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    if file.write_all_at(&block, 0).and_then(|_| file.sync_data()).is_err() {
                        break;
                    }
                    ms.push(t.elapsed().as_secs_f64() * 1000.0);
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = std::fs::remove_file(path);
                ms
            }
        });
        Ok(FsyncProbe { stop, thread })
    }

    pub fn stop(self) -> Dist {
        self.stop.store(true, Ordering::Relaxed);
        dist(self.thread.join().unwrap_or_default())
    }
}

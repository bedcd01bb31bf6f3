//! What vigil's tests share: the real binary as a child process ([`process`]), free
//! ports and temporary directories, Prometheus text parsing ([`prometheus`]) and HTTP
//! helpers ([`http`], and in process with [`oneshot`]), polling for a state nothing
//! signals ([`eventually`]), the model zoo ([`zoo`]) and Python venvs for test tooling
//! ([`python`]). A dev-dependency only.

pub mod eventually;
pub mod http;
pub mod multipart;
pub mod oneshot;
pub mod process;
pub mod prometheus;
pub mod python;
pub mod zoo;

pub use eventually::{eventually, eventually_blocking, until};
pub use http::{
    get_json, get_json_with_key, get_text, post_json, wait_for_metric_at, wait_for_metric_within,
};
pub use process::{Vigil, vigil_binary};
pub use prometheus::{histogram_invariants, sample, try_sample};
pub use python::tritonclient_python;
pub use zoo::{zoo, zoo_python_bin};

use std::path::{Path, PathBuf};

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A number no other call in this run returns (for names of temporary things).
pub fn unique() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{nanos}-{n}", std::process::id())
}

/// A fresh directory under the system's temporary one, deleted on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("vigil-{tag}-{}", unique()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

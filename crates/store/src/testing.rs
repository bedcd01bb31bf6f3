//! Test databases for this crate's tests and its dependents' (feature `test-util`):
//! a temporary SQLite directory (or a file with older pages: [`sqlite_with_page_size`]),
//! or a throwaway PostgreSQL cluster (Debian's `postgresql`
//! binaries, run as the `postgres` user on a free loopback port). `scripts/install-test-deps`
//! installs PostgreSQL; a missing server is a test failure, not a skip.

use std::path::{Path, PathBuf};
use std::process::Command;

pub use vigil_test_support::TempDir;
use vigil_test_support::free_port;

/// A PostgreSQL server of its own, stopped and deleted on drop.
pub struct Postgres {
    pub port: u16,
    bin: PathBuf,
    dir: TempDir,
}

fn pg_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed: run scripts/install-test-deps")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("no PostgreSQL server binaries under /usr/lib/postgresql")
}

/// Runs a PostgreSQL binary as the `postgres` user (the server refuses to run as root).
fn as_postgres(bin: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = if nix_is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.args(args).output().unwrap()
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

impl Postgres {
    pub fn start() -> Self {
        let bin = pg_bin();
        let dir = TempDir::new("pg");
        if nix_is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir.0)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown the cluster directory to postgres");
        }
        let data = dir.0.join("data");
        let out = as_postgres(
            &bin.join("initdb"),
            &["-A", "trust", "-U", "vigil", "-D", data.to_str().unwrap()],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let postgres = Self {
            port: free_port(),
            bin,
            dir,
        };
        postgres.pg_ctl_start();
        postgres
    }

    /// Starts the server on its port and waits until it accepts connections.
    fn pg_ctl_start(&self) {
        let data = self.dir.0.join("data");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.0.display()
        );
        let log = self.dir.0.join("server.log");
        let args = [
            "-D",
            data.to_str().unwrap(),
            "-o",
            &opts,
            "-l",
            log.to_str().unwrap(),
            "-w",
            "start",
        ];
        let out = as_postgres(&self.bin.join("pg_ctl"), &args);
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://vigil@127.0.0.1:{}/{database}", self.port)
    }

    /// A fresh, empty database.
    pub fn database(&self) -> String {
        let name = format!("t{}", uuid::Uuid::new_v4().simple());
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "vigil",
                "-d",
                "postgres",
                "-c",
            ])
            .arg(format!("CREATE DATABASE {name}"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "create database: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.url(&name)
    }

    pub fn stop(&self) {
        let data = self.dir.0.join("data");
        let _ = as_postgres(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    pub fn restart(&self) {
        self.pg_ctl_start();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Creates an empty SQLite database at `path` in WAL mode with `page_size`-byte pages,
/// as an older vigil (SQLite's default 4 KiB) left it: the store opens and migrates it.
pub fn sqlite_with_page_size(path: &Path, page_size: u32) {
    rusqlite::Connection::open(path)
        .and_then(|c| {
            c.execute_batch(&format!(
                "PRAGMA page_size = {page_size}; PRAGMA journal_mode = WAL; \
                 CREATE TABLE older (x);"
            ))
        })
        .expect("create the database");
}

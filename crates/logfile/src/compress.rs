//! The compressor thread: gzips each rotated file (`x.log` → `x.log.gz`, written as a
//! temporary and renamed, so a crash leaves either the plain file or the whole gzip),
//! then deletes rotated files past the newest `keep`. It runs beside the logger's
//! writer thread, which only renames files and never waits for it.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::faults::{FileFaults, Operation};
use crate::naming::{gz_of, parse_rotated};

enum Job {
    /// Gzip this rotated file, then apply retention.
    Compress(PathBuf),
    /// Answer when every earlier job is done.
    Barrier(Sender<()>),
}

/// A handle on the compressor thread; dropping it finishes the queued jobs.
#[derive(Debug)]
pub(crate) struct Compressor {
    jobs: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Compressor {
    /// Starts the thread; first it finishes what a previous run left: rotated files
    /// not yet gzipped, temporaries of an interrupted gzip, files past retention.
    pub fn start(dir: PathBuf, keep: usize) -> std::io::Result<Self> {
        let (jobs, rx) = channel();
        let thread = std::thread::Builder::new()
            .name("vigil-log-gzip".into())
            .spawn(move || run(&dir, keep, rx))?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    pub fn compress(&self, path: PathBuf) {
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(Job::Compress(path));
        }
    }

    /// Waits until every file handed over so far is compressed and retention applied.
    pub fn settle(&self) {
        let (tx, rx) = channel();
        if let Some(jobs) = &self.jobs
            && jobs.send(Job::Barrier(tx)).is_ok()
        {
            let _ = rx.recv();
        }
    }
}

impl Drop for Compressor {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(dir: &Path, keep: usize, jobs: Receiver<Job>) {
    recover(dir);
    retain(dir, keep);
    for job in jobs {
        match job {
            Job::Compress(path) => {
                gzip(&path);
                retain(dir, keep);
            }
            Job::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Gzips what an earlier run rotated but did not compress; removes half-written gzips.
fn recover(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".gz.tmp") {
            remove(&entry.path());
        } else if parse_rotated(&name).is_some_and(|(_, gz)| !gz) {
            gzip(&entry.path());
        }
    }
}

fn gzip(path: &Path) {
    let gz = gz_of(path);
    let mut tmp = gz.clone().into_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let input = match File::open(path) {
        Ok(file) => file,
        // Retention got there first: files rotated faster than they are gzipped are
        // queued here, and after an earlier job the ones past `keep` were deleted
        // (CI saw it with 4 KiB files). Nothing to compress, nothing lost.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            FileFaults::global().fault(Operation::Compress, path, &e);
            return;
        }
    };
    let result = (|| -> std::io::Result<()> {
        let mut input = BufReader::new(input);
        // Level 1: JSON lines still shrink several times over, for a fraction of the
        // default level's CPU, which on a small machine competes with serving.
        let mut encoder = GzEncoder::new(BufWriter::new(File::create(&tmp)?), Compression::fast());
        std::io::copy(&mut input, &mut encoder)?;
        let file = encoder.finish()?.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, &gz)
    })();
    match result {
        Ok(()) => remove(path),
        Err(e) => {
            // The plain file stays: nothing is lost, it is only bigger.
            let _ = std::fs::remove_file(&tmp);
            FileFaults::global().fault(Operation::Compress, path, &e);
        }
    }
}

/// Deletes rotated files (plain or gzipped) older than the newest `keep`.
fn retain(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut rotated: Vec<((String, u32), PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            parse_rotated(&name).map(|(key, _)| (key, e.path()))
        })
        .collect();
    if rotated.len() <= keep {
        return;
    }
    rotated.sort();
    let excess = rotated.len() - keep;
    for (_, path) in rotated.into_iter().take(excess) {
        remove(&path);
    }
}

fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        FileFaults::global().fault(Operation::Remove, path, &e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queued file that retention already deleted is not a fault.
    #[test]
    fn a_file_gone_before_its_turn_is_not_a_fault() {
        let dir = vigil_test_support::TempDir::new("gzip-gone");
        let before = FileFaults::global().count(Operation::Compress);
        gzip(&dir.path().join("vigil.2026-12-05T01-00-00.000Z.log"));
        assert_eq!(FileFaults::global().count(Operation::Compress), before);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

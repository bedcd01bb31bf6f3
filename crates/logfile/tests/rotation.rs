//! Rotation on a real directory: by time (hourly and daily boundaries), by size (cut
//! only between lines), retention after more rotations than kept and after a restart,
//! gzip of rotated files, lines written while rotating, an unwritable directory, a file
//! deleted or moved away while open, a cut-off last line, and one writer a directory.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flate2::read::GzDecoder;
use vigil_logfile::{FileConfig, FileFaults, Operation, RotatingFile, Rotation};
use vigil_test_support::TempDir;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// 2026-11-30T20:00:00Z: the tests' clock stays before the real one, so the rotation a
/// restart does (at the real time) is the newest.
const HOUR: u64 = 1_796_068_800;

fn config(dir: &Path, rotation: Rotation, max_bytes: Option<u64>, keep: usize) -> FileConfig {
    FileConfig {
        dir: dir.to_owned(),
        rotation,
        max_bytes,
        keep,
    }
}

/// Held by the tests that cause faults: the counts are the process's, and a test that
/// reads them must not see another's.
static FAULTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn faults_to_myself() -> std::sync::MutexGuard<'static, ()> {
    FAULTS.lock().unwrap_or_else(|p| p.into_inner())
}

fn line(n: usize) -> String {
    format!("{{\"n\":{n},\"message\":\"line {n}\"}}\n")
}

/// Every file in `dir`: (name, content, decompressed when gzipped).
fn files(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != vigil_logfile::naming::LOCK)
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let bytes = std::fs::read(e.path()).unwrap();
            let text = if name.ends_with(".gz") {
                let mut s = String::new();
                GzDecoder::new(&bytes[..]).read_to_string(&mut s).unwrap();
                s
            } else {
                String::from_utf8(bytes).unwrap()
            };
            (name, text)
        })
        .collect();
    out.sort();
    out
}

/// Every line in every file, in the order the files were made (the active one last).
fn all_lines(dir: &Path) -> Vec<String> {
    let mut files = files(dir);
    let active = files.iter().position(|(n, _)| n == "vigil.log").unwrap();
    let active = files.remove(active);
    files.sort_by_key(|(name, _)| vigil_logfile::naming::parse_rotated(name).unwrap().0);
    files.push(active);
    files
        .iter()
        .flat_map(|(_, text)| text.lines().map(str::to_owned))
        .collect()
}

#[test]
fn hourly_rotation_puts_each_hours_lines_in_its_own_gzipped_file() {
    let dir = TempDir::new("logfile-hourly");
    let mut file = RotatingFile::open(config(dir.path(), Rotation::Hourly, None, 10)).unwrap();
    file.write_lines_at(line(1).as_bytes(), at(HOUR + 10));
    file.write_lines_at(line(2).as_bytes(), at(HOUR + 3599));
    file.write_lines_at(line(3).as_bytes(), at(HOUR + 3600));
    file.write_lines_at(line(4).as_bytes(), at(HOUR + 2 * 3600 + 5));
    file.settle();
    let found = files(dir.path());
    let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "vigil.2026-11-30T21-00-00.000Z.log.gz",
            "vigil.2026-11-30T22-00-05.000Z.log.gz",
            "vigil.log"
        ]
    );
    assert_eq!(found[0].1, line(1) + &line(2));
    assert_eq!(found[1].1, line(3));
    assert_eq!(found[2].1, line(4));
}

#[test]
fn daily_rotation_waits_for_midnight_utc() {
    let dir = TempDir::new("logfile-daily");
    let mut file = RotatingFile::open(config(dir.path(), Rotation::Daily, None, 10)).unwrap();
    let midnight = HOUR + 4 * 3600; // 2026-12-01T00:00:00Z
    file.write_lines_at(line(1).as_bytes(), at(HOUR));
    file.write_lines_at(line(2).as_bytes(), at(midnight - 1));
    file.write_lines_at(line(3).as_bytes(), at(midnight));
    file.settle();
    let found = files(dir.path());
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].1, line(1) + &line(2));
    assert_eq!(found[1], ("vigil.log".into(), line(3)));
}

#[test]
fn size_rotation_cuts_only_between_lines_and_loses_or_repeats_none() {
    let dir = TempDir::new("logfile-size");
    let max = 100;
    let mut file =
        RotatingFile::open(config(dir.path(), Rotation::Never, Some(max), 1000)).unwrap();
    // Chunks of several lines, as the logger's writer thread hands them over.
    let mut n = 0;
    for chunk_len in [1, 3, 7, 2, 5, 11, 1, 4] {
        let chunk: String = (0..chunk_len)
            .map(|_| {
                n += 1;
                line(n)
            })
            .collect();
        file.write_lines_at(chunk.as_bytes(), at(HOUR + n as u64));
    }
    // A line longer than the limit gets a file of its own.
    let long = format!("{{\"big\":\"{}\"}}\n", "x".repeat(300));
    file.write_lines_at(long.as_bytes(), at(HOUR + 100));
    n += 1;
    file.write_lines_at(line(n).as_bytes(), at(HOUR + 101));
    file.settle();
    for (name, text) in files(dir.path()) {
        assert!(text.ends_with('\n'), "{name} ends mid-line");
        assert!(
            text.len() as u64 <= max || text.lines().count() == 1,
            "{name} has {} bytes",
            text.len()
        );
    }
    let lines = all_lines(dir.path());
    let mut expected: Vec<String> = (1..n).map(|i| line(i).trim_end().to_owned()).collect();
    expected.push(long.trim_end().to_owned());
    expected.push(line(n).trim_end().to_owned());
    assert_eq!(lines, expected);
}

#[test]
fn exactly_keep_rotated_files_remain_after_more_rotations_and_a_restart() {
    let dir = TempDir::new("logfile-keep");
    let keep = 3;
    {
        let mut file =
            RotatingFile::open(config(dir.path(), Rotation::Hourly, None, keep)).unwrap();
        for h in 0..(keep as u64 + 3) {
            file.write_lines_at(line(h as usize).as_bytes(), at(HOUR + h * 3600));
        }
        file.settle();
    }
    let rotated = |dir: &Path| {
        files(dir)
            .into_iter()
            .filter(|(n, _)| n != "vigil.log")
            .collect::<Vec<_>>()
    };
    let before = rotated(dir.path());
    assert_eq!(before.len(), keep, "{before:?}");
    // The newest ones stay: hours 2, 3 and 4 (hour 5 is the active file).
    assert_eq!(before[0].1, line(2));
    assert_eq!(before[2].1, line(4));

    // A restart hours later: the active file was last written in an earlier hour (as
    // its time says; the test's clock is not the file system's), so the first new line
    // rotates it, and retention still keeps exactly `keep`.
    std::fs::File::options()
        .append(true)
        .open(dir.path().join("vigil.log"))
        .unwrap()
        .set_modified(at(HOUR + 5 * 3600))
        .unwrap();
    let mut file = RotatingFile::open(config(dir.path(), Rotation::Hourly, None, keep)).unwrap();
    file.write_lines_at(line(99).as_bytes(), SystemTime::now());
    file.settle();
    let after = rotated(dir.path());
    assert_eq!(after.len(), keep, "{after:?}");
    assert_eq!(after[keep - 1].1, line(5));
    assert_eq!(files(dir.path()).last().unwrap().1, line(99));
}

#[test]
fn a_restart_finishes_what_a_crash_left() {
    let dir = TempDir::new("logfile-recover");
    std::fs::write(
        dir.path().join("vigil.2026-12-01T20-00-00.000Z.log"),
        line(1),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("vigil.2026-12-01T21-00-00.000Z.log.gz.tmp"),
        b"half",
    )
    .unwrap();
    let file = RotatingFile::open(config(dir.path(), Rotation::Daily, None, 5)).unwrap();
    file.settle();
    let names: Vec<String> = files(dir.path()).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["vigil.2026-12-01T20-00-00.000Z.log.gz", "vigil.log"]
    );
}

#[test]
fn lines_written_from_many_threads_during_rotations_are_all_there_once() {
    use std::sync::{Arc, Mutex};
    let dir = TempDir::new("logfile-concurrent");
    let file = Arc::new(Mutex::new(
        RotatingFile::open(config(dir.path(), Rotation::Never, Some(2048), 10_000)).unwrap(),
    ));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let file = file.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    let l = line(t * 1000 + i);
                    file.lock()
                        .unwrap()
                        .write_lines_at(l.as_bytes(), SystemTime::now());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    file.lock().unwrap().settle();
    let mut lines = all_lines(dir.path());
    assert!(files(dir.path()).len() > 10, "it rotated");
    lines.sort();
    let mut expected: Vec<String> = (0..4)
        .flat_map(|t| (0..500).map(move |i| line(t * 1000 + i).trim_end().to_owned()))
        .collect();
    expected.sort();
    assert_eq!(lines, expected);
}

#[test]
fn an_unwritable_directory_is_a_counted_fault_not_a_failure() {
    let _faults = faults_to_myself();
    let dir = TempDir::new("logfile-fault");
    let mut file = RotatingFile::open(config(dir.path(), Rotation::Hourly, None, 3)).unwrap();
    file.write_lines_at(line(1).as_bytes(), at(HOUR));
    // The directory goes away and a plain file takes its place: nothing can be opened.
    std::fs::remove_dir_all(dir.path()).unwrap();
    std::fs::write(dir.path(), b"not a directory").unwrap();
    let before = FileFaults::global().count(Operation::Open);
    // The next hour's line must rotate: the rename fails, the reopen fails; no panic.
    file.write_lines_at(line(2).as_bytes(), at(HOUR + 3600));
    assert!(FileFaults::global().count(Operation::Open) > before);
    std::fs::remove_file(dir.path()).unwrap();
    std::fs::create_dir(dir.path()).unwrap();
}

#[test]
fn a_deleted_log_file_is_made_again_and_its_loss_counted() {
    let _faults = faults_to_myself();
    let dir = TempDir::new("logfile-deleted");
    let mut file = RotatingFile::open(config(dir.path(), Rotation::Never, None, 3)).unwrap();
    file.write_lines_at(line(1).as_bytes(), at(HOUR));
    std::fs::remove_dir_all(dir.path()).unwrap();
    let before = FileFaults::global().count(Operation::Write);
    // The next write after a second looks at the name, finds the file gone, and opens
    // a new one (and its directory) for this line.
    file.write_lines_at(line(2).as_bytes(), at(HOUR + 2));
    assert_eq!(all_lines(dir.path()), [line(2).trim_end()]);
    assert!(FileFaults::global().count(Operation::Write) > before);
    // The lock went with the directory, and was taken again in the new one.
    let second = RotatingFile::open(config(dir.path(), Rotation::Never, None, 3)).unwrap_err();
    assert!(second.to_string().contains("another process"), "{second}");
}

#[test]
fn a_log_file_moved_away_keeps_its_lines_and_a_new_one_takes_the_next() {
    let dir = TempDir::new("logfile-moved");
    let mut file = RotatingFile::open(config(dir.path(), Rotation::Never, None, 3)).unwrap();
    file.write_lines_at(line(1).as_bytes(), at(HOUR));
    let moved = dir.path().join("by-logrotate.1");
    std::fs::rename(dir.path().join("vigil.log"), &moved).unwrap();
    file.write_lines_at(line(2).as_bytes(), at(HOUR + 2));
    assert_eq!(std::fs::read_to_string(&moved).unwrap(), line(1));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("vigil.log")).unwrap(),
        line(2)
    );
}

#[test]
fn a_cut_off_last_line_is_ended_before_the_next() {
    let dir = TempDir::new("logfile-cut");
    // A crash (or a full disk) left half a line.
    std::fs::write(dir.path().join("vigil.log"), "{\"n\":0,\"mess").unwrap();
    let mut file = RotatingFile::open(config(dir.path(), Rotation::Never, None, 3)).unwrap();
    file.write_lines_at(line(1).as_bytes(), SystemTime::now());
    let text = std::fs::read_to_string(dir.path().join("vigil.log")).unwrap();
    assert_eq!(text, format!("{{\"n\":0,\"mess\n{}", line(1)));
}

#[test]
fn one_process_at_a_time_writes_a_directory() {
    let dir = TempDir::new("logfile-lock");
    let first = RotatingFile::open(config(dir.path(), Rotation::Never, None, 3)).unwrap();
    let second = RotatingFile::open(config(dir.path(), Rotation::Never, None, 3)).unwrap_err();
    assert!(second.to_string().contains("another process"), "{second}");
    drop(first);
    RotatingFile::open(config(dir.path(), Rotation::Never, None, 3)).unwrap();
}

#[test]
fn a_plain_file_as_the_directory_says_so() {
    let dir = TempDir::new("logfile-notdir");
    let path = dir.path().join("afile");
    std::fs::write(&path, b"x").unwrap();
    let e = RotatingFile::open(config(&path, Rotation::Never, None, 3)).unwrap_err();
    assert!(e.to_string().contains("not a directory"), "{e}");
}

/// A tmpfs of a few pages mounted over a directory (the tests run as root, as CI
/// does), unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> Self {
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs: {status}");
        Self(dir.to_owned())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_write_the_full_disk_cuts_short_leaves_no_half_line() {
    let _faults = faults_to_myself();
    let dir = TempDir::new("logfile-full");
    let _disk = SmallDisk::mount(dir.path(), "16k");
    let mut file = RotatingFile::open(config(dir.path(), Rotation::Never, None, 3)).unwrap();
    // Chunks of 50 lines (~1.6 KB), until one does not land whole: the disk filled
    // up during it.
    let (mut n, mut written) = (0, 0);
    loop {
        let chunk: String = (n..n + 50).map(line).collect();
        file.write_lines_at(chunk.as_bytes(), at(HOUR));
        written += chunk.len() as u64;
        n += 50;
        let len = std::fs::metadata(dir.path().join("vigil.log"))
            .unwrap()
            .len();
        if len < written {
            break;
        }
        assert!(n < 100_000, "the disk never filled");
    }
    let text = std::fs::read_to_string(dir.path().join("vigil.log")).unwrap();
    assert!(
        text.ends_with('\n'),
        "ends in half a line: {:?}",
        &text[text.len() - 20..]
    );
    for (i, l) in text.lines().enumerate() {
        assert_eq!(format!("{l}\n"), line(i), "line {i}");
    }
}

#[test]
fn a_cut_off_line_on_a_full_disk_does_not_stop_the_start() {
    let _faults = faults_to_myself();
    let dir = TempDir::new("logfile-full-start");
    let _disk = SmallDisk::mount(dir.path(), "16k");
    // Half a line that ends exactly at a page, so its newline needs a page more...
    let half = format!("{{\"n\":0,\"message\":\"{}", "x".repeat(4096 - 18));
    assert_eq!(half.len(), 4096);
    std::fs::write(dir.path().join("vigil.log"), half).unwrap();
    // ...and fill what is left, so that page is not there.
    let mut filler = std::fs::File::create(dir.path().join("filler")).unwrap();
    while std::io::Write::write_all(&mut filler, &[b'x'; 4096]).is_ok() {}
    drop(filler);
    let before = FileFaults::global().count(Operation::Open);
    let opened = RotatingFile::open(config(dir.path(), Rotation::Never, None, 3));
    assert!(opened.is_ok(), "{:?}", opened.err());
    assert!(FileFaults::global().count(Operation::Open) > before);
}

//! Log files beside stdout. The logger's writer thread hands [`RotatingFile`] whole
//! lines (never part of one); it appends them to `<dir>/vigil.log` and, at an hour or
//! day boundary (UTC) or when the next lines would pass the size limit, renames that
//! file to `vigil.<UTC time>.log` and starts a new one, so a line is never split,
//! lost or written twice across a rotation. A thread of its own gzips rotated files
//! and deletes all but the newest `keep`, off the writer's path. A full disk or an
//! unwritable directory is counted ([`faults`]) and reported, and the service goes on.

mod compress;
pub mod config;
pub mod faults;
pub mod naming;
mod rotating;

pub use config::{FileConfig, Rotation, RotationError};
pub use faults::{FileFaults, Operation};
pub use rotating::RotatingFile;

//! The training data `vigil models init` reads: a CSV with a header of feature names,
//! one row per training example, numbers in every feature cell (an empty cell is a
//! missing value), and optionally a column of true labels.

use std::path::{Path, PathBuf};

use crate::error::InitError;

/// The CSV, parsed.
#[derive(Debug, Clone)]
pub struct TrainingData {
    pub path: PathBuf,
    /// The header's feature columns, in order (the label column left out).
    pub features: Vec<String>,
    /// Row-major, `features.len()` values per row; an empty cell is NaN.
    pub values: Vec<f32>,
    pub rows: usize,
    /// The label column's cells, when one was named.
    pub targets: Option<Vec<String>>,
}

impl TrainingData {
    /// Row `i`'s values.
    pub fn row(&self, i: usize) -> &[f32] {
        let w = self.features.len();
        &self.values[i * w..(i + 1) * w]
    }

    /// Column `j`'s values that are numbers (missing cells left out).
    pub fn column(&self, j: usize) -> Vec<f64> {
        (0..self.rows)
            .map(|i| f64::from(self.values[i * self.features.len() + j]))
            .filter(|v| v.is_finite())
            .collect()
    }
}

/// Reads `path`; `label_column` names the column of true labels, if any.
pub fn read(path: &Path, label_column: Option<&str>) -> Result<TrainingData, InitError> {
    let csv_err = |e: csv::Error| InitError::Csv {
        path: path.to_owned(),
        message: match e.position() {
            Some(p) => format!("line {}: {e}", p.line()),
            None => e.to_string(),
        },
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| match e.into_kind() {
            csv::ErrorKind::Io(source) => InitError::Read {
                path: path.to_owned(),
                source,
            },
            other => InitError::Csv {
                path: path.to_owned(),
                message: format!("{other:?}"),
            },
        })?;
    let header: Vec<String> = reader
        .headers()
        .map_err(csv_err)?
        .iter()
        .map(str::to_owned)
        .collect();
    // No header at all (an empty file reads as one empty name).
    if header.iter().all(String::is_empty) && header.len() <= 1 {
        return Err(InitError::EmptyCsv {
            path: path.to_owned(),
        });
    }
    if let Some(i) = header.iter().position(String::is_empty) {
        return Err(InitError::UnnamedColumn {
            path: path.to_owned(),
            column: i + 1,
        });
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(name) = header.iter().find(|h| !seen.insert(h.as_str())) {
        return Err(InitError::DuplicateColumn {
            path: path.to_owned(),
            name: name.clone(),
        });
    }
    let label_at =
        match label_column {
            Some(c) => Some(header.iter().position(|h| h == c).ok_or_else(|| {
                InitError::NoLabelColumn {
                    path: path.to_owned(),
                    column: c.to_owned(),
                    columns: header.join(", "),
                }
            })?),
            None => None,
        };
    let features: Vec<String> = header
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != label_at)
        .map(|(_, h)| h.clone())
        .collect();
    let mut values = Vec::new();
    let mut targets = label_at.map(|_| Vec::new());
    let mut rows = 0;
    for record in reader.records() {
        let record = record.map_err(csv_err)?;
        let line = record.position().map_or(0, csv::Position::line);
        for (i, cell) in record.iter().enumerate() {
            if Some(i) == label_at {
                if let Some(t) = targets.as_mut() {
                    t.push(cell.to_owned());
                }
                continue;
            }
            let v = if cell.is_empty() {
                f32::NAN
            } else {
                let v = cell.parse::<f32>().map_err(|_| InitError::NotANumber {
                    path: path.to_owned(),
                    line,
                    column: header[i].clone(),
                    value: cell.chars().take(40).collect(),
                })?;
                // `NaN`, `inf` and what overflows f32 (`1e308`) parse, but are not
                // values a model is trained on; as NaN they would pass for missing.
                if !v.is_finite() {
                    return Err(InitError::NotFinite {
                        path: path.to_owned(),
                        line,
                        column: header[i].clone(),
                        value: cell.chars().take(40).collect(),
                    });
                }
                v
            };
            values.push(v);
        }
        rows += 1;
    }
    Ok(TrainingData {
        path: path.to_owned(),
        features,
        values,
        rows,
        targets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.csv");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn features_targets_and_missing_cells() {
        let (_d, path) = csv("a, b ,target\n1,2,x\n3,,y\n");
        let data = read(&path, Some("target")).unwrap();
        assert_eq!(data.features, ["a", "b"]);
        assert_eq!(data.rows, 2);
        assert_eq!(data.row(0), [1.0, 2.0]);
        assert!(data.row(1)[1].is_nan());
        assert_eq!(data.column(1), [2.0]);
        assert_eq!(data.targets.unwrap(), ["x", "y"]);
    }

    #[test]
    fn clear_errors() {
        let (_d, path) = csv("a,b\n1,2\n3,oops\n");
        let err = read(&path, None).unwrap_err().to_string();
        assert!(
            err.contains("line 3") && err.contains("\"b\"") && err.contains("oops"),
            "{err}"
        );

        let (_d, path) = csv("a,b\n1,2\n3\n");
        let err = read(&path, None).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");

        let (_d, path) = csv("a,b\n1,2\n");
        let err = read(&path, Some("label")).unwrap_err().to_string();
        assert!(err.contains("\"label\"") && err.contains("a, b"), "{err}");

        let (_d, path) = csv("");
        let err = read(&path, None).unwrap_err().to_string();
        assert!(err.contains("empty"), "{err}");

        let (_d, path) = csv(",\n1,2\n");
        let err = read(&path, None).unwrap_err().to_string();
        assert!(err.contains("column 1 has no name"), "{err}");

        let (_d, path) = csv("a,,c\n1,2,3\n");
        let err = read(&path, None).unwrap_err().to_string();
        assert!(err.contains("column 2 has no name"), "{err}");

        let (_d, path) = csv("a,b,a\n1,2,3\n");
        let err = read(&path, None).unwrap_err().to_string();
        assert!(err.contains("\"a\" twice"), "{err}");
    }

    #[test]
    fn cells_that_parse_but_are_not_finite_are_refused() {
        for cell in ["NaN", "nan", "inf", "-infinity", "1e308", "-4e38"] {
            let (_d, path) = csv(&format!("a,b\n1,2\n3,{cell}\n"));
            let err = read(&path, None).unwrap_err().to_string();
            assert!(
                err.contains("line 3") && err.contains("not a finite") && err.contains(cell),
                "{cell}: {err}"
            );
        }
        let (_d, path) = csv("a,b\n1,3.3e38\n");
        assert_eq!(read(&path, None).unwrap().row(0), [1.0, 3.3e38]);
    }
}

//! Input validation: turns request cells into one row-major f32 batch the runtime can
//! take, or says exactly which instance and feature is wrong and why.

use crate::card::ModelCard;
use crate::error::{InputError, InputErrorReason as Reason};

/// One feature value as the request carried it, before validation. The HTTP layer
/// decides how its syntax maps to these; this crate decides what is acceptable.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell {
    /// A number. May still be out of f32 range or the feature's physical range.
    Number(f64),
    /// An explicit NaN or ±Infinity.
    NonFinite,
    /// `null`, a string, a bool, an object or an array where a number belongs.
    NotANumber,
}

/// A validated batch: `rows * features` f32 values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub values: Vec<f32>,
    pub rows: usize,
}

/// Builds a [`Batch`] row by row, validating as it goes so the first bad cell is
/// reported with its position and nothing is copied twice.
#[derive(Debug)]
pub struct BatchBuilder<'c> {
    card: &'c ModelCard,
    values: Vec<f32>,
    rows: usize,
}

impl<'c> BatchBuilder<'c> {
    /// Starts a batch of `rows` instances, rejecting empty and oversized batches.
    pub fn new(card: &'c ModelCard, rows: usize, max_batch: usize) -> Result<Self, InputError> {
        if rows == 0 {
            return Err(InputError::new(
                Reason::EmptyBatch,
                "the batch has no instances",
            ));
        }
        if rows > max_batch {
            return Err(InputError::new(
                Reason::BatchTooLarge,
                format!("the batch has {rows} instances, the limit is {max_batch}"),
            ));
        }
        Ok(Self {
            card,
            values: Vec::with_capacity(rows * card.features.len()),
            rows: 0,
        })
    }

    /// Validates and appends one instance.
    pub fn push_row(
        &mut self,
        cells: impl ExactSizeIterator<Item = Cell>,
    ) -> Result<(), InputError> {
        let instance = self.rows;
        let expected = self.card.features.len();
        if cells.len() != expected {
            return Err(InputError::new(
                Reason::WrongFeatureCount,
                format!(
                    "instance {instance} has {} features, model {} expects {expected}",
                    cells.len(),
                    self.card.name
                ),
            )
            .at(instance, None));
        }
        for (i, (cell, feature)) in cells.zip(&self.card.features).enumerate() {
            let name = &feature.name;
            let v = match cell {
                Cell::Number(v) => v,
                Cell::NonFinite => {
                    return Err(InputError::new(
                        Reason::NonFinite,
                        format!("feature {name} of instance {instance} is not finite"),
                    )
                    .at(instance, Some(i)));
                }
                Cell::NotANumber => {
                    return Err(InputError::new(
                        Reason::InvalidType,
                        format!("feature {name} of instance {instance} is not a number"),
                    )
                    .at(instance, Some(i)));
                }
            };
            let below = feature.min.is_some_and(|lo| v < lo);
            let above = feature.max.is_some_and(|hi| v > hi);
            if !v.is_finite() || v.abs() > f64::from(f32::MAX) || below || above {
                // Name the bound it broke: a card's range may be wider than f32's.
                let range = match (feature.min, feature.max) {
                    _ if !(below || above) => "the f32 range (±3.4028235e38)".into(),
                    // Debug: `1e300`, where Display writes out 301 digits.
                    (Some(lo), Some(hi)) => format!("[{lo:?}, {hi:?}]"),
                    (Some(lo), None) => format!(">= {lo:?}"),
                    (None, Some(hi)) => format!("<= {hi:?}"),
                    (None, None) => unreachable!("below or above needs a bound"),
                };
                return Err(InputError::new(
                    Reason::OutOfRange,
                    format!("feature {name} of instance {instance} is outside {range}"),
                )
                .at(instance, Some(i)));
            }
            self.values.push(v as f32);
        }
        self.rows += 1;
        Ok(())
    }

    pub fn finish(self) -> Batch {
        Batch {
            values: self.values,
            rows: self.rows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundled::MODELS;

    fn card() -> ModelCard {
        ModelCard::from_toml(MODELS[0].2).unwrap()
    }

    fn row(v: [f64; 6]) -> impl ExactSizeIterator<Item = Cell> {
        v.into_iter().map(Cell::Number)
    }

    #[test]
    fn accepts_good_rows() {
        let card = card();
        let mut b = BatchBuilder::new(&card, 2, 10).unwrap();
        b.push_row(row([70.0, 250.0, 2.5, 45.0, 1500.0, 12.0]))
            .unwrap();
        b.push_row(row([71.0, 251.0, 2.0, 40.0, 1400.0, 11.0]))
            .unwrap();
        let batch = b.finish();
        assert_eq!(batch.rows, 2);
        assert_eq!(batch.values.len(), 12);
        assert_eq!(batch.values[6], 71.0);
    }

    #[test]
    fn reports_reason_and_position() {
        let card = card();
        let cases: [(Vec<Cell>, Reason, Option<usize>); 5] = [
            (vec![Cell::Number(1.0); 5], Reason::WrongFeatureCount, None),
            (
                vec![
                    Cell::Number(70.0),
                    Cell::NonFinite,
                    Cell::Number(1.0),
                    Cell::Number(1.0),
                    Cell::Number(1.0),
                    Cell::Number(1.0),
                ],
                Reason::NonFinite,
                Some(1),
            ),
            (
                vec![
                    Cell::Number(70.0),
                    Cell::Number(1.0),
                    Cell::NotANumber,
                    Cell::Number(1.0),
                    Cell::Number(1.0),
                    Cell::Number(1.0),
                ],
                Reason::InvalidType,
                Some(2),
            ),
            (
                vec![
                    Cell::Number(70.0),
                    Cell::Number(1.0),
                    Cell::Number(1.0),
                    Cell::Number(150.0),
                    Cell::Number(1.0),
                    Cell::Number(1.0),
                ],
                Reason::OutOfRange,
                Some(3),
            ),
            (
                vec![
                    Cell::Number(1e39),
                    Cell::Number(1.0),
                    Cell::Number(1.0),
                    Cell::Number(1.0),
                    Cell::Number(1.0),
                    Cell::Number(1.0),
                ],
                Reason::OutOfRange,
                Some(0),
            ),
        ];
        for (cells, reason, feature) in cases {
            let mut b = BatchBuilder::new(&card, 2, 10).unwrap();
            b.push_row(row([70.0, 250.0, 2.5, 45.0, 1500.0, 12.0]))
                .unwrap();
            let err = b.push_row(cells.into_iter()).unwrap_err();
            assert_eq!(err.reason, reason, "{err}");
            assert_eq!(err.instance, Some(1));
            assert_eq!(err.feature, feature);
        }
    }

    #[test]
    fn an_out_of_range_message_names_the_bound_broken() {
        let mut card = card();
        card.features[0].min = Some(-1e300);
        card.features[0].max = Some(1e300);
        let message = |v: f64| {
            let mut b = BatchBuilder::new(&card, 1, 10).unwrap();
            let err = b
                .push_row(row([v, 250.0, 2.5, 45.0, 1500.0, 12.0]))
                .unwrap_err();
            assert_eq!(err.reason, Reason::OutOfRange);
            err.to_string()
        };
        // Inside the card's range, outside f32's.
        assert!(
            message(3.5e38).contains("the f32 range"),
            "{}",
            message(3.5e38)
        );
        assert!(
            message(-1e301).contains("[-1e300, 1e300]"),
            "{}",
            message(-1e301)
        );
        let huge = message(1e39);
        assert!(
            huge.contains("the f32 range") && !huge.contains("1e300"),
            "{huge}"
        );
    }

    #[test]
    fn rejects_empty_and_oversized_batches() {
        let card = card();
        assert_eq!(
            BatchBuilder::new(&card, 0, 10).unwrap_err().reason,
            Reason::EmptyBatch
        );
        assert_eq!(
            BatchBuilder::new(&card, 11, 10).unwrap_err().reason,
            Reason::BatchTooLarge
        );
    }
}

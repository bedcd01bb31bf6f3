//! Exact quantiles by nearest rank, chosen in the database: a query numbers the sorted
//! values with `ROW_NUMBER()` and keeps only the rows at the wanted ranks, so one
//! sort runs in the database and a handful of rows come back. The rank is written in
//! integers, so SQLite, PostgreSQL and Rust compute the same one. Used by `/stats`
//! (a regressor's values) and `/quality` (label lag, absolute error).

/// A quantile as a fraction `num/den`; its nearest rank among n sorted values is
/// ceil(n·num/den), computed in integers alike by SQLite, PostgreSQL and Rust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantile {
    pub num: i64,
    pub den: i64,
}

impl Quantile {
    pub const P50: Quantile = Quantile { num: 1, den: 2 };
    pub const P90: Quantile = Quantile { num: 9, den: 10 };
    pub const P95: Quantile = Quantile { num: 19, den: 20 };
    pub const P99: Quantile = Quantile { num: 99, den: 100 };
    /// The largest value (its rank is n).
    pub const MAX: Quantile = Quantile { num: 1, den: 1 };

    /// The 1-based rank of this quantile among `n` sorted values: ceil(n·num/den).
    pub fn rank(self, n: i64) -> i64 {
        (self.num * n + self.den - 1) / self.den
    }

    /// [`Quantile::rank`] in SQL, over a column `n` (the number of values).
    pub(crate) fn rank_sql(self) -> String {
        format!("({} * n + {}) / {}", self.num, self.den - 1, self.den)
    }

    pub fn as_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_are_nearest_ranks() {
        for n in 1..=500i64 {
            for q in [
                Quantile::P50,
                Quantile::P90,
                Quantile::P95,
                Quantile::P99,
                Quantile::MAX,
            ] {
                let want = ((q.as_f64() * n as f64) - 1e-9).ceil().max(1.0) as i64;
                assert_eq!(q.rank(n), want, "n={n} q={q:?}");
            }
        }
    }
}

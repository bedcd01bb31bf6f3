//! An error and its causes as one line, each said once.
//!
//! anyhow's `{:#}` appends every cause's text to the error's; many errors (ours via
//! thiserror's `{source}`, sqlx's, std's) already quote their cause in their own
//! text, so `{:#}` printed the same words two or three times
//! (`migration failed: while executing migrations: pool timed out…: while executing
//! migrations: pool timed out…: pool timed out…`).

/// `e`'s text, then each cause whose text the line does not hold yet.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read {path}: {source}")]
    struct Quoting {
        path: &'static str,
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_quoted_is_not_repeated() {
        let io = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let e = anyhow::Error::new(Quoting {
            path: "/x",
            source: io,
        })
        .context("cannot start");
        assert_eq!(format!("{e:#}").matches("permission denied").count(), 2);
        assert_eq!(
            one_line(&e),
            "cannot start: cannot read /x: permission denied"
        );
    }

    #[test]
    fn a_cause_not_quoted_is_kept() {
        let e = anyhow::anyhow!("connection refused").context("cannot open the database");
        assert_eq!(one_line(&e), "cannot open the database: connection refused");
    }
}

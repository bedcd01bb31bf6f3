//! Which fields of a log event name secrets, worked out once a callsite instead of
//! once a field of every line. A callsite's field names are static, so the answer
//! never changes; checking each name of each line (`redact::is_sensitive`) was 1,200
//! instructions of every request's access line (docs/BENCHMARKS.md, "Instructions a
//! request"). The answers live in a per-thread map: no lock on the logging path, and
//! the map holds at most one entry per callsite of the program.

use std::cell::RefCell;

use tracing::Metadata;
use tracing::callsite::Identifier;
use tracing::field::Field;

use crate::redact::is_sensitive;

/// One bit per field index of a callsite: set when that field's name is a secret's.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SecretFields(u64);

thread_local! {
    static KNOWN: RefCell<foldhash::HashMap<Identifier, SecretFields>> = RefCell::default();
}

impl SecretFields {
    /// The secret fields of `meta`'s callsite.
    pub(crate) fn of(meta: &'static Metadata<'static>) -> Self {
        let id = meta.callsite();
        KNOWN
            .try_with(|known| {
                // A re-entrant event (logging while this thread works one out) works
                // its own out without the map.
                let Ok(mut known) = known.try_borrow_mut() else {
                    return Self::work_out(meta);
                };
                *known.entry(id).or_insert_with(|| Self::work_out(meta))
            })
            .unwrap_or_else(|_| Self::work_out(meta))
    }

    fn work_out(meta: &Metadata<'_>) -> Self {
        Self(
            meta.fields()
                .iter()
                .filter(|f| f.index() < 64 && is_sensitive(f.name()))
                .fold(0, |bits, f| bits | 1 << f.index()),
        )
    }

    /// Whether `field`, one of this callsite's, names a secret.
    pub(crate) fn contains(self, field: &Field) -> bool {
        match field.index() {
            // A callsite has at most 32 fields (tracing's limit); the fallback is for
            // safety, not speed.
            i @ 0..64 => self.0 >> i & 1 == 1,
            _ => is_sensitive(field.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The secret fields of the callsite of the event `emit` sends.
    fn secrets_of(emit: impl Fn()) -> Vec<(String, bool)> {
        use std::sync::{Arc, Mutex};
        use tracing::Subscriber;
        use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

        type Seen = Arc<Mutex<Vec<(String, bool)>>>;
        struct Probe(Seen);
        impl<S: Subscriber> Layer<S> for Probe {
            fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
                let secrets = SecretFields::of(event.metadata());
                let fields = event.metadata().fields().iter();
                let mut seen = self.0.lock().unwrap();
                seen.extend(fields.map(|f| (f.name().to_owned(), secrets.contains(&f))));
            }
        }
        let seen = Seen::default();
        let subscriber = tracing_subscriber::registry().with(Probe(seen.clone()));
        tracing::subscriber::with_default(subscriber, emit);
        Arc::try_unwrap(seen).unwrap().into_inner().unwrap()
    }

    #[test]
    fn a_callsites_secret_fields_are_the_names_that_look_like_secrets() {
        let emit = || tracing::info!(user = "ann", api_key = "k", Password = "p", n = 1, "m");
        let expected = [
            ("message", false),
            ("user", false),
            ("api_key", true),
            ("Password", true),
            ("n", false),
        ]
        .map(|(name, secret)| (name.to_owned(), secret));
        let mut expected = expected.to_vec();
        expected.sort();
        // The second time the answer comes from the map.
        for _ in 0..2 {
            let mut seen = secrets_of(emit);
            seen.sort();
            assert_eq!(seen, expected);
        }
    }
}

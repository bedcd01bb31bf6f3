//! An upload's save to the store, undone if the upload is abandoned. Saving runs on a
//! blocking thread and goes on when the request is dropped (the client hung up, the
//! request timeout ran out); without this the version's files stayed in the store with
//! nothing serving them or naming them in the state, and a retry of the same upload was
//! refused as `version_exists`.

use tokio::task::JoinHandle;
use vigil_model::VersionStore;

type Saving = JoinHandle<Result<(), vigil_model::StoreError>>;

/// A save in progress. [`Self::finish`] waits for it; dropped before that, it removes
/// the version once the save has run.
pub(super) struct PendingSave {
    saving: Option<Saving>,
    store: VersionStore,
    name: String,
    version: String,
    /// Where the undo runs (the shared runtime: a connection thread's ends with its
    /// listener at shutdown, and the undo with it).
    runtime: tokio::runtime::Handle,
}

impl PendingSave {
    pub(super) fn new(
        saving: Saving,
        store: VersionStore,
        name: &str,
        version: &str,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            saving: Some(saving),
            store,
            name: name.to_owned(),
            version: version.to_owned(),
            runtime,
        }
    }

    /// Waits for the save; from here the caller owns what it wrote.
    pub(super) async fn finish(
        mut self,
    ) -> Result<Result<(), vigil_model::StoreError>, tokio::task::JoinError> {
        let saving = self.saving.as_mut().expect("finish runs once");
        let done = saving.await;
        self.saving = None;
        done
    }
}

impl Drop for PendingSave {
    fn drop(&mut self) {
        let Some(saving) = self.saving.take() else {
            return;
        };
        let (store, name, version) = (
            self.store.clone(),
            std::mem::take(&mut self.name),
            std::mem::take(&mut self.version),
        );
        let undo = async move {
            if let Ok(Ok(())) = saving.await {
                match store.remove_version(&name, &version) {
                    Ok(()) => tracing::warn!(
                        target: "vigil::lifecycle", model = %name, version = %version,
                        "upload_abandoned"
                    ),
                    Err(e) => tracing::error!(
                        target: "vigil::lifecycle", model = %name, version = %version,
                        error = %e, "upload_abandoned_not_removed"
                    ),
                }
            }
        };
        // Dropped on a runtime thread (a request's future), so in a request's scope.
        self.runtime
            .spawn(vigil_telemetry::context::in_current_scope(undo));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::runtime::Handle;
    use vigil_model::bundled::MODELS;
    use vigil_test_support::TempDir;

    /// A save that starts when `go` is sent and says when it has written.
    fn held_save(
        store: &VersionStore,
        version: &str,
    ) -> (
        Saving,
        std::sync::mpsc::Sender<()>,
        tokio::sync::oneshot::Receiver<()>,
    ) {
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let (written, saved) = tokio::sync::oneshot::channel();
        let (store, version) = (store.clone(), version.to_owned());
        let saving = tokio::task::spawn_blocking(move || {
            let _ = wait.recv();
            let result = store.save_version("digits", &version, MODELS[1].1, MODELS[1].2);
            let _ = written.send(());
            result
        });
        (saving, go, saved)
    }

    #[tokio::test]
    async fn a_finished_save_is_kept_and_an_abandoned_one_removed_once_it_ran() {
        let data = TempDir::new("pending-save");
        let store = VersionStore::in_data_dir(data.path());

        let (saving, go, _) = held_save(&store, "kept");
        let pending = PendingSave::new(saving, store.clone(), "digits", "kept", Handle::current());
        go.send(()).unwrap();
        pending.finish().await.unwrap().unwrap();
        assert!(store.has_version("digits", "kept"));

        // Dropped while the save still waits to run: the files land, then go.
        let (saving, go, saved) = held_save(&store, "dropped");
        drop(PendingSave::new(
            saving,
            store.clone(),
            "digits",
            "dropped",
            Handle::current(),
        ));
        go.send(()).unwrap();
        saved.await.unwrap();
        undone(&store, "dropped").await;
        assert!(store.has_version("digits", "kept"));
    }

    async fn undone(store: &VersionStore, version: &str) {
        let never = format!("the abandoned save of {version} was not undone");
        vigil_test_support::until(Duration::from_secs(10), &never, || {
            !store.ever_kept("digits", version)
        })
        .await
    }

    #[tokio::test]
    async fn the_undo_outlives_the_runtime_the_upload_was_dropped_on() {
        let data = TempDir::new("pending-save-runtime");
        let store = VersionStore::in_data_dir(data.path());
        let (saving, go, saved) = held_save(&store, "dropped");
        let shared = Handle::current();
        // A connection thread: its runtime drops the upload, then stops at once, as a
        // listener's threads do at shutdown.
        let connection = {
            let store = store.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    drop(PendingSave::new(saving, store, "digits", "dropped", shared));
                });
            })
        };
        connection.join().unwrap();
        go.send(()).unwrap();
        saved.await.unwrap();
        undone(&store, "dropped").await;
    }
}

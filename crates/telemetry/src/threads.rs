//! Background threads that must not preempt the request path.
//!
//! Two policies: [`prefer_batch_scheduling`] for threads the request path waits on
//! (inference), and [`Background`] for work that can wait for spare CPU altogether
//! (storing prediction records).
//!
//! A thread woken by a request (an inference worker, the prediction forwarder; the log
//! writers keep the default policy) would by default preempt the async worker that
//! woke it: on a busy small
//! machine that is a context switch per request, and the woken thread then finds one
//! job instead of a batch.
//! Linux's `SCHED_BATCH` policy keeps normal priority and fairness but gives up wake-up
//! preemption, so the async worker keeps going and the background thread runs a
//! moment later with more work in hand.

/// Puts the calling thread under `SCHED_BATCH` (nice 0). Best effort: on other systems,
/// or where the call is refused, the thread simply keeps its policy.
pub fn prefer_batch_scheduling() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityOsValue,
            ThreadSchedulePolicy, set_thread_priority_and_policy, thread_native_id,
        };
        let _ = set_thread_priority_and_policy(
            thread_native_id(),
            // The default OS value is 0, which for normal policies means nice 0.
            ThreadPriority::Os(ThreadPriorityOsValue::default()),
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch),
        );
    }
}

/// A thread whose work can wait: it runs under `SCHED_IDLE` (only on CPU no other
/// thread wants) while it keeps up, and is raised back to `SCHED_BATCH` (nice 0, a
/// fair share) by any thread that sees it fall behind.
///
/// Leaving `SCHED_IDLE` needs `CAP_SYS_NICE` (or an `RLIMIT_NICE` of 20): without it a
/// thread put there could never be raised again, so [`Background::current`] returns
/// `None` and the caller keeps [`prefer_batch_scheduling`].
#[derive(Debug, Clone, Copy)]
pub struct Background {
    #[cfg(target_os = "linux")]
    thread: thread_priority::ThreadId,
}

impl Background {
    /// The calling thread, if this process may raise it again once lowered.
    pub fn current() -> Option<Self> {
        #[cfg(target_os = "linux")]
        {
            may_leave_idle().then(|| Self {
                thread: thread_priority::thread_native_id(),
            })
        }
        #[cfg(not(target_os = "linux"))]
        None
    }

    /// Lowers the thread to `SCHED_IDLE`; call it from the thread itself. Says whether
    /// the policy was applied.
    pub fn lower(&self) -> bool {
        self.apply(true)
    }

    /// Raises the thread to `SCHED_BATCH` at nice 0. Any thread may call it while the
    /// thread is alive (its handle means nothing once it has exited). Says whether the
    /// policy was applied.
    pub fn raise(&self) -> bool {
        self.apply(false)
    }

    fn apply(&self, idle: bool) -> bool {
        #[cfg(target_os = "linux")]
        {
            use thread_priority::NormalThreadSchedulePolicy::{Batch, Idle};
            set_policy(self.thread, if idle { Idle } else { Batch })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = idle;
            false
        }
    }
}

#[cfg(target_os = "linux")]
fn set_policy(
    thread: thread_priority::ThreadId,
    policy: thread_priority::NormalThreadSchedulePolicy,
) -> bool {
    use thread_priority::{
        ThreadPriority, ThreadPriorityOsValue, ThreadSchedulePolicy, set_thread_priority_and_policy,
    };
    // The policy goes to `thread`; for normal policies the crate also sets the
    // *calling* thread's nice value to the one given, 0, which every thread here has.
    set_thread_priority_and_policy(
        thread,
        ThreadPriority::Os(ThreadPriorityOsValue::default()),
        ThreadSchedulePolicy::Normal(policy),
    )
    .is_ok()
}

/// Whether a thread lowered to `SCHED_IDLE` can be raised again: tried once, on a
/// thread of its own that ends with the try.
#[cfg(target_os = "linux")]
fn may_leave_idle() -> bool {
    static MAY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *MAY.get_or_init(|| {
        std::thread::spawn(|| {
            use thread_priority::{NormalThreadSchedulePolicy, ThreadSchedulePolicy};
            let me = thread_priority::thread_native_id();
            set_policy(me, NormalThreadSchedulePolicy::Idle)
                && set_policy(me, NormalThreadSchedulePolicy::Batch)
                && thread_priority::thread_schedule_policy().ok()
                    == Some(ThreadSchedulePolicy::Normal(
                        NormalThreadSchedulePolicy::Batch,
                    ))
        })
        .join()
        .unwrap_or(false)
    })
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_policy_is_applied() {
        std::thread::spawn(|| {
            super::prefer_batch_scheduling();
            let policy = thread_priority::thread_schedule_policy().unwrap();
            assert_eq!(
                policy,
                thread_priority::ThreadSchedulePolicy::Normal(
                    thread_priority::NormalThreadSchedulePolicy::Batch
                )
            );
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_background_thread_is_lowered_to_idle_and_raised_by_another_thread() {
        use thread_priority::{NormalThreadSchedulePolicy, ThreadSchedulePolicy};
        if super::Background::current().is_none() {
            // Unprivileged (CI runs as root; a developer may not): the probe said a
            // lowered thread cannot be raised again. It must be right.
            let back = std::thread::spawn(|| {
                let me = thread_priority::thread_native_id();
                super::set_policy(me, NormalThreadSchedulePolicy::Idle)
                    && super::set_policy(me, NormalThreadSchedulePolicy::Batch)
            });
            assert!(!back.join().unwrap());
            return;
        }
        let (lowered, wait) = std::sync::mpsc::channel();
        let (raised, done) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let me = super::Background::current().unwrap();
            assert!(me.lower());
            let low = thread_priority::thread_schedule_policy().unwrap();
            lowered.send(me).unwrap();
            done.recv().unwrap();
            (low, thread_priority::thread_schedule_policy().unwrap())
        });
        assert!(wait.recv().unwrap().raise());
        raised.send(()).unwrap();
        assert_eq!(
            thread.join().unwrap(),
            (
                ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
                ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch)
            )
        );
    }
}

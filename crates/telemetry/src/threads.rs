//! Background threads that must not preempt the request path.
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
}

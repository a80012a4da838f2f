//! Running independent jobs on a few threads (layer downloads, layer ingests): the first error
//! stops workers from starting new jobs and is the one returned.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// The number of cores, for CPU-bound jobs.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// Runs `job` on each of `items` on up to `workers` threads.
pub(crate) fn for_each<T: Sync, E: Send>(
    items: &[T],
    workers: usize,
    job: impl Fn(&T) -> Result<(), E> + Sync,
) -> Result<(), E> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<E>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..workers.min(items.len()) {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    if let Err(error) = job(item) {
                        failed.store(true, Ordering::Relaxed);
                        first_error
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .get_or_insert(error);
                    }
                }
            });
        }
    });
    match first_error
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_every_job_and_reports_a_failure() {
        let seen = Mutex::new(Vec::new());
        for_each(&[1, 2, 3], 2, |n| {
            seen.lock().unwrap().push(*n);
            Ok::<(), ()>(())
        })
        .unwrap();
        seen.lock().unwrap().sort_unstable();
        assert_eq!(*seen.lock().unwrap(), [1, 2, 3]);
        assert_eq!(
            for_each(&[1, 2, 3], 2, |n| if *n == 2 { Err(*n) } else { Ok(()) }),
            Err(2)
        );
    }
}

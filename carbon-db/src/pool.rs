//! A fixed pool of worker threads; each owns its connections for the whole run.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::DbError;

/// Runs `work` over `items` (in order: callers put the largest first) on `jobs` threads.
/// Each thread builds its state once with `init`. The first error stops the others and is
/// returned.
pub(crate) fn run_pool<T, W>(
    jobs: usize,
    items: Vec<T>,
    init: impl Fn() -> Result<W, DbError> + Sync,
    work: impl Fn(&mut W, T) -> Result<(), DbError> + Sync,
) -> Result<(), DbError>
where
    T: Send,
{
    if items.is_empty() {
        return Ok(());
    }
    let threads = jobs.max(1).min(items.len());
    let queue = Mutex::new(items.into_iter().collect::<VecDeque<T>>());
    let abort = AtomicBool::new(false);
    let first_error: Mutex<Option<DbError>> = Mutex::new(None);
    let fail = |e: DbError| {
        abort.store(true, Ordering::SeqCst);
        let mut slot = first_error.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(e);
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut state = match init() {
                    Ok(s) => s,
                    Err(e) => return fail(e),
                };
                loop {
                    if abort.load(Ordering::SeqCst) {
                        return;
                    }
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                    let Some(item) = next else { return };
                    if let Err(e) = work(&mut state, item) {
                        return fail(e);
                    }
                }
            });
        }
    });
    match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

//! The workspace's one worker pool: N scoped threads pulling items from one queue.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Workers to use when the caller says 0: the machine's parallelism, capped at 4 (copying
/// is latency-bound; more threads only contend for the same disk).
pub(crate) fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().min(4))
}

/// Applies `job` to every item on `workers` threads; results keep the items' order.
/// The first error stops the other workers from taking new items and is returned.
pub(crate) fn parallel_map<T, R, E>(
    items: &[T],
    workers: usize,
    job: impl Fn(&T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E>
where
    T: Sync,
    R: Send,
    E: Send,
{
    let done: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(items.len()));
    run_pool(
        workers,
        (0..items.len()).collect(),
        || Ok(()),
        |(), index| {
            let result = job(&items[index])?;
            done.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((index, result));
            Ok(())
        },
    )?;
    let mut done = done.into_inner().unwrap_or_else(|p| p.into_inner());
    done.sort_unstable_by_key(|(index, _)| *index);
    Ok(done.into_iter().map(|(_, result)| result).collect())
}

/// The workspace's one worker pool: runs `work` over `items` (in order: callers put the
/// largest first) on up to `jobs` scoped threads, each building its state once with `init`
/// (a database worker owns its connections for the whole run). The first error stops the
/// others from taking new items and is returned.
pub fn run_pool<T, W, E>(
    jobs: usize,
    items: Vec<T>,
    init: impl Fn() -> Result<W, E> + Sync,
    work: impl Fn(&mut W, T) -> Result<(), E> + Sync,
) -> Result<(), E>
where
    T: Send,
    E: Send,
{
    if items.is_empty() {
        return Ok(());
    }
    let threads = jobs.max(1).min(items.len());
    let queue = Mutex::new(items.into_iter().collect::<VecDeque<T>>());
    let abort = AtomicBool::new(false);
    let first_error: Mutex<Option<E>> = Mutex::new(None);
    let fail = |e: E| {
        abort.store(true, Ordering::SeqCst);
        first_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(e);
    };
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut state = match init() {
                    Ok(s) => s,
                    Err(e) => return fail(e),
                };
                while !abort.load(Ordering::SeqCst) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_stops_on_error() {
        let items: Vec<u32> = (0..100).collect();
        let doubled = parallel_map(&items, 3, |n| Ok::<_, ()>(n * 2)).expect("no item fails");
        assert_eq!(doubled, items.iter().map(|n| n * 2).collect::<Vec<_>>());
        let err = parallel_map(&items, 3, |n| if *n == 42 { Err(*n) } else { Ok(*n) });
        assert_eq!(err, Err(42));
    }
}

//! A small worker pool: N scoped threads pulling indices from one atomic counter.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

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
    let workers = workers.clamp(1, items.len().max(1));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<E>> = Mutex::new(None);
    let done: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(items.len()));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut mine = Vec::new();
                while !failed.load(Ordering::Relaxed) {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(index) else { break };
                    match job(item) {
                        Ok(result) => mine.push((index, result)),
                        Err(err) => {
                            failed.store(true, Ordering::Relaxed);
                            let mut slot = first_error.lock().unwrap_or_else(|p| p.into_inner());
                            slot.get_or_insert(err);
                        }
                    }
                }
                done.lock().unwrap_or_else(|p| p.into_inner()).extend(mine);
            });
        }
    });
    if let Some(err) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(err);
    }
    let mut done = done.into_inner().unwrap_or_else(|p| p.into_inner());
    done.sort_unstable_by_key(|(index, _)| *index);
    Ok(done.into_iter().map(|(_, result)| result).collect())
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

//! Parallel map with in-order delivery and bounded memory: the engine of
//! `decode`, `convert` and the loader.
//!
//! Workers on a rayon pool take items in input order (an atomic cursor)
//! and hand results to the caller's thread, which consumes them strictly
//! in input order. At most `window` items are in flight (taken and not yet
//! consumed), so memory stays bounded however slow one item is, and the
//! pool keeps working while the caller writes: no barrier per window.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Condvar, Mutex};

/// A counting semaphore that can be closed (waking every waiter).
struct Permits {
    free: Mutex<usize>,
    ready: Condvar,
    closed: AtomicBool,
}

impl Permits {
    /// Takes a permit; `false` once closed.
    fn acquire(&self) -> bool {
        let Ok(mut free) = self.free.lock() else { return false };
        loop {
            if self.closed.load(Ordering::Acquire) {
                return false;
            }
            if *free > 0 {
                *free -= 1;
                return true;
            }
            free = match self.ready.wait(free) {
                Ok(f) => f,
                Err(_) => return false,
            };
        }
    }

    fn release(&self) {
        if let Ok(mut free) = self.free.lock() {
            *free += 1;
        }
        self.ready.notify_one();
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        // Taking the lock orders the store before any waiter's re-check.
        drop(self.free.lock());
        self.ready.notify_all();
    }
}

/// Runs `work` on every item on `pool` (one scratch `S` per worker) and
/// calls `consume` with each result in input order on this thread. Stops
/// at the first error from `consume` and returns it.
pub fn ordered_map<T, S, R, E>(
    pool: &rayon::ThreadPool,
    items: &[T],
    window: usize,
    new_scratch: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, &T) -> R + Sync,
    mut consume: impl FnMut(usize, R) -> Result<(), E>,
) -> Result<(), E>
where
    T: Sync,
    R: Send,
{
    ordered_stream::<T, S, std::convert::Infallible, R, E>(
        pool,
        items,
        window,
        1,
        new_scratch,
        |s, item, _| work(s, item),
        |i, piece| match piece {
            Piece::End(r) => consume(i, r),
            Piece::Chunk(never) => match never {},
        },
    )
}

/// A piece of one item's output: a chunk, or the end with its result.
#[derive(Debug)]
pub enum Piece<C, R> {
    /// Part of the output, in order.
    Chunk(C),
    /// The item is done.
    End(R),
}

/// Like [`ordered_map`], but each item's output streams to `consume` as
/// it is made: `work` gets an `emit` callback for chunks and returns the
/// item's final result. Chunks of the item being consumed flow straight
/// through; an item further ahead may queue at most `depth` chunks and
/// then waits, so memory is bounded by `window × depth` chunks however
/// large one item's output is. `consume` sees every item's chunks and
/// then its [`Piece::End`], items in input order.
pub fn ordered_stream<T, S, C, R, E>(
    pool: &rayon::ThreadPool,
    items: &[T],
    window: usize,
    depth: usize,
    new_scratch: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, &T, &mut dyn FnMut(C)) -> R + Sync,
    mut consume: impl FnMut(usize, Piece<C, R>) -> Result<(), E>,
) -> Result<(), E>
where
    T: Sync,
    C: Send,
    R: Send,
{
    let workers = pool.current_num_threads().max(1);
    let window = window.max(workers);
    let next = AtomicUsize::new(0);
    let permits = Permits {
        free: Mutex::new(window),
        ready: Condvar::new(),
        closed: AtomicBool::new(false),
    };
    // Each item taken gets its own bounded queue of pieces, announced to
    // the consumer before the work starts.
    type Queue<C, R> = Receiver<Piece<C, R>>;
    let (tx, rx) = sync_channel::<(usize, Queue<C, R>)>(window);
    let (next, permits, new_scratch, work) =
        (&next, &permits, &new_scratch, &work);
    std::thread::scope(|s| {
        s.spawn(move || {
            pool.scope(|ps| {
                for _ in 0..workers {
                    let tx = tx.clone();
                    ps.spawn(move |_| {
                        let mut scratch = new_scratch();
                        while permits.acquire() {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(item) = items.get(i) else { break };
                            let (ptx, prx) = sync_channel(depth.max(1));
                            if tx.send((i, prx)).is_err() {
                                break;
                            }
                            // A send fails only when the consumer has
                            // stopped; the item then runs to its end
                            // unheard, and the next acquire fails.
                            let mut emit = |c| {
                                let _ = ptx.send(Piece::Chunk(c));
                            };
                            let r = work(&mut scratch, item, &mut emit);
                            let _ = ptx.send(Piece::End(r));
                        }
                    });
                }
                drop(tx);
            });
        });
        let mut queues = BTreeMap::new();
        let mut result = Ok(());
        'items: for want in 0..items.len() {
            let queue = loop {
                if let Some(q) = queues.remove(&want) {
                    break q;
                }
                match rx.recv() {
                    Ok((i, q)) => {
                        queues.insert(i, q);
                    }
                    // The workers are gone (a panic, re-raised below).
                    Err(_) => break 'items,
                }
            };
            for piece in queue.iter() {
                let end = matches!(piece, Piece::End(_));
                if let Err(e) = consume(want, piece) {
                    result = Err(e);
                    break 'items;
                }
                if end {
                    permits.release();
                    continue 'items;
                }
            }
            // The item's worker stopped without an end: a panic.
            break;
        }
        permits.close();
        drop(queues);
        drop(rx);
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_for_any_pool_and_window() {
        let items: Vec<u64> = (0..500).collect();
        for threads in [1, 2, 3, 8] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for window in [1, 2, 7, 64] {
                let mut got = vec![];
                ordered_map(
                    &pool,
                    &items,
                    window,
                    || 0u64,
                    |n, x| {
                        *n += 1;
                        // Uneven work, so results arrive out of order.
                        if x % 7 == 0 {
                            std::thread::yield_now();
                        }
                        x * 2
                    },
                    |i, r| {
                        assert_eq!(r, i as u64 * 2);
                        got.push(r);
                        Ok::<(), ()>(())
                    },
                )
                .unwrap();
                assert_eq!(got.len(), 500);
            }
        }
    }

    #[test]
    fn stops_at_the_first_error() {
        let items: Vec<u64> = (0..10_000).collect();
        let pool =
            rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let mut seen = 0;
        let r = ordered_map(
            &pool,
            &items,
            4,
            || (),
            |(), x| *x,
            |i, _| {
                seen += 1;
                if i == 10 {
                    Err("stop")
                } else {
                    Ok(())
                }
            },
        );
        assert_eq!(r, Err("stop"));
        assert_eq!(seen, 11);
    }

    #[test]
    fn stream_in_order_for_any_pool_window_and_depth() {
        let items: Vec<u64> = (0..300).collect();
        for threads in [1, 2, 3, 8] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for (window, depth) in [(1, 1), (2, 1), (7, 3), (64, 2)] {
                let mut got = vec![];
                let mut ends = 0;
                ordered_stream(
                    &pool,
                    &items,
                    window,
                    depth,
                    || (),
                    |(), &x, emit| {
                        // Item x emits x % 5 chunks, more than `depth`
                        // for some, so later items wait on their queue.
                        for k in 0..x % 5 {
                            if (x + k) % 7 == 0 {
                                std::thread::yield_now();
                            }
                            emit((x, k));
                        }
                        x * 2
                    },
                    |i, piece| {
                        match piece {
                            Piece::Chunk(c) => got.push(c),
                            Piece::End(r) => {
                                assert_eq!(r, i as u64 * 2);
                                assert_eq!(ends, i);
                                ends += 1;
                            }
                        }
                        Ok::<(), ()>(())
                    },
                )
                .unwrap();
                let want: Vec<(u64, u64)> = items
                    .iter()
                    .flat_map(|&x| (0..x % 5).map(move |k| (x, k)))
                    .collect();
                assert_eq!(got, want, "threads {threads} window {window}");
                assert_eq!(ends, 300);
            }
        }
    }

    #[test]
    fn stream_stops_at_the_first_error() {
        let items: Vec<u64> = (0..10_000).collect();
        let pool =
            rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let mut ends = 0;
        let r = ordered_stream(
            &pool,
            &items,
            4,
            1,
            || (),
            |(), &x, emit| {
                emit(x);
                emit(x);
                x
            },
            |i, piece| {
                if let Piece::End(_) = piece {
                    ends += 1;
                }
                if i == 10 {
                    Err("stop")
                } else {
                    Ok(())
                }
            },
        );
        assert_eq!(r, Err("stop"));
        assert_eq!(ends, 10);
    }

    #[test]
    fn empty_input() {
        let pool =
            rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let r = ordered_map(
            &pool,
            &[] as &[u8],
            4,
            || (),
            |(), _| (),
            |_, ()| Ok::<(), ()>(()),
        );
        assert_eq!(r, Ok(()));
    }
}

//! Payloads freed on the evaluation thread that built them.
//!
//! A payload is a tree of small blocks: a map, its keys, its strings. mimalloc frees a block
//! from another thread by pushing it on its page's delayed list, which the owning thread
//! collects later; that costs several times a local free, and it is paid per block. The
//! driver is done with each written payload on its own thread, so it sorts them by the
//! evaluation thread that built them and hands each thread a bin at a time to drop. That is
//! one hand-off per bin instead of a remote free per block.

use std::sync::mpsc::{Receiver, Sender, channel};

/// Values per hand-off.
const BIN: usize = 256;

/// The driver's side: one bin per evaluation thread, filling.
pub(super) struct Returns<T> {
    bins: Vec<(Vec<T>, Sender<Vec<T>>)>,
}

/// An evaluation thread's side: the bins that come back to it.
pub(super) struct Home<T>(Receiver<Vec<T>>);

impl<T> Returns<T> {
    /// Returns to `threads` threads, and each thread's end.
    pub fn new(threads: usize) -> (Returns<T>, Vec<Home<T>>) {
        let (bins, homes) = (0..threads)
            .map(|_| {
                let (tx, rx) = channel();
                ((Vec::with_capacity(BIN), tx), Home(rx))
            })
            .unzip();
        (Returns { bins }, homes)
    }

    /// Sends `value` back to thread `origin` to be freed there; frees it here when there is
    /// no such thread or it has stopped.
    pub fn give_back(&mut self, origin: usize, value: T) {
        let Some((bin, home)) = self.bins.get_mut(origin) else {
            return;
        };
        bin.push(value);
        if bin.len() >= BIN {
            let full = std::mem::replace(bin, Vec::with_capacity(BIN));
            // A thread that stopped has no receiver: the bin is freed here.
            let _ = home.send(full);
        }
    }
}

impl<T> Drop for Returns<T> {
    /// What is left goes home too; the threads free it before they end.
    fn drop(&mut self) {
        for (bin, home) in &mut self.bins {
            if !bin.is_empty() {
                let _ = home.send(std::mem::take(bin));
            }
        }
    }
}

impl<T> Home<T> {
    /// Frees what has come back so far.
    pub fn collect(&self) {
        while let Ok(bin) = self.0.try_recv() {
            drop(bin);
        }
    }

    /// Frees what comes back until the driver's side is gone.
    pub fn until_done(self) {
        for bin in self.0 {
            drop(bin);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::thread::{self, ThreadId};

    /// Records the thread it is dropped on, under its origin.
    struct Traced {
        origin: usize,
        drops: Arc<Mutex<Vec<(usize, ThreadId)>>>,
    }

    impl Drop for Traced {
        fn drop(&mut self) {
            if let Ok(mut d) = self.drops.lock() {
                d.push((self.origin, thread::current().id()));
            }
        }
    }

    #[test]
    fn every_value_is_freed_once_on_its_own_thread() {
        let drops = Arc::new(Mutex::new(Vec::new()));
        let (mut returns, homes) = Returns::new(2);
        let threads: Vec<(ThreadId, thread::JoinHandle<()>)> = homes
            .into_iter()
            .map(|home| {
                let t = thread::spawn(move || home.until_done());
                (t.thread().id(), t)
            })
            .collect();
        let n = 3 * BIN + 7;
        for i in 0..n {
            let origin = i % 2;
            returns.give_back(
                origin,
                Traced {
                    origin,
                    drops: drops.clone(),
                },
            );
        }
        drop(returns);
        let ids: Vec<ThreadId> = threads.iter().map(|(id, _)| *id).collect();
        for (_, t) in threads {
            t.join().expect("joined");
        }
        let drops = drops.lock().expect("drops");
        assert_eq!(drops.len(), n);
        assert!(drops.iter().all(|(origin, on)| *on == ids[*origin]));
    }

    #[test]
    fn a_value_without_a_home_is_freed_where_it_is() {
        let drops = Arc::new(Mutex::new(Vec::new()));
        let (mut returns, homes) = Returns::new(1);
        drop(homes);
        for origin in [0, 5] {
            for _ in 0..BIN {
                returns.give_back(
                    origin,
                    Traced {
                        origin,
                        drops: drops.clone(),
                    },
                );
            }
        }
        drop(returns);
        let drops = drops.lock().expect("drops");
        assert_eq!(drops.len(), 2 * BIN);
        assert!(drops.iter().all(|(_, on)| *on == thread::current().id()));
    }

    #[test]
    fn collect_frees_what_came_back_without_waiting() {
        let (mut returns, homes) = Returns::<Vec<u8>>::new(1);
        let home = homes.into_iter().next().expect("one home");
        home.collect();
        for _ in 0..BIN {
            returns.give_back(0, vec![1]);
        }
        home.collect();
        drop(returns);
        home.until_done();
    }
}

//! The one fan-out runner: every command that works on many hosts (converge, exec, deploy's
//! batches, `deploy --list`) runs its per-host work through a [`Fanout`]. It owns what they
//! would otherwise each write again: the async runtime, the `--forks` limit, telling the
//! printer when a host's turn starts, turning a panicking host task into that host's error
//! (the others go on), and closing every connection at the end (targets before their jump
//! hosts) whatever the work returned.
//!
//! Hosts arrive as handles (`Arc<Host>`, or a plan holding one) and are handed to the work
//! unchanged; the results come back in the order they were given.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::error::{Error, ErrorKind, Result};
use crate::inventory::Host;
use crate::report::Printer;
use crate::transport::Pool;

/// Runs per-host work over one connection pool, at most `forks` hosts at once.
#[derive(Clone)]
pub struct Fanout {
    pool: Arc<Pool>,
    printer: Printer,
    forks: Arc<Semaphore>,
}

impl Fanout {
    pub fn new(pool: Arc<Pool>, printer: Printer, forks: usize) -> Fanout {
        Fanout { pool, printer, forks: Arc::new(Semaphore::new(forks.max(1))) }
    }

    /// The pool the work connects through.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// Runs `body` (which calls [`Fanout::each`]) to the end on a runtime of its own, then
    /// closes every connection the pool opened.
    pub fn block_on<R>(&self, body: impl Future<Output = R>) -> Result<R> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::new(ErrorKind::Io, "cannot start the async runtime").caused_by(e))?;
        Ok(runtime.block_on(async {
            let result = body.await;
            self.pool.close_all().await;
            result
        }))
    }

    /// `work` for each item (a host handle, or a plan that holds one), concurrently up to the
    /// forks limit; each host is announced to the printer when its turn comes. Results in the
    /// items' order; a host whose work panicked gets an error naming the panic instead.
    pub async fn each<I, T, F, Fut>(&self, items: Vec<I>, work: F) -> Vec<Result<T>>
    where
        I: AsRef<Host>,
        F: Fn(I) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let tasks: Vec<_> = items
            .into_iter()
            .map(|item| {
                let (forks, printer) = (self.forks.clone(), self.printer.clone());
                let name = item.as_ref().name.clone();
                let job = work(item);
                let announce = name.clone();
                let task = tokio::spawn(async move {
                    let _slot = forks.acquire_owned().await.expect("the forks semaphore is never closed");
                    printer.host_start(&announce);
                    job.await
                });
                (name, task)
            })
            .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for (name, task) in tasks {
            out.push(task.await.map_err(|e| panicked(&name, e)));
        }
        out
    }
}

/// The error of a host whose task panicked (a bug: the message says so and what it said).
fn panicked(host: &str, e: tokio::task::JoinError) -> Error {
    let said = match e.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into()),
        Err(e) => e.to_string(),
    };
    Error::new(ErrorKind::Remote, format!("microctl's work on {host} stopped: internal error ({said})"))
        .host(host)
        .hint("the other hosts went on; please report this with the command you ran")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Inventory;

    fn fanout(n: usize, forks: usize) -> (Fanout, Vec<Arc<Host>>) {
        let text: String = (0..n).map(|i| format!("[hosts.h{i}]\naddress = \"127.0.0.{}\"\n", i + 1)).collect();
        let inv = Arc::new(Inventory::parse(std::path::Path::new("/i.toml"), &text).unwrap());
        let hosts = inv.hosts.clone();
        let names: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
        let printer = Printer::new(&crate::report::Settings::default(), "exec", &names, true);
        (Fanout::new(Pool::new(inv, Default::default()), printer, forks), hosts)
    }

    #[test]
    fn results_come_back_in_host_order_with_at_most_forks_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (fan, hosts) = fanout(8, 3);
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let out = fan
            .block_on(fan.each(hosts, |h| {
                let (now, most) = (now.clone(), most.clone());
                async move {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    h.name.clone()
                }
            }))
            .unwrap();
        let names: Vec<String> = out.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(names, (0..8).map(|i| format!("h{i}")).collect::<Vec<_>>());
        assert!(most.load(Ordering::SeqCst) <= 3, "at most 3 at once");
        assert!(most.load(Ordering::SeqCst) >= 2, "more than one at once");
    }

    #[test]
    fn a_panicking_host_fails_alone() {
        let (fan, hosts) = fanout(3, 10);
        let out = fan
            .block_on(fan.each(hosts, |h| async move {
                if h.name == "h1" {
                    panic!("boom on {}", h.name);
                }
                7
            }))
            .unwrap();
        assert_eq!(*out[0].as_ref().unwrap(), 7);
        assert_eq!(*out[2].as_ref().unwrap(), 7);
        let e = out[1].as_ref().unwrap_err();
        assert_eq!(e.message, "microctl's work on h1 stopped: internal error (boom on h1)");
        assert_eq!(e.host.as_deref(), Some("h1"));
    }
}

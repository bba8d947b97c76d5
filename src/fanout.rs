//! The one fan-out runner: every command that works on many hosts (converge, exec, deploy's
//! batches, `deploy --list`) runs its per-host work through a [`Fanout`]. It owns what they
//! would otherwise each write again: the async runtime, the `--forks` limit, telling the
//! printer when a host's turn starts, turning a panicking host task into that host's error
//! (the others go on), and closing every connection at the end (targets before their jump
//! hosts) whatever the work returned.
//!
//! Hosts arrive as handles (`Arc<Host>`, or a plan holding one) and are handed to the work
//! unchanged; the results come back in the order they were given.
//!
//! Interruption (Ctrl-C, SIGTERM), here for every command at once: the first signal stops
//! starting hosts, says `interrupted` with each host under way and the step it is in, cancels
//! the work under way, then stops what each connection runs on its host (`Pool::stop_all`:
//! the remote step and everything it started, so the host lock is free at once). The hosts
//! under way end with an `interrupted` error naming their step and what became of it, the
//! others as not started; the command prints its recap, and the run exits 128 + the signal's
//! number ([`interrupted_exit`]). A second signal exits at once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{Semaphore, watch};
use tokio::task::AbortHandle;

use crate::error::{Error, ErrorKind, Result};
use crate::inventory::Host;
use crate::report::Printer;
use crate::report::event::Unfinished;
use crate::transport::{Pool, Stopped};

/// The exit status of an interrupted run (128 + the signal's number), 0 while not interrupted.
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);

/// The exit status the run must end with when it was interrupted (130 for SIGINT, 143 for
/// SIGTERM), whatever its hosts' results.
pub fn interrupted_exit() -> Option<i32> {
    Some(INTERRUPTED.load(Ordering::SeqCst)).filter(|c| *c != 0)
}

/// Where an interruption is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Running,
    /// A signal came: no host starts; the work under way is cancelled, its hosts being stopped.
    Stopping,
    /// The hosts' remote work is stopped (or could not be: `Interruption::stopped` says).
    Stopped,
}

/// What an interruption needs to share between the signal listener and [`Fanout::each`].
struct Interruption {
    stage: watch::Sender<Stage>,
    /// The host tasks of the running `each`, cancelled by the first signal.
    tasks: Mutex<Vec<AbortHandle>>,
    /// The hosts under way when the signal came, with their step.
    unfinished: Mutex<Vec<Unfinished>>,
    /// Per host that ran something: what stopping it did.
    stopped: Mutex<HashMap<String, Result<Stopped>>>,
}

/// Runs per-host work over one connection pool, at most `forks` hosts at once.
#[derive(Clone)]
pub struct Fanout {
    pool: Arc<Pool>,
    printer: Printer,
    forks: Arc<Semaphore>,
    interruption: Arc<Interruption>,
}

impl Fanout {
    pub fn new(pool: Arc<Pool>, printer: Printer, forks: usize) -> Fanout {
        let interruption = Arc::new(Interruption {
            stage: watch::channel(Stage::Running).0,
            tasks: Mutex::default(),
            unfinished: Mutex::default(),
            stopped: Mutex::default(),
        });
        Fanout { pool, printer, forks: Arc::new(Semaphore::new(forks.max(1))), interruption }
    }

    /// The pool the work connects through.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// Runs `body` (which calls [`Fanout::each`]) to the end on a runtime of its own, then
    /// closes every connection the pool opened. SIGINT and SIGTERM interrupt it (see the
    /// module's "Interruption").
    pub fn block_on<R>(&self, body: impl Future<Output = R>) -> Result<R> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::new(ErrorKind::Io, "cannot start the async runtime").caused_by(e))?;
        Ok(runtime.block_on(async {
            let listener = match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
                (Ok(int), Ok(term)) => Some(tokio::spawn(self.clone().listen(int, term))),
                _ => None,
            };
            let result = body.await;
            if let Some(listener) = listener {
                listener.abort();
            }
            self.pool.close_all().await;
            result
        }))
    }

    /// Waits for SIGINT or SIGTERM; then interrupts the run (the module's "Interruption"), and
    /// exits at once on a second one.
    async fn listen(self, mut int: Signal, mut term: Signal) {
        let (name, code) = tokio::select! {
            _ = int.recv() => ("SIGINT", 130),
            _ = term.recv() => ("SIGTERM", 143),
        };
        INTERRUPTED.store(code, Ordering::SeqCst);
        let again = async {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        };
        tokio::pin!(again);
        tokio::select! {
            _ = self.interrupt(name, code) => {}
            _ = &mut again => exit_now(code),
        }
        again.await;
        exit_now(code);
    }

    /// What the first signal does: no host starts any more, the printer says `interrupted`
    /// (naming the hosts under way and their steps), their work is cancelled, then what every
    /// connection runs on its host is stopped.
    async fn interrupt(&self, signal: &'static str, code: i32) {
        self.interruption.stage.send_replace(Stage::Stopping);
        let unfinished = self.printer.interrupted(signal, code);
        *self.interruption.unfinished.lock().expect("interruption") = unfinished;
        for task in self.interruption.tasks.lock().expect("interruption").drain(..) {
            task.abort();
        }
        let stopped = self.pool.stop_all().await;
        self.interruption.stopped.lock().expect("interruption").extend(stopped);
        self.interruption.stage.send_replace(Stage::Stopped);
    }

    /// The error of `host`, whose work the interruption cancelled or never started: the step
    /// it was in and what stopping it did (once the stop is done).
    async fn interrupted(&self, host: &str) -> Error {
        let mut stage = self.interruption.stage.subscribe();
        let _ = stage.wait_for(|s| *s == Stage::Stopped).await;
        let step = self
            .interruption
            .unfinished
            .lock()
            .expect("interruption")
            .iter()
            .find(|u| u.host == host)
            .map(|u| u.step.clone());
        let Some(step) = step else {
            return Error::new(ErrorKind::Interrupted, format!("{host} was not started: the run was interrupted"))
                .host(host)
                .hint("run the command again for it");
        };
        let e =
            Error::new(ErrorKind::Interrupted, format!("interrupted during {step} on {host}")).host(host).task(&step);
        match self.interruption.stopped.lock().expect("interruption").get(host) {
            None => e.hint("nothing of it was running on the host; run the command again to finish"),
            Some(Ok(s)) if s.kept > 0 => e.hint(
                "left to the host: its deploy had armed the confirm watchdog, so the host decides alone, as when the controller is killed (an unconfirmed release is rolled back)",
            ),
            Some(Ok(_)) => e.hint("what microctl ran on the host was stopped, and the host lock freed; run the command again to finish"),
            Some(Err(why)) => e.hint(format!(
                "{}: it runs on until it ends or its timeout stops it",
                why.message
            )),
        }
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
                let mut stage = self.interruption.stage.subscribe();
                let name = item.as_ref().name.clone();
                let job = work(item);
                let announce = name.clone();
                let task = tokio::spawn(async move {
                    // No host starts once the run is interrupted.
                    let _slot = tokio::select! {
                        biased;
                        _ = stage.wait_for(|s| *s != Stage::Running) => return None,
                        slot = forks.acquire_owned() => slot.expect("the forks semaphore is never closed"),
                    };
                    if *stage.borrow() != Stage::Running {
                        return None;
                    }
                    printer.host_start(&announce);
                    Some(job.await)
                });
                (name, task)
            })
            .collect();
        {
            // Cancelled by the signal listener, or here if it came already.
            let mut registered = self.interruption.tasks.lock().expect("interruption");
            registered.extend(tasks.iter().map(|(_, t)| t.abort_handle()));
            if *self.interruption.stage.borrow() != Stage::Running {
                registered.drain(..).for_each(|t| t.abort());
            }
        }
        let mut out = Vec::with_capacity(tasks.len());
        for (name, task) in tasks {
            out.push(match task.await {
                Ok(Some(done)) => Ok(done),
                Ok(None) => Err(self.interrupted(&name).await),
                Err(e) if e.is_cancelled() => Err(self.interrupted(&name).await),
                Err(e) => Err(panicked(&name, e)),
            });
        }
        self.interruption.tasks.lock().expect("interruption").clear();
        out
    }
}

/// A second signal: exit now, saying what that means.
fn exit_now(code: i32) -> ! {
    crate::report::notice("interrupted again: exiting at once (what runs on the hosts may go on until its timeout)");
    std::process::exit(code)
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

    /// An interruption: the host under way is cancelled (its work dropped) and reported in
    /// its step, the one waiting for a fork slot never starts.
    #[test]
    fn an_interrupted_run_cancels_the_host_under_way_and_starts_no_other() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (fan, hosts) = fanout(2, 1);
        let started = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        struct Dropped(Arc<AtomicUsize>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let out = fan
            .block_on(async {
                let work = fan.each(hosts, |h| {
                    let (printer, started, dropped, tx) =
                        (fan.printer.clone(), started.clone(), dropped.clone(), tx.clone());
                    async move {
                        let _guard = Dropped(dropped);
                        started.fetch_add(1, Ordering::SeqCst);
                        printer.phase(&h.name, "stuck step", false);
                        tx.send(()).unwrap();
                        std::future::pending::<()>().await;
                    }
                });
                let interrupt = async {
                    rx.lock().await.recv().await;
                    fan.interrupt("SIGINT", 130).await;
                };
                tokio::join!(work, interrupt).0
            })
            .unwrap();
        assert_eq!(started.load(Ordering::SeqCst), 1, "a second host started");
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "the work under way was not cancelled");
        let mut errors: Vec<Error> = out.into_iter().map(|r| r.unwrap_err()).collect();
        errors.sort_by_key(|e| e.task.is_none());
        assert!(errors.iter().all(|e| e.kind == ErrorKind::Interrupted));
        let (ran, waited) = (&errors[0], &errors[1]);
        let (a, b) = (ran.host.clone().unwrap(), waited.host.clone().unwrap());
        assert_ne!(a, b);
        assert_eq!(ran.message, format!("interrupted during stuck step on {a}"));
        assert_eq!(ran.task.as_deref(), Some("stuck step"));
        assert_eq!(waited.message, format!("{b} was not started: the run was interrupted"));
        assert_eq!(interrupted_exit(), None, "only the signal listener sets the exit status");
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

//! Channel budget: any number of concurrent operations on one connection just queue, even when
//! the server's MaxSessions is lower than microctl's budget.

use std::path::Path;
use std::sync::Arc;

use microctl::inventory::Inventory;
use microctl::transport::{ConnectOptions, Pool};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_concurrent_commands_on_a_max_sessions_2_server_all_succeed() {
    let ws = Workspace::new();
    let a = ws.sshd(SshdOptions { max_sessions: 2, ..Default::default() });
    ws.known_hosts(&[&a]);
    let path = ws.inventory(&format!("[hosts.a]\naddress = \"127.0.0.1\"\nport = {}\n", a.port));
    let inv = Arc::new(Inventory::load(Path::new(&path)).unwrap());
    let a_host = inv.hosts[0].clone();
    let pool = Pool::new(inv, ConnectOptions::default());
    let conn = pool.connect(&a_host).await.unwrap();
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let conn = conn.clone();
            tokio::spawn(async move { conn.exec(&format!("sleep 0.1; echo {i}"), &[], |_| {}).await })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        let out = t.await.unwrap().unwrap_or_else(|e| panic!("command {i}: {e}"));
        assert!(out.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{i}\n"));
    }
    assert_eq!(a.accepted(), 1, "one connection for all 30: {}", a.log());
    assert_eq!(conn.stats.channels_opened.load(std::sync::atomic::Ordering::Relaxed), 30);
    pool.close_all().await;
}

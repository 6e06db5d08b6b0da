//! A throwaway Citus cluster (feature `testkit-citus`): a coordinator and two workers, each a
//! throwaway server as in [`super::cluster`], listening on a loopback TCP port as well as on its
//! unix socket (the nodes reach each other over TCP; the tests connect through the socket).
//!
//! Citus keeps its metadata per database, so every [`TestDb::citus`] creates its database on
//! every node, creates the extension in each, and registers the nodes on the coordinator. The
//! nodes are stopped and deleted when the process exits, as the plain cluster is.

use std::sync::atomic::Ordering;
use std::sync::{Mutex, PoisonError};

use futures_util::future::try_join_all;

use super::cluster::{Cluster, Node};
use super::{connect_with, started, Cleanup, Error, Slot, Target, TestDb, NEXT_DB};

/// Worker nodes per cluster: two, so a distributed table's shards are spread over more than one.
const WORKERS: usize = 2;

/// The settings every node adds to the testkit's own.
const SETTINGS: &str = "\
# Citus: the extension; two-phase commit across nodes; no anonymous usage reports.
shared_preload_libraries = 'citus'
max_prepared_transactions = 200
citus.enable_statistics_collection = off
# Plain connections between the nodes: loopback only, and libpq would otherwise look for client
# certificates in the home directory of the user that started the tests.
citus.node_conninfo = 'sslmode=disable'
# Citus runs a maintenance daemon in every database that has the extension.
max_worker_processes = 64
shared_buffers = 128MB
# The coordinator opens up to 16 connections per worker for each session of a multi-shard
# statement, and tests run in parallel.
max_connections = 400
";

/// The running nodes.
pub(super) struct Nodes {
    coordinator: Cluster,
    workers: Vec<Cluster>,
}

/// The Citus cluster of this process (started by the first [`TestDb::citus`]).
static NODES: Slot<Nodes> = Mutex::new(None);

/// Starts the coordinator and the workers, all at once.
fn start_nodes() -> Result<Nodes, Error> {
    let mut nodes = std::thread::scope(|scope| {
        let starting: Vec<_> = (0..=WORKERS).map(|_| scope.spawn(start_node)).collect();
        starting
            .into_iter()
            .map(|node| {
                node.join().unwrap_or_else(|_| {
                    Err(Error::msg(
                        "testkit: the thread starting a Citus node panicked",
                    ))
                })
            })
            .collect::<Result<Vec<Cluster>, Error>>()
    })?;
    let coordinator = nodes.remove(0);
    Ok(Nodes {
        coordinator,
        workers: nodes,
    })
}

/// Starts one node (on a free loopback port, which the testkit picks for every server).
fn start_node() -> Result<Cluster, Error> {
    Cluster::start(&Node {
        settings: SETTINGS,
        library: Some("citus"),
    })
}

/// Stops the nodes and deletes their files (see [`super::shutdown`]).
pub(super) fn shutdown() {
    let nodes = NODES.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(Ok(nodes)) = nodes {
        nodes.coordinator.stop();
        for worker in &nodes.workers {
            worker.stop();
        }
    }
}

/// Databases created so far for a `TestDb` under construction: dropped if it is never made.
struct Pending(Vec<Cleanup>);

impl Drop for Pending {
    fn drop(&mut self) {
        for cleanup in self.0.drain(..) {
            cleanup.run();
        }
    }
}

impl TestDb {
    /// A fresh database on a throwaway Citus cluster (coordinator and two workers), and a
    /// connection to it on the coordinator.
    ///
    /// The first call starts the cluster from the local PostgreSQL binaries whose installation
    /// has Citus (see [`super`] for where they are looked for; `DATABASE_URL` is not used). The
    /// database exists on every node with the `citus` extension created, the coordinator is
    /// registered (`citus_set_coordinator_host`) and both workers are added
    /// (`citus_add_node`), so `create_distributed_table` and `create_reference_table` work at
    /// once. Dropping the `TestDb` drops the database on every node.
    pub async fn citus() -> Result<TestDb, Error> {
        let nodes = tokio::task::spawn_blocking(|| started(&NODES, start_nodes))
            .await
            .map_err(|e| Error::with("testkit: the task starting the Citus cluster failed", e))??;
        let name = format!("pgbulk_citus_{}", NEXT_DB.fetch_add(1, Ordering::Relaxed));
        let all: Vec<&Cluster> = std::iter::once(&nodes.coordinator)
            .chain(&nodes.workers)
            .collect();
        let mut pending = Pending(
            all.iter()
                .map(|node| Cleanup {
                    admin: node.config("postgres"),
                    target: Target::Database(name.clone()),
                    wait: false,
                })
                .collect(),
        );
        try_join_all(all.iter().map(|node| create_database(node, &name))).await?;

        let config = nodes.coordinator.config(&name);
        let client = connect_with(&config).await?;
        // Registering connects the coordinator to each worker; on a loaded machine the first
        // connection to a fresh database can fail, so it is retried a few times.
        let mut attempt = 0;
        loop {
            match register(&client, &nodes).await {
                Ok(()) => break,
                Err(_) if attempt < 3 => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
                Err(e) => {
                    return Err(Error::with(
                        format!("testkit: cannot register the Citus nodes of {name}"),
                        e,
                    ))
                }
            }
        }
        Ok(TestDb {
            client,
            config,
            dbname: name,
            schema: None,
            cleanup: std::mem::take(&mut pending.0),
        })
    }
}

/// Registers the coordinator and adds the workers (both idempotent).
async fn register(
    client: &tokio_postgres::Client,
    nodes: &Nodes,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "SELECT citus_set_coordinator_host('127.0.0.1', $1)",
            &[&i32::from(nodes.coordinator.port)],
        )
        .await?;
    for worker in &nodes.workers {
        client
            .execute(
                "SELECT citus_add_node('127.0.0.1', $1)",
                &[&i32::from(worker.port)],
            )
            .await?;
    }
    Ok(())
}

/// Creates database `name` on `node` and the `citus` extension in it.
async fn create_database(node: &Cluster, name: &str) -> Result<(), Error> {
    let admin = connect_with(&node.config("postgres")).await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE template0"))
        .await
        .map_err(|e| Error::with(format!("testkit: cannot create database {name}"), e))?;
    let db = connect_with(&node.config(name)).await?;
    db.batch_execute("CREATE EXTENSION citus")
        .await
        .map_err(|e| {
            Error::with(
                format!("testkit: cannot create extension citus in {name}"),
                e,
            )
        })
}

//! The metadata store port: tables of JSON records keyed by strings,
//! written in atomic batches, read back whole, and watched for changes.
//! `berth-store` implements it over redb; [`MemoryStore`] is the fake for
//! unit tests of service logic.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Mutex, MutexGuard};

use anyhow::{Context, Result};
use serde::{Serialize, de::DeserializeOwned};

/// The tables of the metadata store. Values are JSON documents so that a
/// record can gain fields without a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    Containers,
    Images,
    /// normalized reference ("docker.io/library/busybox:latest") -> image id
    Tags,
    /// chain id -> unpacked layer
    Layers,
    /// volume name -> volume record
    Volumes,
    /// network id -> network record
    Networks,
    /// the store's own facts: its schema version
    Meta,
    /// CRI sandbox id -> its CNI attachment (what a DEL must repeat)
    PodNetworks,
}

impl Table {
    pub const ALL: [Table; 8] = [
        Table::Containers,
        Table::Images,
        Table::Tags,
        Table::Layers,
        Table::Volumes,
        Table::Networks,
        Table::Meta,
        Table::PodNetworks,
    ];

    /// The table's name on disk.
    pub fn name(self) -> &'static str {
        match self {
            Table::Containers => "containers",
            Table::Images => "images",
            Table::Tags => "tags",
            Table::Layers => "layers",
            Table::Volumes => "volumes",
            Table::Networks => "networks",
            Table::Meta => "meta",
            Table::PodNetworks => "pod_networks",
        }
    }
}

/// One change in an atomic batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    Put(Table, String, Vec<u8>),
    Delete(Table, String),
}

impl WriteOp {
    pub fn put_json<T: Serialize>(table: Table, key: &str, value: &T) -> Result<Self> {
        Ok(WriteOp::Put(
            table,
            key.to_string(),
            serde_json::to_vec(value)?,
        ))
    }

    pub fn table(&self) -> Table {
        match self {
            WriteOp::Put(t, ..) | WriteOp::Delete(t, _) => *t,
        }
    }
}

/// A committed change, as watchers see it: batches arrive whole and in
/// commit order.
pub type Change = WriteOp;

/// Where metadata lives. Every method is a whole transaction: `write`
/// applies its batch atomically and durably before it returns.
pub trait MetadataStore: Send + Sync {
    fn write(&self, ops: Vec<WriteOp>) -> Result<()>;
    fn get_raw(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>>;
    /// All records of a table, in key order.
    fn list_raw(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>>;
    /// Committed batches that touch any of `tables`, from now on. The
    /// receiver ends when the store does; dropping it unsubscribes.
    fn watch(&self, tables: &[Table]) -> Receiver<Vec<Change>>;
}

/// JSON records over any [`MetadataStore`].
pub trait MetadataStoreExt: MetadataStore {
    fn put_json<T: Serialize>(&self, table: Table, key: &str, value: &T) -> Result<()> {
        self.write(vec![WriteOp::put_json(table, key, value)?])
    }

    fn delete(&self, table: Table, key: &str) -> Result<()> {
        self.write(vec![WriteOp::Delete(table, key.to_string())])
    }

    fn get_json<T: DeserializeOwned>(&self, table: Table, key: &str) -> Result<Option<T>> {
        match self.get_raw(table, key)? {
            Some(v) => Ok(Some(
                serde_json::from_slice(&v).with_context(|| format!("decoding record {key}"))?,
            )),
            None => Ok(None),
        }
    }

    /// All records of a table decoded; a record that does not decode is
    /// reported and skipped rather than making the whole table unreadable.
    fn list_json<T: DeserializeOwned>(&self, table: Table) -> Result<Vec<(String, T)>> {
        let mut out = Vec::new();
        for (k, v) in self.list_raw(table)? {
            match serde_json::from_slice(&v) {
                Ok(t) => out.push((k, t)),
                Err(e) => tracing::warn!(key = %k, error = %e, "skipping undecodable record"),
            }
        }
        Ok(out)
    }
}

impl<S: MetadataStore + ?Sized> MetadataStoreExt for S {}

/// The subscribers of a store. A store calls [`Watchers::publish`] while it
/// still holds its write lock, so that every watcher sees batches in commit
/// order.
#[derive(Default)]
pub struct Watchers {
    subs: Mutex<Vec<Subscriber>>,
}

/// The tables a watcher follows, and where its batches go.
type Subscriber = (Vec<Table>, Sender<Vec<Change>>);

impl Watchers {
    fn subs(&self) -> MutexGuard<'_, Vec<Subscriber>> {
        self.subs.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn subscribe(&self, tables: &[Table]) -> Receiver<Vec<Change>> {
        let (tx, rx) = channel();
        self.subs().push((tables.to_vec(), tx));
        rx
    }

    /// Sends each subscriber the batch if it touches a table it watches;
    /// subscribers that went away are dropped.
    pub fn publish(&self, batch: &[Change]) {
        self.subs().retain(|(tables, tx)| {
            if !batch.iter().any(|op| tables.contains(&op.table())) {
                return true;
            }
            tx.send(batch.to_vec()).is_ok()
        });
    }
}

/// A store in memory: the fake for unit tests of service logic.
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<BTreeMap<(Table, String), Vec<u8>>>,
    watchers: Watchers,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl MetadataStore for MemoryStore {
    fn write(&self, ops: Vec<WriteOp>) -> Result<()> {
        let mut t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        for op in &ops {
            match op {
                WriteOp::Put(table, k, v) => {
                    t.insert((*table, k.clone()), v.clone());
                }
                WriteOp::Delete(table, k) => {
                    t.remove(&(*table, k.clone()));
                }
            }
        }
        self.watchers.publish(&ops);
        Ok(())
    }

    fn get_raw(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>> {
        let t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        Ok(t.get(&(table, key.to_string())).cloned())
    }

    fn list_raw(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>> {
        let t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        Ok(t.iter()
            .filter(|((tb, _), _)| *tb == table)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }

    fn watch(&self, tables: &[Table]) -> Receiver<Vec<Change>> {
        self.watchers.subscribe(tables)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_records_round_trip_and_list_in_key_order() {
        let s = MemoryStore::new();
        s.put_json(Table::Volumes, "b", &2).unwrap();
        s.put_json(Table::Volumes, "a", &1).unwrap();
        s.put_json(Table::Networks, "n", &3).unwrap();
        assert_eq!(s.get_json::<i32>(Table::Volumes, "a").unwrap(), Some(1));
        let all: Vec<(String, i32)> = s.list_json(Table::Volumes).unwrap();
        assert_eq!(all, [("a".to_string(), 1), ("b".to_string(), 2)]);
        s.delete(Table::Volumes, "a").unwrap();
        assert_eq!(s.get_json::<i32>(Table::Volumes, "a").unwrap(), None);
    }

    #[test]
    fn undecodable_records_are_skipped_not_fatal() {
        let s = MemoryStore::new();
        s.write(vec![
            WriteOp::Put(Table::Images, "bad".into(), b"{".to_vec()),
            WriteOp::put_json(Table::Images, "good", &"x").unwrap(),
        ])
        .unwrap();
        let all: Vec<(String, String)> = s.list_json(Table::Images).unwrap();
        assert_eq!(all, [("good".to_string(), "x".to_string())]);
        assert!(s.get_json::<String>(Table::Images, "bad").is_err());
    }

    #[test]
    fn watchers_see_whole_batches_of_their_tables_in_order() {
        let s = MemoryStore::new();
        let containers = s.watch(&[Table::Containers]);
        let both = s.watch(&[Table::Containers, Table::Images]);
        let b1 = vec![
            WriteOp::Put(Table::Containers, "c".into(), b"1".to_vec()),
            WriteOp::Put(Table::Images, "i".into(), b"2".to_vec()),
        ];
        let b2 = vec![WriteOp::Delete(Table::Images, "i".into())];
        let b3 = vec![WriteOp::Delete(Table::Containers, "c".into())];
        for b in [&b1, &b2, &b3] {
            s.write(b.clone()).unwrap();
        }
        assert_eq!(
            containers.try_iter().collect::<Vec<_>>(),
            [b1.clone(), b3.clone()]
        );
        assert_eq!(both.try_iter().collect::<Vec<_>>(), [b1, b2, b3]);
    }

    #[test]
    fn dropped_watchers_are_forgotten() {
        let s = MemoryStore::new();
        drop(s.watch(&[Table::Tags]));
        s.put_json(Table::Tags, "t", &"id").unwrap();
        assert!(s.watchers.subs().is_empty());
    }
}

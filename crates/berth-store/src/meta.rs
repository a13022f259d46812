use std::path::Path;

use anyhow::{Context, Result};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Serialize, de::DeserializeOwned};

/// The tables of the metadata store. Values are JSON documents so that a
/// record can gain fields without a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

impl Table {
    fn def(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        match self {
            Table::Containers => TableDefinition::new("containers"),
            Table::Images => TableDefinition::new("images"),
            Table::Tags => TableDefinition::new("tags"),
            Table::Layers => TableDefinition::new("layers"),
            Table::Volumes => TableDefinition::new("volumes"),
            Table::Networks => TableDefinition::new("networks"),
        }
    }

    const ALL: [Table; 6] = [
        Table::Containers,
        Table::Images,
        Table::Tags,
        Table::Layers,
        Table::Volumes,
        Table::Networks,
    ];
}

/// One change in an atomic batch.
#[derive(Debug, Clone)]
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
}

pub struct MetaStore {
    db: Database,
}

impl MetaStore {
    pub fn open(path: &Path) -> Result<Self> {
        let db = Database::create(path)
            .with_context(|| format!("opening metadata store {}", path.display()))?;
        // create every table up front so that reads never meet a missing one
        let tx = db.begin_write()?;
        for t in Table::ALL {
            tx.open_table(t.def())?;
        }
        tx.commit()?;
        Ok(MetaStore { db })
    }

    /// Applies all operations in one durable transaction.
    pub fn write(&self, ops: Vec<WriteOp>) -> Result<()> {
        let tx = self.db.begin_write()?;
        for op in ops {
            match op {
                WriteOp::Put(t, k, v) => {
                    tx.open_table(t.def())?.insert(k.as_str(), v.as_slice())?;
                }
                WriteOp::Delete(t, k) => {
                    tx.open_table(t.def())?.remove(k.as_str())?;
                }
            }
        }
        tx.commit().context("committing metadata")?;
        Ok(())
    }

    pub fn put_json<T: Serialize>(&self, table: Table, key: &str, value: &T) -> Result<()> {
        self.write(vec![WriteOp::put_json(table, key, value)?])
    }

    pub fn delete(&self, table: Table, key: &str) -> Result<()> {
        self.write(vec![WriteOp::Delete(table, key.to_string())])
    }

    pub fn get_raw(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(table.def())?;
        Ok(t.get(key)?.map(|v| v.value().to_vec()))
    }

    pub fn get_json<T: DeserializeOwned>(&self, table: Table, key: &str) -> Result<Option<T>> {
        match self.get_raw(table, key)? {
            Some(v) => Ok(Some(
                serde_json::from_slice(&v).with_context(|| format!("decoding record {key}"))?,
            )),
            None => Ok(None),
        }
    }

    /// All records of a table, in key order.
    pub fn list_raw(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(table.def())?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (k, v) = item?;
            out.push((k.value().to_string(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// All records of a table decoded; a record that does not decode is
    /// reported and skipped rather than making the whole table unreadable.
    pub fn list_json<T: DeserializeOwned>(&self, table: Table) -> Result<Vec<(String, T)>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_is_atomic_and_persistent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        {
            let s = MetaStore::open(&path).unwrap();
            s.write(vec![
                WriteOp::put_json(Table::Images, "a", &serde_json::json!({"x": 1})).unwrap(),
                WriteOp::Put(Table::Tags, "t".into(), b"\"a\"".to_vec()),
            ])
            .unwrap();
            s.delete(Table::Tags, "t").unwrap();
        }
        let s = MetaStore::open(&path).unwrap();
        let v: serde_json::Value = s.get_json(Table::Images, "a").unwrap().unwrap();
        assert_eq!(v["x"], 1);
        assert!(s.get_raw(Table::Tags, "t").unwrap().is_none());
        assert_eq!(s.list_raw(Table::Images).unwrap().len(), 1);
    }
}

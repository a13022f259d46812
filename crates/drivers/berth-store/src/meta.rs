//! The metadata store driver: berth-core's `MetadataStore` over one redb
//! file, one table per record kind.

use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc::Receiver;

use anyhow::{Context, Result};
use berth_core::store::{Change, MetadataStore, Table, Watchers, WriteOp};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

fn def(t: Table) -> TableDefinition<'static, &'static str, &'static [u8]> {
    TableDefinition::new(t.name())
}

pub struct RedbStore {
    db: Database,
    /// held across commit and publish, so that watchers see batches in
    /// commit order
    write_lock: Mutex<()>,
    watchers: Watchers,
}

impl RedbStore {
    pub fn open(path: &Path) -> Result<Self> {
        let db = Database::create(path)
            .with_context(|| format!("opening metadata store {}", path.display()))?;
        // create every table up front so that reads never meet a missing one
        let tx = db.begin_write()?;
        for t in Table::ALL {
            tx.open_table(def(t))?;
        }
        tx.commit()?;
        Ok(RedbStore {
            db,
            write_lock: Mutex::new(()),
            watchers: Watchers::default(),
        })
    }
}

impl MetadataStore for RedbStore {
    /// Applies all operations in one durable transaction.
    fn write(&self, ops: Vec<WriteOp>) -> Result<()> {
        let _order = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let tx = self.db.begin_write()?;
        for op in &ops {
            match op {
                WriteOp::Put(t, k, v) => {
                    tx.open_table(def(*t))?.insert(k.as_str(), v.as_slice())?;
                }
                WriteOp::Delete(t, k) => {
                    tx.open_table(def(*t))?.remove(k.as_str())?;
                }
            }
        }
        tx.commit().context("committing metadata")?;
        self.watchers.publish(&ops);
        Ok(())
    }

    fn get_raw(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(def(table))?;
        Ok(t.get(key)?.map(|v| v.value().to_vec()))
    }

    fn list_raw(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(def(table))?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (k, v) = item?;
            out.push((k.value().to_string(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn watch(&self, tables: &[Table]) -> Receiver<Vec<Change>> {
        self.watchers.subscribe(tables)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::store::MetadataStoreExt;

    #[test]
    fn batch_is_atomic_and_persistent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        {
            let s = RedbStore::open(&path).unwrap();
            s.write(vec![
                WriteOp::put_json(Table::Images, "a", &serde_json::json!({"x": 1})).unwrap(),
                WriteOp::Put(Table::Tags, "t".into(), b"\"a\"".to_vec()),
            ])
            .unwrap();
            s.delete(Table::Tags, "t").unwrap();
        }
        let s = RedbStore::open(&path).unwrap();
        let v: serde_json::Value = s.get_json(Table::Images, "a").unwrap().unwrap();
        assert_eq!(v["x"], 1);
        assert!(s.get_raw(Table::Tags, "t").unwrap().is_none());
        assert_eq!(s.list_raw(Table::Images).unwrap().len(), 1);
    }

    #[test]
    fn the_schema_version_is_stamped_once_and_a_newer_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        {
            let s = RedbStore::open(&path).unwrap();
            assert_eq!(berth_core::schema::upgrade(&s).unwrap(), 1);
        }
        let s = RedbStore::open(&path).unwrap();
        assert_eq!(
            berth_core::schema::upgrade(&s).unwrap(),
            berth_core::schema::CURRENT
        );
        s.put_json(Table::Meta, "schema_version", &99u32).unwrap();
        let err = berth_core::schema::upgrade(&s).unwrap_err().to_string();
        assert!(err.contains("newer berth (schema version 99)"), "{err}");
    }

    #[test]
    fn watchers_see_committed_batches() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(&dir.path().join("meta.redb")).unwrap();
        let w = s.watch(&[Table::Volumes]);
        s.put_json(Table::Images, "i", &1).unwrap();
        s.put_json(Table::Volumes, "v", &2).unwrap();
        let got: Vec<Vec<Change>> = w.try_iter().collect();
        assert_eq!(
            got,
            [vec![WriteOp::Put(
                Table::Volumes,
                "v".into(),
                b"2".to_vec()
            )]]
        );
    }
}

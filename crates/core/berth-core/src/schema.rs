//! The version of the records' on-disk form, and the migrations between
//! versions. A data root carries its version in `meta/schema_version`;
//! one written before versioning began has none and is version 1. Each
//! migration rewrites records and bumps the version in one atomic batch, so
//! a daemon killed mid-upgrade finds either the old or the new form.

use anyhow::{Result, bail};

use crate::store::{MetadataStore, MetadataStoreExt, Table, WriteOp};

/// The version this build writes.
pub const CURRENT: u32 = 1;

const KEY: &str = "schema_version";

/// A migration from version `from` to `from + 1`: the writes that convert
/// the records (the version bump is added to the same batch).
pub struct Migration {
    pub from: u32,
    pub what: &'static str,
    pub run: fn(&dyn MetadataStore) -> Result<Vec<WriteOp>>,
}

/// Every migration, oldest first. Version 1 is the form of the releases
/// before versioning: nothing to convert.
pub const MIGRATIONS: &[Migration] = &[];

/// Brings the store to [`CURRENT`], refusing one written by a newer berth.
/// Returns the version found.
pub fn upgrade(store: &dyn MetadataStore) -> Result<u32> {
    upgrade_with(store, MIGRATIONS, CURRENT)
}

fn upgrade_with(store: &dyn MetadataStore, migrations: &[Migration], target: u32) -> Result<u32> {
    let found = store.get_json::<u32>(Table::Meta, KEY)?.unwrap_or(1);
    if found > target {
        bail!(
            "the data root was written by a newer berth (schema version {found}); this berth reads up to version {target}"
        );
    }
    let mut version = found;
    while version < target {
        let Some(m) = migrations.iter().find(|m| m.from == version) else {
            bail!("no migration from schema version {version}");
        };
        tracing::info!(
            "migrating the metadata from schema version {version}: {}",
            m.what
        );
        let mut ops = (m.run)(store)?;
        ops.push(WriteOp::put_json(Table::Meta, KEY, &(version + 1))?);
        store.write(ops)?;
        version += 1;
    }
    if store.get_raw(Table::Meta, KEY)?.is_none() {
        store.put_json(Table::Meta, KEY, &target)?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn rename_field(store: &dyn MetadataStore) -> Result<Vec<WriteOp>> {
        let mut ops = Vec::new();
        for (k, mut v) in store.list_json::<serde_json::Value>(Table::Containers)? {
            if let Some(o) = v.as_object_mut()
                && let Some(x) = o.remove("old")
            {
                o.insert("new".into(), x);
            }
            ops.push(WriteOp::put_json(Table::Containers, &k, &v)?);
        }
        Ok(ops)
    }

    const TEST_MIGRATIONS: &[Migration] = &[Migration {
        from: 1,
        what: "rename old to new",
        run: rename_field,
    }];

    #[test]
    fn an_unversioned_store_is_version_1_and_gets_stamped() {
        let s = MemoryStore::new();
        assert_eq!(upgrade(&s).unwrap(), 1);
        assert_eq!(s.get_json::<u32>(Table::Meta, KEY).unwrap(), Some(CURRENT));
        assert_eq!(upgrade(&s).unwrap(), CURRENT);
    }

    #[test]
    fn migrations_rewrite_records_and_bump_the_version_together() {
        let s = MemoryStore::new();
        s.put_json(Table::Containers, "c", &serde_json::json!({"old": 7}))
            .unwrap();
        let changes = s.watch(&[Table::Meta]);
        assert_eq!(upgrade_with(&s, TEST_MIGRATIONS, 2).unwrap(), 1);
        let rec: serde_json::Value = s.get_json(Table::Containers, "c").unwrap().unwrap();
        assert_eq!(rec, serde_json::json!({"new": 7}));
        assert_eq!(s.get_json::<u32>(Table::Meta, KEY).unwrap(), Some(2));
        // one batch: the records and the version together
        let batches: Vec<_> = changes.try_iter().collect();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].len(), 2);
    }

    #[test]
    fn a_newer_store_is_refused_and_left_alone() {
        let s = MemoryStore::new();
        s.put_json(Table::Meta, KEY, &(CURRENT + 1)).unwrap();
        let err = upgrade(&s).unwrap_err().to_string();
        assert!(err.contains("newer berth"), "{err}");
        assert_eq!(
            s.get_json::<u32>(Table::Meta, KEY).unwrap(),
            Some(CURRENT + 1)
        );
    }

    #[test]
    fn a_missing_migration_is_an_error() {
        let s = MemoryStore::new();
        let err = upgrade_with(&s, &[], 3).unwrap_err().to_string();
        assert!(err.contains("no migration from schema version 1"), "{err}");
    }
}

//! A walk over a TOML table that knows the dotted path of every key (`etcd.role`,
//! `units[1].name`), so that every problem with a first-boot file names the key it is about, and
//! every key nobody asked for is reported as unknown.

use std::collections::{BTreeMap, BTreeSet};

/// A problem with one key of the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct KeyError {
    /// The dotted path of the key (`etcd.role`, `units[0].name`).
    pub key: String,
    /// What is wrong with it.
    pub problem: String,
}

/// A table being read; [`Table::finish`] reports the keys that were never read.
#[derive(Debug)]
pub struct Table<'a> {
    path: String,
    table: &'a toml::Table,
    read: BTreeSet<&'a str>,
}

impl<'a> Table<'a> {
    /// The table at `path` (empty for the file itself).
    pub fn new(path: impl Into<String>, table: &'a toml::Table) -> Table<'a> {
        Table {
            path: path.into(),
            table,
            read: BTreeSet::new(),
        }
    }

    /// The dotted path of `name` in this table.
    pub fn key(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// An error about `name` in this table.
    pub fn error(&self, name: &str, problem: impl Into<String>) -> KeyError {
        KeyError {
            key: self.key(name),
            problem: problem.into(),
        }
    }

    /// Whether the table has `name` (without reading it).
    pub fn has(&self, name: &str) -> bool {
        self.table.contains_key(name)
    }

    /// The value of `name`, marked as read.
    pub fn value(&mut self, name: &str) -> Option<&'a toml::Value> {
        let (key, value) = self.table.get_key_value(name)?;
        self.read.insert(key.as_str());
        Some(value)
    }

    fn wrong_type(&self, name: &str, expected: &str, value: &toml::Value) -> KeyError {
        self.error(
            name,
            format!("expected {expected}, got {}", value.type_str()),
        )
    }

    /// A string.
    pub fn string(&mut self, name: &str) -> Result<Option<String>, KeyError> {
        match self.value(name) {
            None => Ok(None),
            Some(toml::Value::String(text)) => Ok(Some(text.clone())),
            Some(other) => Err(self.wrong_type(name, "a string", other)),
        }
    }

    /// A boolean.
    pub fn bool(&mut self, name: &str) -> Result<Option<bool>, KeyError> {
        match self.value(name) {
            None => Ok(None),
            Some(toml::Value::Boolean(flag)) => Ok(Some(*flag)),
            Some(other) => Err(self.wrong_type(name, "true or false", other)),
        }
    }

    /// An array of strings (missing: empty).
    pub fn strings(&mut self, name: &str) -> Result<Vec<String>, KeyError> {
        let items = match self.value(name) {
            None => return Ok(Vec::new()),
            Some(toml::Value::Array(items)) => items,
            Some(other) => return Err(self.wrong_type(name, "an array of strings", other)),
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                toml::Value::String(text) => Ok(text.clone()),
                other => Err(self.wrong_type(&format!("{name}[{i}]"), "a string", other)),
            })
            .collect()
    }

    /// A table of strings (missing: empty).
    pub fn string_map(&mut self, name: &str) -> Result<BTreeMap<String, String>, KeyError> {
        let Some(table) = self.table(name)? else {
            return Ok(BTreeMap::new());
        };
        table
            .table
            .iter()
            .map(|(key, value)| match value {
                toml::Value::String(text) => Ok((key.clone(), text.clone())),
                other => Err(table.wrong_type(key, "a string", other)),
            })
            .collect()
    }

    /// A sub-table.
    pub fn table(&mut self, name: &str) -> Result<Option<Table<'a>>, KeyError> {
        match self.value(name) {
            None => Ok(None),
            Some(toml::Value::Table(table)) => Ok(Some(Table::new(self.key(name), table))),
            Some(other) => Err(self.wrong_type(name, "a table", other)),
        }
    }

    /// An array of tables (`[[name]]`; missing: empty).
    pub fn tables(&mut self, name: &str) -> Result<Vec<Table<'a>>, KeyError> {
        let items = match self.value(name) {
            None => return Ok(Vec::new()),
            Some(toml::Value::Array(items)) => items,
            Some(other) => return Err(self.wrong_type(name, "an array of tables", other)),
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let key = format!("{name}[{i}]");
                match item {
                    toml::Value::Table(table) => Ok(Table::new(self.key(&key), table)),
                    other => Err(self.wrong_type(&key, "a table", other)),
                }
            })
            .collect()
    }

    /// The table as it is, all of it marked as read.
    pub fn raw(&mut self) -> &'a toml::Table {
        self.read.extend(self.table.keys().map(String::as_str));
        self.table
    }

    /// Fails on the first key that was never read.
    pub fn finish(self) -> Result<(), KeyError> {
        match self
            .table
            .keys()
            .find(|key| !self.read.contains(key.as_str()))
        {
            Some(key) => Err(self.error(key, "unknown key")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn errors_name_the_dotted_path() {
        let file = table("a = 1\n[t]\nlist = [\"x\", 2]\n[[u]]\nk = \"v\"\n[[u]]\nk = 3\n");
        let mut top = Table::new("", &file);
        assert_eq!(
            top.string("a").unwrap_err().to_string(),
            "a: expected a string, got integer"
        );
        let mut t = top.table("t").unwrap().unwrap();
        assert_eq!(
            t.strings("list").unwrap_err().to_string(),
            "t.list[1]: expected a string, got integer"
        );
        let mut units = top.tables("u").unwrap();
        assert_eq!(units[0].string("k").unwrap().as_deref(), Some("v"));
        assert_eq!(
            units[1].string("k").unwrap_err().to_string(),
            "u[1].k: expected a string, got integer"
        );
    }

    #[test]
    fn unread_keys_are_unknown() {
        let file = table("a = \"x\"\nb = true\n");
        let mut top = Table::new("etcd", &file);
        top.string("a").unwrap();
        assert_eq!(top.finish().unwrap_err().to_string(), "etcd.b: unknown key");
        let mut top = Table::new("", &file);
        assert_eq!(top.bool("b").unwrap(), Some(true));
        assert!(!top.has("c"));
        top.raw();
        top.finish().unwrap();
    }
}

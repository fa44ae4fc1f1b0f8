//! Script values: what pseudo-variables, AVPs and `$var(x)` hold.

use std::borrow::Cow;
use std::fmt;

/// A script value: OpenSER's `pv_value_t` (an integer, a string, or null).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Value {
    #[default]
    Null,
    Int(i64),
    Str(String),
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as text (`""` for null), as formats print it.
    pub fn as_text(&self) -> Cow<'_, str> {
        match self {
            Value::Null => Cow::Borrowed(""),
            Value::Int(i) => Cow::Owned(i.to_string()),
            Value::Str(s) => Cow::Borrowed(s),
        }
    }

    /// The value as a number: strings are read as decimal (leading digits,
    /// optional sign), as OpenSER's `str2sint` does; null is 0.
    pub fn as_int(&self) -> i64 {
        match self {
            Value::Null => 0,
            Value::Int(i) => *i,
            Value::Str(s) => parse_leading_int(s),
        }
    }

    /// Truth in a condition: OpenSER tests a pseudo-variable for being set and
    /// not empty or zero.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Int(i) => *i != 0,
            Value::Str(s) => !s.is_empty(),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_text())
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

pub(crate) fn parse_leading_int(s: &str) -> i64 {
    let t = s.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut n: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        n = n.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg {
        -n
    } else {
        n
    }
}

/// An AVP's name: `i:3` (numeric) or `s:name` / `name` (string).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AvpName {
    Int(u32),
    Str(String),
}

impl AvpName {
    /// `i:3`, `s:name`, `name`, `$avp(s:name)`. A bare name is first a global
    /// alias OpenSER 1.3 defines itself (`serial_branch`, the AVP of
    /// `serialize_branches`); the config's own `avp_aliases` are resolved by
    /// the compiler before this is called.
    pub fn parse(spec: &str) -> Option<AvpName> {
        let s = spec.trim();
        let s = s.strip_prefix("$avp(").and_then(|r| r.strip_suffix(')')).unwrap_or(s);
        if let Some(n) = s.strip_prefix("i:").or_else(|| s.strip_prefix("I:")) {
            return n.parse().ok().map(AvpName::Int);
        }
        if s == "serial_branch" {
            return Some(AvpName::Int(crate::modules::core::SERIAL_AVP));
        }
        let name = s.strip_prefix("s:").or_else(|| s.strip_prefix("S:")).unwrap_or(s);
        (!name.is_empty()).then(|| AvpName::Str(name.to_string()))
    }
}

/// The AVPs of a message (and later of its transaction): each name holds a
/// stack of values, the newest first, as OpenSER's AVP lists do.
#[derive(Clone, Debug, Default)]
pub struct Avps {
    list: Vec<(AvpName, Value)>,
}

impl Avps {
    /// The newest value of `name`.
    pub fn get(&self, name: &AvpName) -> Option<&Value> {
        self.list.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The newest value of the AVP named by the string `name` (no name built
    /// to look it up).
    pub fn get_str(&self, name: &str) -> Option<&Value> {
        self.list.iter().rev().find(|(n, _)| matches!(n, AvpName::Str(s) if s == name)).map(|(_, v)| v)
    }

    /// The `index`-th value, newest first (`$(avp(x)[1])`); negative counts
    /// from the oldest.
    pub fn get_index(&self, name: &AvpName, index: i64) -> Option<&Value> {
        let mut values = self.list.iter().rev().filter(|(n, _)| n == name).map(|(_, v)| v);
        if index >= 0 {
            values.nth(index as usize)
        } else {
            let all: Vec<&Value> = values.collect();
            let i = all.len() as i64 + index;
            (i >= 0).then(|| all[i as usize])
        }
    }

    /// Every value of `name`, newest first.
    pub fn all(&self, name: &AvpName) -> impl Iterator<Item = &Value> {
        let name = name.clone();
        self.list.iter().rev().filter(move |(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Adds a value on top (`$avp(x) = v`).
    pub fn push(&mut self, name: AvpName, value: Value) {
        self.list.push((name, value));
    }

    /// Replaces every value with one (`$avp(x) := v`).
    pub fn set_all(&mut self, name: AvpName, value: Value) {
        self.delete(&name);
        self.list.push((name, value));
    }

    /// Removes every value of `name` (`$avp(x) = null`).
    pub fn delete(&mut self, name: &AvpName) {
        self.list.retain(|(n, _)| n != name);
    }

    /// Removes every value of the AVP named by the string `name`.
    pub fn delete_str(&mut self, name: &str) {
        self.list.retain(|(n, _)| !matches!(n, AvpName::Str(s) if s == name));
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Every AVP, the newest first (OpenSER's list order).
    pub fn iter(&self) -> impl Iterator<Item = (&AvpName, &Value)> {
        self.list.iter().rev().map(|(n, v)| (n, v))
    }

    /// Removes, newest first, at most `limit` AVPs for which `remove` says
    /// so; how many were removed.
    pub fn remove_where(&mut self, limit: usize, mut remove: impl FnMut(&AvpName, &Value) -> bool) -> usize {
        let mut gone = Vec::new();
        for i in (0..self.list.len()).rev() {
            if gone.len() == limit {
                break;
            }
            let (n, v) = &self.list[i];
            if remove(n, v) {
                gone.push(i);
            }
        }
        // Descending indices: each removal leaves the others in place.
        for &i in &gone {
            self.list.remove(i);
        }
        gone.len()
    }
}

/// Script variables (`$var(x)`): in OpenSER they belong to the process and
/// keep their values from one message to the next; a worker owns one `Vars`.
#[derive(Clone, Debug, Default)]
pub struct Vars {
    vars: Vec<(String, Value)>,
}

impl Vars {
    pub fn get(&self, name: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.vars.iter().find(|(n, _)| n == name).map_or(&NULL, |(_, v)| v)
    }

    pub fn set(&mut self, name: &str, value: Value) {
        match self.vars.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => self.vars.push((name.to_string(), value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_convert_as_openser_does() {
        assert_eq!(Value::str("42abc").as_int(), 42);
        assert_eq!(Value::str("-7").as_int(), -7);
        assert_eq!(Value::Null.as_text(), "");
        assert!(!Value::str("").truthy());
        assert!(Value::Int(-1).truthy());
    }

    #[test]
    fn avps_stack_newest_first() {
        let mut a = Avps::default();
        let n = AvpName::parse("s:x").unwrap();
        a.push(n.clone(), Value::Int(1));
        a.push(n.clone(), Value::Int(2));
        assert_eq!(a.get(&n), Some(&Value::Int(2)));
        assert_eq!(a.get_index(&n, 1), Some(&Value::Int(1)));
        assert_eq!(a.get_index(&n, -1), Some(&Value::Int(1)));
        assert_eq!(a.all(&n).count(), 2);
        a.set_all(n.clone(), Value::Int(3));
        assert_eq!(a.all(&n).count(), 1);
        a.delete(&n);
        assert!(a.get(&n).is_none());
        assert_eq!(AvpName::parse("i:3"), Some(AvpName::Int(3)));
        assert_eq!(AvpName::parse("$avp(s:user)"), Some(AvpName::Str("user".into())));
        // 1.3's own global alias; `s:` names the string AVP of that name.
        assert_eq!(AvpName::parse("serial_branch"), Some(AvpName::Int(0xff3434)));
        assert_eq!(AvpName::parse("s:serial_branch"), Some(AvpName::Str("serial_branch".into())));
    }

    #[test]
    fn avps_walk_newest_first_and_remove_by_predicate() {
        let mut avps = Avps::default();
        for (n, v) in [("s:a", 1), ("i:7", 2), ("s:a", 3), ("s:b", 4)] {
            avps.push(AvpName::parse(n).unwrap(), Value::Int(v));
        }
        let order: Vec<i64> = avps.iter().map(|(_, v)| v.as_int()).collect();
        assert_eq!(order, [4, 3, 2, 1]);
        let a = AvpName::parse("s:a").unwrap();
        assert_eq!(avps.remove_where(1, |n, _| *n == a), 1, "the newest a only");
        assert_eq!(avps.all(&a).map(Value::as_int).collect::<Vec<_>>(), [1]);
        assert_eq!(avps.remove_where(usize::MAX, |n, _| matches!(n, AvpName::Str(_))), 2);
        assert_eq!(avps.iter().map(|(_, v)| v.as_int()).collect::<Vec<_>>(), [2]);
        assert_eq!(avps.remove_where(usize::MAX, |_, _| false), 0);
    }
}

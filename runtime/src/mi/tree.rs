//! MI replies: a code, a reason and a tree of nodes, as OpenSER 1.3's
//! `mi/tree.h` models them.
//!
//! In 1.3 a reply's root carries an HTTP-like code (200 OK, 400 for bad
//! arguments, 404 when nothing matched, 500 on failure) and a reason phrase;
//! under it hang nodes, each with an optional name, an optional value,
//! attributes (name = value pairs, in order) and children. The text
//! transports write it line by line ([`crate::mi::text`]); the JSON door
//! renders it with [`MiReply::to_json`].

use serde_json::{json, Map, Value as Json};

/// The reason of a reply whose arguments are missing or too many (1.3's
/// `MI_MISSING_PARM`).
pub const MISSING_PARAM: &str = "Too few or too many arguments";
/// The reason of a reply to an argument that does not parse (1.3's `MI_BAD_PARM`).
pub const BAD_PARAM: &str = "Bad parameter";
/// 1.3's `MI_INTERNAL_ERR`.
pub const INTERNAL_ERROR: &str = "Server Internal Error";

/// One node of a reply: `name:: value attr=val …` in the text format.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MiNode {
    /// `None`: a bare value (1.3 writes no `name:: ` prefix).
    pub name: Option<String>,
    /// `None`: no value (a node that only groups children or attributes).
    pub value: Option<String>,
    /// In the order they were added; a `None` name writes only the value.
    pub attributes: Vec<(Option<String>, Option<String>)>,
    pub children: Vec<MiNode>,
}

impl MiNode {
    /// A node with a name and a value.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> MiNode {
        MiNode { name: Some(name.into()), value: Some(value.into()), ..MiNode::default() }
    }

    /// A node with a value and no name (a line of plain text).
    pub fn value(value: impl Into<String>) -> MiNode {
        MiNode { value: Some(value.into()), ..MiNode::default() }
    }

    /// A node with a name and no value.
    pub fn named(name: impl Into<String>) -> MiNode {
        MiNode { name: Some(name.into()), ..MiNode::default() }
    }

    /// Adds the attribute `name=value`.
    pub fn attr(mut self, name: impl Into<String>, value: impl Into<String>) -> MiNode {
        self.attributes.push((Some(name.into()), Some(value.into())));
        self
    }

    /// Adds a child.
    pub fn child(mut self, node: MiNode) -> MiNode {
        self.children.push(node);
        self
    }

    /// The node as JSON: `{"name", "value", "attributes", "children"}`, the
    /// optional parts left out when absent or empty.
    pub fn to_json(&self) -> Json {
        let mut o = Map::new();
        if let Some(n) = &self.name {
            o.insert("name".into(), Json::String(n.clone()));
        }
        if let Some(v) = &self.value {
            o.insert("value".into(), Json::String(v.clone()));
        }
        if !self.attributes.is_empty() {
            let attrs: Vec<Json> = self.attributes.iter().map(|(n, v)| json!({ "name": n, "value": v })).collect();
            o.insert("attributes".into(), Json::Array(attrs));
        }
        if !self.children.is_empty() {
            o.insert("children".into(), Json::Array(self.children.iter().map(MiNode::to_json).collect()));
        }
        Json::Object(o)
    }
}

/// A reply to an MI command: code, reason and the top-level nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MiReply {
    pub code: u32,
    pub reason: String,
    pub nodes: Vec<MiNode>,
}

impl MiReply {
    /// A reply with no nodes.
    pub fn new(code: u32, reason: impl Into<String>) -> MiReply {
        MiReply { code, reason: reason.into(), nodes: Vec::new() }
    }

    /// `200 OK` with no nodes.
    pub fn ok() -> MiReply {
        MiReply::new(200, "OK")
    }

    /// `400 Too few or too many arguments`.
    pub fn missing_param() -> MiReply {
        MiReply::new(400, MISSING_PARAM)
    }

    /// `400 Bad parameter`.
    pub fn bad_param() -> MiReply {
        MiReply::new(400, BAD_PARAM)
    }

    /// `500 Server Internal Error`.
    pub fn internal_error() -> MiReply {
        MiReply::new(500, INTERNAL_ERROR)
    }

    /// Adds a top-level node.
    pub fn node(mut self, node: MiNode) -> MiReply {
        self.nodes.push(node);
        self
    }

    /// Adds a top-level node (in place).
    pub fn push(&mut self, node: MiNode) {
        self.nodes.push(node);
    }

    /// Whether the code is a success (2xx).
    pub fn is_ok(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// The reply as JSON: `{"code": 200, "reason": "OK", "nodes": [...]}`
    /// (each node as [`MiNode::to_json`]).
    pub fn to_json(&self) -> Json {
        json!({
            "code": self.code,
            "reason": self.reason,
            "nodes": self.nodes.iter().map(MiNode::to_json).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_rendering() {
        let r = MiReply::ok()
            .node(MiNode::new("Now", "x"))
            .node(MiNode::named("Process").attr("ID", "0").child(MiNode::value("v")));
        assert_eq!(
            r.to_json(),
            json!({"code": 200, "reason": "OK", "nodes": [
                {"name": "Now", "value": "x"},
                {"name": "Process", "attributes": [{"name": "ID", "value": "0"}], "children": [{"value": "v"}]}
            ]})
        );
    }
}

//! The Rust function the config calls as `fraud_check("$fU", "10")`.
//!
//! A stand-in for a real check (a fraud service, a database): a user is
//! suspect when on the block list, or once they have sent more than `limit`
//! requests since the proxy started.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use serc_runtime::script::args::Format;
use serc_runtime::script::Ctx;

/// Users refused outright.
pub const BLOCKED: &[&str] = &["mallory"];

/// Users remembered at most: past that the counts start again, so a flood of
/// made-up user names cannot grow the table without bound.
const MAX_USERS: usize = 100_000;

/// Requests seen per user.
static SEEN: Mutex<Option<HashMap<String, i64>>> = Mutex::new(None);

/// `fraud_check(user, limit)`: `user` is a format (`"$fU"`, the From user),
/// expanded for this request; `limit` a number, checked and converted when the
/// config is compiled. Returns 1 (true in the config) when the request may go
/// on, -1 (false) when it is suspect. 0 would end the script, as in OpenSER.
pub fn fraud_check(ctx: &mut Ctx, user: &Format, limit: i64) -> i32 {
    let user = user.eval(ctx);
    if BLOCKED.contains(&user.as_str()) {
        return -1;
    }
    let mut seen = SEEN.lock().unwrap_or_else(PoisonError::into_inner);
    let seen = seen.get_or_insert_with(HashMap::new);
    if seen.len() >= MAX_USERS && !seen.contains_key(&user) {
        seen.clear();
    }
    let count = seen.entry(user).or_insert(0);
    *count += 1;
    if *count > limit {
        -1
    } else {
        1
    }
}

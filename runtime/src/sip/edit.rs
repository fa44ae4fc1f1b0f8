//! Message edits: splices over an immutable received message, applied once at send time
//! (OpenSER's "lumps", NOTES.md §7).
//!
//! A received message is a `Bytes` that is never mutated. Scripts and modules record
//! what they change — insert a Via or a header, remove a header, rewrite the
//! Request-URI, replace the body — as splices against the byte offsets of the
//! *original* message. [`Edits::apply`] writes the result into one new buffer, allocated
//! once with the exact final length. The same message can be written several times with
//! different edits (one per branch): record the common edits, take a
//! [`checkpoint`](Edits::checkpoint), add the branch's edits, apply, and
//! [`rollback`](Edits::rollback) to the checkpoint for the next branch.
//!
//! Rules, checked by `apply` (which never panics on bad edits):
//! - every offset is within the original (`start <= end <= len`), else
//!   [`EditError::OutOfBounds`] (checked before anything else);
//! - a delete absorbs every delete and every replace lying fully inside its range
//!   (starting at the same offset or later, ending at the same offset or earlier; the
//!   same range included), whichever was recorded first: they are not written. So
//!   `remove_hf("From")` after `subst('/^(From:.*)x/\1y/')` sends the message without
//!   the From header (and before it, `subst` finds nothing left to change), and a
//!   header removed twice is removed once, as in OpenSER;
//! - a replace absorbs every delete lying fully inside its range, except a delete of
//!   the very same range (which absorbs the replace instead);
//! - an absorbed edit takes along what lies inside it: deletes and replaces that
//!   overlap each other inside a delete are all gone with it;
//! - anything else is an [`EditError::Overlap`]: deletes and replaces that partially
//!   overlap each other (a replace sticking out of a delete at either end), a replace
//!   inside another replace (two replaces of one range included), a replace inside a
//!   delete that itself lies inside a replace;
//! - an insert strictly inside a removed range (even inside an absorbed replace there)
//!   is an error; an insert at either end of one is not, and is written;
//! - at one position, inserts come out in the order they were made, and before the text
//!   of a replace (or the gap of a delete) starting there.
//!
//! Only the edits kept (not absorbed) are written, measured ([`Edits::len_after`]) and
//! counted in the body length that `apply_with_content_length` writes; every pass
//! decides what is absorbed in the same way.
//!
//! The list is kept in message order as edits are recorded (a binary search and a short
//! move; usually an append), so `apply` makes two linear passes over it (validate and
//! measure, then write) with no sorting, however many branches are written. Measured on a
//! 700-byte INVITE against sorting at each `apply` (an index array on the stack), this is
//! as fast or faster for 1, 5 and 10 edits recorded in or out of order, and for four
//! branches. Text is held as `Bytes`: a `&'static str` or an existing `Bytes` (such as a
//! slice of the message) is recorded without copying; the list itself is allocated once
//! for up to 8 edits.

use std::cmp::Ordering;
use std::fmt;
use std::ops::Range;

use bytes::{Bytes, BytesMut};

/// An error of a set of edits against a given message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EditError {
    /// An edit's range is reversed or ends past the message (or the Content-Length
    /// digits or the body start given to [`Edits::apply_with_content_length`] are).
    OutOfBounds,
    /// Edit `b` overlaps edit `a` (which comes first in message order) in a way that has
    /// no meaning: a partial overlap, a replace inside a replace, or an insert strictly
    /// inside a removed range (then `b` is the empty range of the insert).
    Overlap { a: Range<usize>, b: Range<usize> },
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EditError::OutOfBounds => f.write_str("message edit out of bounds"),
            EditError::Overlap { a, b } => write!(f, "message edits overlap: {a:?} and {b:?}"),
        }
    }
}

impl std::error::Error for EditError {}

/// One splice: the original bytes `start..end` become `text`. An insert has
/// `start == end`; a delete has an empty `text`.
#[derive(Clone, Debug)]
struct Splice {
    start: usize,
    end: usize,
    text: Bytes,
    /// The index of the call that recorded it: what `rollback` goes back to.
    seq: usize,
}

impl Splice {
    fn is_insert(&self) -> bool {
        self.start == self.end
    }

    fn is_pure_delete(&self) -> bool {
        self.start != self.end && self.text.is_empty()
    }

    fn range(&self) -> Range<usize> {
        self.start..self.end
    }
}

/// Message order: by start; at one start, inserts before ranges; ranges from the longest
/// (so a range contains those that follow it at its start, whichever was recorded
/// first), a delete before a replace of the same range (so the replace is absorbed).
/// Equal keys keep call order.
fn message_order(a: &Splice, b: &Splice) -> Ordering {
    a.start
        .cmp(&b.start)
        .then_with(|| b.is_insert().cmp(&a.is_insert()))
        .then_with(|| b.end.cmp(&a.end))
        .then_with(|| b.is_pure_delete().cmp(&a.is_pure_delete()))
}

/// Whether the range edit `inner`, lying fully inside the kept range edit `outer`
/// (which comes first in message order), is absorbed by it: anything inside a delete,
/// a delete inside a replace. Otherwise (a replace inside a replace) they clash.
fn absorbs(outer: &Splice, inner: &Splice) -> bool {
    outer.text.is_empty() || inner.text.is_empty()
}

/// The ordered list of splices against the original byte offsets of one message.
#[derive(Clone, Debug, Default)]
pub struct Edits {
    /// Sorted by [`message_order`], stable in call order.
    splices: Vec<Splice>,
}

/// What a validated set of edits produces.
struct Plan {
    /// The length of the whole edited message.
    len: usize,
    /// The length of what the edits leave of the original from `body_start` on (see
    /// [`Edits::apply_with_content_length`]).
    body_len: usize,
}

impl Edits {
    pub fn new() -> Self {
        Edits { splices: Vec::new() }
    }

    pub fn is_empty(&self) -> bool {
        self.splices.is_empty()
    }

    /// Forgets every edit, keeping the room they took: a worker reuses one
    /// `Edits` message after message.
    pub fn clear(&mut self) {
        self.splices.clear();
    }

    /// How many edits it has room for without allocating.
    pub fn capacity(&self) -> usize {
        self.splices.capacity()
    }

    /// The number of edits recorded (each call to `insert`, `delete` or `replace` is one).
    pub fn len(&self) -> usize {
        self.splices.len()
    }

    /// Inserts `text` before the original byte `at` (`at == len` appends). Inserts at the
    /// same position come out in call order.
    pub fn insert(&mut self, at: usize, text: impl Into<Bytes>) {
        self.push(at, at, text.into());
    }

    /// Inserts `text` before the original byte `at`, ahead of the inserts already
    /// recorded there (a header that must come before one written earlier: the
    /// outbound Record-Route of a double record-route). For
    /// [`rollback`](Edits::rollback) it counts as recorded now.
    pub fn insert_first(&mut self, at: usize, text: impl Into<Bytes>) {
        let splice = Splice { start: at, end: at, text: text.into(), seq: self.splices.len() };
        let i = self.splices.partition_point(|s| message_order(s, &splice) == Ordering::Less);
        self.splices.insert(i, splice);
    }

    /// Gives the insert at `at` whose text is `old` the text `new`, in its place
    /// (the first such insert). Whether there was one.
    pub fn retext_insert(&mut self, at: usize, old: &[u8], new: impl Into<Bytes>) -> bool {
        match self.splices.iter_mut().find(|s| s.is_insert() && s.start == at && s.text[..] == *old) {
            Some(s) => {
                s.text = new.into();
                true
            }
            None => false,
        }
    }

    /// Removes the original bytes `range`.
    pub fn delete(&mut self, range: Range<usize>) {
        self.push(range.start, range.end, Bytes::new());
    }

    /// Replaces the original bytes `range` by `text` (an empty range is an insert).
    pub fn replace(&mut self, range: Range<usize>, text: impl Into<Bytes>) {
        self.push(range.start, range.end, text.into());
    }

    fn push(&mut self, start: usize, end: usize, text: Bytes) {
        let splice = Splice { start, end, text, seq: self.splices.len() };
        if self.splices.capacity() == 0 {
            // One allocation for the usual handful of edits (Vec would start at 4).
            self.splices.reserve(8);
        }
        // After every splice that does not come after it: equal keys keep call order.
        let at = match self.splices.last() {
            Some(last) if message_order(last, &splice) == Ordering::Greater => {
                self.splices.partition_point(|s| message_order(s, &splice) != Ordering::Greater)
            }
            _ => self.splices.len(),
        };
        self.splices.insert(at, splice);
    }

    /// Whether `range` (e.g. a header) is already removed: fully covered by deletes (one
    /// or several adjacent ones; a replace does not count). An empty range is not.
    pub fn deletes(&self, range: Range<usize>) -> bool {
        if range.start >= range.end {
            return false;
        }
        let mut covered = range.start;
        for s in self.splices.iter().filter(|s| s.is_pure_delete()) {
            if s.start > covered {
                // Sorted by start: no later delete can reach back over this gap.
                return false;
            }
            if s.end > covered {
                covered = s.end;
                if covered >= range.end {
                    return true;
                }
            }
        }
        false
    }

    /// A mark to [`rollback`](Self::rollback) to: the edits recorded so far.
    pub fn checkpoint(&self) -> usize {
        self.splices.len()
    }

    /// Forgets the edits recorded after [`checkpoint`](Self::checkpoint) returned `to`.
    pub fn rollback(&mut self, to: usize) {
        if to < self.splices.len() {
            self.splices.retain(|s| s.seq < to);
        }
    }

    /// Applies all splices to `original` into one new buffer allocated with the exact
    /// final length.
    pub fn apply(&self, original: &[u8]) -> Result<BytesMut, EditError> {
        let plan = self.plan(original.len(), original.len())?;
        Ok(self.write(original, plan.len, None))
    }

    /// Like [`apply`](Self::apply), and rewrites the Content-Length value at `cl_value` (a
    /// range of the original: the digits) to the length of the body as edited, where the
    /// body starts at `body_start` of the original. Adds nothing if `cl_value` is `None`
    /// (the caller inserts a header then), and leaves the value alone if the edits
    /// removed or replaced it; an edit that cuts into it is an [`EditError::Overlap`].
    ///
    /// The body as edited is everything the edits write from original offset
    /// `body_start` on: an insert at `body_start` is part of it; a delete or replace that
    /// starts before `body_start` belongs to the head (its text is not body) and removes
    /// the body bytes it covers.
    pub fn apply_with_content_length(
        &self,
        original: &[u8],
        cl_value: Option<Range<usize>>,
        body_start: usize,
    ) -> Result<BytesMut, EditError> {
        if body_start > original.len() {
            return Err(EditError::OutOfBounds);
        }
        let plan = self.plan(original.len(), body_start)?;
        let Some(cl) = cl_value else {
            return Ok(self.write(original, plan.len, None));
        };
        if cl.start > cl.end || cl.end > body_start {
            return Err(EditError::OutOfBounds);
        }
        if self.kept_cover(&cl)? {
            return Ok(self.write(original, plan.len, None));
        }
        let mut digits = [0u8; 20];
        let digits = format_decimal(plan.body_len, &mut digits);
        let len = plan.len - (cl.end - cl.start) + digits.len();
        Ok(self.write(original, len, Some((cl, digits))))
    }

    /// The length of the body as [`apply_with_content_length`](Self::apply_with_content_length)
    /// counts it (everything written from original offset `body_start` on), for a
    /// message of `original_len` bytes.
    pub fn body_len_after(&self, original_len: usize, body_start: usize) -> Result<usize, EditError> {
        if body_start > original_len {
            return Err(EditError::OutOfBounds);
        }
        Ok(self.plan(original_len, body_start)?.body_len)
    }

    /// The final length without building it. For edits that [`apply`](Self::apply) would
    /// refuse, it is the original length plus every inserted byte minus every removed one
    /// (edits absorbed as `apply` absorbs them left out), saturating.
    pub fn len_after(&self, original_len: usize) -> usize {
        if let Ok(plan) = self.plan(original_len, original_len) {
            return plan.len;
        }
        let mut len = original_len;
        // The range counted that reaches furthest.
        let mut cover: Option<&Splice> = None;
        for s in &self.splices {
            if let Some(c) = cover {
                if !s.is_insert() && s.start < c.end && s.end <= c.end && absorbs(c, s) {
                    continue;
                }
            }
            len = len.saturating_add(s.text.len()).saturating_sub(s.end.saturating_sub(s.start));
            if !s.is_insert() && cover.is_none_or(|c| s.end > c.end) {
                cover = Some(s);
            }
        }
        len
    }

    /// Validates the edits against a message of `len` bytes and computes the lengths they
    /// produce. `body_start <= len`.
    fn plan(&self, len: usize, body_start: usize) -> Result<Plan, EditError> {
        if self.splices.iter().any(|s| s.start > s.end || s.end > len) {
            return Err(EditError::OutOfBounds);
        }
        let mut out_len = len;
        let mut body_len = len - body_start;
        // The last range kept (not absorbed); every later range starts at or after its
        // start, so it is the only one a later edit can fall into.
        let mut cover: Option<&Splice> = None;
        for s in &self.splices {
            let inside = cover.filter(|c| s.start < c.end);
            if s.is_insert() {
                if let Some(c) = inside.filter(|c| c.start < s.start) {
                    return Err(EditError::Overlap { a: c.range(), b: s.range() });
                }
            } else if let Some(c) = inside {
                if s.end <= c.end && absorbs(c, s) {
                    continue; // absorbed
                }
                return Err(EditError::Overlap { a: c.range(), b: s.range() });
            } else {
                cover = Some(s);
            }
            // Kept: ranges are disjoint, so removing never goes below zero.
            out_len = out_len - (s.end - s.start) + s.text.len();
            if s.start >= body_start {
                body_len = body_len - (s.end - s.start) + s.text.len();
            } else if s.end > body_start {
                body_len -= s.end - body_start;
            }
        }
        Ok(Plan { len: out_len, body_len })
    }

    /// For validated edits: whether the kept ranges remove all of `cl` (then the
    /// Content-Length value is left to them), or an error if they or an insert cut into
    /// it.
    fn kept_cover(&self, cl: &Range<usize>) -> Result<bool, EditError> {
        let mut covered = cl.start;
        let mut pos = 0;
        let mut clash = None;
        for s in &self.splices {
            if s.start < pos {
                continue; // absorbed
            }
            if s.is_insert() {
                if cl.start < s.start && s.start < cl.end {
                    clash = clash.or(Some(EditError::Overlap { a: cl.clone(), b: s.range() }));
                }
                continue;
            }
            pos = s.end;
            if s.start <= covered && covered < s.end {
                covered = s.end;
            }
            let overlaps = if cl.is_empty() {
                s.start < cl.start && cl.start < s.end
            } else {
                s.start < cl.end && cl.start < s.end
            };
            if overlaps {
                clash = clash.or(Some(EditError::Overlap { a: s.range(), b: cl.clone() }));
            }
        }
        if !cl.is_empty() && covered >= cl.end {
            return Ok(true);
        }
        clash.map_or(Ok(false), Err)
    }

    /// Writes validated edits (and the splice `extra`, which clashes with none of them)
    /// into a buffer of `len` bytes.
    fn write(&self, original: &[u8], len: usize, extra: Option<(Range<usize>, &[u8])>) -> BytesMut {
        let mut out = BytesMut::with_capacity(len);
        let mut pos = 0;
        let mut extra = extra;
        for s in &self.splices {
            if let Some((range, text)) = &extra {
                if range.start < s.start || (range.start == s.start && !s.is_insert()) {
                    out.extend_from_slice(&original[pos..range.start]);
                    out.extend_from_slice(text);
                    pos = range.end;
                    extra = None;
                }
            }
            if s.start < pos {
                continue; // absorbed
            }
            out.extend_from_slice(&original[pos..s.start]);
            out.extend_from_slice(&s.text);
            pos = s.end;
        }
        if let Some((range, text)) = extra {
            out.extend_from_slice(&original[pos..range.start]);
            out.extend_from_slice(text);
            pos = range.end;
        }
        out.extend_from_slice(&original[pos..]);
        debug_assert_eq!(out.len(), len);
        out
    }
}

/// Formats edit text straight into `Bytes` of its exact length: one allocation.
///
/// A `String` built with room to spare and turned into `Bytes` costs a second
/// allocation (`Bytes` keeps such a buffer behind a shared header); text formatted
/// here goes through a [`Line`] on the stack and is copied once (longer text
/// spills to the heap). The line is written as a `fmt::Write`, each piece one
/// copy (`io::Write` on a slice went through an adapter per piece).
pub fn text(args: fmt::Arguments<'_>) -> Bytes {
    let mut line = Line::new();
    if fmt::write(&mut line, args).is_ok() {
        return line.bytes();
    }
    Bytes::from(fmt::format(args).into_bytes().into_boxed_slice())
}

/// Edit text put together from its pieces, as [`text`] makes it (one
/// allocation, of its exact length) without `fmt`'s machinery: the lines
/// every relayed request gets (our Via) are made of a few fixed strings and
/// an address, and formatting them cost more than the rest of the edit.
/// Pieces past [`Line`]'s room on the stack go to the heap.
pub(crate) struct Line {
    buf: [u8; 256],
    len: usize,
    spilled: Option<Vec<u8>>,
}

impl Line {
    pub(crate) fn new() -> Line {
        Line { buf: [0u8; 256], len: 0, spilled: None }
    }

    pub(crate) fn push(&mut self, piece: &[u8]) -> &mut Line {
        if let Some(heap) = &mut self.spilled {
            heap.extend_from_slice(piece);
            return self;
        }
        let end = self.len + piece.len();
        match self.buf.get_mut(self.len..end) {
            Some(room) => {
                room.copy_from_slice(piece);
                self.len = end;
            }
            None => self.spilled = Some([&self.buf[..self.len], piece].concat()),
        }
        self
    }

    /// A number as `Display` writes it.
    pub(crate) fn push_decimal(&mut self, n: usize) -> &mut Line {
        let mut digits = [0u8; 20];
        self.push(format_decimal(n, &mut digits))
    }

    /// A host as a URI or a Via writes it: a name or an address as it is,
    /// an IPv6 address not yet in brackets put in them.
    pub(crate) fn push_host(&mut self, host: &str) -> &mut Line {
        if host.contains(':') && !host.starts_with('[') {
            self.push(b"[").push(host.as_bytes()).push(b"]")
        } else {
            self.push(host.as_bytes())
        }
    }

    /// An IP address as `Display` writes it.
    pub(crate) fn push_ip(&mut self, ip: std::net::IpAddr) -> &mut Line {
        match ip {
            std::net::IpAddr::V4(v4) => {
                let (text, len) = ipv4_text(v4);
                self.push(&text[..len])
            }
            v6 => {
                // `Line` as a `fmt::Write` never fails.
                let _ = fmt::Write::write_fmt(self, format_args!("{v6}"));
                self
            }
        }
    }

    /// The text so far.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.spilled.as_deref().unwrap_or(&self.buf[..self.len])
    }

    /// Writes the text so far to `f` (pieces from `str`s: UTF-8), for a
    /// `Display` that puts its text together as a `Line`.
    pub(crate) fn write_to(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(std::str::from_utf8(self.as_bytes()).map_err(|_| fmt::Error)?)
    }

    pub(crate) fn bytes(self) -> Bytes {
        match self.spilled {
            Some(heap) => Bytes::from(heap.into_boxed_slice()),
            None => Bytes::copy_from_slice(&self.buf[..self.len]),
        }
    }
}

impl fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s.as_bytes());
        Ok(())
    }
}

/// An IPv4 address as `Display` writes it: the text and its length.
pub(crate) fn ipv4_text(v4: std::net::Ipv4Addr) -> ([u8; 15], usize) {
    let mut out = [0u8; 15];
    let mut len = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out[len] = b'.';
            len += 1;
        }
        // One to three digits, without leading zeros.
        if octet >= 100 {
            out[len] = b'0' + octet / 100;
            len += 1;
        }
        if octet >= 10 {
            out[len] = b'0' + octet / 10 % 10;
            len += 1;
        }
        out[len] = b'0' + octet % 10;
        len += 1;
    }
    (out, len)
}

/// Writes `n` in decimal at the end of `buf` and returns the digits.
pub(crate) fn format_decimal(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"INVITE sip:bob@b.example SIP/2.0\r\nVia: SIP/2.0/UDP a.example;branch=z9hG4bK1\r\n\
Content-Length: 4\r\nUser-Agent: x\r\n\r\nbody";

    fn find(needle: &[u8]) -> usize {
        MSG.windows(needle.len()).position(|w| w == needle).unwrap()
    }

    fn range_of(needle: &[u8]) -> Range<usize> {
        let start = find(needle);
        start..start + needle.len()
    }

    fn applied(edits: &Edits, original: &[u8]) -> String {
        String::from_utf8(edits.apply(original).unwrap().to_vec()).unwrap()
    }

    #[test]
    fn no_edits_copy_the_original_with_exact_capacity() {
        let edits = Edits::new();
        assert!(edits.is_empty());
        assert_eq!(edits.len(), 0);
        let out = edits.apply(MSG).unwrap();
        assert_eq!(&out[..], MSG);
        assert_eq!(out.capacity(), out.len());
        assert_eq!(edits.len_after(MSG.len()), MSG.len());
        assert_eq!(&Edits::default().apply(b"").unwrap()[..], b"");
    }

    #[test]
    fn inserts_at_start_middle_and_end() {
        let mut edits = Edits::new();
        edits.insert(6, "B");
        edits.insert(0, "A");
        edits.insert(10, "C");
        assert_eq!(edits.len(), 3);
        assert_eq!(applied(&edits, b"0123456789"), "A012345B6789C");
        assert_eq!(edits.len_after(10), 13);
    }

    #[test]
    fn inserts_at_one_position_keep_call_order() {
        let mut edits = Edits::new();
        edits.insert(4, "1");
        edits.insert(8, "x");
        edits.insert(4, "2");
        edits.insert(0, "y");
        edits.insert(4, "3");
        assert_eq!(applied(&edits, b"abcdefgh"), "yabcd123efghx");
    }

    #[test]
    fn inserts_come_before_a_replace_at_the_same_start_and_after_one_ending_there() {
        for replace_first in [false, true] {
            let mut edits = Edits::new();
            if replace_first {
                edits.replace(2..4, "R");
            }
            edits.insert(2, "i");
            edits.insert(4, "j");
            if !replace_first {
                edits.replace(2..4, "R");
            }
            assert_eq!(applied(&edits, b"abcdef"), "abiRjef", "replace first: {replace_first}");
        }
        // Same with a delete.
        let mut edits = Edits::new();
        edits.delete(2..4);
        edits.insert(4, "j");
        edits.insert(2, "i");
        assert_eq!(applied(&edits, b"abcdef"), "abijef");
    }

    #[test]
    fn delete_and_replace() {
        let mut edits = Edits::new();
        edits.delete(1..3);
        edits.replace(5..6, "XYZ");
        assert_eq!(applied(&edits, b"abcdefgh"), "adeXYZgh");
        assert_eq!(edits.len_after(8), 8);
        // A replace of an empty range is an insert; a replace by nothing is a delete.
        let mut edits = Edits::new();
        edits.replace(3..3, "+");
        edits.replace(5..7, "");
        assert_eq!(applied(&edits, b"abcdefgh"), "abc+deh");
        // Adjacent ranges are fine; so is removing everything.
        let mut edits = Edits::new();
        edits.delete(0..4);
        edits.replace(4..8, "new");
        assert_eq!(applied(&edits, b"abcdefgh"), "new");
        let mut edits = Edits::new();
        edits.delete(0..8);
        assert_eq!(applied(&edits, b"abcdefgh"), "");
    }

    #[test]
    fn sip_message_edits() {
        let via = find(b"Via:");
        let head_end = find(b"\r\n\r\n") + 2;
        let mut edits = Edits::new();
        edits.insert(via, "Via: SIP/2.0/UDP proxy.example;branch=z9hG4bKp\r\n");
        edits.insert(via, "Record-Route: <sip:proxy.example;lr>\r\n");
        edits.replace(range_of(b"sip:bob@b.example"), Bytes::from_static(b"sip:bob@10.0.0.2"));
        edits.delete(range_of(b"User-Agent: x\r\n"));
        edits.insert(head_end, "P-Hint: yes\r\n");
        let expected = "INVITE sip:bob@10.0.0.2 SIP/2.0\r\n\
Via: SIP/2.0/UDP proxy.example;branch=z9hG4bKp\r\nRecord-Route: <sip:proxy.example;lr>\r\n\
Via: SIP/2.0/UDP a.example;branch=z9hG4bK1\r\nContent-Length: 4\r\nP-Hint: yes\r\n\r\nbody";
        assert_eq!(applied(&edits, MSG), expected);
        assert_eq!(edits.len_after(MSG.len()), expected.len());
        assert_eq!(edits.apply(MSG).unwrap().capacity(), expected.len());
    }

    #[test]
    fn static_and_shared_text_is_not_copied() {
        static TEXT: &[u8] = b"Record-Route: <sip:p;lr>\r\n";
        let original = Bytes::from_static(MSG);
        let uri = original.slice(range_of(b"sip:bob@b.example"));
        let mut edits = Edits::new();
        edits.insert(0, TEXT);
        edits.replace(range_of(b"User-Agent"), uri.clone());
        assert_eq!(edits.splices[0].text.as_ptr(), TEXT.as_ptr());
        assert_eq!(edits.splices[1].text.as_ptr(), uri.as_ptr());
    }

    #[test]
    #[allow(clippy::reversed_empty_ranges)]
    fn out_of_bounds() {
        let cases: [fn(&mut Edits); 5] = [
            |e| e.insert(9, "x"),
            |e| e.delete(4..9),
            |e| e.replace(8..9, "x"),
            |e| e.delete(5..3),
            |e| e.replace(usize::MAX - 1..usize::MAX, "x"),
        ];
        for (i, case) in cases.iter().enumerate() {
            let mut edits = Edits::new();
            edits.insert(2, "ok");
            case(&mut edits);
            assert_eq!(edits.apply(b"abcdefgh"), Err(EditError::OutOfBounds), "case {i}");
            assert_eq!(edits.apply_with_content_length(b"abcdefgh", None, 8), Err(EditError::OutOfBounds));
            let _ = edits.len_after(8);
        }
        // At the end is in bounds.
        let mut edits = Edits::new();
        edits.insert(8, "!");
        edits.delete(7..8);
        assert_eq!(applied(&edits, b"abcdefgh"), "abcdefg!");
        // Bounds are checked before overlaps.
        let mut edits = Edits::new();
        edits.delete(0..4);
        edits.delete(2..6);
        edits.insert(20, "x");
        assert_eq!(edits.apply(b"abcdefgh"), Err(EditError::OutOfBounds));
    }

    #[test]
    fn insert_first_goes_ahead_and_retext_keeps_the_place() {
        let mut edits = Edits::new();
        edits.insert(3, Bytes::from_static(b"[b]"));
        edits.replace(3..4, Bytes::from_static(b"D"));
        edits.insert(3, Bytes::from_static(b"[c]"));
        edits.insert_first(3, Bytes::from_static(b"[a]"));
        assert_eq!(&edits.apply(b"abcdefgh").unwrap()[..], b"abc[a][b][c]Defgh");
        assert!(edits.retext_insert(3, b"[b]", Bytes::from_static(b"[bb]")));
        assert!(!edits.retext_insert(3, b"[x]", Bytes::from_static(b"[y]")));
        assert!(!edits.retext_insert(4, b"[c]", Bytes::from_static(b"[y]")));
        assert_eq!(&edits.apply(b"abcdefgh").unwrap()[..], b"abc[a][bb][c]Defgh");
        // Recorded last: a rollback to before it removes it.
        edits.rollback(3);
        assert_eq!(&edits.apply(b"abcdefgh").unwrap()[..], b"abc[bb][c]Defgh");
    }

    #[test]
    fn partial_overlaps_are_errors() {
        let check = |first: (Range<usize>, &'static str), second: (Range<usize>, &'static str), a, b| {
            for swap in [false, true] {
                let (x, y) = if swap { (&second, &first) } else { (&first, &second) };
                let mut edits = Edits::new();
                edits.replace(x.0.clone(), x.1);
                edits.replace(y.0.clone(), y.1);
                assert_eq!(
                    edits.apply(b"abcdefghij"),
                    Err(EditError::Overlap { a: Range::clone(&a), b: Range::clone(&b) }),
                    "{first:?} {second:?}"
                );
            }
        };
        // delete/delete, delete/replace, replace/replace: partial overlap.
        check((2..6, ""), (4..8, ""), 2..6, 4..8);
        check((2..6, ""), (4..8, "R"), 2..6, 4..8);
        check((2..6, "R"), (4..8, "S"), 2..6, 4..8);
        // A replace inside a replace, two replaces of one range.
        check((2..8, "R"), (3..5, "S"), 2..8, 3..5);
        check((2..8, "R"), (2..8, "S"), 2..8, 2..8);
        check((2..8, "R"), (2..5, "S"), 2..8, 2..5);
        check((2..8, "R"), (5..8, "S"), 2..8, 5..8);
        // A delete sticking out of a replace, a replace sticking out of a delete.
        check((2..5, "R"), (4..8, ""), 2..5, 4..8);
        check((2..6, ""), (4..8, "R"), 2..6, 4..8);
        check((2..6, ""), (0..4, "R"), 0..4, 2..6);
    }

    #[test]
    fn a_replace_inside_a_delete_is_absorbed() {
        // The same start, inside, the same end, the same range; in either call order.
        for inner in [2..5, 3..5, 5..8, 2..8, 7..8] {
            for delete_first in [false, true] {
                let mut edits = Edits::new();
                if delete_first {
                    edits.delete(2..8);
                }
                edits.replace(inner.clone(), "REPLACED");
                if !delete_first {
                    edits.delete(2..8);
                }
                let what = format!("{inner:?}, delete first: {delete_first}");
                assert_eq!(applied(&edits, b"abcdefghij"), "abij", "{what}");
                assert_eq!(edits.len_after(10), 4, "{what}");
                assert!(edits.deletes(2..8), "{what}");
                assert_eq!(edits.len(), 2);
            }
        }
        // Several, overlapping each other, with deletes among them, and what lies inside
        // an absorbed replace: all gone with the delete.
        let mut edits = Edits::new();
        edits.replace(3..6, "R");
        edits.delete(4..5);
        edits.replace(5..7, "S");
        edits.replace(1..9, "");
        edits.replace(1..4, "T");
        assert_eq!(applied(&edits, b"abcdefghij"), "aj");
        assert_eq!(edits.len_after(10), 2);
        // Edits next to the delete stay.
        let mut edits = Edits::new();
        edits.replace(0..2, "<");
        edits.replace(3..4, "X");
        edits.delete(2..6);
        edits.replace(6..8, ">");
        assert_eq!(applied(&edits, b"abcdefghij"), "<>ij");
    }

    #[test]
    fn a_replace_inside_a_delete_inside_a_replace_is_an_error() {
        // The replace kept decides: a replace inside it clashes, whatever lies between.
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
            let ops: [(Range<usize>, &'static str); 3] = [(1..9, "R"), (2..8, ""), (3..5, "S")];
            let mut edits = Edits::new();
            for i in order {
                edits.replace(ops[i].0.clone(), ops[i].1);
            }
            assert_eq!(edits.apply(b"abcdefghij"), Err(EditError::Overlap { a: 1..9, b: 3..5 }), "{order:?}");
            let _ = edits.len_after(10);
        }
    }

    #[test]
    fn inserts_around_a_delete_that_absorbs_a_replace() {
        for delete_first in [false, true] {
            let mut edits = Edits::new();
            if delete_first {
                edits.delete(2..8);
            }
            edits.insert(8, ">");
            edits.replace(2..5, "R");
            edits.insert(2, "<");
            if !delete_first {
                edits.delete(2..8);
            }
            assert_eq!(applied(&edits, b"abcdefghij"), "ab<>ij");
            assert_eq!(edits.len_after(10), 6);
            // At the end of the absorbed replace: strictly inside the removed range.
            let mut bad = edits.clone();
            bad.insert(5, "i");
            assert_eq!(bad.apply(b"abcdefghij"), Err(EditError::Overlap { a: 2..8, b: 5..5 }));
            let mut bad = edits.clone();
            bad.insert(3, "i");
            assert_eq!(bad.apply(b"abcdefghij"), Err(EditError::Overlap { a: 2..8, b: 3..3 }));
        }
    }

    #[test]
    fn content_length_counts_only_kept_edits() {
        let original = b"MESSAGE sip:a@x SIP/2.0\r\nContent-Length: 11\r\nX: y\r\n\r\nhello world";
        let body = original.len() - 11;
        // " world" removed, after "world" was replaced (or before): the body is "hello".
        for delete_first in [false, true] {
            let mut edits = Edits::new();
            if delete_first {
                edits.delete(body + 5..body + 11);
            }
            edits.replace(body + 6..body + 11, "there, everyone");
            edits.replace(body + 5..body + 7, "");
            if !delete_first {
                edits.delete(body + 5..body + 11);
            }
            let expected = "MESSAGE sip:a@x SIP/2.0\r\nContent-Length: 5\r\nX: y\r\n\r\nhello";
            assert_eq!(with_cl(&edits, original).unwrap(), expected, "delete first: {delete_first}");
            assert_eq!(edits.len_after(original.len()), original.len() - 6);
        }
        // The same start, and a kept insert at the end of the delete.
        let mut edits = Edits::new();
        edits.replace(body..body + 5, "HELLO, HELLO");
        edits.insert(body + 5, "bye");
        edits.delete(body..body + 5);
        assert_eq!(
            with_cl(&edits, original).unwrap(),
            "MESSAGE sip:a@x SIP/2.0\r\nContent-Length: 9\r\nX: y\r\n\r\nbye world"
        );
        // The Content-Length value replaced, then its header removed: the header goes.
        let cl = 41..43;
        assert_eq!(&original[cl.clone()], b"11");
        for delete_first in [false, true] {
            let mut edits = Edits::new();
            if delete_first {
                edits.delete(25..45);
            }
            edits.replace(cl.clone(), "99");
            if !delete_first {
                edits.delete(25..45);
            }
            edits.insert(original.len(), "!");
            let out = edits.apply_with_content_length(original, Some(cl.clone()), body).unwrap();
            assert_eq!(&out[..], b"MESSAGE sip:a@x SIP/2.0\r\nX: y\r\n\r\nhello world!");
        }
    }

    #[test]
    fn checkpoint_and_rollback_with_absorbed_replaces() {
        let original = b"abcdefghij";
        // A replace in common, a delete covering it in one branch only.
        let mut edits = Edits::new();
        edits.replace(3..5, "R");
        let mark = edits.checkpoint();
        edits.delete(2..8);
        assert_eq!(applied(&edits, original), "abij");
        edits.rollback(mark);
        assert_eq!(applied(&edits, original), "abcRfghij");
        edits.insert(2, "+");
        assert_eq!(applied(&edits, original), "ab+cRfghij");
        // A delete in common, a replace it absorbs in one branch, then a failing one.
        let mut edits = Edits::new();
        edits.delete(2..8);
        let mark = edits.checkpoint();
        edits.replace(2..4, "R");
        assert_eq!(applied(&edits, original), "abij");
        assert_eq!(edits.len(), 2);
        edits.rollback(mark);
        edits.replace(6..9, "S");
        assert_eq!(edits.apply(original), Err(EditError::Overlap { a: 2..8, b: 6..9 }));
        edits.rollback(mark);
        assert_eq!(edits.len(), 1);
        assert_eq!(applied(&edits, original), "abij");
    }

    #[test]
    fn inserts_strictly_inside_a_removed_range_are_errors() {
        for text in ["", "R"] {
            for call_insert_first in [false, true] {
                let mut edits = Edits::new();
                if call_insert_first {
                    edits.insert(4, "i");
                }
                edits.replace(2..6, text);
                if !call_insert_first {
                    edits.insert(4, "i");
                }
                assert_eq!(edits.apply(b"abcdefgh"), Err(EditError::Overlap { a: 2..6, b: 4..4 }));
            }
        }
        // Inside an absorbed delete, still inside the removed range.
        let mut edits = Edits::new();
        edits.delete(0..8);
        edits.delete(3..5);
        edits.insert(4, "i");
        assert_eq!(edits.apply(b"abcdefgh"), Err(EditError::Overlap { a: 0..8, b: 4..4 }));
        // An empty insert too: it is a position inside removed bytes.
        let mut edits = Edits::new();
        edits.delete(0..8);
        edits.delete(3..3);
        assert_eq!(edits.apply(b"abcdefgh"), Err(EditError::Overlap { a: 0..8, b: 3..3 }));
    }

    #[test]
    fn a_delete_inside_a_removed_range_is_absorbed() {
        // Removed twice (a header removed by two calls), either order of nesting.
        let mut edits = Edits::new();
        edits.delete(2..6);
        edits.delete(2..6);
        assert_eq!(applied(&edits, b"abcdefgh"), "abgh");
        assert_eq!(edits.len_after(8), 4);
        for (outer, inner) in [(1..7, 2..4), (1..7, 1..3), (1..7, 5..7)] {
            for outer_first in [false, true] {
                let mut edits = Edits::new();
                if outer_first {
                    edits.delete(outer.clone());
                }
                edits.delete(inner.clone());
                if !outer_first {
                    edits.delete(outer.clone());
                }
                assert_eq!(applied(&edits, b"abcdefgh"), "ah");
                assert_eq!(edits.len_after(8), 2);
            }
        }
        // Inside a replace, in either order; of the same range as a replace, the delete
        // absorbs the replace instead.
        for (inner, expected) in [(3..5, "abRgh"), (2..5, "abRgh"), (3..6, "abRgh"), (2..6, "abgh")] {
            for replace_first in [false, true] {
                let mut edits = Edits::new();
                if replace_first {
                    edits.replace(2..6, "R");
                }
                edits.delete(inner.clone());
                if !replace_first {
                    edits.replace(2..6, "R");
                }
                assert_eq!(applied(&edits, b"abcdefgh"), expected, "{inner:?}");
                assert_eq!(edits.len_after(8), expected.len());
            }
        }
        // Deletes that overlap each other inside a larger one are all gone with it.
        let mut edits = Edits::new();
        edits.delete(0..8);
        edits.delete(2..5);
        edits.delete(4..7);
        assert_eq!(applied(&edits, b"abcdefgh"), "");
        // Inserts at the ends of the outer range are fine.
        let mut edits = Edits::new();
        edits.delete(2..6);
        edits.delete(2..4);
        edits.insert(2, "<");
        edits.insert(6, ">");
        assert_eq!(applied(&edits, b"abcdefgh"), "ab<>gh");
    }

    #[test]
    #[allow(clippy::reversed_empty_ranges)]
    fn deletes_tells_whether_a_range_is_removed() {
        let mut edits = Edits::new();
        assert!(!edits.deletes(2..4));
        edits.delete(2..4);
        assert!(edits.deletes(2..4));
        assert!(edits.deletes(3..4));
        assert!(!edits.deletes(1..4));
        assert!(!edits.deletes(2..5));
        edits.delete(4..6);
        edits.delete(5..9);
        assert!(edits.deletes(2..9), "adjacent and overlapping deletes cover together");
        assert!(!edits.deletes(2..10));
        edits.delete(12..14);
        assert!(!edits.deletes(2..14), "a gap");
        // A replace does not delete; inserts are not in the way; an empty range is not removed.
        edits.replace(20..24, "R");
        edits.insert(3, "i");
        assert!(!edits.deletes(20..24));
        assert!(edits.deletes(2..9));
        assert!(!edits.deletes(3..3));
        assert!(!edits.deletes(4..3));
    }

    #[test]
    fn checkpoint_and_rollback_for_branches() {
        let original = b"INVITE sip:a@x SIP/2.0\r\n\r\n";
        let mut edits = Edits::new();
        edits.insert(24, "Via: common\r\n");
        edits.delete(22..24);
        let mark = edits.checkpoint();
        assert_eq!(mark, 2);

        edits.replace(7..14, "sip:a@branch1");
        edits.insert(24, "X-Branch: 1\r\n");
        edits.insert(0, "");
        assert_eq!(edits.len(), 5);
        assert_eq!(applied(&edits, original), "INVITE sip:a@branch1 SIP/2.0Via: common\r\nX-Branch: 1\r\n\r\n");
        edits.rollback(mark);
        assert_eq!(edits.len(), 2);
        assert_eq!(edits.checkpoint(), mark);
        assert_eq!(applied(&edits, original), "INVITE sip:a@x SIP/2.0Via: common\r\n\r\n");

        edits.replace(7..14, "sip:a@branch2");
        assert_eq!(applied(&edits, original), "INVITE sip:a@branch2 SIP/2.0Via: common\r\n\r\n");
        // Rolling back to a later mark does nothing; to 0 clears.
        edits.rollback(10);
        assert_eq!(edits.len(), 3);
        edits.rollback(0);
        assert!(edits.is_empty());
        assert_eq!(&edits.apply(original).unwrap()[..], original);
    }

    #[test]
    fn edits_in_any_call_order_give_one_result() {
        let original: Vec<u8> = (0..200u8).map(|i| b'a' + i % 26).collect();
        let forward = |edits: &mut Edits, i: usize| {
            if i.is_multiple_of(3) {
                edits.delete(2 * i..2 * i + 1);
            } else {
                edits.insert(2 * i, if i.is_multiple_of(2) { "<" } else { ">" });
            }
        };
        let mut in_order = Edits::new();
        (0..100).for_each(|i| forward(&mut in_order, i));
        assert!(in_order.splices.is_sorted_by(|a, b| message_order(a, b) != Ordering::Greater));
        let mut reversed = Edits::new();
        (0..100).rev().for_each(|i| forward(&mut reversed, i));
        assert!(reversed.splices.is_sorted_by(|a, b| message_order(a, b) != Ordering::Greater));
        assert_eq!(in_order.apply(&original), reversed.apply(&original));
        assert_eq!(in_order.len_after(200), reversed.len_after(200));
        assert!(reversed.deletes(0..1));
        // Rolling back edits recorded out of order.
        let mut edits = Edits::new();
        edits.insert(5, "a");
        edits.delete(6..8);
        let mark = edits.checkpoint();
        edits.insert(0, "b");
        assert_eq!(applied(&edits, b"0123456789"), "b01234a589");
        edits.rollback(mark);
        assert_eq!(applied(&edits, b"0123456789"), "01234a589");
    }

    #[test]
    fn rollback_of_a_failing_branch_restores_a_valid_set() {
        let mut edits = Edits::new();
        edits.delete(2..6);
        let mark = edits.checkpoint();
        edits.insert(3, "bad");
        assert!(edits.apply(b"abcdefgh").is_err());
        edits.rollback(mark);
        assert_eq!(applied(&edits, b"abcdefgh"), "abgh");
    }

    fn with_cl(edits: &Edits, original: &[u8]) -> Result<String, EditError> {
        let cl = original.windows(16).position(|w| w == b"Content-Length: ").map(|p| {
            let start = p + 16;
            let digits = original[start..].iter().take_while(|b| b.is_ascii_digit()).count();
            start..start + digits
        });
        let body_start = original.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let out = edits.apply_with_content_length(original, cl, body_start)?;
        assert_eq!(out.capacity(), out.len());
        Ok(String::from_utf8(out.to_vec()).unwrap())
    }

    #[test]
    fn content_length_follows_the_body() {
        let original = b"MESSAGE sip:a@x SIP/2.0\r\nContent-Length: 5\r\nX: y\r\n\r\nhello";
        let body = original.len() - 5;
        // No body edit: rewritten to the same value.
        let edits = Edits::new();
        assert_eq!(with_cl(&edits, original).unwrap(), std::str::from_utf8(original).unwrap());
        // Grows (and a header edit does not count).
        let mut edits = Edits::new();
        edits.insert(original.len(), ", world");
        edits.delete(body - 8..body - 2);
        assert_eq!(
            with_cl(&edits, original).unwrap(),
            "MESSAGE sip:a@x SIP/2.0\r\nContent-Length: 12\r\n\r\nhello, world"
        );
        // Shrinks.
        let mut edits = Edits::new();
        edits.delete(body + 1..body + 4);
        assert_eq!(
            with_cl(&edits, original).unwrap(),
            "MESSAGE sip:a@x SIP/2.0\r\nContent-Length: 2\r\nX: y\r\n\r\nho"
        );
        // Becomes empty.
        let mut edits = Edits::new();
        edits.delete(body..original.len());
        assert_eq!(with_cl(&edits, original).unwrap(), "MESSAGE sip:a@x SIP/2.0\r\nContent-Length: 0\r\nX: y\r\n\r\n");
        // Replaced whole; an insert at the body's start is body.
        let mut edits = Edits::new();
        edits.replace(body..original.len(), "v=0\r\n");
        edits.insert(body, "\r\n");
        assert_eq!(
            with_cl(&edits, original).unwrap(),
            "MESSAGE sip:a@x SIP/2.0\r\nContent-Length: 7\r\nX: y\r\n\r\n\r\nv=0\r\n"
        );
        // An empty body that gets one.
        let original = b"MESSAGE sip:a@x SIP/2.0\r\nContent-Length: 0\r\n\r\n";
        let mut edits = Edits::new();
        edits.insert(original.len(), "abc");
        assert_eq!(with_cl(&edits, original).unwrap(), "MESSAGE sip:a@x SIP/2.0\r\nContent-Length: 3\r\n\r\nabc");
    }

    #[test]
    fn content_length_digits_change_width() {
        let original = b"MESSAGE sip:a@x SIP/2.0\r\nContent-Length: 9\r\n\r\n123456789";
        let end = original.len();
        let mut edits = Edits::new();
        edits.insert(end, "0");
        assert_eq!(
            with_cl(&edits, original).unwrap(),
            "MESSAGE sip:a@x SIP/2.0\r\nContent-Length: 10\r\n\r\n1234567890"
        );
        let original = b"MESSAGE sip:a@x SIP/2.0\r\nContent-Length: 10\r\n\r\n1234567890";
        let end = original.len();
        let mut edits = Edits::new();
        edits.delete(end - 1..end);
        assert_eq!(with_cl(&edits, original).unwrap(), "MESSAGE sip:a@x SIP/2.0\r\nContent-Length: 9\r\n\r\n123456789");
        // Inserts at the ends of the digits stay around them.
        let start = 41;
        assert_eq!(&original[start..start + 2], b"10");
        let mut edits = Edits::new();
        edits.insert(start + 2, " ");
        edits.insert(start, " ");
        edits.delete(end - 10..end);
        assert_eq!(with_cl(&edits, original).unwrap(), "MESSAGE sip:a@x SIP/2.0\r\nContent-Length:  0 \r\n\r\n");
        // A large body.
        let big = b"M sip:a SIP/2.0\r\nContent-Length: 0\r\n\r\n".to_vec();
        let mut edits = Edits::new();
        edits.insert(big.len(), vec![b'x'; 123_456]);
        let out = with_cl(&edits, &big).unwrap();
        assert!(out.starts_with("M sip:a SIP/2.0\r\nContent-Length: 123456\r\n\r\nxxx"));
    }

    #[test]
    fn content_length_edge_cases() {
        let original = b"MESSAGE sip:a@x SIP/2.0\r\nContent-Length: 5\r\n\r\nhello";
        let cl = 41..42;
        let body = original.len() - 5;
        let mut edits = Edits::new();
        edits.insert(original.len(), "!");
        // None: nothing rewritten.
        let out = edits.apply_with_content_length(original, None, body).unwrap();
        assert_eq!(&out[..], b"MESSAGE sip:a@x SIP/2.0\r\nContent-Length: 5\r\n\r\nhello!");
        // The header removed, or its value replaced by the caller: left to them.
        let mut removed = edits.clone();
        removed.delete(25..44);
        let out = removed.apply_with_content_length(original, Some(cl.clone()), body).unwrap();
        assert_eq!(&out[..], b"MESSAGE sip:a@x SIP/2.0\r\n\r\nhello!");
        let mut replaced = edits.clone();
        replaced.replace(cl.clone(), "99");
        let out = replaced.apply_with_content_length(original, Some(cl.clone()), body).unwrap();
        assert_eq!(&out[..], b"MESSAGE sip:a@x SIP/2.0\r\nContent-Length: 99\r\n\r\nhello!");
        // Covered by two adjacent deletes.
        let mut removed = edits.clone();
        removed.delete(25..41);
        removed.delete(41..44);
        let out = removed.apply_with_content_length(original, Some(cl.clone()), body).unwrap();
        assert_eq!(&out[..], b"MESSAGE sip:a@x SIP/2.0\r\n\r\nhello!");
        // Cut into by an edit.
        let wide = 40..42;
        let mut cut = edits.clone();
        cut.delete(39..41);
        assert_eq!(
            cut.apply_with_content_length(original, Some(wide.clone()), body),
            Err(EditError::Overlap { a: 39..41, b: 40..42 })
        );
        let mut cut = edits.clone();
        cut.insert(41, "1");
        assert_eq!(
            cut.apply_with_content_length(original, Some(wide.clone()), body),
            Err(EditError::Overlap { a: 40..42, b: 41..41 })
        );
        // Out of bounds: the digits after the body start, the body past the end, bad edits.
        assert_eq!(edits.apply_with_content_length(original, Some(cl.clone()), 30), Err(EditError::OutOfBounds));
        assert_eq!(
            edits.apply_with_content_length(original, Some(cl.clone()), original.len() + 1),
            Err(EditError::OutOfBounds)
        );
        assert_eq!(edits.apply_with_content_length(original, Some(body..body + 9), body), Err(EditError::OutOfBounds));
        let mut bad = edits.clone();
        bad.delete(0..100);
        assert_eq!(bad.apply_with_content_length(original, Some(cl.clone()), body), Err(EditError::OutOfBounds));
    }

    #[test]
    fn content_length_with_edits_across_the_body_start() {
        let original = b"M sip:a SIP/2.0\r\nContent-Length: 4\r\n\r\nbody";
        let body = original.len() - 4;
        let cl = 33..34;
        assert_eq!(&original[cl.clone()], b"4");
        // A replace from the head into the body: its text is head, the body bytes it covers go.
        let mut edits = Edits::new();
        edits.replace(body - 2..body + 2, "\r\nX: y\r\n\r\n");
        let out = edits.apply_with_content_length(original, Some(cl.clone()), body).unwrap();
        assert_eq!(&out[..], b"M sip:a SIP/2.0\r\nContent-Length: 2\r\n\r\nX: y\r\n\r\ndy");
        // A body at the very end of the message, empty.
        let mut edits = Edits::new();
        edits.insert(body, "ab");
        let out = edits.apply_with_content_length(&original[..body], Some(cl.clone()), body).unwrap();
        assert_eq!(&out[..], b"M sip:a SIP/2.0\r\nContent-Length: 2\r\n\r\nab");
    }

    #[test]
    fn errors_display() {
        assert_eq!(EditError::OutOfBounds.to_string(), "message edit out of bounds");
        assert_eq!(EditError::Overlap { a: 1..3, b: 2..4 }.to_string(), "message edits overlap: 1..3 and 2..4");
    }

    #[test]
    fn a_line_writes_addresses_and_numbers_as_display_does() {
        use std::net::IpAddr;
        for ip in ["0.0.0.0", "127.0.0.1", "10.20.30.40", "192.168.100.255", "255.255.255.255", "::1", "2001:db8::7"] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut line = Line::new();
            line.push(b"a ").push_ip(ip).push(b":").push_decimal(5060).push(b" b");
            assert_eq!(line.bytes(), format!("a {ip}:5060 b").as_bytes());
        }
        // Every octet value in every position.
        for octet in 0..=255u8 {
            for at in 0..4 {
                let mut octets = [1, 22, 201, 9];
                octets[at] = octet;
                let v4 = std::net::Ipv4Addr::from(octets);
                let (text, len) = ipv4_text(v4);
                assert_eq!(&text[..len], v4.to_string().as_bytes());
            }
        }
        for n in [0, 7, 10, 5060, 65_535, usize::MAX] {
            let mut line = Line::new();
            line.push_decimal(n);
            assert_eq!(line.as_bytes(), n.to_string().as_bytes());
        }
    }

    #[test]
    fn a_line_is_its_pieces_on_the_stack_or_past_it() {
        let v6: std::net::IpAddr = "2001:db8::1".parse().unwrap();
        for repeat in [1, 40, 300] {
            let long = "x".repeat(repeat);
            let mut line = Line::new();
            line.push(b"Via: SIP/2.0/UDP ").push_ip("192.0.2.10".parse().unwrap()).push(b":").push_decimal(5060);
            line.push(b";branch=").push(long.as_bytes()).push(b" [").push_ip(v6).push(b"]\r\n");
            let expected = format!("Via: SIP/2.0/UDP 192.0.2.10:5060;branch={long} [2001:db8::1]\r\n");
            assert_eq!(line.bytes(), expected.as_bytes(), "{repeat}");
        }
    }

    #[test]
    fn format_decimal_digits() {
        let mut buf = [0; 20];
        for n in [0, 9, 10, 99, 100, 65_535, usize::MAX] {
            assert_eq!(format_decimal(n, &mut buf), n.to_string().as_bytes());
        }
    }

    // ---- property tests: random edit sets against a naive reference ----

    /// xorshift64*: enough randomness for tests, no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        /// In `0..n` (`n > 0`).
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }

        fn text(&mut self, max: usize) -> Vec<u8> {
            let n = self.below(max + 1);
            (0..n).map(|_| b'A' + self.below(26) as u8).collect()
        }
    }

    /// An edit as recorded, in call order.
    #[derive(Clone, Debug)]
    struct Op {
        start: usize,
        end: usize,
        text: Vec<u8>,
    }

    impl Op {
        fn is_insert(&self) -> bool {
            self.start == self.end
        }

        fn is_pure_delete(&self) -> bool {
            self.start != self.end && self.text.is_empty()
        }

        fn contains(&self, other: &Op) -> bool {
            self.start <= other.start && other.end <= self.end
        }

        fn overlaps(&self, other: &Op) -> bool {
            self.start < other.end && other.start < self.end
        }
    }

    fn record(ops: &[Op]) -> Edits {
        let mut edits = Edits::new();
        for op in ops {
            match (op.is_insert(), op.text.is_empty()) {
                (true, _) => edits.insert(op.start, op.text.clone()),
                (false, true) => edits.delete(op.start..op.end),
                (false, false) => edits.replace(op.start..op.end, op.text.clone()),
            }
        }
        edits
    }

    /// What kind of error the naive rules give.
    #[derive(Debug, PartialEq)]
    enum Naive {
        OutOfBounds,
        Overlap,
    }

    /// The rules, stated naively: a range edit is absorbed when another range edit
    /// contains it (of two of one range, a delete contains a replace, and of two of one
    /// kind the first contains the second); the ranges kept are those not absorbed.
    /// They must be disjoint, no insert may be strictly inside one, and a replace
    /// absorbed must not be inside a kept replace. Returns the indexes of the edits that
    /// produce output (inserts and the ranges kept).
    fn naive_check(ops: &[Op], len: usize) -> Result<Vec<usize>, Naive> {
        if ops.iter().any(|op| op.start > op.end || op.end > len) {
            return Err(Naive::OutOfBounds);
        }
        // Whether `ops[j]` contains `ops[i]`, ties broken as stated.
        let contains = |j: usize, i: usize| {
            let (outer, inner) = (&ops[j], &ops[i]);
            j != i
                && !outer.is_insert()
                && !inner.is_insert()
                && outer.contains(inner)
                && (!inner.contains(outer)
                    || (outer.is_pure_delete() && !inner.is_pure_delete())
                    || (outer.is_pure_delete() == inner.is_pure_delete() && j < i))
        };
        let kept: Vec<usize> = (0..ops.len()).filter(|&i| !(0..ops.len()).any(|j| contains(j, i))).collect();
        for i in (0..ops.len()).filter(|&i| !ops[i].is_insert() && !ops[i].is_pure_delete()) {
            if kept.iter().any(|&k| !ops[k].is_pure_delete() && contains(k, i)) {
                return Err(Naive::Overlap);
            }
        }
        for &i in &kept {
            for &j in &kept {
                let (a, b) = (&ops[i], &ops[j]);
                if i != j && !a.is_insert() && !b.is_insert() && a.overlaps(b) {
                    return Err(Naive::Overlap);
                }
                if !a.is_insert() && b.is_insert() && a.start < b.start && b.start < a.end {
                    return Err(Naive::Overlap);
                }
            }
        }
        Ok(kept)
    }

    /// Applies the kept edits from the end of the message to its start.
    fn naive_apply(original: &[u8], ops: &[Op], kept: &[usize]) -> Vec<u8> {
        let mut order = kept.to_vec();
        // Stable: inserts at one position stay in call order.
        order.sort_by_key(|&i| (ops[i].start, !ops[i].is_insert()));
        let mut out = original.to_vec();
        for &i in order.iter().rev() {
            let op = &ops[i];
            out.splice(op.start..op.end, op.text.iter().copied());
        }
        out
    }

    /// The body as edited: the kept edits from `body_start` on, an edit across
    /// `body_start` removing the body bytes it covers.
    fn naive_body_len(original: &[u8], ops: &[Op], kept: &[usize], body_start: usize) -> usize {
        let body_ops: Vec<Op> = kept
            .iter()
            .map(|&i| &ops[i])
            .filter(|op| op.end > body_start || (op.start >= body_start))
            .map(|op| {
                if op.start >= body_start {
                    Op { start: op.start - body_start, end: op.end - body_start, text: op.text.clone() }
                } else {
                    Op { start: 0, end: op.end - body_start, text: Vec::new() }
                }
            })
            .collect();
        let all: Vec<usize> = (0..body_ops.len()).collect();
        naive_apply(&original[body_start..], &body_ops, &all).len()
    }

    fn naive_with_content_length(
        original: &[u8],
        ops: &[Op],
        cl: &Range<usize>,
        body_start: usize,
    ) -> Result<Vec<u8>, Naive> {
        if body_start > original.len() {
            return Err(Naive::OutOfBounds);
        }
        let kept = naive_check(ops, original.len())?;
        if cl.start > cl.end || cl.end > body_start {
            return Err(Naive::OutOfBounds);
        }
        let removed = |i: usize| kept.iter().any(|&k| !ops[k].is_insert() && ops[k].start <= i && i < ops[k].end);
        if !cl.is_empty() && cl.clone().all(removed) {
            return Ok(naive_apply(original, ops, &kept));
        }
        let cl_op = Op { start: cl.start, end: cl.end, text: Vec::new() };
        for &k in &kept {
            let op = &ops[k];
            if (!op.is_insert() && op.overlaps(&cl_op)) || (op.is_insert() && cl.start < op.start && op.start < cl.end)
            {
                return Err(Naive::Overlap);
            }
        }
        let digits = naive_body_len(original, ops, &kept, body_start).to_string().into_bytes();
        let mut all = ops.to_vec();
        all.push(Op { start: cl.start, end: cl.end, text: digits });
        let mut kept = kept;
        kept.push(all.len() - 1);
        Ok(naive_apply(original, &all, &kept))
    }

    fn naive_deletes(ops: &[Op], range: Range<usize>) -> bool {
        !range.is_empty()
            && range.clone().all(|i| ops.iter().any(|op| op.is_pure_delete() && op.start <= i && i < op.end))
    }

    fn kind(result: &Result<BytesMut, EditError>) -> Option<Naive> {
        match result {
            Ok(_) => None,
            Err(EditError::OutOfBounds) => Some(Naive::OutOfBounds),
            Err(EditError::Overlap { .. }) => Some(Naive::Overlap),
        }
    }

    /// Checks every entry point against the naive rules and reference.
    fn check_against_reference(rng: &mut Rng, original: &[u8], ops: &[Op]) -> bool {
        let edits = record(ops);
        let len = original.len();
        let naive = naive_check(ops, len);
        let result = edits.apply(original);
        match (&naive, &result) {
            (Ok(kept), Ok(out)) => {
                assert_eq!(&out[..], &naive_apply(original, ops, kept)[..], "{ops:?} on {original:?}");
                assert_eq!(out.capacity(), out.len());
                assert_eq!(edits.len_after(len), out.len());
            }
            (Err(expected), _) => {
                assert_eq!(kind(&result).as_ref(), Some(expected), "{ops:?} on {len} bytes: {result:?}");
                if let Err(EditError::Overlap { a, b }) = &result {
                    // Both name recorded edits, and they do clash.
                    let find = |r: &Range<usize>| ops.iter().any(|op| op.start == r.start && op.end == r.end);
                    assert!(find(a) && find(b), "{a:?} {b:?} in {ops:?}");
                    assert!(a.start < b.end.max(b.start + 1) && b.start < a.end, "{a:?} {b:?}");
                }
                let _ = edits.len_after(len);
            }
            (Ok(_), Err(e)) => panic!("{ops:?} on {len} bytes: unexpected {e:?}"),
        }
        // Content-Length, with a random value range and body start (sometimes out of bounds).
        let body_start = if rng.chance(5) { len + 1 } else { rng.below(len + 1) };
        let cl_start = rng.below(body_start + 2);
        let cl = cl_start..cl_start + 1 + rng.below(3);
        let expected = naive_with_content_length(original, ops, &cl, body_start);
        let result = edits.apply_with_content_length(original, Some(cl.clone()), body_start);
        match (&expected, &result) {
            (Ok(expected), Ok(out)) => {
                assert_eq!(&out[..], &expected[..], "{ops:?} cl {cl:?} body {body_start}");
                assert_eq!(out.capacity(), out.len());
            }
            (Err(e), _) => assert_eq!(kind(&result).as_ref(), Some(e), "{ops:?} cl {cl:?} body {body_start}"),
            (Ok(_), Err(e)) => panic!("{ops:?} cl {cl:?} body {body_start}: unexpected {e:?}"),
        }
        // deletes(), on random ranges.
        for _ in 0..4 {
            let start = rng.below(len + 3);
            let range = start..start + rng.below(len + 3);
            assert_eq!(edits.deletes(range.clone()), naive_deletes(ops, range.clone()), "{range:?} in {ops:?}");
        }
        naive.is_ok()
    }

    fn random_buffer(rng: &mut Rng) -> Vec<u8> {
        let len = rng.below(120);
        (0..len).map(|_| b'a' + rng.below(26) as u8).collect()
    }

    /// A valid set: disjoint deletes and replaces, deletes absorbed in them (and
    /// replaces in the deletes, overlapping each other or not), inserts outside them;
    /// in random call order.
    fn random_valid_ops(rng: &mut Rng, len: usize, scale: usize) -> Vec<Op> {
        let mut cuts: Vec<usize> = (0..2 * rng.below(6 * scale)).map(|_| rng.below(len + 1)).collect();
        cuts.sort_unstable();
        let mut ops = Vec::new();
        let mut ranges = Vec::new();
        for pair in cuts.chunks(2) {
            let (start, end) = (pair[0], pair[1]);
            if start == end {
                continue;
            }
            let text = if rng.chance(50) { Vec::new() } else { rng.text(6) };
            ranges.push(start..end);
            let outer_is_delete = text.is_empty();
            ops.push(Op { start, end, text });
            for _ in 0..rng.below(4) {
                let a = start + rng.below(end - start);
                let b = a + 1 + rng.below(end - a);
                // Often from the same start (a header removed after a subst in it).
                let a = if rng.chance(25) { start } else { a };
                let text = if outer_is_delete && rng.chance(60) { rng.text(6) } else { Vec::new() };
                ops.push(Op { start: a, end: b, text });
            }
        }
        for _ in 0..rng.below(7 * scale) {
            let mut at = rng.below(len + 1);
            if let Some(r) = ranges.iter().find(|r| r.start < at && at < r.end) {
                at = if rng.chance(50) { r.start } else { r.end };
            }
            ops.push(Op { start: at, end: at, text: rng.text(4) });
        }
        for i in (1..ops.len()).rev() {
            ops.swap(i, rng.below(i + 1));
        }
        ops
    }

    /// Anything: overlapping, reversed, out of bounds.
    fn random_any_ops(rng: &mut Rng, len: usize) -> Vec<Op> {
        (0..rng.below(9))
            .map(|_| {
                let start = rng.below(len + 3);
                let end = match rng.below(10) {
                    0 => start,
                    1 => start.saturating_sub(rng.below(4)),
                    _ => start + rng.below(len / 2 + 3),
                };
                let text = if rng.chance(40) { Vec::new() } else { rng.text(5) };
                Op { start, end, text }
            })
            .collect()
    }

    #[test]
    fn random_valid_edits_match_the_reference() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let original = random_buffer(&mut rng);
            let ops = random_valid_ops(&mut rng, original.len(), 1);
            assert!(check_against_reference(&mut rng, &original, &ops), "generated an invalid set: {ops:?}");
        }
    }

    #[test]
    fn many_random_edits_match_the_reference() {
        // Hundreds of splices, in random call order, replaces absorbed by deletes among them.
        let mut rng = Rng(0x1234_5678_9ABC_DEF1);
        let mut absorbed_replaces = 0;
        for _ in 0..300 {
            let original: Vec<u8> = (0..600 + rng.below(400)).map(|_| b'a' + rng.below(26) as u8).collect();
            let ops = random_valid_ops(&mut rng, original.len(), 12);
            assert!(check_against_reference(&mut rng, &original, &ops), "generated an invalid set: {ops:?}");
            let kept = naive_check(&ops, original.len()).unwrap();
            absorbed_replaces += (0..ops.len())
                .filter(|i| !ops[*i].is_insert() && !ops[*i].is_pure_delete() && !kept.contains(i))
                .count();
        }
        assert!(absorbed_replaces > 1_000, "{absorbed_replaces} replaces absorbed");
    }

    #[test]
    fn random_edits_are_refused_or_match_the_reference_and_never_panic() {
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        let (mut valid, mut invalid) = (0, 0);
        for _ in 0..50_000 {
            let original = random_buffer(&mut rng);
            let mut ops = random_any_ops(&mut rng, original.len());
            if rng.chance(30) {
                // Mostly valid, with a few wild edits mixed in.
                let mut more = random_valid_ops(&mut rng, original.len(), 1);
                more.truncate(more.len().max(1) - 1);
                ops.truncate(rng.below(3));
                ops.extend(more);
            }
            if check_against_reference(&mut rng, &original, &ops) {
                valid += 1;
            } else {
                invalid += 1;
            }
        }
        assert!(valid > 5_000 && invalid > 5_000, "{valid} valid, {invalid} invalid");
    }

    #[test]
    fn random_branches_match_fresh_edits() {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        for _ in 0..5_000 {
            let original = random_buffer(&mut rng);
            let ops = random_valid_ops(&mut rng, original.len(), 1);
            let split = rng.below(ops.len() + 1);
            let mut edits = record(&ops[..split]);
            // A part of a valid set can be invalid (two deletes that overlap inside a
            // dropped replace).
            let Ok(common) = edits.apply(&original) else {
                assert!(naive_check(&ops[..split], original.len()).is_err());
                continue;
            };
            let mark = edits.checkpoint();
            for _ in 0..3 {
                let branch = random_any_ops(&mut rng, original.len());
                for op in &branch {
                    edits.replace(op.start..op.end, op.text.clone());
                }
                let mut all = ops[..split].to_vec();
                all.extend(branch);
                assert_eq!(edits.apply(&original), record(&all).apply(&original));
                edits.rollback(mark);
                assert_eq!(edits.apply(&original).unwrap(), common);
            }
        }
    }

    #[test]
    fn text_is_the_formatted_string_at_any_length() {
        for n in [0, 1, 200, 255, 256, 257, 1000] {
            let long = "x".repeat(n);
            let expected = format!("Via: {long};branch={}\r\n", 42);
            assert_eq!(text(format_args!("Via: {long};branch={}\r\n", 42)), expected.as_bytes());
        }
    }
}

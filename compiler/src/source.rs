//! Source files and byte spans.
//!
//! Every file the front end reads (the main config and each `include_file`) gets a
//! [`FileId`] in a [`SourceMap`]. AST nodes and diagnostics carry a [`Span`]: a file
//! and a half-open byte range in it. Lines and columns are computed only when a
//! diagnostic is rendered.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Index of a file in a [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(pub u32);

/// A half-open byte range `start..end` in one source file.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Span {
        Span { file, start: start as u32, end: end as u32 }
    }

    /// The smallest span covering `self` and `other` (same file; else `self`).
    pub fn to(self, other: Span) -> Span {
        if self.file != other.file {
            return self;
        }
        Span { file: self.file, start: self.start.min(other.start), end: self.end.max(other.end) }
    }

    /// An empty span at the end of `self`.
    pub fn end_point(self) -> Span {
        Span { file: self.file, start: self.end, end: self.end }
    }

    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.file.0 == 0 {
            write!(f, "{}..{}", self.start, self.end)
        } else {
            write!(f, "#{}:{}..{}", self.file.0, self.start, self.end)
        }
    }
}

/// One source file, with the name it is shown under.
#[derive(Debug)]
pub struct SourceFile {
    /// The name used in diagnostics: the path as the user gave it for the main
    /// file, the resolved path for included files.
    pub name: String,
    /// Where it was read from (used to resolve relative includes).
    pub path: PathBuf,
    pub text: Arc<str>,
    line_starts: Vec<u32>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> Self {
        let text: Arc<str> = text.into();
        let mut line_starts = vec![0u32];
        line_starts.extend(text.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| i as u32 + 1));
        SourceFile { name: name.into(), path: path.into(), text, line_starts }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let offset = offset.min(self.text.len() as u32);
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line] as usize;
        let mut end = offset as usize;
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let col = self.text[start..end].chars().count() + 1;
        (line + 1, col)
    }

    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }
}

/// All files of one parse.
#[derive(Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn new() -> Self {
        SourceMap::default()
    }

    pub fn add(&mut self, file: SourceFile) -> FileId {
        self.files.push(file);
        FileId(self.files.len() as u32 - 1)
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files.iter().enumerate().map(|(i, f)| (FileId(i as u32), f))
    }

    pub fn find_path(&self, path: &Path) -> Option<FileId> {
        self.files.iter().position(|f| f.path == path).map(|i| FileId(i as u32))
    }

    /// The text a span covers.
    pub fn snippet(&self, span: Span) -> &str {
        let text = &self.get(span.file).text;
        text.get(span.range()).unwrap_or("")
    }

    /// A digest of every file read, names and texts (hex [`fnv1a`]): what a
    /// built proxy's `--version` names its config by.
    pub fn digest(&self) -> String {
        let parts: Vec<&[u8]> = self.files.iter().flat_map(|f| [f.name.as_bytes(), f.text.as_bytes()]).collect();
        format!("{:016x}", fnv1a(&parts))
    }
}

/// FNV-1a, 64 bits, over `parts` (each followed by a separator, so ("ab", "c")
/// and ("a", "bc") differ): stable across Rust versions and platforms, for
/// digests that are shown or stored (config digests, `serc build`'s cache layout).
pub fn fnv1a(parts: &[&[u8]]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &byte in *part {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
        hash ^= 0xff;
        hash = hash.wrapping_mul(PRIME);
    }
    hash
}

#[cfg(test)]
mod digest_tests {
    use super::*;

    #[test]
    fn fnv1a_is_stable_and_separates_parts() {
        assert_eq!(fnv1a(&[]), 0xcbf2_9ce4_8422_2325);
        assert_ne!(fnv1a(&[b"ab", b"c"]), fnv1a(&[b"a", b"bc"]));
        let mut map = SourceMap::new();
        map.add(SourceFile::new("a.cfg", "a.cfg", "route{exit;}"));
        let one = map.digest();
        assert_eq!(one.len(), 16);
        map.add(SourceFile::new("b.cfg", "b.cfg", ""));
        assert_ne!(map.digest(), one, "an included file changes the digest");
    }
}

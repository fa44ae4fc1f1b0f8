//! The front end: text → tokens (with the preprocessor and includes) → AST.
//!
//! The front end is total: whatever the bytes, it returns an AST and the list of
//! diagnostics it found, never stopping at the first error and never panicking.
//! It knows nothing about modules.

pub mod ast;
mod detect;
pub mod dialect;
pub mod dump;
pub mod globals;
mod lexer;
mod lower;
mod parse;
mod preproc;
mod token;

use std::io;
use std::path::{Path, PathBuf};

pub use dialect::Dialect;
pub(crate) use lexer::parse_pvar;
pub(crate) use parse::did_you_mean;
pub use parse::{MAX_DEPTH, MAX_NESTING, MAX_OPERATORS};

/// The closest of `candidates` to `word` ("did you mean"), within a small edit distance.
pub fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    did_you_mean(word, candidates)
}
pub(crate) use token::KEYWORDS;

use crate::diag::Diagnostic;
use crate::source::SourceMap;

/// How to read a config.
#[derive(Clone, Debug, Default)]
pub struct ParseOptions {
    /// Read the file as this dialect, whatever it declares or looks like.
    pub dialect: Option<Dialect>,
    /// Names defined before the file is read (`-D NAME` / `-D NAME=VALUE`), as
    /// Kamailio's `-A` does.
    pub defines: Vec<(String, Option<String>)>,
}

/// Where included files come from.
pub trait FileLoader: Sync {
    /// The text of the file at `path`, already resolved against the including file.
    fn load(&self, path: &Path) -> io::Result<String>;
}

/// Largest file the front end reads: configs are kilobytes; this stops
/// `include_file "/dev/zero"`.
pub const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// Reads files from the file system (regular files only, at most [`MAX_FILE_SIZE`]);
/// bytes that are not UTF-8 are replaced, so a Latin-1 comment does not stop a parse.
#[derive(Clone, Copy, Debug, Default)]
pub struct FsLoader;

impl FileLoader for FsLoader {
    fn load(&self, path: &Path) -> io::Result<String> {
        use std::io::Read;
        let file = std::fs::File::open(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
        }
        if meta.len() > MAX_FILE_SIZE {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("larger than {} MiB", MAX_FILE_SIZE >> 20)));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.take(MAX_FILE_SIZE + 1).read_to_end(&mut bytes)?;
        Ok(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }
}

/// A loader with no files: every include fails (for text that has no place on disk).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoFiles;

impl FileLoader for NoFiles {
    fn load(&self, _: &Path) -> io::Result<String> {
        Err(io::Error::new(io::ErrorKind::NotFound, "includes are not available for in-memory text"))
    }
}

/// The result of reading a config.
#[derive(Debug)]
pub struct Parse {
    pub config: ast::Config,
    /// The main file is `FileId(0)`; included files follow.
    pub sources: SourceMap,
    /// Sorted by position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Parse {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// Every file read besides the main one (for rebuild tracking).
    pub fn included_files(&self) -> impl Iterator<Item = &Path> {
        self.sources.files().skip(1).map(|(_, f)| f.path.as_path())
    }
}

/// Reads the config at `path` and everything it includes from the file system.
/// Fails only when the main file cannot be read.
pub fn parse_file(path: &Path, opts: &ParseOptions) -> io::Result<Parse> {
    let text = FsLoader.load(path)?;
    Ok(parse_source(&path.display().to_string(), path, &text, opts, &FsLoader))
}

/// Reads config text that has no file (tests, fuzzing); includes fail.
pub fn parse_str(name: &str, text: &str, opts: &ParseOptions) -> Parse {
    parse_source(name, Path::new(name), text, opts, &NoFiles)
}

/// Reads config text: `name` is shown in diagnostics, `path` resolves includes.
pub fn parse_source(name: &str, path: &Path, text: &str, opts: &ParseOptions, loader: &dyn FileLoader) -> Parse {
    crate::on_big_stack(|| parse_source_here(name, path, text, opts, loader))
}

fn parse_source_here(name: &str, path: &Path, text: &str, opts: &ParseOptions, loader: &dyn FileLoader) -> Parse {
    let mut sources = SourceMap::new();
    let main = sources.add(crate::source::SourceFile::new(name, PathBuf::from(path), text));
    let mut diagnostics = Vec::new();
    let tokens = preproc::expand(main, &mut sources, opts, loader, &mut diagnostics);
    let items = parse::with_lines(&sources, || parse::parse(&tokens.toks, &sources, &mut diagnostics));
    let dialect = match opts.dialect {
        Some(d) => d,
        None => match detect::detect(&tokens, &items) {
            Some((d, note)) => {
                diagnostics.push(note);
                d
            }
            None => Dialect::OpenSer13,
        },
    };
    let config = lower::lower(items, dialect, &mut diagnostics);
    crate::diag::sort(&mut diagnostics);
    Parse { config, sources, diagnostics }
}

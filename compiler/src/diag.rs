//! Diagnostics: one renderer-agnostic type for every message serc gives about a
//! config, rendered at the edges (terminal, JSON Lines, GitHub annotations,
//! `compile_error!`).

use crate::source::Span;

pub mod render;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Context the user may want (the dialect a file was read as). Never fails a check.
    Note,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// What a diagnostic is about: a stable, machine-readable name (`kind` in JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The text is not valid in the dialect it is read as.
    Syntax,
    /// A preprocessor directive (`#!define`, `#!ifdef` …) or an include that failed.
    Preprocessor,
    /// A global parameter (`name = value`) the dialect does not have.
    UnknownGlobal,
    /// A global parameter whose value has the wrong type.
    GlobalValue,
    /// Which dialect a file was read as, and why.
    Dialect,
    /// A construct that reads differently across dialects.
    DialectAmbiguity,
    /// An old spelling with a modern equivalent.
    Deprecated,
    /// `loadmodule` of a module serc does not know.
    UnknownModule,
    /// A function or parameter of a module the config does not load.
    ModuleNotLoaded,
    /// A call of a function no loaded module has.
    UnknownFunction,
    /// A call with a number of arguments the function does not take.
    Arity,
    /// A literal argument that does not fit its kind (checked like OpenSER's fixups).
    Argument,
    /// A function called in a route type that does not allow it.
    RouteType,
    /// A reference to a route block that does not exist.
    UndefinedRoute,
    /// A route block defined twice.
    DuplicateRoute,
    /// A `modparam` of a parameter the module does not have.
    UnknownParam,
    /// A `modparam` value of the wrong type.
    ParamType,
    /// A route block nothing calls or arms.
    UnusedRoute,
    /// A statement no path reaches.
    Unreachable,
    /// A request-route path that ends without relaying, replying or dropping.
    UnhandledRequest,
    /// A flag tested but never set.
    FlagNeverSet,
    /// Something the config uses that the runtime does not implement yet
    /// (`serc build` refuses it; `serc check` does not care).
    Unsupported,
    /// A serc bug: generated code that does not compile or read back.
    Internal,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Syntax => "syntax",
            Kind::Preprocessor => "preprocessor",
            Kind::UnknownGlobal => "unknown-global",
            Kind::GlobalValue => "global-value",
            Kind::Dialect => "dialect",
            Kind::DialectAmbiguity => "dialect-ambiguity",
            Kind::Deprecated => "deprecated",
            Kind::UnknownModule => "unknown-module",
            Kind::ModuleNotLoaded => "module-not-loaded",
            Kind::UnknownFunction => "unknown-function",
            Kind::Arity => "arity",
            Kind::Argument => "argument",
            Kind::RouteType => "route-type",
            Kind::UndefinedRoute => "undefined-route",
            Kind::DuplicateRoute => "duplicate-route",
            Kind::UnknownParam => "unknown-param",
            Kind::ParamType => "param-type",
            Kind::UnusedRoute => "unused-route",
            Kind::Unreachable => "unreachable",
            Kind::UnhandledRequest => "unhandled-request",
            Kind::FlagNeverSet => "flag-never-set",
            Kind::Unsupported => "unsupported",
            Kind::Internal => "internal",
        }
    }
}

/// A secondary location with a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub kind: Kind,
    pub message: String,
    /// Where it is; `None` for diagnostics about the whole run.
    pub span: Option<Span>,
    /// Text under the primary caret.
    pub label: Option<String>,
    pub secondary: Vec<Label>,
    /// `note: …` lines (facts).
    pub notes: Vec<String>,
    /// `help: …` lines (what to do).
    pub help: Vec<String>,
}

impl Diagnostic {
    pub fn new(severity: Severity, kind: Kind, message: impl Into<String>) -> Self {
        Diagnostic {
            severity,
            kind,
            message: message.into(),
            span: None,
            label: None,
            secondary: Vec::new(),
            notes: Vec::new(),
            help: Vec::new(),
        }
    }

    pub fn error(kind: Kind, span: Span, message: impl Into<String>) -> Self {
        Diagnostic::new(Severity::Error, kind, message).at(span)
    }

    pub fn warning(kind: Kind, span: Span, message: impl Into<String>) -> Self {
        Diagnostic::new(Severity::Warning, kind, message).at(span)
    }

    pub fn note_at(kind: Kind, span: Span, message: impl Into<String>) -> Self {
        Diagnostic::new(Severity::Note, kind, message).at(span)
    }

    pub fn at(mut self, span: Span) -> Self {
        self.span = Some(span);
        self
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn with_secondary(mut self, span: Span, message: impl Into<String>) -> Self {
        self.secondary.push(Label { span, message: message.into() });
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help.push(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Sort diagnostics by file and position, errors first at the same place, and drop
/// exact duplicates.
pub fn sort(diags: &mut Vec<Diagnostic>) {
    diags.sort_by(|a, b| {
        let ka = a.span.map(|s| (s.file, s.start, s.end));
        let kb = b.span.map(|s| (s.file, s.start, s.end));
        ka.cmp(&kb).then(b.severity.cmp(&a.severity))
    });
    diags.dedup();
}

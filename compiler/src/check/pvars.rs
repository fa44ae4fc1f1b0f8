//! Pseudo-variables: which names exist, and format strings that use them.

use crate::diag::{Diagnostic, Kind};
use crate::source::SourceMap;
use crate::syntax::ast::{PVar, StrLit};

/// The pseudo-variables of OpenSER 1.3 (core pvar.c, and the modules that export
/// some: xlog's `$C`, dialog's `$DLG_*`, tm's `$T_branch_idx`).
pub const OPENSER_PVARS: &[&str] = &[
    "avp",
    "hdr",
    "var",
    "ai",
    "adu",
    "ar",
    "au",
    "aU",
    "Au",
    "bf",
    "bF",
    "br",
    "bR",
    "ci",
    "cl",
    "cs",
    "ct",
    "cT",
    "dd",
    "di",
    "dp",
    "dP",
    "ds",
    "du",
    "duri",
    "err.class",
    "err.level",
    "err.info",
    "err.rcode",
    "err.rreason",
    "fd",
    "from.domain",
    "fn",
    "fs",
    "ft",
    "fu",
    "from",
    "fU",
    "from.user",
    "mb",
    "mf",
    "mF",
    "mi",
    "ml",
    "od",
    "op",
    "oP",
    "ou",
    "ouri",
    "oU",
    "pd",
    "pn",
    "pp",
    "pr",
    "proto",
    "pu",
    "pU",
    "rb",
    "rc",
    "retcode",
    "rd",
    "ruri.domain",
    "re",
    "rm",
    "rp",
    "rP",
    "rr",
    "rs",
    "rt",
    "ru",
    "ruri",
    "rU",
    "ruri.user",
    "Ri",
    "Rp",
    "sf",
    "sF",
    "si",
    "src_ip",
    "sp",
    "td",
    "to.domain",
    "tn",
    "tt",
    "tu",
    "to",
    "tU",
    "to.user",
    "Tf",
    "Ts",
    "ua",
    "C",
    "DLG_count",
    "DLG_status",
    "DLG_lifetime",
    "T_branch_idx",
    "null",
];

pub fn known(name: &str) -> bool {
    OPENSER_PVARS.contains(&name)
}

/// Reads one pseudo-variable spelled exactly as `text`.
pub fn parse_one(text: &str) -> Option<PVar> {
    match crate::syntax::parse_pvar(text) {
        Some((p, len)) if len == text.len() => Some(p),
        _ => None,
    }
}

/// Checks every pseudo-variable inside a format string (`"$ru from $si"`).
pub fn check_format(lit: &StrLit, sources: &SourceMap, strict: bool) -> Vec<Diagnostic> {
    let v = &lit.value;
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = v[i..].find('$') {
        let at = i + off;
        let next = v[at + 1..].chars().next();
        // `$` before something that cannot start a name is a plain dollar.
        if !next.is_some_and(|c| c.is_ascii_alphabetic() || c == '(' || c == '_') {
            i = at + 1;
            continue;
        }
        let span_of = |len: usize| super::args::inner_span(lit, at..at + len, sources);
        match crate::syntax::parse_pvar(&v[at..]) {
            Some((p, len)) => {
                if strict && !known(&p.name) {
                    let mut d = Diagnostic::error(
                        Kind::Argument,
                        span_of(len),
                        format!("unknown pseudo-variable `${}`", p.name),
                    )
                    .with_label("OpenSER 1.3 has no such pseudo-variable");
                    if let Some(s) = crate::syntax::did_you_mean(&p.name, OPENSER_PVARS) {
                        d = d.with_help(format!("did you mean `${s}`?"));
                    }
                    out.push(d);
                }
                i = at + len.max(1);
            }
            None => {
                out.push(
                    Diagnostic::error(Kind::Argument, span_of(1), "malformed pseudo-variable")
                        .with_label("cannot read a pseudo-variable here")
                        .with_help("pseudo-variables look like `$ru`, `$avp(s:name)` or `$(hdr(Via)[1])`"),
                );
                i = at + 1;
            }
        }
    }
    out
}

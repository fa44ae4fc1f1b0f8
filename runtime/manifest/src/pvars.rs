//! The pseudo-variables and transformations the runtime implements: the
//! code generator refuses others (`unsupported`); the runtime's tests check
//! that each name here is one its parser reads.

/// Names read without an inner part: `$ru`, `$ci` …
pub static PLAIN: &[&str] = &[
    "ru",
    "ruri",
    "rU",
    "ruri.user",
    "rd",
    "ruri.domain",
    "rp",
    "ou",
    "ouri",
    "oU",
    "od",
    "op",
    "du",
    "duri",
    "dd",
    "dp",
    "fu",
    "from",
    "fU",
    "from.user",
    "fd",
    "from.domain",
    "fn",
    "ft",
    "tu",
    "to",
    "tU",
    "to.user",
    "td",
    "to.domain",
    "tn",
    "tt",
    "ci",
    "cs",
    "rm",
    "rs",
    "rr",
    "si",
    "src_ip",
    "sp",
    "Ri",
    "Rp",
    "pr",
    "proto",
    "ua",
    "ct",
    "cT",
    "cl",
    "rb",
    "ml",
    "mb",
    "mf",
    "sf",
    "bf",
    "mF",
    "sF",
    "bF",
    "br",
    "bR",
    "ds",
    "dP",
    "oP",
    "mi",
    "Tf",
    "pd",
    "pn",
    "retcode",
    "rc",
    "err.class",
    "err.level",
    "err.info",
    "err.rcode",
    "err.rreason",
    "Ts",
    "null",
    "fs",
    "pp",
    "rP",
    "rt",
    "pu",
    "pU",
    "ai",
    "di",
    "re",
    "au",
    "aU",
    "ar",
    "adu",
    "Au",
];

/// Names read with an inner part: `$avp(s:x)`, `$hdr(Via)` …
pub static WITH_INNER: &[&str] = &["C", "hdr", "avp", "var"];

/// Transformations: `{s.len}`, `{uri.user}` …
pub static TRANSFORMS: &[&str] = &[
    "s.len",
    "s.int",
    "s.tolower",
    "s.toupper",
    "s.substr",
    "s.select",
    "uri.user",
    "uri.host",
    "uri.port",
    "uri.params",
    "uri.param",
    "uri.transport",
    "param.value",
    "param.count",
];

/// Whether the runtime implements `$name` (with or without an inner part).
pub fn implemented(name: &str, has_inner: bool) -> bool {
    if has_inner {
        WITH_INNER.contains(&name)
    } else {
        PLAIN.contains(&name)
    }
}

/// Whether the runtime implements the transformation whose text is `text`
/// (`param.value,expires`).
pub fn transform_implemented(text: &str) -> bool {
    let name = text.split(',').next().unwrap_or("").trim();
    TRANSFORMS.contains(&name)
}

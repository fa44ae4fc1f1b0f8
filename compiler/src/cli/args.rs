//! Arguments that say how to read a config: `--dialect` and `-D`. Every subcommand
//! that reads configs flattens [`ReadArgs`].

use std::ffi::OsStr;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, Args, Command};
use serc::syntax::{Dialect, ParseOptions};

#[derive(Debug, Clone, Args)]
pub struct ReadArgs {
    /// Read every FILE as this dialect, whatever it declares or looks like
    #[arg(long, value_name = "DIALECT", value_parser = DialectParser)]
    pub dialect: Option<Dialect>,

    /// Define NAME for `#!ifdef` / `#!define` (Kamailio's `-A`); repeatable
    #[arg(short = 'D', long = "define", value_name = "NAME[=VALUE]", value_parser = parse_define)]
    pub defines: Vec<(String, Option<String>)>,
}

impl ReadArgs {
    pub fn parse_options(&self) -> ParseOptions {
        ParseOptions { dialect: self.dialect, defines: self.defines.clone() }
    }
}

/// `NAME` or `NAME=VALUE`; NAME is an identifier as `#!define` takes it.
fn parse_define(s: &str) -> Result<(String, Option<String>), String> {
    let (name, value) = match s.split_once('=') {
        Some((name, value)) => (name, Some(value.to_owned())),
        None => (s, None),
    };
    let mut chars = name.chars();
    let starts_well = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !starts_well || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("`{name}` is not a name: use letters, digits and `_`, not starting with a digit"));
    }
    Ok((name.to_owned(), value))
}

/// Parses a dialect with [`Dialect`]'s `FromStr` (which knows aliases such as
/// `openser`), lists the canonical names in `--help` and suggests the nearest
/// name on a typo.
#[derive(Clone, Copy, Debug)]
struct DialectParser;

impl TypedValueParser for DialectParser {
    type Value = Dialect;

    fn parse_ref(&self, cmd: &Command, arg: Option<&Arg>, value: &OsStr) -> Result<Dialect, clap::Error> {
        let text = value.to_string_lossy();
        text.parse().map_err(|_: String| invalid_dialect(cmd, arg, &text))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(Dialect::ALL.into_iter().map(|d| PossibleValue::new(d.id()).help(d.display_name()))))
    }
}

fn invalid_dialect(cmd: &Command, arg: Option<&Arg>, value: &str) -> clap::Error {
    let ids: Vec<String> = Dialect::ALL.iter().map(|d| d.id().to_owned()).collect();
    let mut err = clap::Error::new(ErrorKind::InvalidValue).with_cmd(cmd);
    let arg = arg.map_or_else(|| "--dialect".to_owned(), ToString::to_string);
    err.insert(ContextKind::InvalidArg, ContextValue::String(arg));
    err.insert(ContextKind::InvalidValue, ContextValue::String(value.to_owned()));
    let nearest = ids
        .iter()
        .map(|id| (strsim::jaro_winkler(&value.to_ascii_lowercase(), id), id))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((_, id)) = nearest {
        err.insert(ContextKind::SuggestedValue, ContextValue::String(id.clone()));
    }
    err.insert(ContextKind::ValidValue, ContextValue::Strings(ids));
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defines() {
        assert_eq!(parse_define("WITH_NAT"), Ok(("WITH_NAT".to_owned(), None)));
        assert_eq!(parse_define("DBURL=mysql://x@y/z"), Ok(("DBURL".to_owned(), Some("mysql://x@y/z".to_owned()))));
        assert_eq!(parse_define("X="), Ok(("X".to_owned(), Some(String::new()))));
        assert!(parse_define("").is_err());
        assert!(parse_define("=1").is_err());
        assert!(parse_define("1X").is_err());
        assert!(parse_define("A-B").is_err());
    }
}

//! The macro's input: `"PATH" [, dialect = "D"] [, functions = [PATH(KIND, ...), ...]] [,]`.

use proc_macro2::Span;
use serc::syntax::Dialect;
use serc_manifest::ArgKind;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{bracketed, parenthesized, Ident, LitStr, Token};

pub struct Input {
    /// The config's path as written, relative to `CARGO_MANIFEST_DIR`.
    pub path: LitStr,
    pub dialect: Option<Dialect>,
    pub functions: Vec<UserFn>,
}

/// `crate::fraud::check(Str, Int)`.
pub struct UserFn {
    pub path: syn::Path,
    /// The name the config calls it by: the path's last segment.
    pub name: Ident,
    pub args: Vec<(ArgKind, Span)>,
}

impl Parse for Input {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let path: LitStr = input.parse()?;
        let mut dialect = None;
        let mut functions = None;
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            let key: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            match key.to_string().as_str() {
                "dialect" if dialect.is_none() => {
                    let lit: LitStr = input.parse()?;
                    dialect = Some(lit.value().parse::<Dialect>().map_err(|e| syn::Error::new(lit.span(), e))?);
                }
                "functions" if functions.is_none() => {
                    let list;
                    bracketed!(list in input);
                    let fns = Punctuated::<UserFn, Token![,]>::parse_terminated(&list)?;
                    functions = Some(check_unique(fns.into_iter().collect())?);
                }
                "dialect" | "functions" => return Err(syn::Error::new(key.span(), format!("`{key}` is given twice"))),
                _ => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!("unknown option `{key}`; the options are `dialect` and `functions`"),
                    ))
                }
            }
        }
        Ok(Input { path, dialect, functions: functions.unwrap_or_default() })
    }
}

impl Parse for UserFn {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let path = syn::Path::parse_mod_style(input)?;
        let name = match path.segments.last() {
            Some(last) => last.ident.clone(),
            None => return Err(syn::Error::new(path.span(), "expected the path of a function")),
        };
        let list;
        parenthesized!(list in input);
        let kinds = Punctuated::<Ident, Token![,]>::parse_terminated(&list)?;
        let args = kinds.iter().map(|k| Ok((arg_kind(k)?, k.span()))).collect::<syn::Result<_>>()?;
        Ok(UserFn { path, name, args })
    }
}

/// Two functions the config would call by the same name.
fn check_unique(fns: Vec<UserFn>) -> syn::Result<Vec<UserFn>> {
    for (i, f) in fns.iter().enumerate() {
        if fns[..i].iter().any(|g| g.name == f.name) {
            return Err(syn::Error::new(f.name.span(), format!("a function named `{}` is already given", f.name)));
        }
    }
    Ok(fns)
}

/// Every argument kind, by its variant name.
const KINDS: [ArgKind; 21] = [
    ArgKind::Str,
    ArgKind::Format,
    ArgKind::Int,
    ArgKind::Flag,
    ArgKind::ReplyCode,
    ArgKind::Regex,
    ArgKind::Subst,
    ArgKind::PVar,
    ArgKind::Avp,
    ArgKind::Uri,
    ArgKind::HostPort,
    ArgKind::Socket,
    ArgKind::HeaderName,
    ArgKind::HeaderField,
    ArgKind::FailureRoute,
    ArgKind::ReplyRoute,
    ArgKind::BranchRoute,
    ArgKind::Table,
    ArgKind::Methods,
    ArgKind::LogLevel,
    ArgKind::Opaque,
];

/// The index of a kind in [`KINDS`]: an exhaustive match, so a new `ArgKind`
/// variant does not compile until it is listed (the test checks the order).
#[cfg_attr(not(test), allow(dead_code))]
const fn kind_index(k: ArgKind) -> usize {
    match k {
        ArgKind::Str => 0,
        ArgKind::Format => 1,
        ArgKind::Int => 2,
        ArgKind::Flag => 3,
        ArgKind::ReplyCode => 4,
        ArgKind::Regex => 5,
        ArgKind::Subst => 6,
        ArgKind::PVar => 7,
        ArgKind::Avp => 8,
        ArgKind::Uri => 9,
        ArgKind::HostPort => 10,
        ArgKind::Socket => 11,
        ArgKind::HeaderName => 12,
        ArgKind::HeaderField => 13,
        ArgKind::FailureRoute => 14,
        ArgKind::ReplyRoute => 15,
        ArgKind::BranchRoute => 16,
        ArgKind::Table => 17,
        ArgKind::Methods => 18,
        ArgKind::LogLevel => 19,
        ArgKind::Opaque => 20,
    }
}

fn kind_name(k: ArgKind) -> String {
    format!("{k:?}")
}

fn arg_kind(ident: &Ident) -> syn::Result<ArgKind> {
    let word = ident.to_string();
    if let Some(k) = KINDS.iter().copied().find(|k| kind_name(*k) == word) {
        return Ok(k);
    }
    let names: Vec<String> = KINDS.iter().map(|k| kind_name(*k)).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let hint = match serc::syntax::suggest(&word, &refs) {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    };
    Err(syn::Error::new(
        ident.span(),
        format!("unknown argument kind `{word}`{hint}; the kinds are: {}", refs.join(", ")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed_once_in_order() {
        for (i, k) in KINDS.iter().enumerate() {
            assert_eq!(kind_index(*k), i, "{k:?}");
        }
    }

    #[test]
    fn parses_all_options() {
        let input: Input = syn::parse_str(
            r#""openser.cfg", dialect = "kamailio", functions = [crate::fraud::check(Str, Int), f(),],"#,
        )
        .unwrap();
        assert_eq!(input.path.value(), "openser.cfg");
        assert_eq!(input.dialect, Some(Dialect::Kamailio));
        let names: Vec<String> = input.functions.iter().map(|f| f.name.to_string()).collect();
        assert_eq!(names, ["check", "f"]);
        let kinds: Vec<ArgKind> = input.functions[0].args.iter().map(|a| a.0).collect();
        assert_eq!(kinds, [ArgKind::Str, ArgKind::Int]);
        assert!(input.functions[1].args.is_empty());
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        let err = |text: &str| syn::parse_str::<Input>(text).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err(r#""a.cfg", functions = [f(Strr)]"#).starts_with("unknown argument kind `Strr` (did you mean `Str`?)")
        );
        assert!(err(r#""a.cfg", dialect = "asterisk""#).starts_with("unknown dialect `asterisk`"));
        assert!(err(r#""a.cfg", colour = "red""#).starts_with("unknown option `colour`"));
        assert!(err(r#""a.cfg", dialect = "kamailio", dialect = "opensips""#).contains("given twice"));
        assert!(err(r#""a.cfg", functions = [a::f(), b::f(Int)]"#).contains("`f` is already given"));
    }
}

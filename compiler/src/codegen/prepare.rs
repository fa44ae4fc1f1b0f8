//! Literal arguments prepared once, when the proxy starts: each becomes a
//! field of the generated script struct, initialised by the runtime's own
//! parser for its kind (the checker has already validated the text the same
//! way, so a failure there is a serc bug). Equal literals share one field.

use std::collections::HashMap;

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

/// What a prepared literal becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Prep {
    Format,
    ReplyCode,
    /// A module argument regex (`compile_regex`: OpenSER's `fixup_str2regexp`).
    Regex,
    /// The right side of `=~` in a condition (`REG_EXTENDED|REG_ICASE`).
    CondRegex,
    Subst,
    PvRef,
    Avp,
    HostPort,
    Socket,
    HdrName,
    Methods,
}

#[derive(Default)]
pub struct Prepared {
    by_text: HashMap<(Prep, String), Ident>,
    /// In creation order: (field, type, initialiser of type `Result<T, String>`).
    fields: Vec<(Ident, TokenStream, TokenStream)>,
}

impl Prepared {
    /// The field holding `text` prepared as `kind`.
    pub fn add(&mut self, kind: Prep, text: &str) -> Ident {
        if let Some(id) = self.by_text.get(&(kind, text.to_string())) {
            return id.clone();
        }
        let id = format_ident!("p{}", self.fields.len());
        let args = quote!(::serc_runtime::script::args);
        let fail = quote!(::std::format!("`{}`: {}", #text, e));
        let (ty, init) = match kind {
            Prep::Format => (quote!(#args::Format), quote!(#args::Format::parse(#text).map_err(|e| #fail))),
            Prep::ReplyCode => (
                quote!(#args::ReplyCode),
                quote!(#args::Format::parse(#text).map(#args::ReplyCode::Dynamic).map_err(|e| #fail)),
            ),
            Prep::Regex => (quote!(#args::Regex), quote!(#args::compile_regex(#text).map_err(|e| #fail))),
            Prep::CondRegex => {
                let pattern = format!("(?i){text}");
                (quote!(#args::Regex), quote!(#args::Regex::new(#pattern).map_err(|e| #fail)))
            }
            Prep::Subst => (quote!(#args::Subst), quote!(#args::Subst::parse(#text).map_err(|e| #fail))),
            Prep::PvRef => (
                quote!(#args::PvRef),
                quote!(#args::PvRef::parse(#text).ok_or_else(|| ::std::format!("`{}`: not a pseudo-variable", #text))),
            ),
            Prep::Avp => {
                let inner = text.strip_prefix("$avp(").and_then(|r| r.strip_suffix(')')).unwrap_or(text).to_string();
                (
                    quote!(#args::AvpName),
                    quote!(#args::AvpName::parse(#inner).ok_or_else(|| ::std::format!("`{}`: not an AVP name", #text))),
                )
            }
            Prep::HostPort => {
                let (host, port) = split_host_port(text);
                let port = match port {
                    Some(p) => quote!(::core::option::Option::Some(#p)),
                    None => quote!(::core::option::Option::None),
                };
                (
                    quote!(#args::HostPort),
                    quote!(::core::result::Result::<_, ::std::string::String>::Ok(#args::HostPort {
                        host: ::std::string::String::from(#host),
                        port: #port,
                    })),
                )
            }
            Prep::Socket => (
                quote!(#args::SocketSpec),
                quote!(#args::SocketSpec::parse(#text).ok_or_else(|| ::std::format!("`{}`: not a socket", #text))),
            ),
            Prep::HdrName => (
                quote!(#args::HdrName),
                quote!(::core::result::Result::<_, ::std::string::String>::Ok(#args::HdrName::new(#text))),
            ),
            Prep::Methods => (
                quote!(#args::Methods),
                quote!(::core::result::Result::<_, ::std::string::String>::Ok(#args::Methods::parse(#text))),
            ),
        };
        self.by_text.insert((kind, text.to_string()), id.clone());
        self.fields.push((id.clone(), ty, init));
        id
    }

    /// The struct fields.
    pub fn field_decls(&self) -> TokenStream {
        let decls = self.fields.iter().map(|(id, ty, _)| quote!(#id: #ty,));
        quote!(#(#decls)*)
    }

    /// The initialisers, for `Ok(Self { … })`.
    pub fn field_inits(&self) -> TokenStream {
        let inits = self.fields.iter().map(|(id, _, init)| quote!(#id: #init?,));
        quote!(#(#inits)*)
    }
}

/// `host[:port]` (IPv6 references in brackets) → host and port.
pub fn split_host_port(text: &str) -> (String, Option<u16>) {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix('[') {
        if let Some(close) = rest.find(']') {
            let port = rest[close + 1..].strip_prefix(':').and_then(|p| p.parse().ok());
            return (format!("[{}]", &rest[..close]), port);
        }
    }
    match text.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(port) => (h.to_string(), Some(port)),
            Err(_) => (text.to_string(), None),
        },
        _ => (text.to_string(), None),
    }
}

//! `serc modules [NAME]`: the modules serc knows, from their manifests.

use std::io::Write;

use clap::Args;
use serc::check::{kind_name, signature};
use serc_manifest::{self as manifest, Default as ParamDefault, Module, ParamType};

use super::Status;

const AFTER_HELP: &str = "\
Examples:
  serc modules              every module, with its functions
  serc modules tm           one module: its functions with their argument kinds, the route
                            types where each may be called, and its parameters
  serc modules --json tm    the same as JSON

Functions marked `(not implemented)` are checked by `serc check` but refused by `serc build`
until the runtime implements them.";

/// List the modules serc knows, with their functions and parameters.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct ModulesArgs {
    /// Show only this module (`tm`, `registrar`, … or `core`), with its parameters
    pub module: Option<String>,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &ModulesArgs) -> Status {
    let modules: Vec<&'static Module> = match &args.module {
        Some(name) => match manifest::module(name.trim_end_matches(".so")) {
            Some(m) => vec![m],
            None => {
                let names: Vec<&str> = manifest::all().iter().map(|m| m.name).collect();
                let hint =
                    serc::syntax::suggest(name, &names).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
                eprintln!("error: unknown module `{name}`{hint}; `serc modules` lists them");
                return Status::Failure;
            }
        },
        None => manifest::all().to_vec(),
    };
    let text = if args.json { json(&modules) } else { text(&modules, args.module.is_some()) };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    Status::Ok
}

fn text(modules: &[&Module], detailed: bool) -> String {
    let mut s = String::new();
    for m in modules {
        s += &format!("{} — {}\n", m.name, m.summary);
        for f in m.functions {
            let routes = f.routes.names().join(", ");
            let todo = if f.implemented { "" } else { "  (not implemented)" };
            s += &format!("  {}   [{routes}]{todo}\n", signature(f));
            if detailed {
                if !f.summary.is_empty() {
                    s += &format!("      {}\n", f.summary);
                }
                for (code, meaning) in f.returns {
                    s += &format!("      returns {code}: {meaning}\n");
                }
            }
        }
        if detailed && !m.params.is_empty() {
            s += "  parameters:\n";
            for p in m.params {
                let ty = match p.ty {
                    ParamType::Int => "int",
                    ParamType::Str => "string",
                };
                let default = match p.default {
                    ParamDefault::Int(i) => format!(" = {i}"),
                    ParamDefault::Str(v) => format!(" = {v:?}"),
                    ParamDefault::None => String::new(),
                };
                s += &format!("    {}: {ty}{default}   {}\n", p.name, p.summary);
            }
        }
        s.push('\n');
    }
    s
}

fn json(modules: &[&Module]) -> String {
    let list: Vec<serde_json::Value> = modules
        .iter()
        .map(|m| {
            serde_json::json!({
                "name": m.name,
                "summary": m.summary,
                "functions": m.functions.iter().map(|f| serde_json::json!({
                    "name": f.name,
                    "args": f.args.iter().map(|a| serde_json::json!({"name": a.name, "kind": kind_name(a.kind)})).collect::<Vec<_>>(),
                    "routes": f.routes.names(),
                    "returns": f.returns.iter().map(|(c, m)| serde_json::json!({"code": c, "meaning": m})).collect::<Vec<_>>(),
                    "implemented": f.implemented,
                    "summary": f.summary,
                })).collect::<Vec<_>>(),
                "params": m.params.iter().map(|p| serde_json::json!({
                    "name": p.name,
                    "type": match p.ty { ParamType::Int => "int", ParamType::Str => "string" },
                    "default": match p.default {
                        ParamDefault::Int(i) => serde_json::json!(i),
                        ParamDefault::Str(v) => serde_json::json!(v),
                        ParamDefault::None => serde_json::Value::Null,
                    },
                    "summary": p.summary,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::to_string_pretty(&list).unwrap_or_default() + "\n"
}

//! The manifests of every module serc knows: the core, then OpenSER 1.3's modules (one file each).

pub mod acc;
pub mod alias_db;
pub mod auth;
pub mod auth_db;
pub mod auth_diameter;
pub mod auth_radius;
pub mod avp_radius;
pub mod avpops;
pub mod benchmark;
pub mod carrierroute;
pub mod cfgutils;
pub mod core;
pub mod cpl_c;
pub mod db_berkeley;
pub mod dbtext;
pub mod dialog;
pub mod dispatcher;
pub mod diversion;
pub mod domain;
pub mod domainpolicy;
pub mod elsewhere;
pub mod r#enum;
pub mod exec;
pub mod flatstore;
pub mod gflags;
pub mod group;
pub mod group_radius;
pub mod h350;
pub mod imc;
pub mod jabber;
pub mod lcr;
pub mod ldap;
pub mod mangler;
pub mod maxfwd;
pub mod mediaproxy;
pub mod mi_datagram;
pub mod mi_fifo;
pub mod mi_xmlrpc;
pub mod msilo;
pub mod mysql;
pub mod nathelper;
pub mod options;
pub mod osp;
pub mod path;
pub mod pdt;
pub mod perl;
pub mod perlvdb;
pub mod permissions;
pub mod pike;
pub mod postgres;
pub mod presence;
pub mod presence_mwi;
pub mod presence_xml;
pub mod pua;
pub mod pua_bla;
pub mod pua_mi;
pub mod pua_usrloc;
pub mod pua_xmpp;
pub mod registrar;
pub mod removed_in_1_3;
pub mod rls;
pub mod rr;
pub mod seas;
pub mod siptrace;
pub mod sl;
pub mod sms;
pub mod snmpstats;
pub mod speeddial;
pub mod sst;
pub mod statistics;
pub mod textops;
pub mod tlsops;
pub mod tm;
pub mod uac;
pub mod uac_redirect;
pub mod unixodbc;
pub mod uri;
pub mod uri_db;
pub mod uri_radius;
pub mod usrloc;
pub mod xcap_client;
pub mod xlog;
pub mod xmpp;

/// Every module: the core first, then OpenSER 1.3's modules in alphabetical order.
pub static ALL: &[&crate::Module] = &[
    &core::MODULE,
    &acc::MODULE,
    &alias_db::MODULE,
    &auth::MODULE,
    &auth_db::MODULE,
    &auth_diameter::MODULE,
    &auth_radius::MODULE,
    &avp_radius::MODULE,
    &avpops::MODULE,
    &benchmark::MODULE,
    &carrierroute::MODULE,
    &cfgutils::MODULE,
    &cpl_c::MODULE,
    &db_berkeley::MODULE,
    &dbtext::MODULE,
    &dialog::MODULE,
    &dispatcher::MODULE,
    &diversion::MODULE,
    &domain::MODULE,
    &domainpolicy::MODULE,
    &r#enum::MODULE,
    &exec::MODULE,
    &flatstore::MODULE,
    &gflags::MODULE,
    &group::MODULE,
    &group_radius::MODULE,
    &h350::MODULE,
    &imc::MODULE,
    &jabber::MODULE,
    &lcr::MODULE,
    &ldap::MODULE,
    &mangler::MODULE,
    &maxfwd::MODULE,
    &mediaproxy::MODULE,
    &mi_datagram::MODULE,
    &mi_fifo::MODULE,
    &mi_xmlrpc::MODULE,
    &msilo::MODULE,
    &mysql::MODULE,
    &nathelper::MODULE,
    &options::MODULE,
    &osp::MODULE,
    &path::MODULE,
    &pdt::MODULE,
    &perl::MODULE,
    &perlvdb::MODULE,
    &permissions::MODULE,
    &pike::MODULE,
    &postgres::MODULE,
    &presence::MODULE,
    &presence_mwi::MODULE,
    &presence_xml::MODULE,
    &pua::MODULE,
    &pua_bla::MODULE,
    &pua_mi::MODULE,
    &pua_usrloc::MODULE,
    &pua_xmpp::MODULE,
    &registrar::MODULE,
    &rls::MODULE,
    &rr::MODULE,
    &seas::MODULE,
    &siptrace::MODULE,
    &sl::MODULE,
    &sms::MODULE,
    &snmpstats::MODULE,
    &speeddial::MODULE,
    &sst::MODULE,
    &statistics::MODULE,
    &textops::MODULE,
    &tlsops::MODULE,
    &tm::MODULE,
    &uac::MODULE,
    &uac_redirect::MODULE,
    &unixodbc::MODULE,
    &uri::MODULE,
    &uri_db::MODULE,
    &uri_radius::MODULE,
    &usrloc::MODULE,
    &xcap_client::MODULE,
    &xlog::MODULE,
    &xmpp::MODULE,
];

#[cfg(test)]
mod tests {
    //! The manifests against OpenSER 1.3's export tables, extracted into
    //! `shared/reference/openser-1.3/{functions,params}.tsv`.

    use std::collections::{BTreeMap, BTreeSet};
    use std::path::PathBuf;

    use crate::{Module, ParamType, Routes};

    /// Errata of params.tsv, checked against the source (modules/rls/rls.c at
    /// 9fea1f6): the extraction read the dlopen-flags field of rls's
    /// `module_exports` as a parameter row and lost the `rls_event` row
    /// (a `STR_PARAM|USE_FUNC_PARAM` parameter) …
    const NOT_PARAMS: &[(&str, &str, &str)] = &[("rls", "rls", "DEFAULT_DLFLAGS")];
    /// … so `rls_event` is added to the expected parameters.
    /// Parameters the reference misses: rls_event (rls.c), and snmpstats'
    /// table, which snmpstats.h names `mod_params`.
    const MISSING_PARAMS: &[(&str, &str, ParamType)] = &[
        ("rls", "rls_event", ParamType::Str),
        ("snmpstats", "sipEntityType", ParamType::Str),
        ("snmpstats", "MsgQueueMinorThreshold", ParamType::Int),
        ("snmpstats", "MsgQueueMajorThreshold", ParamType::Int),
        ("snmpstats", "dlg_minor_threshold", ParamType::Int),
        ("snmpstats", "dlg_major_threshold", ParamType::Int),
        ("snmpstats", "snmpgetPath", ParamType::Str),
        ("snmpstats", "snmpCommunity", ParamType::Str),
    ];

    fn reference(file: &str) -> Vec<Vec<String>> {
        let path: PathBuf =
            [env!("CARGO_MANIFEST_DIR"), "..", "..", "..", "shared", "reference", "openser-1.3", file].iter().collect();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read {}: {e}\nthese tests need the shared reference data \
                 (/work/shared/reference/openser-1.3/) beside the repository",
                path.display()
            )
        });
        text.lines()
            .skip(1) // header
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }

    fn routes(column: &str) -> Routes {
        column.split(',').fold(Routes(0), |acc, r| {
            acc.or(match r.trim() {
                "R" => Routes::REQUEST,
                "F" => Routes::FAILURE,
                "O" => Routes::ONREPLY,
                "B" => Routes::BRANCH,
                "E" => Routes::ERROR,
                other => panic!("functions.tsv: unknown route letter {other:?} in {column:?}"),
            })
        })
    }

    /// `ParamType` is not `Ord`; this names it for the sets below.
    fn ty(t: ParamType) -> &'static str {
        match t {
            ParamType::Int => "INT",
            ParamType::Str => "STR",
        }
    }

    fn modules() -> BTreeMap<&'static str, &'static Module> {
        let mut map = BTreeMap::new();
        for m in super::ALL.iter().copied().filter(|m| m.name != "core") {
            assert!(map.insert(m.name, m).is_none(), "module {} is listed twice in ALL", m.name);
        }
        map
    }

    #[test]
    fn core_comes_first() {
        assert_eq!(super::ALL[0].name, "core");
        assert!(super::ALL[0].params.is_empty(), "the core has no modparams");
        let names: Vec<_> = super::ALL[1..].iter().map(|m| m.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "modules after the core must be in alphabetical order");
    }

    #[test]
    fn modules_match_reference() {
        let mut expected = BTreeSet::new();
        for row in reference("functions.tsv").iter().chain(reference("params.tsv").iter()) {
            expected.insert(row[0].clone());
        }
        // Modules of 1.3 with nothing a script can use (database drivers, event
        // packages) are not in the reference tables, which list exports.
        let silent = ["perlvdb", "postgres", "presence_mwi", "pua_mi", "snmpstats"];
        let actual: BTreeSet<String> =
            modules().keys().filter(|n| !silent.contains(n)).map(|n| n.to_string()).collect();
        let missing: Vec<_> = expected.difference(&actual).collect();
        let extra: Vec<_> = actual.difference(&expected).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "modules missing from ALL: {missing:?}; not in the reference: {extra:?}"
        );
    }

    #[test]
    fn functions_match_reference() {
        let modules = modules();
        let mut errors = Vec::new();
        // (module, name, arity) -> routes, from the reference
        let mut rows: BTreeMap<(String, String, usize), Routes> = BTreeMap::new();
        for row in reference("functions.tsv") {
            assert!(row.len() >= 4, "functions.tsv: short row {row:?}");
            let arity: usize = row[2].parse().unwrap_or_else(|_| panic!("functions.tsv: bad arity in {row:?}"));
            if rows.insert((row[0].clone(), row[1].clone(), arity), routes(&row[3])).is_some() {
                errors.push(format!("functions.tsv lists {}::{}/{} twice", row[0], row[1], arity));
            }
        }
        for ((module, name, arity), routes) in &rows {
            let Some(m) = modules.get(module.as_str()) else {
                errors.push(format!("{module}::{name}/{arity}: no module {module}"));
                continue;
            };
            let found: Vec<_> = m.functions.iter().filter(|f| f.name == *name && f.args.len() == *arity).collect();
            match found.as_slice() {
                [] => errors.push(format!("{module}::{name}/{arity}: missing")),
                [f] if f.routes != *routes => errors.push(format!(
                    "{module}::{name}/{arity}: routes {:?}, the reference says {:?}",
                    f.routes.names(),
                    routes.names()
                )),
                [_] => {}
                _ => errors.push(format!("{module}::{name}/{arity}: {} entries", found.len())),
            }
        }
        for (module, m) in &modules {
            for f in m.functions {
                if !rows.contains_key(&(module.to_string(), f.name.to_string(), f.args.len())) {
                    errors.push(format!("{module}::{}/{}: not in the reference", f.name, f.args.len()));
                }
            }
        }
        assert!(errors.is_empty(), "{} mismatches:\n{}", errors.len(), errors.join("\n"));
    }

    #[test]
    fn params_match_reference() {
        let modules = modules();
        let mut errors = Vec::new();
        // A parameter may be exported twice under one name, once per type
        // (mi_fifo's fifo_user: a user name or a uid): the key is (module, name, type).
        let mut rows: BTreeSet<(String, String, &str)> = BTreeSet::new();
        let mut skipped = Vec::new();
        for row in reference("params.tsv") {
            assert!(row.len() >= 3, "params.tsv: short row {row:?}");
            let kind = match row[2].as_str() {
                "INT" => "INT",
                "STR" | "STR|FUNC" => "STR",
                _ => {
                    skipped.push((row[0].clone(), row[1].clone(), row[2].clone()));
                    continue;
                }
            };
            if !rows.insert((row[0].clone(), row[1].clone(), kind)) {
                errors.push(format!("params.tsv lists {}.{} ({kind}) twice", row[0], row[1]));
            }
        }
        let not_params: Vec<_> =
            NOT_PARAMS.iter().map(|(m, p, t)| (m.to_string(), p.to_string(), t.to_string())).collect();
        assert_eq!(skipped, not_params, "params.tsv rows with an unknown type");
        for (m, p, t) in MISSING_PARAMS {
            assert!(
                rows.insert((m.to_string(), p.to_string(), ty(*t))),
                "params.tsv now lists {m}.{p}: drop the erratum"
            );
        }
        for (module, name, t) in &rows {
            let Some(m) = modules.get(module.as_str()) else {
                errors.push(format!("{module}.{name}: no module {module}"));
                continue;
            };
            match m.params.iter().filter(|p| p.name == *name && ty(p.ty) == *t).count() {
                1 => {}
                0 => {
                    let other: Vec<_> = m.params.iter().filter(|p| p.name == *name).map(|p| ty(p.ty)).collect();
                    if other.is_empty() {
                        errors.push(format!("{module}.{name} ({t}): missing"));
                    } else {
                        errors.push(format!("{module}.{name}: typed {other:?}, the reference says {t}"));
                    }
                }
                n => errors.push(format!("{module}.{name} ({t}): {n} entries")),
            }
        }
        for (module, m) in &modules {
            for p in m.params {
                if !rows.contains(&(module.to_string(), p.name.to_string(), ty(p.ty))) {
                    errors.push(format!("{module}.{} ({}): not in the reference", p.name, ty(p.ty)));
                }
            }
        }
        assert!(errors.is_empty(), "{} mismatches:\n{}", errors.len(), errors.join("\n"));
    }

    #[test]
    fn no_duplicate_forms() {
        let mut errors = Vec::new();
        for m in super::ALL {
            let mut seen = BTreeSet::new();
            for f in m.functions {
                if !seen.insert((f.name, f.args.len())) {
                    errors.push(format!("{}::{}/{} is listed twice", m.name, f.name, f.args.len()));
                }
            }
            let mut seen = BTreeSet::new();
            for p in m.params {
                if !seen.insert((p.name, ty(p.ty))) {
                    errors.push(format!("{}.{} ({}) is listed twice", m.name, p.name, ty(p.ty)));
                }
            }
        }
        assert!(errors.is_empty(), "{}", errors.join("\n"));
    }
}

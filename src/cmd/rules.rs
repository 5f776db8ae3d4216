//! `edgetap rules`: the rule catalogue with each profile's effect.

use std::process::ExitCode;

use clap::{Args, ValueEnum};

use crate::core::analysis::catalog::{ALL, Rule, by_id};
use crate::core::analysis::{Profile, guidance};

/// Listing format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RulesFormat {
    /// Aligned columns.
    Text,
    /// A Markdown table like rules.md.
    Markdown,
    /// JSON array.
    Json,
}

/// Arguments of `edgetap rules`.
#[derive(Debug, Args)]
pub struct RulesArgs {
    /// One rule to explain (e.g. chain.missing-intermediate); all when absent.
    #[arg(value_name = "RULE_ID")]
    pub id: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = RulesFormat::Text)]
    pub format: RulesFormat,
}

/// A rule as JSON: the catalogue entry, plus its effects keyed by profile,
/// its fix and its sources.
fn rule_json(r: &Rule) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    if let Some(map) = v.as_object_mut() {
        if let Some(g) = guidance::for_rule(r.id) {
            map.insert("fix".into(), g.fix.into());
            map.insert(
                "sources".into(),
                serde_json::to_value(g.sources).unwrap_or_default(),
            );
        }
        map.insert(
            "effect_by_profile".into(),
            Profile::ALL
                .iter()
                .map(|p| {
                    let effect = serde_json::to_value(r.effect(*p)).unwrap_or_default();
                    (p.as_str().to_owned(), effect)
                })
                .collect::<serde_json::Map<_, _>>()
                .into(),
        );
    }
    v
}

/// Explain one rule: what makes it fire, its effect on each profile, what
/// decides it; an unknown ID is a usage error naming the closest ones.
fn explain(id: &str, format: RulesFormat) -> anyhow::Result<ExitCode> {
    let Some(r) = by_id(id) else {
        let family = id.split_once('.').map_or(id, |(f, _)| f);
        let near: Vec<&str> = ALL
            .iter()
            .filter(|r| r.family() == family || r.id.contains(id))
            .map(|r| r.id)
            .collect();
        anyhow::bail!(
            "{id:?} is not a rule ID{}; `edgetap rules` lists them all",
            if near.is_empty() {
                String::new()
            } else {
                format!(" (in that family: {})", near.join(", "))
            }
        );
    };
    match format {
        RulesFormat::Json => crate::outln!("{}", serde_json::to_string_pretty(&rule_json(r))?),
        RulesFormat::Markdown | RulesFormat::Text => {
            crate::outln!("{}", r.id);
            crate::outln!("  fires when: {}", r.fires_when);
            crate::outln!(
                "  decided by: {}",
                serde_json::to_value(r.decided_by)?.as_str().unwrap_or("-")
            );
            crate::outln!("  effect per client profile:");
            for p in Profile::ALL {
                crate::outln!("    {:<13} {}", p.as_str(), r.effect(p).as_str());
            }
            if let Some(note) = r.note {
                crate::outln!("  note: {note}");
            }
            if let Some(g) = guidance::for_rule(r.id) {
                crate::outln!("  fix: {}", g.fix);
                crate::outln!("  sources:");
                for s in g.sources {
                    crate::outln!("    - {}, {:?}: {}", s.document, s.section, s.says);
                }
            }
            crate::outln!("  every rule: docs/rules.md, or edgetap rules");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Run `rules`.
pub fn run(args: &RulesArgs) -> anyhow::Result<ExitCode> {
    if let Some(id) = &args.id {
        return explain(id, args.format);
    }
    match args.format {
        RulesFormat::Json => crate::outln!(
            "{}",
            serde_json::to_string_pretty(&ALL.iter().map(|r| rule_json(r)).collect::<Vec<_>>())?
        ),
        RulesFormat::Markdown => {
            crate::outln!("| rule | fires when | jabber | ip-phone | tc-endpoint | expressway-c |");
            crate::outln!("|---|---|---|---|---|---|");
            for r in ALL {
                let cells: Vec<&str> = Profile::ALL.iter().map(|p| r.effect(*p).as_str()).collect();
                crate::outln!("| `{}` | {} | {} |", r.id, r.fires_when, cells.join(" | "));
            }
            // The reasons behind the effects, one bullet per distinct note.
            let mut notes: Vec<(&str, Vec<&str>)> = Vec::new();
            for r in ALL {
                let Some(note) = r.note else { continue };
                match notes.iter_mut().find(|(n, _)| *n == note) {
                    Some((_, ids)) => ids.push(r.id),
                    None => notes.push((note, vec![r.id])),
                }
            }
            crate::outln!();
            crate::outln!("## Why these effects");
            crate::outln!();
            for (note, ids) in notes {
                let ids: Vec<String> = ids.iter().map(|id| format!("`{id}`")).collect();
                crate::outln!("- {}: {note}.", ids.join(", "));
            }
        }
        RulesFormat::Text => {
            // As wide as the longest ID, so every column lines up.
            let w = ALL.iter().map(|r| r.id.len()).max().unwrap_or(0);
            crate::outln!(
                "{:<w$} {:<7} {:<8} {:<11} {:<12} fires when",
                "rule",
                "jabber",
                "ip-phone",
                "tc-endpoint",
                "expressway-c"
            );
            for r in ALL {
                let e = |p: Profile| r.effect(p).as_str();
                crate::outln!(
                    "{:<w$} {:<7} {:<8} {:<11} {:<12} {}",
                    r.id,
                    e(Profile::Jabber),
                    e(Profile::IpPhone),
                    e(Profile::TcEndpoint),
                    e(Profile::ExpresswayC),
                    r.fires_when
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

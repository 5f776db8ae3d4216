//! `edgetap rules`: the rule catalogue with each profile's effect.

use std::process::ExitCode;

use clap::{Args, ValueEnum};

use crate::core::analysis::Profile;
use crate::core::analysis::catalog::ALL;

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
    /// Output format.
    #[arg(long, value_enum, default_value_t = RulesFormat::Text)]
    pub format: RulesFormat,
}

/// Run `rules`.
pub fn run(args: &RulesArgs) -> anyhow::Result<ExitCode> {
    match args.format {
        RulesFormat::Json => crate::outln!("{}", serde_json::to_string_pretty(ALL)?),
        RulesFormat::Markdown => {
            crate::outln!("| rule | fires when | jabber | ip-phone | tc-endpoint | expressway-c |");
            crate::outln!("|---|---|---|---|---|---|");
            for r in ALL {
                let cells: Vec<&str> = Profile::ALL.iter().map(|p| r.effect(*p).as_str()).collect();
                crate::outln!("| `{}` | {} | {} |", r.id, r.fires_when, cells.join(" | "));
            }
        }
        RulesFormat::Text => {
            crate::outln!(
                "{:<36} {:<7} {:<8} {:<11} {:<12} fires when",
                "rule",
                "jabber",
                "ip-phone",
                "tc-endpoint",
                "expressway-c"
            );
            for r in ALL {
                let e = |p: Profile| r.effect(p).as_str();
                crate::outln!(
                    "{:<36} {:<7} {:<8} {:<11} {:<12} {}",
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

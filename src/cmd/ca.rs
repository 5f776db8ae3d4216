//! `edgetap ca init`: create the diagnostic CA that intercept mode signs with.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

/// Arguments of `edgetap ca`.
#[derive(Debug, Args)]
pub struct CaArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: CaAction,
}

/// `ca` actions.
#[derive(Debug, Subcommand)]
pub enum CaAction {
    /// Create a diagnostic CA (key file mode 0600; never overwrites one).
    Init {
        /// Where to keep it.
        #[arg(long, value_name = "DIR", default_value_os_t = default_dir())]
        dir: PathBuf,
    },
}

/// `$HOME/.edgetap/ca`, or `./edgetap-ca` without a home.
pub fn default_dir() -> PathBuf {
    std::env::var_os("HOME").map_or_else(
        || PathBuf::from("edgetap-ca"),
        |h| PathBuf::from(h).join(".edgetap").join("ca"),
    )
}

/// Run `ca`.
pub fn run(args: &CaArgs) -> anyhow::Result<ExitCode> {
    match &args.action {
        CaAction::Init { dir } => {
            let now = crate::clock::now();
            let cert = crate::proxy::ca::init(dir, now)?;
            crate::outln!("diagnostic CA created: {}", cert.display());
            crate::outln!(
                "its private key stays in {} (mode 0600); it is never sent anywhere.",
                dir.display()
            );
            crate::outln!();
            crate::outln!(
                "To let a TEST device accept edgetap in intercept mode, import {} as a trusted root:",
                cert.display()
            );
            crate::outln!(
                "  Windows (Jabber): certmgr.msc > Trusted Root Certification Authorities > Import"
            );
            crate::outln!("  macOS: open it in Keychain Access, set \"Always Trust\"");
            crate::outln!(
                "  curl/openssl: --cacert {}  /  -CAfile {}",
                cert.display(),
                cert.display()
            );
            crate::outln!();
            crate::outln!(
                "WARNING: do not trust it on a personal or production device: whoever holds the key"
            );
            crate::outln!(
                "can impersonate any server to that device. Remove it from the device after testing."
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

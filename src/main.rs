//! The `edgetap` command: arguments, logging, dispatch, exit status
//! (0 analysed, 1 `--fail-on` reached, 2 usage or input error).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use edgetap::cmd;

/// jemalloc, whose background thread returns freed memory to the system (see
/// Cargo.toml), built with 64 KiB slabs for 3-14 KiB blocks (see
/// `.cargo/config.toml`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// See, handshake by handshake, which certificate chain each Cisco collaboration
/// server presents, and why Jabber, an MRA IP phone, a TelePresence endpoint or
/// Expressway-C would accept, prompt or fail.
#[derive(Parser)]
#[command(name = "edgetap", version, about, max_term_width = 100)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Judge certificate chains from files (PEM bundle leaf first, or DER).
    Inspect(cmd::inspect::InspectArgs),
    /// Resolve the SRV records a Jabber client looks up for a domain.
    Discover(cmd::discover::DiscoverArgs),
    /// Handshake with each discovered endpoint (or one HOST:PORT) and judge it.
    Probe(cmd::probe::ProbeArgs),
    /// Judge the TLS handshakes in pcap/pcapng captures (gzip too).
    Replay(cmd::replay::ReplayArgs),
    /// Relay between clients and servers and judge every handshake that passes.
    Proxy(cmd::proxy::ProxyArgs),
    /// Manage the diagnostic CA used by `proxy --intercept`.
    Ca(cmd::ca::CaArgs),
    /// Start a small deployment on loopback and discover + probe it.
    #[cfg(feature = "demo")]
    Demo(cmd::demo::DemoArgs),
    /// List the rules with their effect on each client profile.
    Rules(cmd::rules::RulesArgs),
    /// Run suites of expected verdicts (CI, after renewals and upgrades); JUnit, baselines.
    Regress(cmd::regress::RegressArgs),
    /// Print a shell completion script (e.g. `edgetap completions bash > /etc/bash_completion.d/edgetap`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff), e.g. `edgetap man | man -l -` or `edgetap man
    /// probe | man -l -`; `--dir DIR` writes every page (edgetap.1,
    /// edgetap-probe.1, ...) for MANPATH.
    Man {
        /// The subcommand whose page to print; the main page when absent.
        #[arg(value_name = "SUBCOMMAND")]
        page: Option<String>,
        /// Write every page into this folder instead of printing one.
        #[arg(long, value_name = "DIR", conflicts_with = "page")]
        dir: Option<std::path::PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    edgetap::logs::init(level);
    let is_proxy = matches!(cli.command, Command::Proxy(_));
    if is_proxy {
        // Freed memory goes back to the system in the background, so a
        // proxy left running after a burst of connections shrinks again.
        if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
            tracing::debug!(error = %e, "jemalloc background thread not started");
        }
    }
    // Every thread edgetap starts (tokio's, rayon's, its own) runs this first.
    edgetap::threads::set_start_hook(if is_proxy {
        no_thread_cache
    } else {
        first_arena
    });
    if let Err(e) = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("edgetap-work-{i}"))
        .start_handler(|_| edgetap::threads::started())
        .build_global()
    {
        tracing::debug!(error = %e, "rayon's pool left as it was");
    }

    let result = match &cli.command {
        Command::Inspect(args) => cmd::inspect::run(args),
        Command::Rules(args) => cmd::rules::run(args),
        Command::Ca(args) => cmd::ca::run(args),
        Command::Replay(args) => cmd::replay::run(args),
        Command::Discover(args) => runtime().and_then(|rt| rt.block_on(cmd::discover::run(args))),
        Command::Probe(args) => runtime().and_then(|rt| rt.block_on(cmd::probe::run(args))),
        Command::Proxy(args) => runtime().and_then(|rt| rt.block_on(cmd::proxy::run(args))),
        #[cfg(feature = "demo")]
        Command::Demo(args) => runtime().and_then(|rt| rt.block_on(cmd::demo::run(args))),
        Command::Regress(args) => runtime().and_then(|rt| rt.block_on(cmd::regress::run(args))),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "edgetap", &mut out);
            print_bytes(&out)
        }
        Command::Man { page, dir } => man(page.as_deref(), dir.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("edgetap: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The man pages: the main one or a subcommand's on stdout, or all of them
/// into `dir`.
fn man(page: Option<&str>, dir: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    use anyhow::Context as _;
    use clap::CommandFactory;
    let root = Cli::command();
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create the folder", dir.display()))?;
        let mut pages = vec![("edgetap".to_owned(), root.clone())];
        pages.extend(
            root.get_subcommands()
                .map(|s| (format!("edgetap-{}", s.get_name()), subcommand_page(s))),
        );
        for (name, cmd) in pages {
            let path = dir.join(format!("{name}.1"));
            let mut out = Vec::new();
            render_page(cmd, &mut out)?;
            std::fs::write(&path, out)
                .with_context(|| format!("{}: cannot write the page", path.display()))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let cmd = match page {
        None => root,
        Some(name) => {
            let Some(sub) = root.find_subcommand(name) else {
                let names: Vec<&str> = root.get_subcommands().map(|s| s.get_name()).collect();
                anyhow::bail!("{name:?} is not a subcommand: one of {}", names.join(", "));
            };
            subcommand_page(sub)
        }
    };
    let mut out = Vec::new();
    render_page(cmd, &mut out)?;
    print_bytes(&out)
}

/// A subcommand as its own page, named `edgetap-NAME` and used as `edgetap NAME`.
fn subcommand_page(sub: &clap::Command) -> clap::Command {
    let name = sub.get_name().to_owned();
    sub.clone()
        .display_name(format!("edgetap-{name}"))
        .bin_name(format!("edgetap {name}"))
        .version(env!("CARGO_PKG_VERSION"))
}

/// The exit status of every command, for the man pages.
const EXIT_STATUS: &str = ".SH \"EXIT STATUS\"\n.TP\n0\nanalysed; no outcome reached \\-\\-fail\\-on\n.TP\n1\n\\-\\-fail\\-on reached (regress: a case failed)\n.TP\n2\nusage or input error, said on stderr (regress: a suite selects what its input does not show)\n.TP\n130\ninterrupted (probe), after writing what it had\n";

/// One man page: clap_mangen's sections with the exit status before the version.
fn render_page(cmd: clap::Command, out: &mut Vec<u8>) -> anyhow::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(out)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(out)?;
    }
    out.extend_from_slice(EXIT_STATUS.as_bytes());
    man.render_version_section(out)?;
    Ok(())
}

/// Write generated text to stdout (a closed pipe is not an error worth a trace).
fn print_bytes(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e.into()),
    }
}

/// Turn off jemalloc's cache of freed blocks for the calling thread (the
/// proxy's threads). A thread's cache is refilled and trimmed only as that
/// thread allocates, so after a burst of connections idle threads keep
/// theirs, and the blocks they hold pin whole pages: 10,000 connections at
/// once left the proxy at 1.44-1.50x its idle RSS in passthrough and
/// 2.16-2.27x in intercept with the caches, 1.09-1.10x and 1.41-1.50x without
/// (`cargo bench --bench soak`). The cost, measured with `cargo bench --bench
/// proxy`: TLS handshakes through the proxy 0.73x -> 0.69x direct
/// (passthrough), 0.57x -> 0.56x (intercept); bulk unchanged (0.65x).
fn no_thread_cache() {
    use tikv_jemalloc_ctl::{Access, AsName};
    if let Err(e) = b"thread.tcache.enabled\0".name().write(false) {
        tracing::debug!(error = %e, "jemalloc thread cache left on");
    }
}

/// Allocate from jemalloc's first arena on the calling thread (the threads of
/// the commands that read and report: replay's file readers and JSON
/// writers). jemalloc gives each new thread the next of its arenas (four per
/// core), and each arena takes fresh pages for its own slabs; a replay whose
/// threads share one arena reuses the pages another freed: 6,600 page faults
/// instead of 11,600 for a 115 MB capture, and a few ms less (the 64 KiB slabs
/// of `.cargo/config.toml` cost replay 3,100 faults without this). The proxy
/// keeps one arena per thread: its threads allocate at the same time, without
/// a thread cache.
fn first_arena() {
    use tikv_jemalloc_ctl::{Access, AsName};
    if let Err(e) = b"thread.arena\0".name().write(0u32) {
        tracing::debug!(error = %e, "jemalloc arena left as assigned");
    }
}

/// The multi-threaded tokio runtime every network command runs on (file-only
/// commands never start one); its threads run the allocator hook first.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(edgetap::threads::started)
        .build()?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }

    /// The jemalloc setting baked in by `.cargo/config.toml` reached the
    /// build: without the slab sizes 10,000 intercepted connections at once
    /// leave the proxy at 1.22x its idle RSS after they close (1.04-1.08x
    /// with them).
    #[test]
    fn jemalloc_is_built_with_edgetaps_settings() {
        let conf = tikv_jemalloc_ctl::config::malloc_conf::read().unwrap();
        assert!(
            conf.contains("slab_sizes:3073-16384:16") && !conf.contains("thp"),
            "jemalloc built without .cargo/config.toml's settings: {conf:?}"
        );
    }
}

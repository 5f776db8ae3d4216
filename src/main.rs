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
    /// Print the man page (roff), e.g. `edgetap man | man -l -`.
    Man,
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
        Command::Man => {
            use clap::CommandFactory;
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut out)
                .map_err(anyhow::Error::from)
                .and_then(|()| print_bytes(&out))
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("edgetap: error: {e:#}");
            ExitCode::from(2)
        }
    }
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

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
    if matches!(cli.command, Command::Proxy(_)) {
        proxy_without_huge_pages();
    }
    edgetap::logs::init(level);
    if !matches!(cli.command, Command::Proxy(_)) {
        first_arena();
        let _ = edgetap::threads::ON_THREAD_START.set(first_arena);
    }

    let result = match &cli.command {
        Command::Inspect(args) => cmd::inspect::run(args),
        Command::Rules(args) => cmd::rules::run(args),
        Command::Ca(args) => cmd::ca::run(args),
        Command::Replay(args) => cmd::replay::run(args),
        Command::Discover(args) => runtime().and_then(|rt| rt.block_on(cmd::discover::run(args))),
        Command::Probe(args) => runtime().and_then(|rt| rt.block_on(cmd::probe::run(args))),
        Command::Proxy(args) => {
            // Freed memory goes back to the system in the background, so a
            // proxy left running after a burst of connections shrinks again.
            if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
                tracing::debug!(error = %e, "jemalloc background thread not started");
            }
            no_thread_cache();
            let _ = edgetap::threads::ON_THREAD_START.set(no_thread_cache);
            allocator_stats_every(std::env::var("EDGETAP_ALLOC_STATS").ok());
            runtime_builder()
                .on_thread_start(no_thread_cache)
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(cmd::proxy::run(args)))
        }
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

/// Run the proxy on jemalloc without transparent huge pages. jemalloc asks
/// for them (`thp:always` in .cargo/config.toml, for replay), but they would
/// be most of an idle proxy's memory (20.9 MB idle instead of 14.8), and the
/// madvise calls cost its new connections CPU. jemalloc reads its settings
/// before `main`, from `_RJEM_MALLOC_CONF` last, so the proxy starts itself
/// once more, before it has done anything, with `thp:default` added there:
/// jemalloc then leaves pages as the system sets them, as before. If it
/// cannot, it says so and goes on as it is.
fn proxy_without_huge_pages() {
    use std::os::unix::process::CommandExt as _;
    const VAR: &str = "_RJEM_MALLOC_CONF";
    const NO_HUGE_PAGES: &str = "thp:default";
    let conf = std::env::var(VAR).unwrap_or_default();
    if conf.split(',').any(|option| option == NO_HUGE_PAGES) {
        return;
    }
    let conf = if conf.is_empty() {
        NO_HUGE_PAGES.to_owned()
    } else {
        format!("{conf},{NO_HUGE_PAGES}")
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_default();
    let error = std::process::Command::new("/proc/self/exe")
        .arg0(arg0)
        .args(args)
        .env(VAR, conf)
        .exec();
    eprintln!("edgetap: note: the proxy runs with huge pages allowed ({error})");
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

/// `EDGETAP_ALLOC_STATS=SECS`: the allocator's figures on stderr every SECS
/// seconds (memory held for live data, in partly used pages, resident, kept
/// mapped), to tell what a proxy's memory is after a burst of connections.
fn allocator_stats_every(secs: Option<String>) {
    let Some(every) = secs.and_then(|s| s.parse::<u64>().ok()).filter(|s| *s > 0) else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("edgetap-alloc-stats".into())
        .spawn(move || {
            use tikv_jemalloc_ctl::{epoch, stats};
            loop {
                std::thread::sleep(std::time::Duration::from_secs(every));
                if epoch::advance().is_err() {
                    return;
                }
                let kib = |r: tikv_jemalloc_ctl::Result<usize>| r.unwrap_or(0) / 1024;
                eprintln!(
                    "edgetap: allocator: allocated {} KiB, active {} KiB, resident {} KiB, metadata {} KiB, retained {} KiB",
                    kib(stats::allocated::read()),
                    kib(stats::active::read()),
                    kib(stats::resident::read()),
                    kib(stats::metadata::read()),
                    kib(stats::retained::read()),
                );
            }
        });
}

/// The tokio runtime for network commands (file-only commands never start one).
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(runtime_builder().build()?)
}

/// The multi-threaded runtime every network command runs on, before any
/// command-specific setting.
fn runtime_builder() -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    builder
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }

    /// The jemalloc settings baked in by `.cargo/config.toml` reached the
    /// build: without the slab sizes 10,000 intercepted connections at once
    /// leave the proxy at 1.22x its idle RSS after they close (1.04-1.08x
    /// with them); without huge pages replay takes 2.7 times the page faults.
    #[test]
    fn jemalloc_is_built_with_edgetaps_settings() {
        let conf = tikv_jemalloc_ctl::config::malloc_conf::read().unwrap();
        assert!(
            conf.contains("slab_sizes:3073-16384:16") && conf.contains("thp:always"),
            "jemalloc built without .cargo/config.toml's settings: {conf:?}"
        );
    }
}

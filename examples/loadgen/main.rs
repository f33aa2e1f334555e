//! A load generator for vibectl-server's `vibectl.llm_proxy` gRPC service, or, with
//! `--direct-openai URL`, for an OpenAI-compatible endpoint called over HTTP (the mock provider
//! straight, vibectl-server's `/v1/chat/completions`, or another gateway), so one tool measures
//! both the direct and the proxied path of the same request.
//!
//! Two modes. Closed loop (`--concurrency C`): C workers each send a request, wait for the
//! answer, and send the next; C=1 measures latency. Open loop (`--rate R`): requests are
//! scheduled at fixed intervals of 1/R s by a pacing thread and each latency is measured from
//! its *scheduled* time, so a stall in the server shows up in the figures instead of silently
//! delaying the next send (no coordinated omission); at most `--max-in-flight` requests are out
//! at once, and a request waiting for a slot keeps accruing latency.
//!
//! Every run stops at `--requests N` or `--duration SECS`, whichever comes first, and every call
//! is bounded by `--timeout`. The output is one JSON line: count (completed calls), errors,
//! duration_s, rps (successful calls per second), and latency percentiles of the successful
//! calls in microseconds (p50, p90, p99, p999, max, mean). With `--rpc stream` it adds
//! `first_chunk`: the same percentiles of the time to the first piece of answer text (see
//! `target`), what a streaming client waits before it can show anything.
//!
//! Build with `cargo build --release --examples`; see `scripts/bench-proxy` for a full run.
//!
//! - `target`: where calls go (gRPC or direct HTTP) and what one call is.
//! - `drive`: the closed and open loops, and the latency histograms.

mod drive;
mod target;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use serde_json::{Value, json};

use drive::{closed_loop, open_loop};
use target::Target;

/// The system and user text of every request (small, like a short vibectl prompt).
const SYSTEM_TEXT: &str = "You are a benchmark. Answer briefly.";
const USER_TEXT: &str = "Say hello.";
/// The model named in direct mode when `--model` is not given.
const DIRECT_MODEL: &str = "bench-model";
/// Highest latency the histograms hold, in microseconds (larger values are clamped).
const MAX_TRACKED_US: u64 = 120_000_000;
/// Longest wait for the last calls of a run to finish after the deadline.
const DRAIN_GRACE: Duration = Duration::from_secs(30);

/// Load generator for vibectl-server (gRPC) or an OpenAI-compatible endpoint (HTTP)
#[derive(Debug, Clone, Parser)]
#[command(name = "loadgen")]
struct Args {
    /// vibectl-server address
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    target: String,
    /// Call this OpenAI-compatible endpoint over HTTP instead of the gRPC server: the mock
    /// provider, vibectl-server's HTTP API or another gateway (a base URL like
    /// http://127.0.0.1:PORT or .../v1, or the full .../chat/completions URL)
    #[arg(long, value_name = "URL")]
    direct_openai: Option<String>,
    /// Which call to make (`info` is gRPC only)
    #[arg(long, value_enum, default_value_t = Rpc::Execute)]
    rpc: Rpc,
    /// Bearer token sent as `authorization` metadata (gRPC)
    #[arg(long, value_name = "T")]
    token: Option<String>,
    /// Bearer API key (or token) sent to the OpenAI endpoint
    #[arg(long, value_name = "KEY")]
    api_key: Option<String>,
    /// Model name to request (default: none, so the server's default model; `bench-model`
    /// in direct mode)
    #[arg(long, value_name = "M")]
    model: Option<String>,
    /// Closed loop: this many workers, each with one call in flight
    #[arg(long, value_name = "C", default_value_t = 1)]
    concurrency: usize,
    /// Open loop: send this many requests per second at fixed intervals
    #[arg(long, value_name = "R", conflicts_with = "concurrency")]
    rate: Option<f64>,
    /// Open loop: most calls in flight at once
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_in_flight: usize,
    /// Stop after this many calls
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    requests: u64,
    /// Stop after this many seconds
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured calls made first (closed loop, same concurrency), bounded by 10 s
    #[arg(long, value_name = "N", default_value_t = 200)]
    warmup: u64,
    /// gRPC channels (HTTP/2 connections); worker i uses channel i mod N
    #[arg(long, value_name = "N", default_value_t = 1)]
    channels: usize,
    /// Runtime worker threads (1: a single-threaded runtime, best when pinned to one core)
    #[arg(long, value_name = "N", default_value_t = 1)]
    threads: usize,
    /// Limit on each call, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    timeout: f64,
    /// Speak TLS to the gRPC target (an https:// --target), trusting only this PEM CA bundle
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<std::path::PathBuf>,
    /// With --tls-ca: the name the server certificate must hold
    #[arg(long, value_name = "NAME", default_value = "localhost")]
    tls_domain: String,
    /// A label copied into the JSON output
    #[arg(long)]
    label: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Rpc {
    Execute,
    Stream,
    Info,
}

impl Rpc {
    fn name(self) -> &'static str {
        match self {
            Rpc::Execute => "execute",
            Rpc::Stream => "stream",
            Rpc::Info => "info",
        }
    }
}

async fn run(args: Args) -> Result<Value, String> {
    let target = Arc::new(Target::connect(&args).await?);
    let timeout = Duration::from_secs_f64(args.timeout);
    if args.warmup > 0 {
        let until = Instant::now() + Duration::from_secs(10);
        let w = closed_loop(
            target.clone(),
            args.rpc,
            args.concurrency,
            args.warmup,
            until,
            timeout,
        )
        .await;
        if w.errors > 0 && w.hist.is_empty() {
            return Err(format!(
                "every warm-up call failed: {}",
                w.first_error.unwrap_or_default()
            ));
        }
    }
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(args.duration);
    let (stats, unsent) = match args.rate {
        Some(rate) if rate > 0.0 => open_loop(target, &args, rate, until, timeout).await,
        Some(_) => return Err("--rate must be above 0".into()),
        None => {
            let s = closed_loop(
                target,
                args.rpc,
                args.concurrency,
                args.requests,
                until,
                timeout,
            )
            .await;
            (s, 0)
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    let ok = stats.hist.len();
    let h = &stats.hist;
    let mut out = json!({
        "label": args.label,
        "target": args.direct_openai.as_deref().map_or(format!("grpc {}", args.target), |u| format!("direct {u}")),
        "rpc": args.rpc.name(),
        "mode": if args.rate.is_some() { "open" } else { "closed" },
        "concurrency": if args.rate.is_some() { Value::Null } else { json!(args.concurrency) },
        "rate": args.rate,
        "count": ok + stats.errors,
        "errors": stats.errors,
        "duration_s": (elapsed * 1000.0).round() / 1000.0,
        "rps": (ok as f64 / elapsed).round(),
        "p50_us": h.value_at_quantile(0.50),
        "p90_us": h.value_at_quantile(0.90),
        "p99_us": h.value_at_quantile(0.99),
        "p999_us": h.value_at_quantile(0.999),
        "max_us": h.max(),
        "mean_us": h.mean().round(),
    });
    if args.rate.is_some() {
        out["unsent"] = json!(unsent);
    }
    if args.rpc == Rpc::Stream {
        let f = &stats.first;
        out["first_chunk"] = json!({
            "count": f.len(),
            "p50_us": f.value_at_quantile(0.50),
            "p90_us": f.value_at_quantile(0.90),
            "p99_us": f.value_at_quantile(0.99),
            "p999_us": f.value_at_quantile(0.999),
            "max_us": f.max(),
            "mean_us": f.mean().round(),
        });
    }
    if let Some(e) = stats.first_error {
        out["first_error"] = json!(e);
    }
    Ok(out)
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(v) => {
            println!("{v}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

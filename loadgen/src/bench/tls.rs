//! `bench --tls`: the profile run in plaintext and then over TLS with the
//! same settings (`--repeat N`: N such pairs), one report of the TLS run
//! with the plaintext figures, their ratio and the handshake rate beside.

use anyhow::{bail, Result};
use msrp_engine::control::EngineStats;

use super::{measure_once, BenchArgs};
use crate::embedded::Engine;
use crate::report::{Beside, HandshakeRate, Pair, Report, TlsReport};

/// Plaintext then TLS, `--repeat` times; the report is the TLS run of the
/// pair whose message ratio is the median's.
pub(super) fn run(args: &BenchArgs) -> Result<Report> {
    let secure = args.profile()?;
    let mut plain = secure.clone();
    plain.tls = false;
    let mut runs = Vec::new();
    let mut pairs = Vec::new();
    for _ in 0..args.repeat {
        let p = measure_once(args, plain.clone())?;
        let t = measure_once(args, secure.clone())?;
        pairs.push(pair(&p, &t));
        runs.push((p, t));
    }
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    order.sort_by(|&a, &b| pairs[a].messages_ratio.total_cmp(&pairs[b].messages_ratio));
    let median = order[order.len() / 2];
    let (p, mut t) = runs.swap_remove(median);
    let chosen = &pairs[median];
    let (messages_ratio, bytes_ratio) = (chosen.messages_ratio, chosen.bytes_ratio);
    let Some(tls) = t.tls.as_mut() else {
        bail!("the TLS run carries no TLS figures");
    };
    tls.beside = Some(Beside {
        plaintext: p.throughput.clone(),
        plaintext_cpu: p.cpu.clone(),
        messages_ratio,
        bytes_ratio,
        pairs,
    });
    t.warnings
        .extend(p.warnings.iter().map(|w| format!("plaintext run: {w}")));
    Ok(t)
}

fn pair(plain: &Report, tls: &Report) -> Pair {
    let ratio = |t: f64, p: f64| match p > 0.0 {
        true => t / p,
        false => 0.0,
    };
    Pair {
        plaintext_messages_per_s: plain.throughput.messages_per_s,
        tls_messages_per_s: tls.throughput.messages_per_s,
        plaintext_bytes_per_s: plain.throughput.bytes_per_s,
        tls_bytes_per_s: tls.throughput.bytes_per_s,
        messages_ratio: ratio(tls.throughput.messages_per_s, plain.throughput.messages_per_s),
        bytes_ratio: ratio(tls.throughput.bytes_per_s, plain.throughput.bytes_per_s),
    }
}

/// A TLS run: the handshake rate against the engine's TLS listener, before
/// the load (the engine idle), a tenth of the measured interval each way
/// (between 0.25 s and 2 s), on the load's threads.
pub(super) fn handshakes(bench: &super::Bench, engine: &Engine) -> Result<Option<HandshakeRate>> {
    if !bench.profile.tls {
        return Ok(None);
    }
    let (Some(pki), Some(target)) = (&engine.pki, engine.msrps) else {
        bail!("--tls: the engine has no TLS listener");
    };
    bench.progress.phase("measuring TLS handshakes");
    let seconds = (bench.profile.duration.0 / 10.0).clamp(0.25, 2.0);
    let threads = bench.layout.load_threads.max(1);
    crate::tls::handshake_rate(pki, target, threads, seconds).map(Some)
}

/// The TLS part of a run's report, from its handshake rate and the engine's
/// counters at the end of the measured interval.
pub(super) fn report(handshakes: HandshakeRate, stats: Option<&EngineStats>) -> TlsReport {
    let sum =
        |f: fn(&msrp_engine::control::ShardStats) -> u64| stats.map_or(0, |s| s.shards.iter().map(f).sum());
    TlsReport {
        handshakes,
        engine_handshakes: sum(|s| s.tls_handshakes),
        engine_resumed: sum(|s| s.tls_resumed),
        engine_failures: sum(|s| s.tls_failures),
        beside: None,
    }
}

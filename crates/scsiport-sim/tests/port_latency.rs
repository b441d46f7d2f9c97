//! The deterministic schedule's latency model (`PortConfig::interrupt_latency_ns`,
//! `dpc_latency_ns`, `call_cost_ns`, `start_io_cost_ns`): every delay is respected to the
//! nanosecond, the draws are seeded and reproducible, the deferral window stays closed, and the
//! delays are what makes a deferring miniport batch its completions.
#![allow(clippy::cast_possible_truncation)]

mod common;
use std::ops::RangeInclusive;
use std::sync::Arc;

use common::*;
use scsiport_sim::mem::SimDma;
use scsiport_sim::{Machine, PortConfig, Request, Schedule, Stats, test_miniport};

/// One trace line, the fields these tests read (`kind` is its `ev`).
#[derive(Debug)]
struct Ev {
    t: u64,
    kind: String,
    routine: String,
    level: Option<bool>,
    ty: String,
    value: i64,
    us: u64,
}

/// The raw text of `"key":VALUE` (a string's contents without its quotes).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":");
    let rest = &line[line.find(&pat)? + pat.len()..];
    match rest.strip_prefix('"') {
        Some(s) => Some(&s[..s.find('"')?]),
        None => Some(&rest[..rest.find([',', '}'])?]),
    }
}

fn parse(text: &str) -> Vec<Ev> {
    text.lines()
        .filter(|l| field(l, "adapter") == Some("0"))
        .map(|l| Ev {
            t: field(l, "t_ns").unwrap().parse().unwrap(),
            kind: field(l, "ev").unwrap().to_string(),
            routine: field(l, "routine").unwrap_or("").to_string(),
            level: field(l, "level").map(|v| v == "true"),
            ty: field(l, "type").unwrap_or("").to_string(),
            value: if field(l, "ev") == Some("ret") { field(l, "value").unwrap().parse().unwrap() } else { 0 },
            us: if field(l, "fn") == Some("ScsiPortStallExecution") { field(l, "us").unwrap().parse().unwrap() } else { 0 },
        })
        .collect()
}

/// The test miniport (deferring, tagged, queue depth 16) on one PVSCSI model with the default
/// device latency (20–100 µs), `n` READs submitted at once. Returns the trace and the counters.
fn run(seed: u64, cfg: PortConfig, n: u32) -> (String, Stats) {
    let buf = SharedBuf::default();
    let b = Machine::builder().schedule(Schedule::Deterministic { seed }).port_config(cfg).argument_string("qd=16 tagged=1").trace(buf.clone());
    let dma = SimDma::default();
    // The device's own seed stays fixed: only the machine seed changes between runs.
    let dev = device(&b, &dma, 1, 9);
    let m = b.adapter(Arc::new(dev), Arc::new(dma)).build();
    m.load_driver(test_miniport::driver_entry).unwrap();
    // The disk's power-on unit attention.
    assert!((0..4).any(|_| m.execute(Request::test_unit_ready(0)).unwrap().is_success()));
    let ts: Vec<_> = (0..n).map(|i| m.submit(Request::read10(0, i * 8, 8, 4096)).unwrap()).collect();
    for t in ts {
        assert!(m.wait(t).unwrap().is_success());
    }
    m.run_until_idle().unwrap();
    assert!(m.violations().is_empty(), "{:#?}", m.violations());
    m.flush_trace();
    (buf.text(), m.stats())
}

fn cfg(irq: RangeInclusive<u64>, dpc: RangeInclusive<u64>, call: RangeInclusive<u64>, start_io: RangeInclusive<u64>) -> PortConfig {
    PortConfig { interrupt_latency_ns: irq, dpc_latency_ns: dpc, call_cost_ns: call, start_io_cost_ns: start_io, ..PortConfig::default() }
}

/// What the trace shows of the model.
#[derive(Debug, Default, PartialEq, Eq)]
struct Delays {
    /// Line seen asserted → `HwScsiInterrupt` called.
    irq: Vec<u64>,
    /// `HwScsiInterrupt` that requested `CallEnableInterrupts` returned → enable callback called.
    dpc: Vec<u64>,
    /// Per routine: `ret` time − `call` time − its `ScsiPortStallExecution` time.
    cost: Vec<(String, u64)>,
}

/// Reads the delays off the trace, checking on the way that the deferral window stays closed:
/// no ISR and no `StartIo` between `CallEnableInterrupts` and the disable callback's return.
fn delays(trace: &[Ev]) -> Delays {
    let mut d = Delays::default();
    let mut rise: Option<u64> = None;
    let mut open: Option<(String, u64, u64)> = None;
    let mut enable_requested = false;
    let mut deferred_since: Option<u64> = None;
    for e in trace {
        match e.kind.as_str() {
            "irq" => rise = if e.level == Some(true) { Some(e.t) } else { None },
            "call" => {
                if let Some((outer, ..)) = &open {
                    panic!("{} called inside {outer}", e.routine);
                }
                match e.routine.as_str() {
                    "HwScsiInterrupt" | "HwScsiStartIo" => {
                        assert!(deferred_since.is_none(), "{} inside the deferral window", e.routine);
                    }
                    "HwScsiEnableInterruptsCallback" => {
                        d.dpc.push(e.t - deferred_since.expect("an enable callback without a deferral"));
                    }
                    _ => {}
                }
                if e.routine == "HwScsiInterrupt" {
                    d.irq.push(e.t - rise.expect("the ISR ran with the line low"));
                }
                open = Some((e.routine.clone(), e.t, 0));
            }
            "port" if e.ty == "CallEnableInterrupts" => enable_requested = true,
            "port" if e.us > 0 => {
                if let Some((_, _, stall)) = &mut open {
                    *stall += e.us * 1000;
                }
            }
            "ret" => {
                let (routine, t0, stall) = open.take().expect("a return without a call");
                assert_eq!(routine, e.routine);
                d.cost.push((routine, e.t - t0 - stall));
                match e.routine.as_str() {
                    "HwScsiInterrupt" if enable_requested => {
                        assert_eq!(e.value, 1);
                        deferred_since = Some(e.t);
                    }
                    "HwScsiDisableInterruptsCallback" => deferred_since = None,
                    _ => {}
                }
                enable_requested = false;
            }
            _ => {}
        }
    }
    d
}

fn within(what: &str, v: &[u64], r: &RangeInclusive<u64>) {
    assert!(v.len() >= 20, "{what}: only {} samples", v.len());
    assert!(v.iter().all(|x| r.contains(x)), "{what} outside {r:?}: {v:?}");
    // Drawn, not fixed: the samples spread over the range.
    let (lo, hi) = (*v.iter().min().unwrap(), *v.iter().max().unwrap());
    assert!(hi - lo > (r.end() - r.start()) / 2, "{what} do not spread over {r:?}: {lo}..{hi}");
}

#[test]
fn an_interrupt_waits_out_its_latency_and_the_enable_callback_its_dpc_latency() {
    // No call cost: nothing else takes virtual time, so each delay is exactly one draw.
    let (irq, dpc) = (5_000..=9_000, 30_000..=50_000);
    let (trace, stats) = run(1, cfg(irq.clone(), dpc.clone(), 0..=0, 0..=0), 96);
    let d = delays(&parse(&trace));
    within("interrupt latencies", &d.irq, &irq);
    within("DPC latencies", &d.dpc, &dpc);
    assert!(d.cost.iter().all(|(_, c)| *c == 0), "no call cost configured");
    assert_eq!(d.dpc.len() as u64, stats.enable_callbacks);
    // The device went on completing during those windows.
    assert!(stats.completions_per_interrupt() > 2.0, "{stats:?}");
}

#[test]
fn with_the_defaults_no_interrupt_or_callback_comes_early() {
    let (trace, stats) = run(2, PortConfig::default(), 96);
    let d = delays(&parse(&trace));
    let defaults = PortConfig::default();
    // Other routines' call costs may delay an eligible event further, never bring it forward.
    assert!(d.irq.len() >= 10 && d.irq.iter().all(|x| x >= defaults.interrupt_latency_ns.start()), "{:?}", d.irq);
    assert!(d.dpc.len() >= 10 && d.dpc.iter().all(|x| x >= defaults.dpc_latency_ns.start()), "{:?}", d.dpc);
    assert!(stats.completions_per_interrupt() > 1.5, "{stats:?}");
}

#[test]
fn a_call_costs_its_draw_when_it_returns() {
    let (trace, stats) = run(3, cfg(0..=0, 0..=0, 1_500..=1_500, 700..=700), 64);
    let d = delays(&parse(&trace));
    let cost = |name: &str| -> Vec<u64> { d.cost.iter().filter(|(r, _)| r == name).map(|(_, c)| *c).collect() };
    for (name, want) in [
        ("HwScsiInterrupt", 1_500),
        ("HwScsiEnableInterruptsCallback", 1_500),
        ("HwScsiDisableInterruptsCallback", 1_500),
        ("HwScsiStartIo", 700),
        // Load and initialisation cost nothing.
        ("HwScsiFindAdapter", 0),
        ("HwScsiInitialize", 0),
    ] {
        let c = cost(name);
        assert!(!c.is_empty() && c.iter().all(|x| *x == want), "{name}: {c:?}");
    }
    assert!(stats.interrupts > 0);
}

#[test]
fn latency_draws_are_reproducible_per_seed() {
    let (a, _) = run(17, PortConfig::default(), 64);
    let (b, _) = run(17, PortConfig::default(), 64);
    assert!(a == b, "same seed, different trace");
    let (da, db) = (delays(&parse(&a)), delays(&parse(&b)));
    assert_eq!(da, db);
    // Another machine seed (same device seed): other draws.
    let (c, _) = run(18, PortConfig::default(), 64);
    let dc = delays(&parse(&c));
    assert_ne!(da.irq, dc.irq);
    assert_ne!(da.dpc, dc.dpc);
}

#[test]
fn the_latencies_are_what_batches_completions() {
    let (_, with) = run(4, PortConfig::default(), 128);
    let (trace, without) = run(4, PortConfig::default().without_latency(), 128);
    let d = delays(&parse(&trace));
    assert!(d.irq.iter().chain(&d.dpc).all(|x| *x == 0), "without_latency: every delay is 0");
    assert!(d.cost.iter().all(|(_, c)| *c == 0));
    let (w, wo) = (with.completions_per_interrupt(), without.completions_per_interrupt());
    assert!(wo < 1.1, "instantaneous dispatch leaves nothing to batch: {wo}");
    assert!(w > 2.0, "with the latency model: {w}");
}

//! `Machine::reset_bus`: a port-initiated bus reset while requests are outstanding at the
//! miniport, as SCSI Port does it after a timeout (contract §3.5, §7.2, §7.3): `HwScsiResetBus`
//! under the interrupt lock, never inside the deferred-interrupt window, the reset hold for the
//! requests outstanding at that moment and 0x1007 when one outlives it.
#![allow(clippy::cast_possible_truncation, clippy::many_single_char_names)]

mod common;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use scsiport_sim::mem::SimDma;
use scsiport_sim::pvscsi::{Latency, PvscsiDevice};
use scsiport_sim::{Completion, Error, Machine, Request, Rule, Schedule, Ticket, VerifierConfig, test_miniport};
use scsiport_sys as sys;

/// One adapter with one RAM disk behind the test miniport, the given device latency and reset
/// hold, traced into `buf`.
fn machine(schedule: Schedule, args: &str, latency: Latency, hold: Duration, buf: &SharedBuf) -> (Machine, PvscsiDevice) {
    let b = Machine::builder()
        .schedule(schedule)
        .verifier(VerifierConfig { time_scale: 20.0, ..VerifierConfig::default() })
        .argument_string(args)
        .reset_hold(hold)
        .trace(buf.clone());
    let dma = SimDma::default();
    let dev = device(&b, &dma, 1, 3);
    let m = b.adapter(Arc::new(dev.clone()), Arc::new(dma)).build();
    m.load_driver(test_miniport::driver_entry).expect("load");
    // Slow from here on (the bus scan ran at the default latency).
    dev.set_latency(latency);
    (m, dev)
}

/// Requests the miniport holds now: every `HwScsiStartIo` hands it one, every completion takes
/// one back.
fn outstanding(m: &Machine) -> u64 {
    let s = m.stats_of(0);
    // Saturating: a request the miniport completes inside `HwScsiStartIo` (BUSY) is counted
    // back before its call is counted.
    s.start_io_calls.saturating_sub(s.completions)
}

/// Device latency and reset hold per schedule: virtual time costs nothing; in real time the
/// requests must still be in the device when the caller's reset runs.
fn timing(schedule: Schedule) -> (Latency, Duration) {
    match schedule {
        Schedule::Deterministic { .. } => (Latency::fixed(1_000_000), Duration::from_secs(4)),
        Schedule::Concurrent => (Latency::fixed(200_000_000), Duration::from_millis(100)),
    }
}

fn schedules() -> [Schedule; 2] {
    [det(), Schedule::Concurrent]
}

/// The value of `"key":` in a trace line (a number, `true`/`false`, or a string without quotes).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":");
    let rest = &line[line.find(&pat)? + pat.len()..];
    if let Some(s) = rest.strip_prefix('"') {
        return s.find('"').map(|e| &s[..e]);
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(&rest[..end])
}

fn is_event(line: &str, ev: &str, key: &str, value: &str) -> bool {
    field(line, "ev") == Some(ev) && field(line, key) == Some(value)
}

/// `RequestComplete` lines per SRB id.
fn completions_per_srb(trace: &str) -> BTreeMap<u64, Vec<String>> {
    let mut m: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for l in trace.lines().filter(|l| is_event(l, "port", "type", "RequestComplete")) {
        let id = field(l, "srb").unwrap().parse().unwrap();
        m.entry(id).or_default().push(field(l, "status").unwrap().to_string());
    }
    m
}

/// Asserts that no `HwScsiResetBus` call falls inside a deferred-interrupt window (from the
/// ISR's `CallEnableInterrupts` to the return of `HwScsiDisableInterruptsCallback`); returns the
/// number of calls seen.
fn assert_no_reset_inside_a_window(trace: &str) -> usize {
    let mut open = false;
    let mut resets = 0;
    for l in trace.lines() {
        if is_event(l, "port", "type", "CallEnableInterrupts") {
            open = true;
        } else if is_event(l, "ret", "routine", "HwScsiDisableInterruptsCallback") {
            open = false;
        } else if is_event(l, "call", "routine", "HwScsiResetBus") {
            assert!(!open, "HwScsiResetBus inside the deferred-interrupt window: {l}");
            resets += 1;
        }
    }
    resets
}

/// A completion after a bus reset that is not the reset's own: success, or the UNIT ATTENTION
/// the disk reports once after a reset (06/29/00).
fn assert_success_or_unit_attention(c: &Completion) {
    assert!(c.reached_miniport && !c.timed_out, "{c:?}");
    if c.status() == sys::SRB_STATUS_ERROR {
        assert_eq!(c.sense.get(2).map(|k| k & 0x0F), Some(0x06), "not a unit attention: {c:?}");
    } else {
        assert!(c.is_success(), "{c:?}");
    }
}

#[test]
fn a_reset_completes_every_request_outstanding_at_the_miniport_once() {
    for schedule in schedules() {
        let buf = SharedBuf::default();
        let (latency, hold) = timing(schedule);
        let (m, _dev) = machine(schedule, "qd=8 tagged=1", latency, hold, &buf);
        // Eight fill the miniport (qd=8), four more wait in the port's LU queue.
        let at_miniport: Vec<Ticket> = (0..8u32).map(|i| m.submit(Request::read10(0, i * 8, 8, 4096)).unwrap()).collect();
        let queued: Vec<Ticket> = (8..12u32).map(|i| m.submit(Request::read10(0, i * 8, 8, 4096)).unwrap()).collect();
        m.run_until(|m| outstanding(m) == 8).unwrap();
        let before = m.stats_of(0);
        let t_reset = m.now_ns();

        m.reset_bus(0, 0).unwrap();

        // HwScsiResetBus has returned: the test miniport completed all eight in it, with
        // BUS_RESET, and the port handed them back at once (LU queue frozen, as for any error).
        assert_eq!(outstanding(&m), 0, "{schedule:?}");
        for t in &at_miniport {
            let c = m.try_take(*t).unwrap_or_else(|| panic!("{schedule:?}: request {} not back after the reset", t.0));
            assert_eq!(c.status(), sys::SRB_STATUS_BUS_RESET, "{schedule:?}: {c:?}");
            assert!(c.reached_miniport && !c.timed_out && c.queue_frozen(), "{schedule:?}: {c:?}");
        }
        // The queued ones were untouched: they start after the hold and complete normally.
        for t in &queued {
            assert!(m.try_take(*t).is_none(), "{schedule:?}: a queued request completed by the reset");
        }
        for t in &queued {
            let c = m.wait(*t).unwrap();
            assert_success_or_unit_attention(&c);
        }
        assert!(m.now_ns() - t_reset >= u64::try_from(hold.as_nanos()).unwrap(), "{schedule:?}: I/O resumed inside the hold");
        let after = m.stats_of(0);
        assert_eq!(after.bus_resets - before.bus_resets, 1, "{schedule:?}");
        assert_eq!(after.timeouts, 0, "{schedule:?}");
        assert_eq!(after.completions - before.completions, 12, "{schedule:?}: each request completes exactly once");
        // The hold ends clean and nothing else broke.
        m.run_for(hold + Duration::from_millis(50)).unwrap();
        assert!(m.violations().is_empty(), "{schedule:?}: {:#?}", m.violations());

        m.flush_trace();
        let trace = buf.text();
        // The trace shows the reset: the port's event, then HwScsiResetBus completing the eight
        // before it returns.
        let lines: Vec<&str> = trace.lines().collect();
        let ev = lines.iter().position(|l| is_event(l, "port", "fn", "reset_bus")).expect("reset_bus event");
        assert_eq!(field(lines[ev], "path"), Some("0"));
        assert_eq!(field(lines[ev], "outstanding"), Some("8"));
        assert_eq!(field(lines[ev], "adapter"), Some("0"));
        let call = ev + lines[ev..].iter().position(|l| is_event(l, "call", "routine", "HwScsiResetBus")).unwrap();
        assert_eq!(field(lines[call], "path"), Some("0"));
        let ret = call + lines[call..].iter().position(|l| is_event(l, "ret", "routine", "HwScsiResetBus")).unwrap();
        let inside: Vec<&str> = lines[call..ret].iter().copied().filter(|l| is_event(l, "port", "type", "RequestComplete")).collect();
        assert_eq!(inside.len(), 8, "{schedule:?}");
        assert!(inside.iter().all(|l| field(l, "status") == Some("0x0e")), "{inside:#?}");
        assert_eq!(assert_no_reset_inside_a_window(&trace), 1);
        let per_srb = completions_per_srb(&trace);
        for t in at_miniport.iter().chain(&queued) {
            assert_eq!(per_srb.get(&t.0).map(Vec::len), Some(1), "{schedule:?}: srb {} completions {:?}", t.0, per_srb.get(&t.0));
        }
    }
}

#[test]
fn a_miniport_that_ignores_the_reset_gets_0x1007() {
    for schedule in schedules() {
        let buf = SharedBuf::default();
        // The hold is far shorter than the device takes: the ignored requests outlive it.
        let (latency, hold) = match schedule {
            Schedule::Deterministic { .. } => (Latency::fixed(10_000_000), Duration::from_millis(1)),
            Schedule::Concurrent => (Latency::fixed(500_000_000), Duration::from_millis(20)),
        };
        let (m, _dev) = machine(schedule, "qd=8 tagged=1 break=ignore_reset", latency, hold, &buf);
        let ts: Vec<Ticket> = (0..4u32).map(|i| m.submit(Request::read10(0, i, 1, 512)).unwrap()).collect();
        m.run_until(|m| outstanding(m) == 4).unwrap();
        m.reset_bus(0, 0).unwrap();
        assert_eq!(outstanding(&m), 4, "{schedule:?}: the miniport completed nothing");
        let e = m.wait(ts[0]).unwrap_err();
        assert_eq!(e.bugcheck().map(|b| b.rule), Some(Rule::ResetHoldOutstanding), "{schedule:?}: {e}");
        let b = m.bugcheck().unwrap();
        assert_eq!(b.code, 0x1007);
        assert!(b.message.contains("4 request(s)"), "{}", b.message);
        assert_bugcheck(&m, Rule::ResetHoldOutstanding);
        assert_eq!(m.stats().bus_resets, 1);
        // Every later call fails with it, this one too.
        assert_eq!(m.reset_bus(0, 0).unwrap_err().bugcheck().map(|b| b.rule), Some(Rule::ResetHoldOutstanding));
        m.flush_trace();
        assert!(buf.text().lines().any(|l| is_event(l, "port", "fn", "reset_bus") && field(l, "outstanding") == Some("4")));
    }
}

/// Resets under load: each round fills the miniport, then resets (in the deterministic schedule
/// while a deferred-interrupt window is open, so the reset has to wait for it to close).
fn resets_under_load(schedule: Schedule, rounds: u32) -> (String, u64) {
    let buf = SharedBuf::default();
    let (latency, hold) = match schedule {
        Schedule::Deterministic { .. } => (Latency::range(20_000, 400_000), Duration::from_millis(5)),
        Schedule::Concurrent => (Latency::range(200_000, 5_000_000), Duration::from_millis(2)),
    };
    let (m, _dev) = machine(schedule, "qd=8 tagged=1", latency, hold, &buf);
    let mut bus_reset = 0u64;
    for round in 0..rounds {
        let done_before = m.stats_of(0).completions;
        // No queue freeze: the UNIT ATTENTION after each reset would otherwise hold the rest of
        // the round in the port until this thread takes it.
        let ts: Vec<Ticket> = (0..12u32)
            .map(|i| m.submit(Request::read10(0, (round * 12 + i) % 4096, 1, 512).with_flags(sys::SRB_FLAGS_NO_QUEUE_FREEZE)).unwrap())
            .collect();
        if let Schedule::Deterministic { .. } = schedule {
            // A window is open: the ISR claimed more interrupts than disable callbacks ran.
            m.run_until(|m| {
                let s = m.stats_of(0);
                s.interrupts > s.disable_callbacks && outstanding(m) > 0
            })
            .unwrap();
        } else {
            // Or, on a machine too busy to look in time, once the round is over (the reset then
            // catches nothing).
            m.run_until(|m| outstanding(m) >= 4 || m.stats_of(0).completions - done_before >= 12).unwrap();
        }
        m.reset_bus(0, 0).unwrap();
        for t in ts {
            let c = m.wait(t).unwrap();
            if c.status() == sys::SRB_STATUS_BUS_RESET {
                bus_reset += 1;
            } else {
                assert_success_or_unit_attention(&c);
            }
        }
    }
    m.run_for(hold + Duration::from_millis(10)).unwrap();
    assert!(m.violations().is_empty(), "{schedule:?}: {:#?}", m.violations());
    let s = m.stats_of(0);
    assert_eq!(s.bus_resets, u64::from(rounds));
    assert_eq!(s.start_io_calls, s.completions, "every request given to the miniport came back");
    m.flush_trace();
    (buf.text(), bus_reset)
}

#[test]
fn resets_wait_for_the_deferred_interrupt_window_and_complete_everything_once() {
    for schedule in schedules() {
        let rounds = 20;
        let (trace, bus_reset) = resets_under_load(schedule, rounds);
        assert!(bus_reset > 0, "{schedule:?}: no reset caught a request in flight");
        assert_eq!(assert_no_reset_inside_a_window(&trace), rounds as usize);
        for (id, statuses) in completions_per_srb(&trace) {
            assert_eq!(statuses.len(), 1, "{schedule:?}: srb {id} completed {statuses:?}");
        }
        if let Schedule::Deterministic { .. } = schedule {
            // Each reset was asked for inside a window and ran after it closed: its port event
            // comes after a disable callback's return and before any other miniport call.
            let lines: Vec<&str> = trace.lines().collect();
            for (i, l) in lines.iter().enumerate().filter(|(_, l)| is_event(l, "port", "fn", "reset_bus")) {
                let prev = lines[..i].iter().rev().find(|l| field(l, "ev") == Some("ret")).unwrap();
                assert_eq!(field(prev, "routine"), Some("HwScsiDisableInterruptsCallback"), "before {l}");
            }
        }
    }
}

#[test]
fn deterministic_resets_are_reproducible() {
    let (a, _) = resets_under_load(Schedule::Deterministic { seed: 42 }, 5);
    let (b, _) = resets_under_load(Schedule::Deterministic { seed: 42 }, 5);
    // (ScsiPortCompleteRequest once completed in SRB address order, which varies from run to
    // run when other tests allocate memory meanwhile.)
    let first = a.lines().zip(b.lines()).find(|(x, y)| x != y);
    assert!(a == b, "same seed, different trace; first difference: {first:#?}");
}

#[test]
fn a_reset_with_nothing_outstanding_holds_the_bus_and_io_goes_on() {
    for schedule in schedules() {
        let buf = SharedBuf::default();
        let hold = Duration::from_millis(30);
        let (m, _dev) = machine(schedule, "", Latency::fixed(50_000), hold, &buf);
        m.reset_bus(0, 0).unwrap();
        let t0 = m.now_ns();
        let c = m.execute(Request::read10(0, 0, 1, 512)).unwrap();
        assert_success_or_unit_attention(&c);
        assert!(m.now_ns() - t0 >= 25_000_000, "{schedule:?}: I/O started inside the hold");
        m.run_for(hold).unwrap();
        assert!(m.violations().is_empty(), "{schedule:?}: {:#?}", m.violations());
        assert_eq!(m.stats().bus_resets, 1);
        m.flush_trace();
        assert!(buf.text().lines().any(|l| is_event(l, "port", "fn", "reset_bus") && field(l, "outstanding") == Some("0")));
    }
}

#[test]
fn reset_bus_refuses_what_makes_no_sense() {
    let b = Machine::builder().schedule(det());
    let dma = SimDma::default();
    let dev = device(&b, &dma, 1, 1);
    let m = b.adapter(Arc::new(dev), Arc::new(dma)).build();
    assert!(matches!(m.reset_bus(0, 0), Err(Error::Usage(_))), "before the driver is loaded");
    m.load_driver(test_miniport::driver_entry).unwrap();
    assert!(matches!(m.reset_bus(1, 0), Err(Error::Usage(_))), "no adapter 1");
    assert!(matches!(m.reset_bus(0, 1), Err(Error::Usage(_))), "the test miniport has one bus");
    m.stop_adapter(0).unwrap();
    assert!(matches!(m.reset_bus(0, 0), Err(Error::Usage(_))), "stopped");
    assert_eq!(m.stats().bus_resets, 0);
    assert!(m.violations().is_empty(), "{:#?}", m.violations());
}

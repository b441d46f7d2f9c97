//! `trace_chrome`: a trace as Chrome trace-event JSON, held to the format (Trace Event Format,
//! the JSON object form `chrome://tracing` and Perfetto open) by a checker written from the
//! format's description, not from the converter: required keys per phase, slices nested per
//! track, flows bound to slices and closed, every track named. Runs on SCSI Port (the deferred
//! interrupt pair) and Storport (the DPC) machines, in the deterministic schedule and the
//! concurrent one.

mod common;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::*;
use scsiport_sim::mem::SimDma;
use scsiport_sim::trace_chrome::{ChromeOptions, to_chrome};
use scsiport_sim::trace_diff::parse_trace;
use scsiport_sim::{Machine, Port, Request, Schedule, VerifierConfig, stor_test_miniport, test_miniport};
use serde_json::Value;

/// A complete slice: start and end in ns, name.
type Slice = (i64, i64, String);

/// A track: (pid, tid).
type Track = (u64, u64);

/// What the checker found, for the structural assertions of each test.
#[derive(Debug, Default)]
struct Checked {
    /// Slices by (pid, thread name).
    slices: BTreeMap<(u64, String), Vec<Slice>>,
    /// Flows started and finished.
    flows: usize,
    instants: usize,
}

/// A time in the file (µs) as the importer reads it: Perfetto rounds each value to whole
/// nanoseconds (`llround(us * 1000)`), so a slice's end is its rounded start plus its rounded
/// duration.
#[allow(clippy::cast_possible_truncation)] // a trace's times are far below 2^63 ns
fn ns(e: &Value, k: &str) -> i64 {
    let us = e[k].as_f64().unwrap_or_else(|| panic!("{k} is not a number in {e}"));
    (us * 1000.0).round() as i64
}

/// The format's rules as the Trace Event Format document states them, for the phases used.
fn check(doc: &Value) -> Checked {
    let events = doc["traceEvents"].as_array().expect("an object with a traceEvents array");
    assert!(matches!(doc["displayTimeUnit"].as_str(), Some("ms" | "ns")), "displayTimeUnit is ms or ns");
    let mut names: BTreeMap<Track, String> = BTreeMap::new();
    let mut slices: BTreeMap<Track, Vec<Slice>> = BTreeMap::new();
    let mut flow_points: BTreeMap<u64, Vec<(String, i64, Track)>> = BTreeMap::new();
    let mut used = BTreeSet::new();
    let mut checked = Checked::default();
    for e in events {
        let ph = e["ph"].as_str().unwrap_or_else(|| panic!("no ph: {e}"));
        let pid = e["pid"].as_u64().unwrap_or_else(|| panic!("pid is an integer: {e}"));
        let tid = e["tid"].as_u64().unwrap_or_else(|| panic!("tid is an integer: {e}"));
        assert!(e["name"].is_string(), "name: {e}");
        if ph == "M" {
            let name = e["name"].as_str().unwrap();
            assert!(matches!(name, "process_name" | "thread_name" | "process_sort_index" | "thread_sort_index"), "{e}");
            if name == "thread_name" {
                names.insert((pid, tid), e["args"]["name"].as_str().expect("thread_name has args.name").to_string());
            }
            continue;
        }
        let ts = ns(e, "ts");
        assert!(ts >= 0, "{e}");
        used.insert((pid, tid));
        match ph {
            "X" => {
                let dur = ns(e, "dur");
                assert!(dur >= 0, "{e}");
                slices.entry((pid, tid)).or_default().push((ts, ts + dur, e["name"].as_str().unwrap().to_string()));
            }
            "i" => {
                assert!(matches!(e["s"].as_str(), Some("g" | "p" | "t")), "instant scope: {e}");
                checked.instants += 1;
            }
            "s" | "t" | "f" => {
                assert!(e["cat"].is_string(), "a flow event has a category: {e}");
                let id = e["id"].as_u64().unwrap_or_else(|| panic!("flow id: {e}"));
                if ph == "f" {
                    assert_eq!(e["bp"], "e", "a flow ends on its enclosing slice: {e}");
                }
                flow_points.entry(id).or_default().push((ph.to_string(), ts, (pid, tid)));
            }
            other => panic!("phase {other} is not one the converter should write: {e}"),
        }
    }
    // Every track that has events is named.
    for key in &used {
        assert!(names.contains_key(key), "track {key:?} has no thread_name");
    }
    // Slices on one track nest: sorted by start (longest first), each one either starts after the
    // enclosing one ended or ends inside it.
    for (key, list) in &mut slices {
        list.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut stack: Vec<&Slice> = Vec::new();
        for s in list.iter() {
            while let Some(top) = stack.last() {
                if top.0 <= s.0 && s.1 <= top.1 {
                    break;
                }
                assert!(s.0 >= top.1, "{}: slice {s:?} overlaps {top:?} without nesting", names[key]);
                stack.pop();
            }
            stack.push(s);
        }
    }
    // Flows: one start, then steps, one finish, in time order; each point inside a slice of its
    // track (where the viewer binds it).
    for (id, points) in &flow_points {
        let phases: Vec<&str> = points.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(phases.first(), Some(&"s"), "flow {id}: {phases:?}");
        assert_eq!(phases.last(), Some(&"f"), "flow {id} is finished: {phases:?}");
        assert!(phases[1..phases.len() - 1].iter().all(|p| *p == "t"), "flow {id}: {phases:?}");
        assert!(points.windows(2).all(|w| w[0].1 <= w[1].1), "flow {id} goes forward in time");
        for (ph, ts, key) in points {
            let inside = slices.get(key).is_some_and(|l| l.iter().any(|s| s.0 <= *ts && *ts <= s.1));
            assert!(inside, "flow {id} {ph} at {ts} on {} is in no slice", names[key]);
        }
        checked.flows += 1;
    }
    checked.slices = slices.into_iter().map(|((pid, tid), v)| ((pid, names[&(pid, tid)].clone()), v)).collect();
    checked
}

fn within(inner: &Slice, outer: &[Slice]) -> bool {
    outer.iter().any(|o| o.0 <= inner.0 && inner.1 <= o.1)
}

/// A machine with a trace: the test miniport on SCSI Port or Storport, one disk, some I/O and a
/// bus reset; returns the trace.
fn traced(port: Port, schedule: Schedule) -> Vec<serde_json::Map<String, Value>> {
    let buf = SharedBuf::default();
    let mut b = Machine::builder().port(port).schedule(schedule).trace(buf.clone()).trace_dma(true);
    if matches!(schedule, Schedule::Concurrent) {
        // The bus reset's hold is real time here: 4 s by default.
        b = b.verifier(VerifierConfig { time_scale: 20.0, ..VerifierConfig::default() }).reset_hold(std::time::Duration::from_millis(20));
    }
    let dma = SimDma::default();
    let dev = device(&b, &dma, 1, 1);
    let m = b.adapter(Arc::new(dev), Arc::new(dma)).build();
    match port {
        Port::ScsiPort => m.load_driver(test_miniport::driver_entry).unwrap(),
        Port::Storport => m.load_driver(stor_test_miniport::driver_entry).unwrap(),
    }
    let _ = m.execute(Request::test_unit_ready(0));
    let tickets: Vec<_> = (0..24u32).map(|i| m.submit(Request::write10(0, i * 8, 8, pattern(i * 8, 8, 1))).unwrap()).collect();
    for t in tickets {
        m.wait(t).unwrap();
    }
    assert!(m.execute(Request::reset_bus(0)).unwrap().is_success());
    // The port's own bus reset, through HwScsiResetBus / HwStorResetBus.
    m.reset_bus(0, 0).unwrap();
    for i in 0..8u32 {
        let _ = m.execute(Request::read10(0, i * 8, 8, 4096)).unwrap();
    }
    m.run_until_idle().unwrap();
    assert!(m.violations().is_empty(), "{:#?}", m.violations());
    m.flush_trace();
    parse_trace(&buf.text()).unwrap()
}

#[test]
fn a_scsi_port_run_is_a_valid_timeline_of_the_deferred_interrupt_path() {
    let trace = traced(Port::ScsiPort, Schedule::Deterministic { seed: 9 });
    let doc = to_chrome(&trace, ChromeOptions::default());
    let c = check(&doc);
    let get = |track: &str| c.slices.get(&(1, track.to_string())).cloned().unwrap_or_default();
    let (start_io, isr, dpc) = (get("StartIo"), get("ISR"), get("DPC"));
    assert!(start_io.iter().filter(|s| s.2 == "HwScsiStartIo").count() >= 33, "{start_io:?}");
    assert!(isr.iter().any(|s| s.2 == "HwScsiInterrupt"));
    let enable: Vec<Slice> = dpc.iter().filter(|s| s.2 == "HwScsiEnableInterruptsCallback").cloned().collect();
    assert!(!enable.is_empty() && dpc.iter().any(|s| s.2 == "HwScsiDisableInterruptsCallback"));
    // Each enable callback follows an ISR, and the I/O completions happen inside it.
    let completions: Vec<&Slice> = dpc.iter().filter(|s| s.2.starts_with("complete ")).collect();
    assert!(completions.len() >= 32);
    assert!(completions.iter().all(|s| within(s, &enable)), "completions inside the enable callback");
    // Every request that reached StartIo is a flow to its completion.
    let requests = trace.iter().filter(|e| e["ev"] == "call" && e.contains_key("srb")).map(|e| e["srb"].as_u64()).collect::<BTreeSet<_>>();
    assert_eq!(c.flows, requests.len());
    // Resets, the interrupt line, submissions and DMA are there too.
    assert!(get("Reset and control").iter().any(|s| s.2 == "HwScsiResetBus"), "{:?}", get("Reset and control"));
    assert!(get("Port").iter().any(|s| s.2 == "reset_bus"), "{:?}", get("Port"));
    assert!(!get("Interrupt line").is_empty());
    assert!(c.instants > 100);
    // Timestamps are the trace's, in µs.
    let first_call = trace.iter().find(|e| e["ev"] == "call" && e["routine"] == "HwScsiStartIo").unwrap();
    let first_ns = i64::try_from(first_call["t_ns"].as_u64().unwrap()).unwrap();
    assert!(start_io.iter().any(|s| s.0 == first_ns));
}

#[test]
fn a_storport_run_shows_its_dpc() {
    let trace = traced(Port::Storport, Schedule::Deterministic { seed: 9 });
    let c = check(&to_chrome(&trace, ChromeOptions::default()));
    let dpc = c.slices.get(&(1, "DPC".to_string())).expect("a DPC track");
    assert!(dpc.iter().any(|s| s.2 == "HwStorDpcRoutine"), "{dpc:?}");
    let start_io = &c.slices[&(1, "StartIo".to_string())];
    assert!(start_io.iter().any(|s| s.2 == "HwStorBuildIo") && start_io.iter().any(|s| s.2 == "HwStorStartIo"));
    assert!(c.slices[&(1, "Reset and control".to_string())].iter().any(|s| s.2 == "HwStorResetBus"));
    assert!(c.flows >= 32);
}

#[test]
fn concurrent_runs_convert_too() {
    for port in [Port::ScsiPort, Port::Storport] {
        let trace = traced(port, Schedule::Concurrent);
        let doc = to_chrome(&trace, ChromeOptions { services: true });
        let c = check(&doc);
        assert!(c.flows >= 32, "{port:?}");
        // Each return of a routine that received a request names it, and each such routine's
        // slice ends at a return of its own request, whichever order the calls ended in.
        let mut returns: BTreeMap<(String, u64), Vec<i64>> = BTreeMap::new();
        for e in &trace {
            if e.get("ev").and_then(Value::as_str) != Some("ret") {
                continue;
            }
            let routine = e["routine"].as_str().unwrap().to_string();
            if matches!(routine.as_str(), "HwScsiStartIo" | "HwStorBuildIo" | "HwStorStartIo") {
                let srb = e.get("srb").and_then(Value::as_u64).unwrap_or_else(|| panic!("{port:?}: a return without its request: {e:?}"));
                returns.entry((routine, srb)).or_default().push(i64::try_from(e["t_ns"].as_u64().unwrap()).unwrap());
            }
        }
        let mut paired = 0;
        for e in doc["traceEvents"].as_array().unwrap().iter().filter(|e| e["ph"] == "X" && e["cat"] == "routine") {
            let Some(srb) = e["args"]["srb"].as_u64() else { continue };
            let ends = &returns[&(e["name"].as_str().unwrap().to_string(), srb)];
            let end = ns(e, "ts") + ns(e, "dur");
            assert!(ends.iter().any(|t| (t - end).abs() <= 1), "{port:?}: {e} ends at none of its request's returns {ends:?}");
            paired += 1;
        }
        assert!(paired >= 32, "{port:?}: {paired}");
    }
}

#[test]
fn services_are_left_out_unless_asked() {
    let trace = traced(Port::ScsiPort, Schedule::Deterministic { seed: 3 });
    let count = |doc: &Value, cat: &str| doc["traceEvents"].as_array().unwrap().iter().filter(|e| e["cat"] == cat).count();
    let lean = to_chrome(&trace, ChromeOptions::default());
    let full = to_chrome(&trace, ChromeOptions { services: true });
    // Without the option only ScsiPortCompleteRequest (a completion of many requests, from the
    // bus reset here) is shown among the services.
    let lean_services: Vec<&Value> = lean["traceEvents"].as_array().unwrap().iter().filter(|e| e["cat"] == "service").collect();
    assert!(lean_services.iter().all(|e| e["name"] == "ScsiPortCompleteRequest"), "{lean_services:?}");
    assert!(count(&lean, "service") < 5);
    let registers = trace.iter().filter(|e| e.get("fn").and_then(Value::as_str) == Some("ScsiPortWriteRegisterUlong")).count();
    assert!(count(&full, "service") >= registers && registers > 0);
    check(&full);
}

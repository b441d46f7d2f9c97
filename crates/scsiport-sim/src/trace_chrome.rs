//! A trace (`TRACE.md`) in Chrome's trace-event format (the JSON object form of
//! "Trace Event Format", the format `chrome://tracing` and Perfetto's UI open), so that a run can
//! be looked at as a timeline instead of read.
//!
//! Each adapter is a process (`pid` = adapter index + 1; machine-level events such as
//! `DriverEntry` go to process 0), and each kind of execution context a track (a `tid`) of it:
//! `StartIo` (`HwScsiStartIo`, `HwStorBuildIo`, `HwStorStartIo`), `ISR`, `DPC` (the deferred
//! interrupt pair, `HwStorDpcRoutine`), `Timer`, `Reset and control`, `Initialization`,
//! `Synchronized access`, `Port` (what the port does on its own), `Interrupt line`, `Device DMA`
//! and `Upper edge`; routines of one kind that overlap in time (the concurrent schedule) take
//! further lanes of their track (`StartIo (2)`). Every miniport routine is a complete slice (`"ph":"X"`) from its `call` to
//! its `ret`; a completion (`RequestComplete`) is a slice of no duration inside the routine that
//! made it; the port's resets and timeouts are slices on the `Port` track; the interrupt line is a
//! slice while it is asserted. A request is a flow (`"s"`, `"t"`, `"f"`) from the first routine
//! that received it, through any retry, to its completion. Notifications other than
//! `RequestComplete`, submissions, DMA and verifier violations are instants (`"i"`); other port
//! services (register accesses among them) only with [`ChromeOptions::services`].
//!
//! Timestamps are microseconds, from the trace's `t_ns`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value, json};

/// What goes into the timeline besides routines, completions, resets and requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChromeOptions {
    /// Every port service call (register accesses, `ScsiPortGetPhysicalAddress`, ...) as an
    /// instant on the track of the routine that made it.
    pub services: bool,
}

/// The tracks of one adapter's process, in display order.
const TRACKS: &[(u64, &str)] = &[
    (1, "Upper edge"),
    (2, "StartIo"),
    (3, "ISR"),
    (4, "DPC"),
    (5, "Timer"),
    (6, "Reset and control"),
    (7, "Initialization"),
    (8, "Synchronized access"),
    (9, "Port"),
    (10, "Interrupt line"),
    (11, "Device DMA"),
];

/// Routines of one kind that overlap in time (the concurrent schedule: two `HwStorBuildIo`s at
/// once, or `HwStorBuildIo` beside `HwStorStartIo`) go to further lanes of their track, `tid` +
/// this for each, since slices of one track must nest.
const LANE_STRIDE: u64 = 100;

const UPPER: u64 = 1;
const PORT: u64 = 9;
const LINE: u64 = 10;
const DMA: u64 = 11;

/// The track a routine runs on.
fn track_of(routine: &str) -> u64 {
    match routine {
        "HwScsiStartIo" | "HwStorBuildIo" | "HwStorStartIo" => 2,
        "HwScsiInterrupt" | "HwStorInterrupt" => 3,
        "HwScsiEnableInterruptsCallback" | "HwScsiDisableInterruptsCallback" | "HwStorDpcRoutine" => 4,
        "HwScsiTimer" | "HwStorTimer" => 5,
        "HwScsiResetBus" | "HwStorResetBus" | "HwScsiAdapterControl" | "HwStorAdapterControl" => 6,
        "SynchronizedAccessRoutine" => 8,
        _ => 7,
    }
}

/// SRB status names for slice titles (`srb.h`).
fn status_name(status: u8) -> &'static str {
    match status & 0x3F {
        0x00 => "PENDING",
        0x01 => "SUCCESS",
        0x02 => "ABORTED",
        0x03 => "ABORT_FAILED",
        0x04 => "ERROR",
        0x05 => "BUSY",
        0x06 => "INVALID_REQUEST",
        0x07 => "INVALID_PATH_ID",
        0x08 => "NO_DEVICE",
        0x09 => "TIMEOUT",
        0x0A => "SELECTION_TIMEOUT",
        0x0B => "COMMAND_TIMEOUT",
        0x0D => "MESSAGE_REJECTED",
        0x0E => "BUS_RESET",
        0x0F => "PARITY_ERROR",
        0x10 => "REQUEST_SENSE_FAILED",
        0x11 => "NO_HBA",
        0x12 => "DATA_OVERRUN",
        0x13 => "UNEXPECTED_BUS_FREE",
        0x14 => "PHASE_SEQUENCE_FAILURE",
        0x15 => "BAD_SRB_BLOCK_LENGTH",
        0x16 => "REQUEST_FLUSHED",
        0x20 => "INVALID_LUN",
        0x21 => "INVALID_TARGET_ID",
        0x22 => "BAD_FUNCTION",
        0x23 => "ERROR_RECOVERY",
        0x24 => "NOT_POWERED",
        0x25 => "LINK_DOWN",
        0x26 => "INSUFFICIENT_RESOURCES",
        0x27 => "THROTTLED_REQUEST",
        _ => "status",
    }
}

fn hex_u8(v: Option<&Value>) -> Option<u8> {
    v.and_then(Value::as_str).and_then(|s| u8::from_str_radix(s.trim_start_matches("0x"), 16).ok())
}

/// Microseconds, from nanoseconds.
fn us(t_ns: u64) -> Value {
    // An f64 holds every nanosecond count below 2^53 (104 days) exactly.
    #[allow(clippy::cast_precision_loss)]
    let v = t_ns as f64 / 1000.0;
    json!(v)
}

/// The keys of an event other than the envelope, as a slice's `args`.
fn args_of(e: &Map<String, Value>, skip: &[&str]) -> Map<String, Value> {
    e.iter()
        .filter(|(k, _)| !matches!(k.as_str(), "seq" | "t_ns" | "adapter" | "ev") && !skip.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

struct Open {
    routine: String,
    tid: u64,
    t_ns: u64,
    args: Map<String, Value>,
}

#[derive(Default)]
struct AdapterState {
    open: Vec<Open>,
    line_up: Option<(u64, Value)>,
    /// When the last routine of each lane ended: in the concurrent schedule a thread's event can
    /// reach the trace after another thread's later one, so a lane that no routine holds may
    /// still end after the next call's time stamp.
    lane_end: BTreeMap<u64, u64>,
}

/// Converts a parsed trace ([`crate::trace_diff::parse_trace`]) into a Chrome trace-event
/// document: `{"traceEvents":[...],"displayTimeUnit":"ns","otherData":{...}}`.
#[must_use]
#[allow(clippy::too_many_lines)] // one match over the event kinds, each a few lines
pub fn to_chrome(events: &[Map<String, Value>], options: ChromeOptions) -> Value {
    let mut out: Vec<Value> = Vec::new();
    let mut adapters: HashMap<Option<u64>, AdapterState> = HashMap::new();
    let mut used: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    // Requests with a flow started (srb id), and the first routine that received each.
    let mut flows: BTreeSet<u64> = BTreeSet::new();
    let mut storport = false;
    let mut last_ns = 0u64;
    for e in events {
        let t_ns = e.get("t_ns").and_then(Value::as_u64).unwrap_or(last_ns);
        last_ns = last_ns.max(t_ns);
        let adapter = e.get("adapter").and_then(Value::as_u64);
        let pid = adapter.map_or(0, |a| a + 1);
        let st = adapters.entry(adapter).or_default();
        let ev = e.get("ev").and_then(Value::as_str).unwrap_or("");
        let current_tid = st.open.last().map_or(PORT, |o| o.tid);
        let mut emit = |tid: u64, v: Value| {
            used.entry(pid).or_default().insert(tid);
            out.push(v);
        };
        match ev {
            "call" => {
                let routine = e.get("routine").and_then(Value::as_str).unwrap_or("?").to_string();
                storport |= routine.starts_with("HwStor");
                // The first lane of its track with no routine running in it, nor one that ended
                // after this call began.
                let base = track_of(&routine);
                let busy: BTreeSet<u64> = st.open.iter().map(|o| o.tid).collect();
                let free = |t: &u64| !busy.contains(t) && st.lane_end.get(t).is_none_or(|&end| end <= t_ns);
                let tid = (0..LANE_STRIDE).map(|lane| base + lane * LANE_STRIDE).find(free).unwrap_or(base);
                if let Some(srb) = e.get("srb").and_then(Value::as_u64) {
                    let ph = if flows.insert(srb) { "s" } else { "t" };
                    emit(tid, json!({"ph": ph, "cat": "request", "name": "request", "id": srb, "pid": pid, "tid": tid, "ts": us(t_ns)}));
                }
                st.open.push(Open { routine, tid, t_ns, args: args_of(e, &["routine"]) });
            }
            "ret" => {
                let routine = e.get("routine").and_then(Value::as_str).unwrap_or("?");
                // A return names its call's request where the call had one; two calls of a
                // routine may end in either order. Else the innermost call of that routine.
                let srb = e.get("srb");
                let mine = |o: &Open| o.routine == routine && srb.is_none_or(|s| o.args.get("srb") == Some(s));
                if let Some(i) = st.open.iter().rposition(mine) {
                    let o = st.open.remove(i);
                    let end = st.lane_end.entry(o.tid).or_default();
                    *end = (*end).max(t_ns);
                    let mut args = o.args;
                    if let Some(v) = e.get("value") {
                        args.insert("returned".into(), v.clone());
                    }
                    let name = match args.get("control").and_then(Value::as_str) {
                        Some(control) => format!("{} {control}", o.routine),
                        None => o.routine.clone(),
                    };
                    emit(
                        o.tid,
                        json!({"ph": "X", "cat": "routine", "name": name, "pid": pid, "tid": o.tid, "ts": us(o.t_ns), "dur": us(t_ns.saturating_sub(o.t_ns)), "args": args}),
                    );
                }
            }
            "port" => {
                let f = e.get("fn").and_then(Value::as_str).unwrap_or("?");
                let ty = e.get("type").and_then(Value::as_str);
                let notification = f.ends_with("Notification");
                match (notification, ty) {
                    (true, Some("RequestComplete")) => {
                        let srb = e.get("srb").and_then(Value::as_u64);
                        let status = hex_u8(e.get("status")).unwrap_or(0);
                        let name = format!("complete {}", status_name(status));
                        emit(
                            current_tid,
                            json!({"ph": "X", "cat": "completion", "name": name, "pid": pid, "tid": current_tid, "ts": us(t_ns), "dur": 0, "args": args_of(e, &["fn", "type"])}),
                        );
                        if let Some(srb) = srb.filter(|s| flows.contains(s)) {
                            // A BUSY answer is retried by the port: the request goes on.
                            let ph = if status & 0x3F == 0x05 { "t" } else { "f" };
                            if ph == "f" {
                                flows.remove(&srb);
                            }
                            emit(
                                current_tid,
                                json!({"ph": ph, "bp": "e", "cat": "request", "name": "request", "id": srb, "pid": pid, "tid": current_tid, "ts": us(t_ns)}),
                            );
                        }
                    }
                    (true, Some(ty)) => {
                        emit(current_tid, json!({"ph": "i", "s": "t", "cat": "notification", "name": ty, "pid": pid, "tid": current_tid, "ts": us(t_ns), "args": args_of(e, &["fn", "type"])}));
                    }
                    _ if matches!(f, "timeout" | "reset_bus" | "reset_logical_unit" | "reset_device") => {
                        emit(PORT, json!({"ph": "X", "cat": "reset", "name": f, "pid": pid, "tid": PORT, "ts": us(t_ns), "dur": 0, "args": args_of(e, &["fn"])}));
                    }
                    _ if options.services || f == "ScsiPortCompleteRequest" || f == "emulator" => {
                        emit(current_tid, json!({"ph": "i", "s": "t", "cat": "service", "name": f, "pid": pid, "tid": current_tid, "ts": us(t_ns), "args": args_of(e, &["fn"])}));
                    }
                    _ => {}
                }
            }
            "irq" => {
                let level = e.get("level").and_then(Value::as_bool).unwrap_or(false);
                let line = e.get("line").cloned().unwrap_or(Value::Null);
                match (level, st.line_up.take()) {
                    (true, None) => st.line_up = Some((t_ns, line)),
                    (true, Some(up)) => st.line_up = Some(up),
                    (false, Some((from, line))) => emit(
                        LINE,
                        json!({"ph": "X", "cat": "interrupt", "name": "line asserted", "pid": pid, "tid": LINE, "ts": us(from), "dur": us(t_ns.saturating_sub(from)), "args": {"line": line}}),
                    ),
                    (false, None) => {}
                }
            }
            "srb" => {
                let name = format!("submit {}", e.get("opcode").and_then(Value::as_str).unwrap_or(""));
                emit(UPPER, json!({"ph": "i", "s": "t", "cat": "request", "name": name.trim_end(), "pid": pid, "tid": UPPER, "ts": us(t_ns), "args": args_of(e, &[])}));
            }
            "dma" => {
                let name = format!(
                    "{} {}",
                    e.get("dir").and_then(Value::as_str).unwrap_or("?"),
                    e.get("what").and_then(Value::as_str).unwrap_or("?")
                );
                emit(DMA, json!({"ph": "i", "s": "t", "cat": "dma", "name": name, "pid": pid, "tid": DMA, "ts": us(t_ns), "args": args_of(e, &[])}));
            }
            "violation" => {
                let name = format!(
                    "violation {} {}",
                    e.get("code").and_then(Value::as_str).unwrap_or("?"),
                    e.get("rule").and_then(Value::as_str).unwrap_or("?")
                );
                emit(current_tid, json!({"ph": "i", "s": "p", "cat": "violation", "name": name, "pid": pid, "tid": current_tid, "ts": us(t_ns), "args": args_of(e, &[])}));
            }
            _ => {}
        }
    }
    // A routine that never returned (the machine stopped in it) ends with the trace.
    for (adapter, st) in &mut adapters {
        let pid = adapter.map_or(0, |a| a + 1);
        for o in st.open.drain(..).rev() {
            used.entry(pid).or_default().insert(o.tid);
            out.push(json!({"ph": "X", "cat": "routine", "name": format!("{} (did not return)", o.routine), "pid": pid, "tid": o.tid, "ts": us(o.t_ns), "dur": us(last_ns.saturating_sub(o.t_ns)), "args": o.args}));
        }
        if let Some((from, line)) = st.line_up.take() {
            used.entry(pid).or_default().insert(LINE);
            out.push(json!({"ph": "X", "cat": "interrupt", "name": "line asserted", "pid": pid, "tid": LINE, "ts": us(from), "dur": us(last_ns.saturating_sub(from)), "args": {"line": line}}));
        }
    }
    let port = if storport { "Storport" } else { "SCSI Port" };
    let mut meta = Vec::new();
    for (pid, tids) in &used {
        let name = if *pid == 0 { "machine".to_string() } else { format!("adapter {} ({port})", pid - 1) };
        meta.push(json!({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": name}}));
        meta.push(json!({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0, "args": {"sort_index": pid}}));
        for tid in tids {
            let base = TRACKS.iter().find(|(t, _)| *t == tid % LANE_STRIDE).map_or("?", |(_, n)| n);
            let name = match tid / LANE_STRIDE {
                0 => base.to_string(),
                lane => format!("{base} ({})", lane + 1),
            };
            meta.push(json!({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": name}}));
            meta.push(json!({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid, "args": {"sort_index": tid}}));
        }
    }
    meta.extend(out);
    json!({
        "traceEvents": meta,
        "displayTimeUnit": "ns",
        "otherData": {"source": "scsiport-sim trace (crates/scsiport-sim/TRACE.md)", "events": events.len()},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(line: &str) -> Map<String, Value> {
        serde_json::from_str(line).unwrap()
    }

    /// The Chrome document of a trace given as its JSON lines.
    fn chrome_of(lines: &[&str]) -> Value {
        let trace: Vec<_> = lines.iter().map(|l| ev(l)).collect();
        to_chrome(&trace, ChromeOptions::default())
    }

    /// Overlapping routines of one track (two `HwStorBuildIo`s and an `HwStorStartIo` at once,
    /// as the concurrent schedule runs them) get lanes of their own, so every lane nests; the
    /// request's flow stays on the lane of the routine that made each step.
    #[test]
    fn overlapping_routines_take_lanes() {
        let doc = chrome_of(&[
            r#"{"t_ns":1000,"adapter":0,"ev":"call","routine":"HwStorBuildIo","srb":1}"#,
            r#"{"t_ns":1500,"adapter":0,"ev":"call","routine":"HwStorBuildIo","srb":2}"#,
            r#"{"t_ns":1800,"adapter":0,"ev":"call","routine":"HwStorStartIo","srb":3}"#,
            r#"{"t_ns":2000,"adapter":0,"ev":"ret","routine":"HwStorBuildIo","value":1}"#,
            r#"{"t_ns":2100,"adapter":0,"ev":"port","fn":"StorPortNotification","type":"RequestComplete","srb":3,"status":"0x01"}"#,
            r#"{"t_ns":2500,"adapter":0,"ev":"ret","routine":"HwStorStartIo","value":1}"#,
            r#"{"t_ns":3000,"adapter":0,"ev":"ret","routine":"HwStorBuildIo","value":1}"#,
            r#"{"t_ns":3100,"adapter":0,"ev":"call","routine":"HwStorStartIo","srb":1}"#,
            r#"{"t_ns":3200,"adapter":0,"ev":"ret","routine":"HwStorStartIo","value":1}"#,
        ]);
        let events = doc["traceEvents"].as_array().unwrap();
        let slices: Vec<(u64, f64, f64)> = events
            .iter()
            .filter(|e| e["ph"] == "X" && e["cat"] == "routine")
            .map(|e| (e["tid"].as_u64().unwrap(), e["ts"].as_f64().unwrap(), e["ts"].as_f64().unwrap() + e["dur"].as_f64().unwrap()))
            .collect();
        assert_eq!(slices.len(), 4);
        for (i, a) in slices.iter().enumerate() {
            for b in &slices[i + 1..] {
                let overlap = a.1 < b.2 && b.1 < a.2;
                assert!(!(overlap && a.0 == b.0), "{a:?} and {b:?} overlap on one lane");
            }
        }
        let lanes: BTreeSet<u64> = slices.iter().map(|s| s.0).collect();
        assert_eq!(lanes, BTreeSet::from([2, 102, 202]), "three routines at once, three lanes");
        let names: Vec<&str> = events.iter().filter(|e| e["name"] == "thread_name").filter_map(|e| e["args"]["name"].as_str()).collect();
        assert!(names.contains(&"StartIo (2)") && names.contains(&"StartIo (3)"), "{names:?}");
        // The completion is on the lane of the routine that made it.
        let done = events.iter().find(|e| e["cat"] == "completion").unwrap();
        assert_eq!(done["tid"], 202);
    }

    /// Two `HwStorBuildIo`s that end in the order they began: each return names its request, so
    /// each slice ends at its own return (the innermost call of the routine would have taken
    /// the first return and the two would have swapped their ends).
    #[test]
    fn a_return_ends_the_call_of_its_own_request() {
        let doc = chrome_of(&[
            r#"{"t_ns":1000,"adapter":0,"ev":"call","routine":"HwStorBuildIo","srb":1}"#,
            r#"{"t_ns":1500,"adapter":0,"ev":"call","routine":"HwStorBuildIo","srb":2}"#,
            r#"{"t_ns":2000,"adapter":0,"ev":"ret","routine":"HwStorBuildIo","value":1,"srb":1}"#,
            r#"{"t_ns":3000,"adapter":0,"ev":"ret","routine":"HwStorBuildIo","value":1,"srb":2}"#,
        ]);
        let mut slices: Vec<(u64, f64, f64)> = doc["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["ph"] == "X")
            .map(|e| (e["args"]["srb"].as_u64().unwrap(), e["ts"].as_f64().unwrap(), e["dur"].as_f64().unwrap()))
            .collect();
        slices.sort_by_key(|s| s.0);
        assert_eq!(slices, [(1, 1.0, 1.0), (2, 1.5, 1.5)]);
    }

    /// Concurrent runs trace each event when its thread takes the trace, so one routine's call
    /// can come after another's return with an earlier time stamp (CI met an `HwStorStartIo`
    /// that began before the `HwStorBuildIo` it followed in the trace had ended): the two still
    /// get lanes of their own.
    #[test]
    fn a_call_traced_after_a_later_return_takes_another_lane() {
        let doc = chrome_of(&[
            r#"{"t_ns":1000,"adapter":0,"ev":"call","routine":"HwStorBuildIo","srb":1}"#,
            r#"{"t_ns":2000,"adapter":0,"ev":"ret","routine":"HwStorBuildIo","value":1}"#,
            r#"{"t_ns":1800,"adapter":0,"ev":"call","routine":"HwStorStartIo","srb":2}"#,
            r#"{"t_ns":2500,"adapter":0,"ev":"ret","routine":"HwStorStartIo","value":1}"#,
        ]);
        let lanes: Vec<u64> = doc["traceEvents"].as_array().unwrap().iter().filter(|e| e["ph"] == "X").map(|e| e["tid"].as_u64().unwrap()).collect();
        assert_eq!(lanes, [2, 102]);
    }
}

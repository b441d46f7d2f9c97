//! `trace-diff` and `trace-export`: the emulator's traces (`--trace FILE`,
//! crates/scsiport-sim/TRACE.md) compared, and turned into a timeline.

use std::io::Write as _;
use std::path::Path;

use scsiport_sim::trace_chrome::{ChromeOptions, to_chrome};
use scsiport_sim::trace_diff::{Allowlist, diff, parse_trace};
use serde_json::{Map, Value};

use crate::app::Verdict;
use crate::cli::{TraceDiffArgs, TraceExportArgs};

/// Reads and parses a JSON Lines trace; a message naming the file otherwise.
fn read_trace(path: &Path) -> Result<Vec<Map<String, Value>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_trace(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The name a trace goes by in the report: its file name, or the label given.
fn label(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// `trace-diff A B`: 0 when the traces agree under the allowlist, 1 when they differ, 2 when a
/// file cannot be read or parsed (as diff(1)).
#[must_use]
pub fn trace_diff(a: &TraceDiffArgs) -> Verdict {
    let allow = match &a.allow {
        Some(p) => match std::fs::read_to_string(p).map_err(|e| e.to_string()).and_then(|t| Allowlist::parse(&t)) {
            Ok(l) => l,
            Err(e) => return trouble("trace-diff", &format!("--allow {}: {e}", p.display())),
        },
        None => Allowlist::default(),
    };
    let (ta, tb) = match (read_trace(&a.a), read_trace(&a.b)) {
        (Ok(ta), Ok(tb)) => (ta, tb),
        (Err(e), _) | (_, Err(e)) => return trouble("trace-diff", &e),
    };
    let (la, lb) = a.labels.as_deref().and_then(|l| l.split_once(',')).map_or_else(
        || {
            let (x, y) = (label(&a.a), label(&a.b));
            // The same file name in two folders: the whole paths.
            if x == y { (a.a.display().to_string(), a.b.display().to_string()) } else { (x, y) }
        },
        |(x, y)| (x.to_string(), y.to_string()),
    );
    let report = diff(&ta, &tb, &allow, a.context);
    let mut out = std::io::stdout().lock();
    let text = report.render_labelled((&la, &lb));
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        eprintln!("rspvscsi-sim trace-diff: stdout: {e}");
        return Verdict::Usage;
    }
    if report.is_empty() { Verdict::Pass } else { Verdict::Fail }
}

/// `trace-export --chrome IN [-o OUT]`.
#[must_use]
pub fn trace_export(a: &TraceExportArgs) -> Verdict {
    if !a.chrome {
        return trouble("trace-export", "name the format: --chrome (the only one so far)");
    }
    let events = match read_trace(&a.input) {
        Ok(e) => e,
        Err(e) => return trouble("trace-export", &e),
    };
    let doc = to_chrome(&events, ChromeOptions { services: a.services });
    let text = match serde_json::to_string(&doc) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("rspvscsi-sim trace-export: {e}");
            return Verdict::Fail;
        }
    };
    let written = a.output.as_ref().map_or_else(
        || {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.write_all(b"\n")).and_then(|()| out.flush()).map_err(|e| format!("stdout: {e}"))
        },
        |p| std::fs::write(p, text.as_bytes()).map_err(|e| format!("{}: {e}", p.display())),
    );
    match written {
        Ok(()) => {
            if let Some(p) = &a.output {
                let n = doc["traceEvents"].as_array().map_or(0, Vec::len);
                eprintln!("rspvscsi-sim trace-export: {} trace events from {} events of {} into {}", n, events.len(), a.input.display(), p.display());
            }
            Verdict::Pass
        }
        Err(e) => {
            eprintln!("rspvscsi-sim trace-export: {e}");
            Verdict::Fail
        }
    }
}

fn trouble(cmd: &str, msg: &str) -> Verdict {
    eprintln!("rspvscsi-sim {cmd}: {msg}");
    Verdict::Usage
}

//! Two traces (`TRACE.md`), compared event by event.
//!
//! Two drivers that behave alike give the same deterministic trace for the same seed and the
//! same workload: the same routines called in the same order, the same notifications, register
//! accesses and completions with the same values. What may legitimately differ goes into an
//! [`Allowlist`], each entry with the reason it is allowed. `seq` is never compared: events are
//! aligned by their order once the allowlisted events are left out.
//!
//! Allowlist format, one entry per line, `#` starts a comment:
//!
//! ```text
//! field KEY: reason                     KEY is not compared in any event
//! field KEY in NAME: reason             ... in events whose `fn` or `routine` is NAME
//! event NAME: reason                    events whose `fn` or `routine` is NAME are left out
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

/// One allowlist entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowEntry {
    /// A key not compared, everywhere or only in events of one `fn`/`routine`.
    Field {
        /// The key.
        key: String,
        /// The `fn` or `routine` it applies to, or every event.
        within: Option<String>,
        /// Why it may differ.
        reason: String,
    },
    /// Events left out of the comparison.
    Event {
        /// Their `fn` or `routine`.
        name: String,
        /// Why.
        reason: String,
    },
}

/// What may differ between two traces, with reasons.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allowlist {
    /// The entries, in file order.
    pub entries: Vec<AllowEntry>,
}

impl Allowlist {
    /// Parses the format above.
    ///
    /// # Errors
    /// A line that is not an entry, or an entry without a reason, with its line number.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (head, reason) = line.split_once(':').ok_or_else(|| format!("line {}: no `: reason`", n + 1))?;
            let reason = reason.trim().to_string();
            if reason.is_empty() {
                return Err(format!("line {}: an entry needs its reason", n + 1));
            }
            let words: Vec<&str> = head.split_whitespace().collect();
            let entry = match words.as_slice() {
                ["field", key] => AllowEntry::Field { key: (*key).to_string(), within: None, reason },
                ["field", key, "in", name] => AllowEntry::Field { key: (*key).to_string(), within: Some((*name).to_string()), reason },
                ["event", name] => AllowEntry::Event { name: (*name).to_string(), reason },
                _ => return Err(format!("line {}: expected `field KEY`, `field KEY in NAME` or `event NAME`", n + 1)),
            };
            entries.push(entry);
        }
        Ok(Self { entries })
    }

    fn skips_event(&self, ev: &Map<String, Value>) -> bool {
        let name = event_name(ev);
        self.entries.iter().any(|e| matches!(e, AllowEntry::Event { name: n, .. } if Some(n.as_str()) == name))
    }

    fn ignores(&self, ev: &Map<String, Value>, key: &str) -> bool {
        key == "seq"
            || self.entries.iter().any(|e| match e {
                AllowEntry::Field { key: k, within, .. } => k == key && within.as_ref().is_none_or(|w| Some(w.as_str()) == event_name(ev)),
                AllowEntry::Event { .. } => false,
            })
    }
}

fn event_name(ev: &Map<String, Value>) -> Option<&str> {
    ev.get("fn").or_else(|| ev.get("routine")).and_then(Value::as_str)
}

/// Where two traces first part.
#[derive(Clone, Debug, PartialEq)]
pub struct Difference {
    /// Index in trace A among the compared events (allowlisted events left out), from 0.
    pub index: usize,
    /// The same in trace B (the traces are aligned, so an event missing from one side does not
    /// shift the other).
    pub index_b: usize,
    /// `seq` of the two events, to find them in the files (`None`: that trace has no event
    /// there).
    pub seq: (Option<u64>, Option<u64>),
    /// The event of trace A there (`None`: B has an event A lacks, or A ended).
    pub a: Option<Value>,
    /// The event of trace B there.
    pub b: Option<Value>,
    /// The keys whose values differ (both events present).
    pub keys: Vec<String>,
    /// The compared events just before, which both traces share.
    pub context: Vec<Value>,
    /// The events that follow in each trace (a few), to show how they go on.
    pub after: (Vec<Value>, Vec<Value>),
}

/// Differences of one kind of event (see [`event_kind`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindCount {
    /// Events present in both traces, with different values.
    pub changed: usize,
    /// Events only trace A has.
    pub only_a: usize,
    /// Events only trace B has.
    pub only_b: usize,
}

/// The result of [`diff`].
#[derive(Clone, Debug, PartialEq)]
pub struct DiffReport {
    /// Events compared on each side (after the allowlist).
    pub compared: (usize, usize),
    /// Events left out by the allowlist on each side.
    pub skipped: (usize, usize),
    /// Events that differ: changed, plus those only one trace has.
    pub differing: usize,
    /// The first difference, with context.
    pub first: Option<Difference>,
    /// The differences by kind of event.
    pub by_kind: BTreeMap<String, KindCount>,
    /// The alignment gave up looking for the shortest edit (the traces differ too much to be
    /// aligned within [`ALIGN_BUDGET`]); the counts are then an upper bound.
    pub coarse: bool,
}

/// How long the alignment may search for the shortest edit before settling for a coarser one.
pub const ALIGN_BUDGET: Duration = Duration::from_secs(5);

impl DiffReport {
    /// Whether the traces agree under the allowlist.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// The report as a reader wants it: the first difference with its context and what follows
    /// on each side, the differences by kind, then a summary.
    #[must_use]
    pub fn render(&self) -> String {
        self.render_labelled(("A", "B"))
    }

    /// [`Self::render`] with names for the two traces.
    #[must_use]
    pub fn render_labelled(&self, (la, lb): (&str, &str)) -> String {
        let mut s = String::new();
        let w = la.len().max(lb.len());
        let seq = |q: Option<u64>| q.map_or_else(|| "-".to_string(), |n| n.to_string());
        if let Some(d) = &self.first {
            let _ = writeln!(
                s,
                "first difference: {la} event #{} (seq {}), {lb} event #{} (seq {}){}",
                d.index,
                seq(d.seq.0),
                d.index_b,
                seq(d.seq.1),
                if d.keys.is_empty() { String::new() } else { format!(", differing keys: {}", d.keys.join(", ")) }
            );
            if !d.context.is_empty() {
                let _ = writeln!(s, "  before it, in both:");
                for c in &d.context {
                    let _ = writeln!(s, "  {:w$}   {c}", "");
                }
            }
            for (label, ev, after) in [(la, &d.a, &d.after.0), (lb, &d.b, &d.after.1)] {
                match ev {
                    Some(e) => {
                        let _ = writeln!(s, "  {label:w$} > {e}");
                    }
                    None => {
                        let _ = writeln!(s, "  {label:w$} > (no event here)");
                    }
                }
                for e in after {
                    let _ = writeln!(s, "  {:w$}   {e}", "");
                }
            }
            let _ = writeln!(s, "differences by kind of event ({la} / {lb}):");
            let kw = self.by_kind.keys().map(String::len).max().unwrap_or(4).max(4);
            let _ = writeln!(s, "  {:kw$}  {:>8}  {:>9}  {:>9}", "kind", "changed", format!("only {la}"), format!("only {lb}"));
            for (kind, c) in &self.by_kind {
                let _ = writeln!(s, "  {kind:kw$}  {:>8}  {:>9}  {:>9}", c.changed, c.only_a, c.only_b);
            }
        }
        let _ = writeln!(
            s,
            "summary: {} / {} events compared, {} / {} left out by the allowlist, {} differ{}{}",
            self.compared.0,
            self.compared.1,
            self.skipped.0,
            self.skipped.1,
            self.differing,
            if self.coarse { " (at most: the traces are too far apart to align exactly)" } else { "" },
            if self.is_empty() { " — the traces agree" } else { "" }
        );
        s
    }
}

/// The kind of an event, for the summary: `ev`, then `fn` or `routine`, then a notification's
/// `type` (`port ScsiPortNotification RequestComplete`, `call HwScsiStartIo`), or for `dma`
/// its direction and what it reached (`dma write completion`).
#[must_use]
pub fn event_kind(ev: &Map<String, Value>) -> String {
    let mut kind = ev.get("ev").and_then(Value::as_str).unwrap_or("?").to_string();
    for key in ["fn", "routine", "type", "dir", "what"] {
        if let Some(v) = ev.get(key) {
            kind.push(' ');
            match v {
                Value::String(t) => kind.push_str(t),
                other => kind.push_str(&other.to_string()),
            }
        }
    }
    kind
}

/// Parses a JSON Lines trace.
///
/// # Errors
/// A line that is not a JSON object, with its number.
pub fn parse_trace(text: &str) -> Result<Vec<Map<String, Value>>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| match serde_json::from_str::<Value>(l) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(format!("line {}: not a JSON object", n + 1)),
            Err(e) => Err(format!("line {}: {e}", n + 1)),
        })
        .collect()
}

/// How many events of each trace follow a difference in its report.
const AFTER: usize = 3;

/// Compares `a` and `b` under `allow`; `context` events before the first difference are kept.
///
/// The traces are aligned first (a shortest edit script over the events with `seq` and the
/// allowlisted keys left out), so one extra event counts once instead of shifting every event
/// after it; events the alignment pairs up but that differ count as changed.
#[must_use]
pub fn diff(a: &[Map<String, Value>], b: &[Map<String, Value>], allow: &Allowlist, context: usize) -> DiffReport {
    let keep = |t: &[Map<String, Value>]| -> Vec<Map<String, Value>> { t.iter().filter(|e| !allow.skips_event(e)).cloned().collect() };
    let (ka, kb) = (keep(a), keep(b));
    let mut report = DiffReport {
        compared: (ka.len(), kb.len()),
        skipped: (a.len() - ka.len(), b.len() - kb.len()),
        differing: 0,
        first: None,
        by_kind: BTreeMap::new(),
        coarse: false,
    };
    // What is compared of each event, as one string.
    let canon = |t: &[Map<String, Value>]| -> Vec<String> {
        t.iter().map(|e| Value::Object(e.iter().filter(|(k, _)| !allow.ignores(e, k)).map(|(k, v)| (k.clone(), v.clone())).collect()).to_string()).collect()
    };
    let (ca, cb) = (canon(&ka), canon(&kb));
    if ca == cb {
        return report;
    }
    let started = Instant::now();
    let ops = similar::capture_diff_slices_deadline(similar::Algorithm::Myers, &ca, &cb, Some(started + ALIGN_BUDGET));
    report.coarse = started.elapsed() >= ALIGN_BUDGET;
    let strip = |e: &Map<String, Value>| -> Value { Value::Object(e.iter().filter(|(k, _)| k.as_str() != "seq").map(|(k, v)| (k.clone(), v.clone())).collect()) };
    for op in ops {
        let (old, new) = (op.old_range(), op.new_range());
        if matches!(op, similar::DiffOp::Equal { .. }) {
            continue;
        }
        let paired = old.len().min(new.len());
        for i in 0..old.len().max(new.len()) {
            let (ea, eb) = (ka.get(old.start + i).filter(|_| i < old.len()), kb.get(new.start + i).filter(|_| i < new.len()));
            let Some(kind_of) = ea.or(eb) else { continue };
            let count = report.by_kind.entry(event_kind(kind_of)).or_default();
            match (ea, eb) {
                (Some(_), Some(_)) => count.changed += 1,
                (Some(_), None) => count.only_a += 1,
                _ => count.only_b += 1,
            }
            report.differing += 1;
        }
        if report.first.is_none() {
            let (ea, eb) = (ka.get(old.start).filter(|_| !old.is_empty()), kb.get(new.start).filter(|_| !new.is_empty()));
            let keys = match (ea, eb) {
                (Some(x), Some(y)) if paired > 0 => {
                    let mut keys: Vec<String> = x.keys().chain(y.keys()).cloned().collect();
                    keys.sort();
                    keys.dedup();
                    keys.into_iter().filter(|k| !allow.ignores(x, k) && !allow.ignores(y, k) && x.get(k) != y.get(k)).collect()
                }
                _ => Vec::new(),
            };
            let seq = |e: Option<&Map<String, Value>>| e.and_then(|e| e.get("seq")).and_then(Value::as_u64);
            let next = |t: &[Map<String, Value>], from: usize| -> Vec<Value> { t.iter().skip(from).take(AFTER).map(strip).collect() };
            report.first = Some(Difference {
                index: old.start,
                index_b: new.start,
                seq: (seq(ea), seq(eb)),
                a: ea.map(strip),
                b: eb.map(strip),
                keys,
                context: ka.get(old.start.saturating_sub(context)..old.start).unwrap_or(&[]).iter().map(strip).collect(),
                after: (next(&ka, old.start + usize::from(ea.is_some())), next(&kb, new.start + usize::from(eb.is_some()))),
            });
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(lines: &[&str]) -> Vec<Map<String, Value>> {
        parse_trace(&lines.join("\n")).unwrap()
    }

    #[test]
    fn identical_traces_agree_and_seq_is_not_compared() {
        let a = t(&[r#"{"seq":1,"ev":"call","routine":"HwScsiStartIo"}"#, r#"{"seq":2,"ev":"ret","routine":"HwScsiStartIo","value":1}"#]);
        let b = t(&[r#"{"seq":7,"ev":"call","routine":"HwScsiStartIo"}"#, r#"{"seq":8,"ev":"ret","routine":"HwScsiStartIo","value":1}"#]);
        let r = diff(&a, &b, &Allowlist::default(), 3);
        assert!(r.is_empty(), "{}", r.render());
        assert_eq!(r.compared, (2, 2));
    }

    #[test]
    fn the_first_difference_comes_with_context_and_keys() {
        let a = t(&[r#"{"ev":"call","routine":"X"}"#, r#"{"ev":"port","fn":"ScsiPortWriteRegisterUlong","offset":"0x2010","value":"0x0"}"#, r#"{"ev":"ret","routine":"X","value":1}"#]);
        let b = t(&[r#"{"ev":"call","routine":"X"}"#, r#"{"ev":"port","fn":"ScsiPortWriteRegisterUlong","offset":"0x2010","value":"0x3"}"#, r#"{"ev":"ret","routine":"X","value":0}"#]);
        let r = diff(&a, &b, &Allowlist::default(), 3);
        let d = r.first.clone().unwrap();
        assert_eq!(d.index, 1);
        assert_eq!(d.keys, ["value"]);
        assert_eq!(d.context.len(), 1);
        assert_eq!(r.differing, 2);
        assert!(r.render().contains("first difference: A event #1 (seq -), B event #1 (seq -), differing keys: value"), "{}", r.render());
    }

    #[test]
    fn the_allowlist_leaves_out_fields_and_events_and_wants_reasons() {
        let allow = Allowlist::parse(
            "# what may differ\nfield pa in ScsiPortGetPhysicalAddress: addresses of each driver's buffers\nevent ScsiDebugPrint: debug text\n",
        )
        .unwrap();
        let a = t(&[r#"{"ev":"port","fn":"ScsiPortGetPhysicalAddress","pa":"0x1000"}"#, r#"{"ev":"port","fn":"ScsiDebugPrint","text":"x"}"#, r#"{"ev":"port","fn":"Other","pa":"0x1"}"#]);
        let b = t(&[r#"{"ev":"port","fn":"ScsiPortGetPhysicalAddress","pa":"0x2000"}"#, r#"{"ev":"port","fn":"Other","pa":"0x1"}"#]);
        let r = diff(&a, &b, &allow, 2);
        assert!(r.is_empty(), "{}", r.render());
        assert_eq!(r.skipped, (1, 0));
        // The field is allowed only where the entry says.
        let c = t(&[r#"{"ev":"port","fn":"ScsiPortGetPhysicalAddress","pa":"0x1000"}"#, r#"{"ev":"port","fn":"Other","pa":"0x2"}"#]);
        assert!(!diff(&a, &c, &allow, 2).is_empty());
        assert!(Allowlist::parse("field pa\n").is_err(), "no reason");
        assert!(Allowlist::parse("field pa:   \n").is_err(), "empty reason");
        assert!(Allowlist::parse("ignore pa: x\n").is_err());
    }

    #[test]
    fn an_extra_event_counts_once_and_the_rest_still_lines_up() {
        let reg = |v: u32| format!(r#"{{"ev":"port","fn":"ScsiPortWriteRegisterUlong","offset":"0x4018","value":"{v:#x}"}}"#);
        let mut a: Vec<String> = (0..50).map(reg).collect();
        let mut b = a.clone();
        b.insert(10, r#"{"ev":"port","fn":"ScsiPortNotification","type":"NextRequest"}"#.to_string());
        a[40] = r#"{"ev":"dma","dir":"read","what":"data","digest":"00"}"#.to_string();
        b[41] = r#"{"ev":"dma","dir":"read","what":"data","digest":"01"}"#.to_string();
        let (a, b) = (t(&a.iter().map(String::as_str).collect::<Vec<_>>()), t(&b.iter().map(String::as_str).collect::<Vec<_>>()));
        let r = diff(&a, &b, &Allowlist::default(), 2);
        assert_eq!(r.differing, 2, "{}", r.render());
        let d = r.first.clone().unwrap();
        assert_eq!((d.index, d.index_b, d.a.is_none()), (10, 10, true));
        assert_eq!(d.context.len(), 2);
        assert_eq!(d.after.1.len(), 3, "what follows in B");
        assert_eq!(r.by_kind["port ScsiPortNotification NextRequest"], KindCount { changed: 0, only_a: 0, only_b: 1 });
        assert_eq!(r.by_kind["dma read data"], KindCount { changed: 1, only_a: 0, only_b: 0 });
        let text = r.render_labelled(("rust", "c"));
        assert!(text.contains("first difference: rust event #10 (seq -), c event #10 (seq -)"), "{text}");
        assert!(text.contains("dma read data"), "{text}");
        assert!(text.contains("only c"), "{text}");
    }

    #[test]
    fn a_shorter_trace_differs_where_it_ends() {
        let a = t(&[r#"{"ev":"call","routine":"X"}"#, r#"{"ev":"ret","routine":"X","value":1}"#]);
        let b = t(&[r#"{"ev":"call","routine":"X"}"#]);
        let r = diff(&a, &b, &Allowlist::default(), 1);
        let d = r.first.unwrap();
        assert_eq!(d.index, 1);
        assert!(d.b.is_none());
    }
}

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

use std::fmt::Write as _;

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
    /// Index among the compared events (allowlisted events left out), from 0.
    pub index: usize,
    /// The event of trace A there (`None`: A ended).
    pub a: Option<Value>,
    /// The event of trace B there.
    pub b: Option<Value>,
    /// The keys whose values differ (both events present).
    pub keys: Vec<String>,
    /// The compared events just before, which both traces share.
    pub context: Vec<Value>,
}

/// The result of [`diff`].
#[derive(Clone, Debug, PartialEq)]
pub struct DiffReport {
    /// Events compared on each side (after the allowlist).
    pub compared: (usize, usize),
    /// Events left out by the allowlist on each side.
    pub skipped: (usize, usize),
    /// Positions where the events differ.
    pub differing: usize,
    /// The first difference, with context.
    pub first: Option<Difference>,
}

impl DiffReport {
    /// Whether the traces agree under the allowlist.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// The report as a reader wants it: the first difference with its context, then a summary.
    #[must_use]
    pub fn render(&self) -> String {
        let mut s = String::new();
        if let Some(d) = &self.first {
            let _ = writeln!(s, "first difference at compared event #{}:", d.index);
            for c in &d.context {
                let _ = writeln!(s, "    {c}");
            }
            let _ = writeln!(s, "  A {}", d.a.as_ref().map_or_else(|| "(trace ended)".to_string(), ToString::to_string));
            let _ = writeln!(s, "  B {}", d.b.as_ref().map_or_else(|| "(trace ended)".to_string(), ToString::to_string));
            if !d.keys.is_empty() {
                let _ = writeln!(s, "  differing keys: {}", d.keys.join(", "));
            }
        }
        let _ = writeln!(
            s,
            "summary: {} / {} events compared, {} / {} left out by the allowlist, {} positions differ{}",
            self.compared.0,
            self.compared.1,
            self.skipped.0,
            self.skipped.1,
            self.differing,
            if self.is_empty() { " — the traces agree" } else { "" }
        );
        s
    }
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

/// Compares `a` and `b` under `allow`; `context` events before the first difference are kept.
#[must_use]
pub fn diff(a: &[Map<String, Value>], b: &[Map<String, Value>], allow: &Allowlist, context: usize) -> DiffReport {
    let keep = |t: &[Map<String, Value>]| -> Vec<Map<String, Value>> { t.iter().filter(|e| !allow.skips_event(e)).cloned().collect() };
    let (ka, kb) = (keep(a), keep(b));
    let mut report = DiffReport { compared: (ka.len(), kb.len()), skipped: (a.len() - ka.len(), b.len() - kb.len()), differing: 0, first: None };
    let strip = |e: &Map<String, Value>| -> Value { Value::Object(e.iter().filter(|(k, _)| k.as_str() != "seq").map(|(k, v)| (k.clone(), v.clone())).collect()) };
    for i in 0..ka.len().max(kb.len()) {
        let (ea, eb) = (ka.get(i), kb.get(i));
        let keys: Vec<String> = match (ea, eb) {
            (Some(x), Some(y)) => {
                let mut keys: Vec<String> = x.keys().chain(y.keys()).cloned().collect();
                keys.sort();
                keys.dedup();
                keys.into_iter().filter(|k| !allow.ignores(x, k) && !allow.ignores(y, k) && x.get(k) != y.get(k)).collect()
            }
            _ => vec!["(missing event)".to_string()],
        };
        if keys.is_empty() {
            continue;
        }
        report.differing += 1;
        if report.first.is_none() {
            report.first = Some(Difference {
                index: i,
                a: ea.map(strip),
                b: eb.map(strip),
                keys: if ea.is_some() && eb.is_some() { keys } else { Vec::new() },
                context: ka.get(i.saturating_sub(context)..i).unwrap_or(&[]).iter().map(strip).collect(),
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
        assert!(r.render().contains("first difference at compared event #1"));
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
    fn a_shorter_trace_differs_where_it_ends() {
        let a = t(&[r#"{"ev":"call","routine":"X"}"#, r#"{"ev":"ret","routine":"X","value":1}"#]);
        let b = t(&[r#"{"ev":"call","routine":"X"}"#]);
        let r = diff(&a, &b, &Allowlist::default(), 1);
        let d = r.first.unwrap();
        assert_eq!(d.index, 1);
        assert!(d.b.is_none());
    }
}

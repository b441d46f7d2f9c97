//! `rspvscsi-sim probe-diff`: compares two probe answers (QEMU's and the model's, or a golden
//! file and a fresh run) field by field, and explains every difference the allowlist does not
//! excuse.
//!
//! The allowlist (`probe/allowlist` in this crate, built in) lists `ID-GLOB FIELD-GLOB...` lines,
//! each under a comment block that says what differs and why that is acceptable; an entry
//! without one is refused. `*` matches any run of characters.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Map, Value};

use crate::probe;

/// The allowlist the CLI carries.
pub const BUILTIN_ALLOWLIST: &str = include_str!("../probe/allowlist");

/// One allowlist entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allow {
    /// Result IDs it covers.
    pub id: String,
    /// Fields it covers.
    pub fields: Vec<String>,
    /// Why (the comment block above it).
    pub reason: String,
    /// Line number in the file.
    pub line: usize,
}

/// Parses an allowlist.
///
/// # Errors
/// An entry without a reason, or with no field.
pub fn parse_allowlist(text: &str) -> Result<Vec<Allow>, String> {
    let mut out = Vec::new();
    let mut reason = String::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            reason.clear();
        } else if let Some(c) = line.strip_prefix('#') {
            if !reason.is_empty() {
                reason.push(' ');
            }
            reason.push_str(c.trim());
        } else {
            let mut words = line.split_whitespace();
            let id = words.next().unwrap_or_default().to_string();
            let fields: Vec<String> = words.map(str::to_string).collect();
            if fields.is_empty() {
                return Err(format!("allowlist line {}: `{line}` names no field", i + 1));
            }
            if reason.is_empty() {
                return Err(format!("allowlist line {}: `{line}` has no comment above it saying why", i + 1));
            }
            out.push(Allow { id, fields, reason: reason.clone(), line: i + 1 });
        }
    }
    Ok(out)
}

/// `*`-glob match.
#[must_use]
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

fn allowed<'a>(list: &'a [Allow], id: &str, field: &str) -> Option<&'a Allow> {
    list.iter().find(|a| glob(&a.id, id) && a.fields.iter().any(|f| glob(f, field)))
}

/// Fields that describe a result rather than an outcome.
const DESCRIPTIVE: &[&str] = &["id", "what"];

/// Results by ID, in order.
type Results = Vec<(String, Map<String, Value>)>;

/// The results of a probe document, by ID, in order; the disks become results `disk.tN`.
fn results(doc: &Value) -> Result<Results, String> {
    if doc.get("probe").and_then(Value::as_u64) != Some(probe::FORMAT) {
        return Err(format!("not a probe document of format {} (\"probe\" key)", probe::FORMAT));
    }
    let mut out = Vec::new();
    for d in doc["disks"].as_array().into_iter().flatten() {
        let mut m = d.as_object().cloned().unwrap_or_default();
        let t = m.remove("target").unwrap_or(Value::Null);
        out.push((format!("disk.t{t}"), m));
    }
    for r in doc["results"].as_array().ok_or("no \"results\" array")? {
        let m = r.as_object().ok_or("a result is not an object")?;
        let id = m.get("id").and_then(Value::as_str).ok_or("a result has no id")?.to_string();
        out.push((id, m.clone()));
    }
    Ok(out)
}

/// One field that differs.
#[derive(Clone, Debug)]
pub struct Difference {
    /// Result ID.
    pub id: String,
    /// Field (`*` for a result one side lacks).
    pub field: String,
    /// The expected side's value (`None`: absent).
    pub expected: Option<Value>,
    /// The other side's value.
    pub actual: Option<Value>,
    /// The allowlist entry that excuses it.
    pub allowed: Option<Allow>,
    /// What the result is.
    pub what: String,
}

/// The outcome of a comparison.
#[derive(Clone, Debug, Default)]
pub struct Comparison {
    /// Results compared.
    pub results: usize,
    /// Fields compared.
    pub fields: usize,
    /// Every difference, excused or not.
    pub differences: Vec<Difference>,
}

impl Comparison {
    /// Differences the allowlist does not excuse.
    pub fn failures(&self) -> impl Iterator<Item = &Difference> {
        self.differences.iter().filter(|d| d.allowed.is_none())
    }
}

/// Compares `actual` with `expected` under `allow`.
///
/// # Errors
/// Either document is not a probe document.
pub fn compare(expected: &Value, actual: &Value, allow: &[Allow]) -> Result<Comparison, String> {
    let exp = results(expected).map_err(|e| format!("expected: {e}"))?;
    let act = results(actual).map_err(|e| format!("actual: {e}"))?;
    let mut cmp = Comparison::default();
    let find = |list: &[(String, Map<String, Value>)], id: &str| list.iter().find(|(i, _)| i == id).map(|(_, m)| m.clone());
    let mut ids: Vec<&String> = exp.iter().map(|(i, _)| i).collect();
    for (i, _) in &act {
        if !ids.contains(&i) {
            ids.push(i);
        }
    }
    for id in ids {
        let (e, a) = (find(&exp, id), find(&act, id));
        let what = e.as_ref().or(a.as_ref()).and_then(|m| m.get("what")).and_then(Value::as_str).unwrap_or("").to_string();
        let (Some(e), Some(a)) = (e.clone(), a.clone()) else {
            cmp.differences.push(Difference {
                id: id.clone(),
                field: "*".into(),
                expected: e.map(Value::Object),
                actual: a.map(Value::Object),
                allowed: allowed(allow, id, "*").cloned(),
                what,
            });
            continue;
        };
        cmp.results += 1;
        let mut fields: Vec<&String> = e.keys().collect();
        for k in a.keys() {
            if !fields.contains(&k) {
                fields.push(k);
            }
        }
        for f in fields {
            if DESCRIPTIVE.contains(&f.as_str()) {
                continue;
            }
            cmp.fields += 1;
            let (ev, av) = (e.get(f), a.get(f));
            if ev != av {
                cmp.differences.push(Difference {
                    id: id.clone(),
                    field: f.clone(),
                    expected: ev.cloned(),
                    actual: av.cloned(),
                    allowed: allowed(allow, id, f).cloned(),
                    what: what.clone(),
                });
            }
        }
    }
    Ok(cmp)
}

fn show(v: Option<&Value>) -> String {
    match v {
        None => "(absent)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

/// Where two hex strings first differ, as bytes.
fn hex_diff(a: &str, b: &str) -> Option<String> {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    let at = x.iter().zip(y).position(|(p, q)| p != q).unwrap_or_else(|| x.len().min(y.len()));
    if x.len() == y.len() && at == x.len() {
        return None;
    }
    let byte = at / 2;
    let get = |s: &str| s.get(byte * 2..byte * 2 + 2).unwrap_or("--").to_string();
    let mut offsets = Vec::new();
    for i in 0..x.len().max(y.len()) / 2 {
        if a.get(i * 2..i * 2 + 2) != b.get(i * 2..i * 2 + 2) {
            offsets.push(i);
        }
    }
    let listed: Vec<String> = offsets.iter().take(24).map(ToString::to_string).collect();
    let more = if offsets.len() > 24 { format!(" and {} more", offsets.len() - 24) } else { String::new() };
    Some(format!(
        "bytes differ at {}{more} (first: byte {byte}, {} vs {}); lengths {} and {}",
        listed.join(","),
        get(a),
        get(b),
        x.len() / 2,
        y.len() / 2
    ))
}

/// The report: every unexcused difference in full, the excused ones one line each.
#[must_use]
pub fn report(cmp: &Comparison, labels: (&str, &str), verbose: bool) -> String {
    let (le, la) = labels;
    let w = le.len().max(la.len());
    let mut s = String::new();
    let failures: Vec<&Difference> = cmp.failures().collect();
    let excused = cmp.differences.len() - failures.len();
    let _ = writeln!(
        s,
        "probe-diff: {le} vs {la}: {} results, {} fields compared; {} difference{} not allowlisted, {excused} allowlisted",
        cmp.results,
        cmp.fields,
        failures.len(),
        if failures.len() == 1 { "" } else { "s" },
    );
    for d in &failures {
        let _ = writeln!(s, "  DIFF {} {}  ({})", d.id, d.field, d.what);
        let _ = writeln!(s, "    {le:<w$} : {}", show(d.expected.as_ref()));
        let _ = writeln!(s, "    {la:<w$} : {}", show(d.actual.as_ref()));
        if let (Some(Value::String(a)), Some(Value::String(b))) = (&d.expected, &d.actual)
            && a.len() > 8
            && a.bytes().all(|c| c.is_ascii_hexdigit())
            && b.bytes().all(|c| c.is_ascii_hexdigit())
            && let Some(h) = hex_diff(a, b)
        {
            let _ = writeln!(s, "    {h}");
        }
    }
    if excused > 0 {
        let _ = writeln!(s, "  allowlisted:");
        for d in cmp.differences.iter().filter(|d| d.allowed.is_some()) {
            let a = d.allowed.as_ref().map_or(0, |a| a.line);
            if verbose {
                let _ = writeln!(s, "    {} {} (allowlist line {a}): {} | {}", d.id, d.field, show(d.expected.as_ref()), show(d.actual.as_ref()));
            } else {
                let _ = writeln!(s, "    {} {} (allowlist line {a})", d.id, d.field);
            }
        }
    }
    s
}

/// Reads a probe document from a file, framed (a serial capture) or plain.
///
/// # Errors
/// The file cannot be read, the frame is damaged, or it is not JSON.
pub fn load(path: &Path) -> Result<Value, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let doc = probe::unframe(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(doc.trim()).map_err(|e| format!("{}: not JSON: {e}", path.display()))
}

/// A golden file: the document with every allowlisted field of every result removed (a whole
/// result when `*` is allowlisted), the machine-specific header replaced by `source`.
#[must_use]
pub fn golden(doc: &Value, allow: &[Allow], source: &str) -> Value {
    let mut results = Vec::new();
    for r in doc["results"].as_array().into_iter().flatten() {
        let Some(m) = r.as_object() else { continue };
        let id = m.get("id").and_then(Value::as_str).unwrap_or("");
        if allowed(allow, id, "*").is_some() {
            continue;
        }
        let kept: Map<String, Value> =
            m.iter().filter(|(k, _)| DESCRIPTIVE.contains(&k.as_str()) || allowed(allow, id, k).is_none()).map(|(k, v)| (k.clone(), v.clone())).collect();
        results.push(Value::Object(kept));
    }
    serde_json::json!({
        "probe": probe::FORMAT,
        "source": source,
        "disks": doc["disks"].clone(),
        "results": results,
    })
}

/// A golden document as committed: one result per line, so that a change shows as a small diff.
#[must_use]
pub fn pretty(doc: &Value) -> String {
    let mut s = String::from("{\n");
    for key in ["probe", "source", "disks"] {
        if let Some(v) = doc.get(key) {
            let _ = writeln!(s, "  \"{key}\": {v},");
        }
    }
    s.push_str("  \"results\": [\n");
    let rs = doc["results"].as_array().cloned().unwrap_or_default();
    for (i, r) in rs.iter().enumerate() {
        // The ID first, the rest in key order.
        let mut line = String::from("{");
        if let Some(id) = r.get("id") {
            let _ = write!(line, "\"id\":{id}");
        }
        for (k, v) in r.as_object().into_iter().flatten().filter(|(k, _)| k.as_str() != "id") {
            let _ = write!(line, "{}{}:{v}", if line.len() > 1 { "," } else { "" }, Value::String(k.clone()));
        }
        line.push('}');
        let _ = writeln!(s, "    {line}{}", if i + 1 < rs.len() { "," } else { "" });
    }
    s.push_str("  ]\n}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn globs() {
        assert!(glob("inq.vpd.*", "inq.vpd.80"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "aXbYbZc"));
        assert!(!glob("a*b", "aXc"));
        assert!(glob("pci.bar*.base", "pci.bar0.base"));
        assert!(!glob("pci.bar*.base", "pci.bar0"));
    }

    #[test]
    fn an_entry_needs_a_reason() {
        assert!(parse_allowlist("inq.vpd.80 data\n").is_err());
        assert!(parse_allowlist("# why\ninq.vpd.80\n").is_err());
        let a = parse_allowlist("# serials differ\n# by design\ninq.vpd.80 data\ninq.vpd.83 data dtl\n\n# other\nx y\n").unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!(a[1].fields, ["data", "dtl"]);
        assert_eq!(a[1].reason, "serials differ by design");
        assert_eq!(a[2].reason, "other");
    }

    #[test]
    fn the_builtin_allowlist_parses() {
        parse_allowlist(BUILTIN_ALLOWLIST).unwrap();
    }

    #[allow(clippy::needless_pass_by_value)]
    fn doc(results: Value) -> Value {
        json!({"probe": probe::FORMAT, "disks": [{"target": 0, "blocks": 8}], "results": results})
    }

    #[test]
    #[allow(clippy::many_single_char_names)]
    fn differences_and_the_allowlist() {
        let allow = parse_allowlist("# serial numbers\nb data\n").unwrap();
        let e = doc(json!([{"id": "a", "srb": "SUCCESS"}, {"id": "b", "data": "00", "srb": "SUCCESS"}, {"id": "c", "srb": "ERROR"}]));
        let a = doc(json!([{"id": "a", "srb": "ERROR"}, {"id": "b", "data": "01", "srb": "SUCCESS"}]));
        let c = compare(&e, &a, &allow).unwrap();
        let f: Vec<(String, String)> = c.failures().map(|d| (d.id.clone(), d.field.clone())).collect();
        assert_eq!(f, [("a".to_string(), "srb".to_string()), ("c".to_string(), "*".to_string())]);
        assert_eq!(c.differences.len(), 3);
        let r = report(&c, ("qemu", "model"), false);
        assert!(r.contains("DIFF a srb") && r.contains("2 differences not allowlisted, 1 allowlisted"), "{r}");
        // The golden drops the allowlisted field; comparing against it excuses the absence.
        let g = golden(&e, &allow, "test");
        assert!(g["results"][1].get("data").is_none());
        let c = compare(&g, &e, &allow).unwrap();
        assert_eq!(c.failures().count(), 0);
        // The committed form parses back to the same document.
        let back: Value = serde_json::from_str(&pretty(&g)).unwrap();
        assert_eq!(back, g);
    }

    #[test]
    fn hex_differences_are_located() {
        assert_eq!(hex_diff("0011", "0011"), None);
        let h = hex_diff("00112233", "00ff2234").unwrap();
        assert!(h.starts_with("bytes differ at 1,3 (first: byte 1, 11 vs ff)"), "{h}");
    }
}

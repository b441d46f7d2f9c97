//! Callgrind's output file, read into a call graph with self costs and call edges.
//!
//! The format is valgrind's "Callgrind Format Specification" (valgrind's manual, chapter
//! "Callgrind Format Specification"): a header of `key: value` lines (`positions:`, `events:`,
//! `summary:`, ...), then position specifications (`ob=`, `fl=`, `fi=`, `fe=`, `fn=`, and for a
//! call `cob=`, `cfi=`/`cfl=`, `cfn=`, `calls=`) and cost lines. What this reader handles, as the
//! specification describes it:
//! - name compression: `fn=(12) name` defines id 12, `fn=(12)` refers to it; one id space for
//!   objects (`ob`, `cob`), one for files (`fl`, `fi`, `fe`, `cfi`, `cfl`), one for functions
//!   (`fn`, `cfn`);
//! - subposition compression: a position is absolute (decimal or `0x` hex), `+N`/`-N` relative to
//!   the same subposition of the last cost line, or `*` for the same; a `calls=` line's target
//!   position is relative to the last cost line too, and does not move it (what callgrind writes);
//! - `calls=COUNT TARGET` followed by one cost line: the call's site and its inclusive cost;
//! - `cfn=`, `cob=`, `cfi=` hold for the next call only;
//! - `jump=` and `jcnd=` (from `--collect-jumps=yes`) carry no cost and are skipped;
//! - several events: the `Ir` column is read (the first one if there is no `Ir`); missing
//!   trailing costs are zero.
//!
//! Functions are identified by name, as `callgrind_annotate` does within one object; costs of
//! one name in several objects are summed (the object kept is the first seen).

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result, bail};

/// One call edge: `caller` (the function holding it) called `callee` `count` times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// Index into [`Profile::functions`].
    pub callee: usize,
    /// Calls made.
    pub count: u64,
    /// Cost inside the callee and everything it called, over those calls.
    pub inclusive: u64,
    /// The call instruction's address, when the file has `instr` positions.
    pub site: Option<u64>,
    /// The callee's first address, when the file has `instr` positions.
    pub target: Option<u64>,
}

/// One function of the profile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Function {
    /// The (demangled) name callgrind gave it; `0x…` for code without a symbol.
    pub name: String,
    /// The object file (`ob=`), `???` when unknown.
    pub object: String,
    /// Cost of its own instructions.
    pub self_cost: u64,
    /// Its own cost by instruction address (empty without `instr` positions).
    pub self_by_addr: BTreeMap<u64, u64>,
    /// Calls it made, merged by (callee, site, target).
    pub calls: Vec<Call>,
}

/// A parsed callgrind file.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    /// The `events:` header.
    pub events: Vec<String>,
    /// The `positions:` header (`line` when absent).
    pub positions: Vec<String>,
    /// The `summary:` (or `totals:`) value of the event read, when given.
    pub summary: Option<u64>,
    /// Every function that has cost or calls, or is called.
    pub functions: Vec<Function>,
    index: HashMap<String, usize>,
}

#[derive(Default)]
struct Names {
    objects: HashMap<String, String>,
    files: HashMap<String, String>,
    functions: HashMap<String, String>,
}

/// `(id) name`, `(id)` or `name`, resolved against and recorded in `map`.
fn resolve(map: &mut HashMap<String, String>, value: &str) -> Result<String> {
    let value = value.trim();
    if let Some(rest) = value.strip_prefix('(') {
        let (id, name) = rest.split_once(')').with_context(|| format!("unterminated name id in {value:?}"))?;
        let name = name.trim();
        if name.is_empty() {
            return map.get(id).cloned().with_context(|| format!("name id ({id}) used before it is defined"));
        }
        map.insert(id.to_string(), name.to_string());
        return Ok(name.to_string());
    }
    Ok(value.to_string())
}

fn number(s: &str) -> Result<u64> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse::<u64>(),
    };
    parsed.with_context(|| format!("{s:?} is not a number"))
}

/// One subposition against the last one (`*`, `+N`, `-N`, or absolute).
fn subposition(token: &str, last: u64) -> Result<u64> {
    if token == "*" {
        Ok(last)
    } else if let Some(d) = token.strip_prefix('+') {
        Ok(last.wrapping_add(number(d)?))
    } else if let Some(d) = token.strip_prefix('-') {
        Ok(last.wrapping_sub(number(d)?))
    } else {
        number(token)
    }
}

impl Profile {
    /// Reads a callgrind file's text.
    ///
    /// # Errors
    /// On a line that breaks the format (a cost line before any `fn=`, a `calls=` without a
    /// `cfn=` or without its cost line, an undefined name id, a malformed number).
    pub fn parse(text: &str) -> Result<Self> {
        let mut p = Self { positions: vec!["line".into()], ..Self::default() };
        let mut names = Names::default();
        let mut event_col = 0usize;
        let mut object = String::from("???");
        let mut current: Option<usize> = None;
        let mut call_object: Option<String> = None;
        let mut call_fn: Option<String> = None;
        // A `calls=` line waiting for its cost line: (count, target position).
        let mut pending: Option<(u64, Vec<u64>)> = None;
        let mut last: Vec<u64> = vec![0];
        for (no, raw) in text.lines().enumerate() {
            let line = raw.trim_end();
            let ctx = || format!("callgrind line {}: {line:?}", no + 1);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some((key, value)) = spec(line) {
                match key {
                    "ob" => object = resolve(&mut names.objects, value).with_context(ctx)?,
                    "fl" | "fi" | "fe" | "cfi" | "cfl" => {
                        resolve(&mut names.files, value).with_context(ctx)?;
                    }
                    "fn" => {
                        let name = resolve(&mut names.functions, value).with_context(ctx)?;
                        current = Some(p.intern(&name, &object));
                    }
                    "cob" => call_object = Some(resolve(&mut names.objects, value).with_context(ctx)?),
                    "cfn" => call_fn = Some(resolve(&mut names.functions, value).with_context(ctx)?),
                    "calls" => {
                        let mut tokens = value.split_whitespace();
                        let count = number(tokens.next().with_context(ctx)?).with_context(ctx)?;
                        let target = last
                            .iter()
                            .zip(tokens.by_ref())
                            .map(|(l, t)| subposition(t, *l))
                            .collect::<Result<Vec<_>>>()
                            .with_context(ctx)?;
                        pending = Some((count, target));
                    }
                    // jump=COUNT TARGET and jcnd=EXE JUMPS TARGET: control flow, no cost.
                    _ => {}
                }
                continue;
            }
            if let Some((key, value)) = header(line) {
                match key {
                    "events" => {
                        p.events = value.split_whitespace().map(String::from).collect();
                        event_col = p.events.iter().position(|e| e == "Ir").unwrap_or(0);
                    }
                    "positions" => {
                        p.positions = value.split_whitespace().map(String::from).collect();
                        last = vec![0; p.positions.len().max(1)];
                    }
                    "summary" | "totals" => {
                        let v = value.split_whitespace().nth(event_col).map(number).transpose().with_context(ctx)?;
                        if key == "summary" || p.summary.is_none() {
                            p.summary = v;
                        }
                    }
                    _ => {}
                }
                continue;
            }
            // A cost line.
            let mut tokens = line.split_whitespace();
            let mut pos = Vec::with_capacity(last.len());
            for l in &last {
                let t = tokens.next().with_context(ctx)?;
                pos.push(subposition(t, *l).with_context(ctx)?);
            }
            let cost = match tokens.nth(event_col) {
                Some(t) => number(t).with_context(ctx)?,
                None => 0,
            };
            let Some(f) = current else { bail!("{}: a cost line before any fn=", ctx()) };
            let instr = p.positions.iter().position(|s| s == "instr");
            if let Some((count, target)) = pending.take() {
                let callee_name = call_fn.take().with_context(|| format!("{}: calls= without cfn=", ctx()))?;
                let callee_object = call_object.take().unwrap_or_else(|| object.clone());
                let callee = p.intern(&callee_name, &callee_object);
                let site = instr.and_then(|i| pos.get(i).copied());
                let target = instr.and_then(|i| target.get(i).copied());
                p.add_call(f, Call { callee, count, inclusive: cost, site, target });
            } else if let Some(func) = p.functions.get_mut(f) {
                func.self_cost += cost;
                if let Some(addr) = instr.and_then(|i| pos.get(i)) {
                    *func.self_by_addr.entry(*addr).or_default() += cost;
                }
            }
            last = pos;
        }
        if pending.is_some() {
            bail!("the file ends after a calls= line without its cost line");
        }
        Ok(p)
    }

    /// Reads a callgrind output file.
    ///
    /// # Errors
    /// When the file cannot be read or breaks the format.
    pub fn read(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// The index of `name`, created if new.
    pub fn intern(&mut self, name: &str, object: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.functions.len();
        self.functions.push(Function { name: name.to_string(), object: object.to_string(), ..Function::default() });
        self.index.insert(name.to_string(), i);
        i
    }

    /// Adds a call edge to `caller`, merged with an equal (callee, site, target) one.
    pub fn add_call(&mut self, caller: usize, call: Call) {
        let Some(f) = self.functions.get_mut(caller) else { return };
        match f.calls.iter_mut().find(|c| c.callee == call.callee && c.site == call.site && c.target == call.target) {
            Some(c) => {
                c.count += call.count;
                c.inclusive += call.inclusive;
            }
            None => f.calls.push(call),
        }
    }

    /// The function called `name`.
    #[must_use]
    pub fn function(&self, name: &str) -> Option<&Function> {
        self.index.get(name).and_then(|&i| self.functions.get(i))
    }

    /// The sum of every function's self cost (equal to the summary in a whole-program file).
    #[must_use]
    pub fn total(&self) -> u64 {
        self.functions.iter().map(|f| f.self_cost).sum()
    }

    /// Calls made to each function, by every caller (indexed like [`Self::functions`]).
    #[must_use]
    pub fn calls_in(&self) -> Vec<u64> {
        let mut v = vec![0u64; self.functions.len()];
        for f in &self.functions {
            for c in &f.calls {
                if let Some(n) = v.get_mut(c.callee) {
                    *n += c.count;
                }
            }
        }
        v
    }
}

/// A position specification line (`fn=...`, `calls=...`): key and value.
fn spec(line: &str) -> Option<(&str, &str)> {
    let (key, value) = line.split_once('=')?;
    matches!(key, "ob" | "fl" | "fi" | "fe" | "fn" | "cob" | "cfi" | "cfl" | "cfn" | "calls" | "jump" | "jcnd").then_some((key, value))
}

/// A header line (`events: Ir`): key and value.
fn header(line: &str) -> Option<(&str, &str)> {
    let (key, value) = line.split_once(':')?;
    (!key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')).then_some((key, value.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's own example, with name compression.
    const SPEC_EXAMPLE: &str = "\
events: Instructions
summary: 1520
fl=(1) file1.c
fn=(1) main
16 20
cfn=(2) func1
calls=1 50
16 400
cfl=(2) file2.c
cfn=(3) func2
calls=3 20
16 400
fn=(2)
51 100
cfl=(2)
cfn=(3)
calls=2 20
51 300
fl=(2)
fn=(3)
20 700
";

    #[test]
    fn reads_the_specification_example() {
        let p = Profile::parse(SPEC_EXAMPLE).unwrap();
        assert_eq!(p.summary, Some(1520));
        assert_eq!(p.total(), 820);
        let main = p.function("main").unwrap();
        assert_eq!(main.self_cost, 20);
        let func2 = p.functions.iter().position(|f| f.name == "func2").unwrap();
        let to_func2: Vec<_> = main.calls.iter().filter(|c| c.callee == func2).collect();
        assert_eq!((to_func2[0].count, to_func2[0].inclusive), (3, 400));
        assert_eq!(p.function("func1").unwrap().self_cost, 100);
        assert_eq!(p.function("func2").unwrap().self_cost, 700);
        assert_eq!(p.calls_in()[func2], 5);
    }

    /// Instruction positions with subposition compression, as callgrind --dump-instr=yes writes
    /// them: a call target relative to the last cost line, which it does not move.
    const INSTR: &str = "\
# callgrind format
version: 1
positions: instr line
events: Ir Dr
ob=(1) /bin/x
fl=(1) ???
fn=(1) a
0x1000 0 3 1
+4 * 2
cob=(2) ???
cfn=(2) 0x0000000000200000
calls=2 0x200000 0
* * 50
+5 * 1
jump=1 +2 0
fn=(2)
ob=(2)
0x200000 0 30
+10 * 20
totals: 106 9
";

    #[test]
    fn reads_instruction_positions_and_relative_targets() {
        let p = Profile::parse(INSTR).unwrap();
        assert_eq!(p.summary, Some(106));
        let a = p.function("a").unwrap();
        assert_eq!(a.self_cost, 6);
        assert_eq!(a.self_by_addr.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(), [(0x1000, 3), (0x1004, 2), (0x1009, 1)]);
        assert_eq!(a.calls.len(), 1);
        let c = &a.calls[0];
        assert_eq!((c.count, c.inclusive, c.site, c.target), (2, 50, Some(0x1004), Some(0x20_0000)));
        let b = p.function("0x0000000000200000").unwrap();
        assert_eq!(b.object, "???");
        assert_eq!(b.self_by_addr.get(&0x20_000a), Some(&20));
        assert_eq!(p.total(), 56);
    }

    #[test]
    fn relative_call_targets_and_repeated_edges() {
        let text = "positions: instr\nevents: Ir\nfn=f\n0x100 1\ncfn=g\ncalls=1 +0x10\n* 7\ncfn=g\ncalls=1 +16\n* 9\nfn=g\n0x110 8\n";
        let p = Profile::parse(text).unwrap();
        let f = p.function("f").unwrap();
        assert_eq!(f.calls.len(), 1, "two calls from one site to one target merge");
        assert_eq!((f.calls[0].count, f.calls[0].inclusive, f.calls[0].target), (2, 16, Some(0x110)));
    }

    #[test]
    fn rejects_broken_files() {
        assert!(Profile::parse("events: Ir\n10 5\n").is_err(), "cost before fn=");
        assert!(Profile::parse("events: Ir\nfn=(3)\n").is_err(), "undefined id");
        assert!(Profile::parse("events: Ir\nfn=a\ncalls=1 5\n").is_err(), "calls= without cfn= nor its cost line");
        assert!(Profile::parse("events: Ir\nfn=a\n1 x\n").is_err(), "a cost that is not a number");
    }
}

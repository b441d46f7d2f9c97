//! Runs of sectors that share a problem (never written, a failed write, a mismatch of one
//! kind), kept complete so that a user can find every one of them again: the JSON output lists
//! them all, the text output the first few.

use serde_json::{Value, json};

/// Consecutive sectors of one target with one thing wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extent {
    /// Target ID (0 for an image checked on the host).
    pub target: u8,
    /// First LBA.
    pub lba: u64,
    /// Number of sectors.
    pub sectors: u64,
    /// What is wrong: a [`crate::pattern::Mismatch::kind`], or `write-failed`, `not-written`,
    /// `in-flight` for a write-pattern that did not cover them.
    pub kind: &'static str,
}

impl Extent {
    /// The extent as a JSON object.
    #[must_use]
    pub fn json(&self) -> Value {
        json!({"target": self.target, "lba": self.lba, "sectors": self.sectors, "kind": self.kind})
    }
}

impl std::fmt::Display for Extent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let last = self.lba + self.sectors.saturating_sub(1);
        let s = if self.sectors == 1 { "" } else { "s" };
        write!(f, "t{} LBA {}..={} ({} sector{s}): {}", self.target, self.lba, last, self.sectors, self.kind)
    }
}

/// A set of extents, merged where they touch and agree.
#[derive(Clone, Debug, Default)]
pub struct Extents(Vec<Extent>);

impl Extents {
    /// Adds `sectors` sectors from `lba` (cheap when they continue the last one added).
    pub fn add(&mut self, target: u8, lba: u64, sectors: u64, kind: &'static str) {
        if sectors == 0 {
            return;
        }
        if let Some(last) = self.0.last_mut()
            && last.target == target
            && last.kind == kind
            && last.lba + last.sectors == lba
        {
            last.sectors += sectors;
            return;
        }
        self.0.push(Extent { target, lba, sectors, kind });
    }

    /// Adds every extent of another set.
    pub fn extend(&mut self, other: &Extents) {
        for e in &other.0 {
            self.add(e.target, e.lba, e.sectors, e.kind);
        }
    }

    /// The extents in (target, LBA) order, touching ones of one kind merged.
    #[must_use]
    pub fn sorted(&self) -> Vec<Extent> {
        let mut v = self.0.clone();
        v.sort_by_key(|e| (e.target, e.lba));
        let mut out: Vec<Extent> = Vec::with_capacity(v.len());
        for e in v {
            match out.last_mut() {
                Some(l) if l.target == e.target && l.kind == e.kind && l.lba + l.sectors >= e.lba => {
                    let end = (l.lba + l.sectors).max(e.lba + e.sectors);
                    l.sectors = end - l.lba;
                }
                _ => out.push(e),
            }
        }
        out
    }

    /// Sectors covered (as added; overlapping additions count twice).
    #[must_use]
    pub fn sectors(&self) -> u64 {
        self.0.iter().map(|e| e.sectors).sum()
    }

    /// Whether there is none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// All of them as a JSON array.
    #[must_use]
    pub fn json(&self) -> Value {
        Value::Array(self.sorted().iter().map(Extent::json).collect())
    }
}

/// The first `show` extents, one per line with `indent`, then "… N more" when there are more.
#[must_use]
pub fn lines(extents: &[Extent], show: usize, indent: &str, more_where: &str) -> Vec<String> {
    let mut out: Vec<String> = extents.iter().take(show).map(|e| format!("{indent}{e}")).collect();
    if extents.len() > show {
        out.push(format!("{indent}… {} more{more_where}", extents.len() - show));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touching_extents_of_one_kind_merge_in_any_order() {
        let mut x = Extents::default();
        x.add(0, 10, 5, "zero");
        x.add(0, 15, 5, "zero");
        x.add(0, 0, 10, "zero");
        x.add(0, 20, 1, "corrupt");
        x.add(1, 0, 3, "zero");
        let s = x.sorted();
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].lba, s[0].sectors), (0, 20));
        assert_eq!(s[1].kind, "corrupt");
        assert_eq!(s[2].target, 1);
        assert_eq!(x.sectors(), 24);
        assert_eq!(s[0].to_string(), "t0 LBA 0..=19 (20 sectors): zero");
    }

    #[test]
    fn cut_lists_say_how_many_more() {
        let v: Vec<Extent> = (0..12).map(|i| Extent { target: 0, lba: i * 2, sectors: 1, kind: "zero" }).collect();
        let l = lines(&v, 10, "  ", " (all in --json)");
        assert_eq!(l.len(), 11);
        assert_eq!(l[10], "  … 2 more (all in --json)");
        assert_eq!(lines(&v[..3], 10, "", "").len(), 3);
    }
}

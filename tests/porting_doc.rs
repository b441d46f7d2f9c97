//! PORTING.md stays true to the code it quotes: every quoted block names its file and still
//! occurs there (lines compared with their indentation trimmed, `...` standing for lines left
//! out, the pieces in file order), every routine both drivers have has a section quoting both,
//! and every `ScsiPort*` call and notification the C driver makes has a section quoting the C
//! call and some Rust. Every trybuild case of the wrappers is named. When the code moves, this
//! fails instead of the page going stale.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether a file name ends in `.ext`.
fn has_ext(name: &str, ext: &str) -> bool {
    Path::new(name).extension().is_some_and(|e| e == ext)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One quoted block of PORTING.md.
#[derive(Debug)]
struct Quote {
    /// The file it quotes, relative to the repository root.
    file: String,
    /// Its lines, as written.
    body: Vec<String>,
    /// Line of the opening fence (1-based), for messages.
    line: usize,
}

/// A heading and the quotes under it up to the next heading of the same or a higher level.
#[derive(Debug)]
struct Section {
    heading: String,
    quotes: Vec<usize>,
}

struct Doc {
    quotes: Vec<Quote>,
    sections: Vec<Section>,
    text: String,
}

fn parse(text: &str) -> Doc {
    let mut quotes = Vec::new();
    // (level, heading, quotes so far) of the open sections.
    let mut open: Vec<(usize, String, Vec<usize>)> = Vec::new();
    let mut sections = Vec::new();
    let mut fence: Option<(Option<String>, Vec<String>, usize)> = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some((file, body, start)) = fence.as_mut() {
            if trimmed.starts_with("```") {
                if let Some(file) = file.take() {
                    let index = quotes.len();
                    quotes.push(Quote { file, body: std::mem::take(body), line: *start });
                    for section in &mut open {
                        section.2.push(index);
                    }
                }
                fence = None;
            } else {
                body.push(line.to_string());
            }
            continue;
        }
        if let Some(info) = trimmed.strip_prefix("```") {
            // "```c driver/c-reference/pvscsi.c": the language, then the file quoted.
            let file = info.split_whitespace().nth(1).map(str::to_string);
            fence = Some((file, Vec::new(), n + 1));
            continue;
        }
        let level = line.chars().take_while(|c| *c == '#').count();
        if (2..=4).contains(&level) && line.chars().nth(level) == Some(' ') {
            while open.last().is_some_and(|s| s.0 >= level) {
                let (_, heading, q) = open.pop().unwrap();
                sections.push(Section { heading, quotes: q });
            }
            open.push((level, line[level..].trim().to_string(), Vec::new()));
        }
    }
    assert!(fence.is_none(), "PORTING.md has an unclosed code block");
    while let Some((_, heading, q)) = open.pop() {
        sections.push(Section { heading, quotes: q });
    }
    Doc { quotes, sections, text: text.to_string() }
}

/// Whether `body` occurs in `file`: split at `...` lines, each piece a run of consecutive lines
/// of the file (indentation and trailing blanks ignored), the pieces in order.
fn occurs(file: &str, body: &[String]) -> Result<(), String> {
    let lines: Vec<&str> = file.lines().map(str::trim).collect();
    let mut pieces: Vec<Vec<&str>> = vec![Vec::new()];
    for l in body {
        if l.trim() == "..." {
            pieces.push(Vec::new());
        } else if let Some(last) = pieces.last_mut() {
            last.push(l.trim());
        }
    }
    let mut from = 0;
    for piece in pieces.iter().filter(|p| !p.is_empty()) {
        let found = (from..lines.len()).find(|&i| lines.get(i..i + piece.len()) == Some(piece.as_slice()));
        match found {
            Some(i) => from = i + piece.len(),
            None if (0..from).any(|i| lines.get(i..i + piece.len()) == Some(piece.as_slice())) => {
                return Err(format!("out of order: {:?} comes earlier in the file than the piece before it", piece.first().unwrap_or(&"")));
            }
            None => {
                // Say which line of the piece first fails to match, to make fixing quick.
                let best = (0..lines.len())
                    .map(|i| (i, piece.iter().zip(&lines[i..]).take_while(|(a, b)| a == b).count()))
                    .max_by_key(|x| x.1)
                    .map_or(0, |x| x.1);
                return Err(format!("not found (from its line {}): {:?}", best + 1, piece.get(best).unwrap_or(&"")));
            }
        }
    }
    Ok(())
}

fn doc() -> Doc {
    parse(&read(&root().join("PORTING.md")))
}

#[test]
fn every_quote_occurs_in_the_file_it_names() {
    let doc = doc();
    assert!(doc.quotes.len() > 40, "{} quotes", doc.quotes.len());
    let mut failures = Vec::new();
    for q in &doc.quotes {
        let result = std::fs::read_to_string(root().join(&q.file)).map_err(|e| e.to_string()).and_then(|text| occurs(&text, &q.body));
        if let Err(e) = result {
            // Code moves between files (driver/ is being split for Storport): say where the
            // quote is now, if it is anywhere.
            let moved = rust_and_c_files().into_iter().find(|f| std::fs::read_to_string(root().join(f)).is_ok_and(|t| occurs(&t, &q.body).is_ok()));
            let hint = moved.map_or_else(String::new, |f| format!(" (it occurs in {f}: update the file name)"));
            failures.push(format!("PORTING.md:{} quoting {}: {e}{hint}", q.line, q.file));
        }
    }
    assert!(failures.is_empty(), "quotes that no longer match their file:\n{}", failures.join("\n"));
    // Both drivers are quoted.
    assert!(doc.quotes.iter().any(|q| q.file == "driver/c-reference/pvscsi.c"));
    assert!(doc.quotes.iter().any(|q| q.file.starts_with("driver/") && has_ext(&q.file, "rs")));
}

/// The driver's and the wrappers' sources, relative to the root.
fn rust_and_c_files() -> Vec<String> {
    let mut files = Vec::new();
    for dir in ["driver", "driver/c-reference", "crates/scsiport/src", "crates/storport/src"] {
        let Ok(entries) = std::fs::read_dir(root().join(dir)) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if has_ext(&name, "rs") || has_ext(&name, "c") || has_ext(&name, "h") {
                files.push(format!("{dir}/{name}"));
            }
        }
    }
    files.sort();
    files
}

/// The comparison itself can fail: a changed character, a piece out of order, a piece that is
/// not there.
#[test]
fn the_quote_check_is_not_vacuous() {
    let file = "fn a() {\n    let x = 1;\n    let y = 2;\n}\n";
    let body = |s: &[&str]| s.iter().map(ToString::to_string).collect::<Vec<_>>();
    assert!(occurs(file, &body(&["fn a() {", "let x = 1;"])).is_ok());
    assert!(occurs(file, &body(&["fn a() {", "...", "let y = 2;"])).is_ok());
    assert!(occurs(file, &body(&["fn a() {", "let y = 2;"])).is_err(), "not consecutive");
    assert!(occurs(file, &body(&["let y = 2;", "...", "let x = 1;"])).is_err(), "out of order");
    assert!(occurs(file, &body(&["let x = 2;"])).is_err(), "changed");
    let d = parse("## A\n```c x.c\nint a;\n```\n### B\n```rust y.rs\nlet b;\n```\n## C\n```sh\nls\n```\n");
    assert_eq!(d.quotes.len(), 2, "a block without a file is not a quote");
    let a = d.sections.iter().find(|s| s.heading == "A").unwrap();
    assert_eq!(a.quotes, [0, 1], "a section holds its subsections' quotes");
    assert!(d.sections.iter().find(|s| s.heading == "C").unwrap().quotes.is_empty());
}

/// `FindAdapter` -> `find_adapter`.
fn snake(camel: &str) -> String {
    let mut s = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                s.push('_');
            }
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

/// The C driver's `HwScsi` routines (`PvscsiHwScsiX(` at the start of a line: definitions).
fn c_routines(c: &str) -> BTreeSet<String> {
    c.lines()
        .filter_map(|l| l.strip_prefix("PvscsiHwScsi"))
        .filter_map(|rest| rest.split('(').next())
        .map(|name| format!("HwScsi{name}"))
        .collect()
}

/// The Rust driver's routines (`fn hw_x(` in driver/*.rs), as `HwScsiX`.
fn rust_routines() -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for entry in std::fs::read_dir(root().join("driver")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            for l in read(&path).lines() {
                if let Some(rest) = l.trim_start().strip_prefix("fn hw_") {
                    let name = rest.split('(').next().unwrap_or("");
                    let camel: String = name
                        .split('_')
                        .map(|w| {
                            let mut c = w.chars();
                            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
                        })
                        .collect();
                    set.insert(format!("HwScsi{camel}"));
                }
            }
        }
    }
    set
}

/// A section whose heading names `name` and which quotes `c_needle` from pvscsi.c and has a
/// Rust quote satisfying `rust`.
fn covered(doc: &Doc, name: &str, c_needle: &str, rust: impl Fn(&Quote) -> bool) -> bool {
    doc.sections.iter().filter(|s| s.heading.contains(name)).any(|s| {
        let quotes: Vec<&Quote> = s.quotes.iter().map(|&i| &doc.quotes[i]).collect();
        quotes.iter().any(|q| q.file == "driver/c-reference/pvscsi.c" && q.body.iter().any(|l| l.contains(c_needle)))
            && quotes.iter().any(|q| has_ext(&q.file, "rs") && rust(q))
    })
}

#[test]
fn every_routine_both_drivers_have_is_covered() {
    let c = read(&root().join("driver/c-reference/pvscsi.c"));
    let (in_c, in_rust) = (c_routines(&c), rust_routines());
    let both: BTreeSet<&String> = in_c.intersection(&in_rust).collect();
    assert!(both.len() >= 8, "C {in_c:?}, Rust {in_rust:?}");
    let doc = doc();
    let mut missing = Vec::new();
    for routine in &both {
        let short = routine.trim_start_matches("HwScsi");
        let c_fn = format!("Pvscsi{routine}(");
        let rust_fn = format!("fn hw_{}(", snake(short));
        if !covered(&doc, routine, &c_fn, |q| q.file.starts_with("driver/") && q.body.iter().any(|l| l.contains(&rust_fn))) {
            missing.push(format!("{routine}: a section named for it quoting {c_fn} from pvscsi.c and {rust_fn} from driver/"));
        }
    }
    if !covered(&doc, "DriverEntry", "DriverEntry(", |q| q.file.starts_with("driver/") && q.body.iter().any(|l| l.contains("fn DriverEntry("))) {
        missing.push("DriverEntry".into());
    }
    assert!(missing.is_empty(), "PORTING.md does not cover:\n{}", missing.join("\n"));
}

/// pvscsi.c without its comments.
fn c_code(c: &str) -> String {
    let mut out = String::new();
    let mut rest = c;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        rest = rest[start..].find("*/").map_or("", |end| &rest[start + end + 2..]);
    }
    out.push_str(rest);
    out.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

#[test]
fn every_port_call_and_notification_of_the_c_driver_is_covered() {
    let code = c_code(&read(&root().join("driver/c-reference/pvscsi.c")));
    let mut calls = BTreeSet::new();
    let mut notifications = BTreeSet::new();
    for (at, _) in code.match_indices("ScsiPort") {
        let name: String = code[at..].chars().take_while(char::is_ascii_alphanumeric).collect();
        let after = code[at + name.len()..].trim_start();
        if !after.starts_with('(') {
            continue;
        }
        if name == "ScsiPortNotification" {
            // Covered type by type.
            let kind: String = after[1..].chars().take_while(char::is_ascii_alphanumeric).collect();
            notifications.insert(kind);
        } else {
            calls.insert(name);
        }
    }
    if code.contains("DebugPrint((") {
        calls.insert("ScsiDebugPrint".to_string());
    }
    assert!(calls.len() >= 8 && notifications.len() >= 6, "{calls:?} {notifications:?}");
    let doc = doc();
    let mut missing = Vec::new();
    for call in &calls {
        let needle = if call == "ScsiDebugPrint" { "DebugPrint((".to_string() } else { format!("{call}(") };
        if !covered(&doc, call, &needle, |_| true) {
            missing.push(format!("{call}: a section named for it quoting the C call and some Rust"));
        }
    }
    for kind in &notifications {
        if !covered(&doc, kind, &format!("ScsiPortNotification({kind}"), |_| true) {
            missing.push(format!("ScsiPortNotification({kind}): a section named for it quoting the C call and some Rust"));
        }
    }
    assert!(missing.is_empty(), "PORTING.md does not cover:\n{}", missing.join("\n"));
}

#[test]
fn every_trybuild_case_is_named() {
    let doc = doc();
    let mut missing = Vec::new();
    for dir in ["crates/scsiport/tests/compile_fail", "crates/storport/tests/compile_fail"] {
        let Ok(entries) = std::fs::read_dir(root().join(dir)) else { continue };
        for entry in entries {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if has_ext(&name, "rs") && !doc.text.contains(&format!("`{name}`")) {
                missing.push(format!("{dir}/{name}"));
            }
        }
    }
    assert!(missing.is_empty(), "PORTING.md does not name these trybuild cases:\n{}", missing.join("\n"));
}

#[test]
fn the_readme_links_it() {
    assert!(read(&root().join("README.md")).contains("(PORTING.md)"), "README.md links PORTING.md");
}

//! Lists every binding this crate declares, for the layout test (`tests/layout.rs`).
//!
//! It reads `src/**/*.rs` and writes `$OUT_DIR/layout_items.rs`: one Rust statement per struct or
//! union (size, alignment, and per public field its offset and size), per integer constant (its
//! value), per type alias and per bit-field accessor, all taken from the compiled crate with
//! `size_of`, `align_of` and `offset_of!`. The test includes that file and compares each entry
//! with what a C compiler says about MinGW-w64's headers, so a new binding is checked without
//! anyone listing it.
//!
//! The parser understands the subset of Rust this crate is written in (rustfmt style, one item or
//! field per line). It never fails the build: what it cannot read goes into `PARSE_ERRORS`, which
//! the layout test asserts is empty. The library itself does not use the output.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo::rerun-if-changed=src");
    println!("cargo::rerun-if-changed=build.rs");
    let Some(out_dir) = std::env::var_os("OUT_DIR") else {
        return;
    };
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from("."), PathBuf::from);
    let mut files = Vec::new();
    collect_rs(&manifest.join("src"), &mut files);
    files.sort();

    let mut items = Items::default();
    for file in &files {
        let module = module_of(&manifest.join("src"), file);
        match std::fs::read_to_string(file) {
            Ok(text) => parse_file(&module, &text, &mut items, &file.display().to_string()),
            Err(e) => items.errors.push(format!("{}: {e}", file.display())),
        }
    }
    let code = render(&items);
    // Nothing useful can be done if OUT_DIR is not writable; the test then fails to include it.
    let _ = std::fs::write(Path::new(&out_dir).join("layout_items.rs"), code);
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `storport.rs` and `storport/**` are the `storport` module; everything else is re-exported at
/// the crate root.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap_or(file);
    let first = rel.components().next().map(|c| c.as_os_str().to_string_lossy().into_owned()).unwrap_or_default();
    if first == "storport.rs" || first == "storport" { "storport".into() } else { "root".into() }
}

#[derive(Default)]
struct Items {
    structs: Vec<Struct>,
    consts: Vec<Named>,
    aliases: Vec<Alias>,
    bitfields: Vec<Bitfield>,
    errors: Vec<String>,
}

struct Named {
    module: String,
    name: String,
    cfg: Option<String>,
}

struct Alias {
    named: Named,
    function_type: bool,
}

struct Field {
    name: String,
    ty: String,
    public: bool,
    cfg: Option<String>,
}

struct Struct {
    named: Named,
    is_union: bool,
    fields: Vec<Field>,
}

struct Bitfield {
    module: String,
    ty: String,
    storage: String,
    getter: String,
    setter: String,
    first: u32,
    width: u32,
}

fn ident_prefix(s: &str) -> &str {
    let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(s.len());
    &s[..end]
}

/// The code part of a line: no `//` comment (the crate has no `//` inside string literals outside
/// `bitfield.rs`, whose macro body declares no items).
fn code_of(line: &str) -> &str {
    line.find("//").map_or(line, |i| &line[..i])
}

fn brace_delta(code: &str) -> i64 {
    let mut d = 0i64;
    for c in code.chars() {
        match c {
            '{' => d += 1,
            '}' => d -= 1,
            _ => {}
        }
    }
    d
}

#[allow(clippy::too_many_lines)]
fn parse_file(module: &str, text: &str, items: &mut Items, file: &str) {
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0usize;
    let mut pending_cfg: Option<String> = None;
    while i < lines.len() {
        let raw = lines[i];
        let line = code_of(raw).trim();
        i += 1;
        if line.is_empty() {
            continue;
        }
        if let Some(cfg) = line.strip_prefix("#[cfg(").and_then(|s| s.strip_suffix(")]")) {
            pending_cfg = Some(cfg.to_string());
            continue;
        }
        if line.starts_with("#[") || line.starts_with("#![") {
            continue;
        }
        let cfg = pending_cfg.take();
        if cfg.as_deref() == Some("test") {
            // A test-only item (the unit-test modules): skip it whole.
            i = skip_block(&lines, i - 1);
            continue;
        }

        if let Some(rest) = line.strip_prefix("pub const ") {
            let name = ident_prefix(rest);
            if rest[name.len()..].trim_start().starts_with(':') && !name.is_empty() {
                items.consts.push(Named { module: module.into(), name: name.into(), cfg });
                // A multi-line initialiser has no braces at item level, so nothing to skip.
                continue;
            }
            // `pub const fn`: skipped below like any other braced item.
        }
        if let Some(rest) = line.strip_prefix("pub type ") {
            let name = ident_prefix(rest).to_string();
            let mut rhs = rest.split_once('=').map(|(_, r)| r.trim().to_string()).unwrap_or_default();
            let mut j = i;
            while !rhs.contains(';') && j < lines.len() {
                rhs.push(' ');
                rhs.push_str(code_of(lines[j]).trim());
                j += 1;
            }
            i = j;
            let rhs = rhs.trim();
            let function_type = rhs.starts_with("unsafe extern") || rhs.starts_with("extern");
            items.aliases.push(Alias { named: Named { module: module.into(), name, cfg }, function_type });
            continue;
        }
        let struct_kw = line.strip_prefix("pub struct ").map(|r| (r, false));
        let union_kw = line.strip_prefix("pub union ").map(|r| (r, true));
        if let Some((rest, is_union)) = struct_kw.or(union_kw) {
            let name = ident_prefix(rest).to_string();
            if !line.ends_with('{') {
                items.errors.push(format!("{file}:{i}: `{name}` is not a braced struct on one line"));
                continue;
            }
            let mut fields = Vec::new();
            let mut field_cfg: Option<String> = None;
            while i < lines.len() {
                let f = code_of(lines[i]).trim();
                i += 1;
                if f.is_empty() {
                    continue;
                }
                if f == "}" {
                    break;
                }
                if let Some(c) = f.strip_prefix("#[cfg(").and_then(|s| s.strip_suffix(")]")) {
                    field_cfg = Some(c.to_string());
                    continue;
                }
                if f.starts_with("#[") {
                    continue;
                }
                let (public, body) = match f.strip_prefix("pub ") {
                    Some(b) => (true, b),
                    None => (false, f),
                };
                let Some((fname, fty)) = body.split_once(':') else {
                    items.errors.push(format!("{file}:{i}: cannot read field `{f}` of `{name}`"));
                    continue;
                };
                let fty = fty.trim().trim_end_matches(',').trim().to_string();
                if !f.ends_with(',') {
                    items.errors.push(format!("{file}:{i}: field `{f}` of `{name}` spans lines"));
                }
                fields.push(Field { name: fname.trim().into(), ty: fty, public, cfg: field_cfg.take() });
            }
            items.structs.push(Struct { named: Named { module: module.into(), name, cfg }, is_union, fields });
            continue;
        }
        if line.starts_with("crate::bitfield::bitfields!") || line.starts_with("bitfields!") {
            let mut current: Option<(String, String)> = None;
            while i < lines.len() {
                let b = code_of(lines[i]).trim();
                i += 1;
                if b == "}" && current.is_none() {
                    break;
                }
                if b == "}" {
                    current = None;
                    continue;
                }
                if let Some(head) = b.strip_prefix("impl ").and_then(|h| h.strip_suffix('{')) {
                    // `TYPE.storage: STORAGE_TYPE`
                    let head = head.trim();
                    let Some((path, _st)) = head.split_once(':') else {
                        items.errors.push(format!("{file}:{i}: cannot read bit-field block `{b}`"));
                        continue;
                    };
                    let Some((ty, storage)) = path.trim().split_once('.') else {
                        items.errors.push(format!("{file}:{i}: cannot read bit-field block `{b}`"));
                        continue;
                    };
                    current = Some((ty.trim().into(), storage.trim().into()));
                    continue;
                }
                let Some((ty, storage)) = current.clone() else {
                    items.errors.push(format!("{file}:{i}: bit-field entry outside a block: `{b}`"));
                    continue;
                };
                // `Getter, set_Getter: first, width;`
                let parsed = b.strip_suffix(';').and_then(|e| {
                    let (names, bits) = e.split_once(':')?;
                    let (getter, setter) = names.split_once(',')?;
                    let (first, width) = bits.split_once(',')?;
                    Some((
                        getter.trim().to_string(),
                        setter.trim().to_string(),
                        first.trim().parse::<u32>().ok()?,
                        width.trim().parse::<u32>().ok()?,
                    ))
                });
                match parsed {
                    Some((getter, setter, first, width)) => items.bitfields.push(Bitfield {
                        module: module.into(),
                        ty,
                        storage,
                        getter,
                        setter,
                        first,
                        width,
                    }),
                    None => items.errors.push(format!("{file}:{i}: cannot read bit-field entry `{b}`")),
                }
            }
            continue;
        }
        // Any other braced item (impl blocks, functions, modules, extern blocks): skip its body.
        if brace_delta(line) > 0 {
            i = skip_block(&lines, i - 1);
        }
    }
}

/// Index of the line after the block that opens on `start` (or the next line if none opens).
fn skip_block(lines: &[&str], start: usize) -> usize {
    let mut depth = 0i64;
    let mut opened = false;
    let mut i = start;
    while i < lines.len() {
        let code = code_of(lines[i]);
        let d = brace_delta(code);
        if code.contains('{') {
            opened = true;
        }
        depth += d;
        i += 1;
        if opened && depth <= 0 {
            return i;
        }
        if !opened && code.trim_end().ends_with(';') {
            return i;
        }
    }
    i
}

fn path_of(module: &str, name: &str) -> String {
    if module == "root" { format!("scsiport_sys::{name}") } else { format!("scsiport_sys::{module}::{name}") }
}

fn cfg_attr(cfg: Option<&String>) -> String {
    cfg.map(|c| format!("#[cfg({c})] ")).unwrap_or_default()
}

fn render(items: &Items) -> String {
    let mut s = String::new();
    s.push_str("// Generated by build.rs from src/**/*.rs; see tests/layout.rs.\n");
    s.push_str("pub fn rust_items() -> RustItems {\n    let mut items = RustItems::default();\n");
    for st in &items.structs {
        let path = path_of(&st.named.module, &st.named.name);
        let _ = writeln!(
            s,
            "    {}{{\n        let mut fields = Vec::new();",
            cfg_attr(st.named.cfg.as_ref())
        );
        for f in &st.fields {
            if f.public {
                let _ = writeln!(
                    s,
                    "        {}fields.push(RustField {{ name: \"{n}\", ty: \"{t}\", public: true, offset: core::mem::offset_of!({path}, {n}), size: field_size!({path}, {n}) }});",
                    cfg_attr(f.cfg.as_ref()),
                    n = f.name,
                    t = f.ty.replace('"', "\\\""),
                );
            } else {
                let _ = writeln!(
                    s,
                    "        {}fields.push(RustField {{ name: \"{n}\", ty: \"{t}\", public: false, offset: usize::MAX, size: usize::MAX }});",
                    cfg_attr(f.cfg.as_ref()),
                    n = f.name,
                    t = f.ty.replace('"', "\\\""),
                );
            }
        }
        let _ = writeln!(
            s,
            "        items.structs.push(RustStruct {{ module: \"{m}\", name: \"{n}\", is_union: {u}, size: core::mem::size_of::<{path}>(), align: core::mem::align_of::<{path}>(), fields }});\n    }}",
            m = st.named.module,
            n = st.named.name,
            u = st.is_union,
        );
    }
    for c in &items.consts {
        let _ = writeln!(
            s,
            "    {}items.consts.push(RustConst::new(\"{m}\", \"{n}\", {p}));",
            cfg_attr(c.cfg.as_ref()),
            m = c.module,
            n = c.name,
            p = path_of(&c.module, &c.name),
        );
    }
    for a in &items.aliases {
        let p = path_of(&a.named.module, &a.named.name);
        let _ = writeln!(
            s,
            "    {}items.aliases.push(RustAlias {{ module: \"{m}\", name: \"{n}\", function_type: {f}, size: core::mem::size_of::<{p}>(), align: core::mem::align_of::<{p}>() }});",
            cfg_attr(a.named.cfg.as_ref()),
            m = a.named.module,
            n = a.named.name,
            f = a.function_type,
        );
    }
    for b in &items.bitfields {
        let p = path_of(&b.module, &b.ty);
        let _ = writeln!(
            s,
            "    items.bitfields.push(RustBitfield {{ module: \"{m}\", ty: \"{t}\", storage: \"{st}\", name: \"{g}\", first: {f}, width: {w}, bytes: all_ones_bytes::<{p}>(|v| v.{set}(!0)), read_back_ok: read_back::<{p}>(|v| v.{set}(!0), |v| u64::from(v.{g}())) == (1u64 << {w}) - 1 }});",
            m = b.module,
            t = b.ty,
            st = b.storage,
            g = b.getter,
            set = b.setter,
            f = b.first,
            w = b.width,
        );
    }
    for e in &items.errors {
        let _ = writeln!(s, "    items.parse_errors.push({e:?}.to_string());");
    }
    s.push_str("    items\n}\n");
    s
}

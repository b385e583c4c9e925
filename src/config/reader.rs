//! A reader over a parsed TOML document that keeps every value's position, so that each
//! problem can be reported as `FILE:LINE:COL: key.path: what is wrong; what would be valid`,
//! and that keeps going after a problem, so that *every* problem in a file is reported at once.
//!
//! serde's derive stops at the first error; this walks the table by hand instead. Each
//! [`Section`] remembers which keys were read; [`Section::finish`] reports the rest as unknown.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::{ConfigError, Problem};

/// Collects problems for one file and turns byte offsets into line and column numbers.
pub(crate) struct Ctx<'s> {
    file: String,
    line_starts: Vec<usize>,
    src: &'s str,
    problems: Vec<Problem>,
}

impl<'s> Ctx<'s> {
    pub(crate) fn new(file: &str, src: &'s str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        Ctx {
            file: file.to_string(),
            line_starts,
            src,
            problems: Vec::new(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(crate) fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.src.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let col = self.src[start..offset].chars().count() + 1;
        (line + 1, col)
    }

    /// `FILE:LINE:COL` of a span's start.
    pub(crate) fn location(&self, span: Range<usize>) -> String {
        let (line, col) = self.line_col(span.start);
        format!("{}:{line}:{col}", self.file)
    }

    /// Records a problem at `span`.
    pub(crate) fn report(
        &mut self,
        span: Range<usize>,
        key: &str,
        problem: impl Into<String>,
        valid: impl Into<String>,
    ) {
        let (line, column) = self.line_col(span.start);
        self.problems.push(Problem {
            file: self.file.clone(),
            line,
            column,
            key: key.to_string(),
            problem: problem.into(),
            valid: valid.into(),
        });
    }

    /// Records a TOML syntax error.
    pub(crate) fn report_syntax(&mut self, err: &toml::de::Error) {
        let span = err.span().unwrap_or(0..0);
        let msg = err.message().trim().replace('\n', " ");
        self.report(
            span,
            "(syntax)",
            msg,
            "a valid TOML document (https://toml.io)",
        );
    }

    pub(crate) fn has_problems(&self) -> bool {
        !self.problems.is_empty()
    }

    /// `value` when no problem was found, else every problem in file order.
    pub(crate) fn into_result<T>(mut self, value: Option<T>) -> Result<T, ConfigError> {
        match value {
            Some(v) if self.problems.is_empty() => Ok(v),
            _ => {
                self.problems.sort_by_key(|p| (p.line, p.column));
                Err(ConfigError::Invalid {
                    problems: self.problems,
                })
            }
        }
    }
}

/// Human name of a TOML value's type, for "expected X, found Y".
fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// One TOML table being read: its key path (`fleets[0].behavior`) and its entries.
pub(crate) struct Section<'t, 'i> {
    path: String,
    table: &'t DeTable<'i>,
    span: Range<usize>,
}

impl<'t, 'i> Section<'t, 'i> {
    pub(crate) fn new(path: String, table: &'t DeTable<'i>, span: Range<usize>) -> Self {
        Section { path, table, span }
    }

    /// `path.key`, or `key` at the top level.
    pub(crate) fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{}", self.path, key)
        }
    }

    /// This table's own path.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// Where this table starts (its header, or its first key for the root).
    pub(crate) fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// The raw value of `key`.
    fn raw(&self, key: &str) -> Option<&'t Spanned<DeValue<'i>>> {
        self.table.get(key)
    }

    /// Where `key` is written, or this table's span when absent.
    pub(crate) fn span_of(&self, key: &str) -> Range<usize> {
        self.table
            .get_key_value(key)
            .map(|(k, _)| k.span())
            .unwrap_or_else(|| self.span.clone())
    }

    /// Whether `key` is present.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    /// Whether `key`'s value is the string `want`.
    pub(crate) fn is_string(&self, key: &str, want: &str) -> bool {
        self.raw(key)
            .is_some_and(|v| matches!(v.get_ref(), DeValue::String(s) if s.as_ref() == want))
    }

    /// Where the value of `key` is written, or this table's span when absent.
    pub(crate) fn value_span(&self, key: &str) -> Range<usize> {
        self.raw(key)
            .map_or_else(|| self.span.clone(), |v| v.span())
    }

    /// Reports that a required key is absent.
    pub(crate) fn missing(&self, ctx: &mut Ctx<'_>, key: &str, valid: &str) {
        ctx.report(
            self.span.clone(),
            &self.key_path(key),
            "missing required key",
            valid,
        );
    }

    /// Reports `key` as missing when it is absent (not when it was present but invalid: that
    /// was reported already). Always `None`, for use in `.or_else`.
    pub(crate) fn absent<T>(&self, ctx: &mut Ctx<'_>, key: &str, valid: &str) -> Option<T> {
        if !self.has(key) {
            self.missing(ctx, key, valid);
        }
        None
    }

    fn wrong_type(&self, ctx: &mut Ctx<'_>, key: &str, v: &Spanned<DeValue<'_>>, valid: &str) {
        ctx.report(
            v.span(),
            &self.key_path(key),
            format!("wrong type: {}", type_name(v.get_ref())),
            valid.to_string(),
        );
    }

    /// A string value.
    pub(crate) fn string(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<String> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => {
                self.wrong_type(ctx, key, v, "a string");
                None
            }
        }
    }

    /// A boolean value.
    pub(crate) fn bool(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<bool> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(ctx, key, v, "true or false");
                None
            }
        }
    }

    /// A whole number in `lo..=hi`.
    pub(crate) fn int(&self, ctx: &mut Ctx<'_>, key: &str, lo: u64, hi: u64) -> Option<u64> {
        let v = self.raw(key)?;
        let valid = if hi == u64::MAX {
            format!("a whole number ≥ {lo}")
        } else {
            format!("a whole number from {lo} to {hi}")
        };
        let n = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
            _ => None,
        };
        self.in_range(
            ctx,
            key,
            v,
            n,
            |n| *n >= 0 && (lo..=hi).contains(&(*n as u64)),
            &valid,
        )
        .map(|n| n as u64)
    }

    /// A whole number of units (0 to 100 000).
    pub(crate) fn units(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<u32> {
        self.int(ctx, key, 0, 100_000).map(|n| n as u32)
    }

    /// A number (integer or float) in `lo..=hi`, with `what` naming the range for messages.
    pub(crate) fn number(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        ok: impl Fn(f64) -> bool,
        valid: &str,
    ) -> Option<f64> {
        let v = self.raw(key)?;
        let n = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .map(|n| n as f64),
            DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
            _ => None,
        };
        self.in_range(ctx, key, v, n, |n| n.is_finite() && ok(*n), valid)
    }

    /// `parsed` when it satisfies `ok`; otherwise reports it out of range, or — when the value
    /// was not a number at all — of the wrong type.
    fn in_range<T: std::fmt::Display>(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        v: &Spanned<DeValue<'_>>,
        parsed: Option<T>,
        ok: impl Fn(&T) -> bool,
        valid: &str,
    ) -> Option<T> {
        match parsed {
            Some(n) if ok(&n) => Some(n),
            Some(n) => {
                ctx.report(
                    v.span(),
                    &self.key_path(key),
                    format!("{n} is out of range"),
                    valid,
                );
                None
            }
            None => {
                self.wrong_type(ctx, key, v, valid);
                None
            }
        }
    }

    /// A string that must be one of `choices`.
    pub(crate) fn choice<T: Copy>(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let valid = format!(
            "one of {}",
            choices
                .iter()
                .map(|(n, _)| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let v = self.raw(key)?;
        let DeValue::String(s) = v.get_ref() else {
            self.wrong_type(ctx, key, v, &valid);
            return None;
        };
        // Case and separators do not matter ("Max", "max"; "on-demand", "on_demand"): HPA
        // writes CamelCase, TOML habit is snake_case, and no two choices differ only so.
        let norm = |x: &str| -> String {
            x.chars()
                .filter(|c| !matches!(c, '-' | '_'))
                .map(|c| c.to_ascii_lowercase())
                .collect()
        };
        match choices.iter().find(|(n, _)| norm(n) == norm(s.as_ref())) {
            Some((_, t)) => Some(*t),
            None => {
                ctx.report(
                    v.span(),
                    &self.key_path(key),
                    format!("unknown value \"{s}\""),
                    valid,
                );
                None
            }
        }
    }

    /// A table of string values (`dimensions = { LoadBalancer = "app/x" }`), in file order.
    pub(crate) fn string_map(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<Vec<(String, String)>> {
        let v = self.raw(key)?;
        let DeValue::Table(t) = v.get_ref() else {
            self.wrong_type(
                ctx,
                key,
                v,
                "a table of strings such as { Name = \"value\" }",
            );
            return None;
        };
        let mut out = Vec::new();
        for (k, val) in t.iter() {
            match val.get_ref() {
                DeValue::String(s) => out.push((k.get_ref().to_string(), s.to_string())),
                other => ctx.report(
                    val.span(),
                    &format!("{}.{}", self.key_path(key), k.get_ref()),
                    format!("wrong type: {}", type_name(other)),
                    "a string",
                ),
            }
        }
        Some(out)
    }

    /// A sub-table (`[a.b]` or `b = { … }`).
    pub(crate) fn table(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<Section<'t, 'i>> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::Table(t) => Some(Section::new(self.key_path(key), t, v.span())),
            _ => {
                self.wrong_type(ctx, key, v, "a table");
                None
            }
        }
    }

    /// An array of tables (`[[a.b]]` or `b = [{ … }, …]`), `None` when the key is absent.
    pub(crate) fn tables(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<Vec<Section<'t, 'i>>> {
        let v = self.raw(key)?;
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(ctx, key, v, "an array of tables");
            return Some(Vec::new());
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("{}[{i}]", self.key_path(key));
            match item.get_ref() {
                DeValue::Table(t) => out.push(Section::new(path, t, item.span())),
                other => ctx.report(
                    item.span(),
                    &path,
                    format!("expected a table, found {}", type_name(other)),
                    "a table such as { key = value }",
                ),
            }
        }
        Some(out)
    }

    /// Reports every key of this table that is not in `valid_keys` as unknown, naming the
    /// valid ones.
    pub(crate) fn finish(self, ctx: &mut Ctx<'_>, valid_keys: &[&str]) {
        for (k, _) in self.table.iter() {
            let name = k.get_ref().as_ref();
            if !valid_keys.contains(&name) {
                let mut valid: Vec<&str> = valid_keys.to_vec();
                valid.sort_unstable();
                // HPA's and KEDA's camelCase (`stabilizationWindowSeconds`) is matched in
                // our spelling (`stabilization_window_secs`) too.
                let meant = super::suggest::meant(name, &valid)
                    .or_else(|| super::suggest::closest(&snake_case(name), valid.iter().copied()));
                ctx.report(
                    k.span(),
                    &self.key_path(name),
                    match meant {
                        Some(m) => format!("unknown key; did you mean `{m}`?"),
                        None => "unknown key".to_string(),
                    },
                    format!("valid keys here: {}", valid.join(", ")),
                );
            }
        }
    }
}

/// `stabilizationWindowSeconds` → `stabilization_window_secs`: Kubernetes' spelling in ours.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out.replace("_seconds", "_secs")
}

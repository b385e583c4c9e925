//! The TOML policy file: one `[global]` table and one or more `[[fleets]]`.
//!
//! [`load`] reads a file, [`parse_str`] a string. An invalid file yields
//! [`ConfigError::Invalid`] with *every* problem found, each rendered as
//! `FILE:LINE:COL: key.path: what is wrong; what would be valid`. Unknown keys are problems.
//! Types and their defaults are documented in [`types`]; `config/example.toml` shows them all.

mod parse;
mod reader;
pub mod suggest;
pub mod summary;
pub mod types;

use std::fmt;
use std::path::Path;

pub use types::*;

/// One thing wrong with a policy file, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file's path as given.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Key path such as `fleets[0].behavior.scale_up.policies[1].value`.
    pub key: String,
    /// What is wrong.
    pub problem: String,
    /// What would be valid instead.
    pub valid: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}; {}",
            self.file, self.line, self.column, self.key, self.problem, self.valid
        )
    }
}

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{path}: cannot read the policy file: {source}")]
    Read {
        /// The path as given.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file was read and has one or more problems.
    #[error("{}", render(problems))]
    Invalid {
        /// Every problem, in file order.
        problems: Vec<Problem>,
    },
    /// The policy is valid but its prices cannot be resolved (a budget on an unpriced pool).
    #[error("{0}")]
    Prices(String),
}

fn render(problems: &[Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(Problem::to_string).collect();
    format!(
        "{}\n{} problem{} in the policy file",
        lines.join("\n"),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    )
}

impl ConfigError {
    /// The problems, empty for a read error.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Read { .. } | ConfigError::Prices(_) => &[],
            ConfigError::Invalid { problems } => problems,
        }
    }
}

/// Reads and validates the policy file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_str(&path.display().to_string(), &text)
}

/// 1-based line and column where the value at `key_path` (`fleets[0].metrics[3].source.query`)
/// is written in the policy `text`; where the path leaves the file (a default), the deepest
/// table or array on it that is written; `None` for a text that does not parse.
pub fn locate(text: &str, key_path: &str) -> Option<(usize, usize)> {
    use toml::de::DeValue;
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut span = doc.span();
    let mut here = doc.get_ref();
    // `a.b[2].c` → a, b, [2], c.
    let segments = key_path
        .split('.')
        .flat_map(|part| {
            let (name, index) = part.split_once('[').unwrap_or((part, ""));
            std::iter::once(Ok(name))
                .chain(index.trim_end_matches(']').parse::<usize>().ok().map(Err))
        })
        .collect::<Vec<Result<&str, usize>>>();
    let mut i = 0;
    while i < segments.len() {
        let Ok(name) = segments[i] else { break };
        let Some(value) = here.get(name) else { break };
        span = value.span();
        let mut value = value.get_ref();
        if let (Some(Err(n)), DeValue::Array(items)) = (segments.get(i + 1), value) {
            let Some(item) = items.get(*n) else { break };
            span = item.span();
            value = item.get_ref();
            i += 1;
        }
        i += 1;
        match value {
            DeValue::Table(t) => here = t,
            _ => break,
        }
    }
    Some(reader::Ctx::new("", text).line_col(span.start))
}

/// Validates a policy given as text; `file` is used in messages only.
pub fn parse_str(file: &str, text: &str) -> Result<Config, ConfigError> {
    let mut ctx = reader::Ctx::new(file, text);
    let (doc, syntax_errors) = toml::de::DeTable::parse_recoverable(text);
    for e in &syntax_errors {
        ctx.report_syntax(e);
    }
    if ctx.has_problems() {
        // A document with syntax errors is only partly known: checking its keys would report
        // problems that are echoes of the syntax error.
        return ctx.into_result(None);
    }
    let span = doc.span();
    let root = reader::Section::new(String::new(), doc.get_ref(), span.start..span.start);
    let config = parse::parse_root(&mut ctx, root);
    ctx.into_result(Some(config))
}

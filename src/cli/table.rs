//! Tables that stream: fixed column widths chosen so a row fits 120 columns,
//! long values cut with `…` (`-o wide` prints every value whole), rows
//! printed as they are decided (no pass over all rows first).

use std::io::{self, Write};

/// Width budget of a table row and of the lines under it.
pub const MAX_WIDTH: usize = 120;

/// How a column cuts a value that does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Keep the start (`Failed becau…`).
    End,
    /// Keep the end (`…/tekton-v1-oom.yaml`), for paths.
    Start,
}

/// A column: header and width.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub header: &'static str,
    pub width: usize,
    pub cut: Cut,
}

/// A streaming table.
pub struct Table {
    columns: Vec<Column>,
    wide: bool,
    headers: bool,
}

/// Cut `s` to `width` characters with `…`.
pub fn cut(s: &str, width: usize, how: Cut) -> String {
    let n = s.chars().count();
    if n <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    match how {
        Cut::End => {
            let mut out: String = s.chars().take(width - 1).collect();
            out.push('…');
            out
        }
        Cut::Start => {
            let mut out = String::from("…");
            out.extend(s.chars().skip(n - (width - 1)));
            out
        }
    }
}

impl Table {
    pub fn new(columns: Vec<Column>, wide: bool, headers: bool) -> Table {
        Table {
            columns,
            wide,
            headers,
        }
    }

    /// Total width of a row (for tests: it must fit [`MAX_WIDTH`]).
    #[cfg(test)]
    pub fn width(&self) -> usize {
        self.columns.iter().map(|c| c.width).sum::<usize>()
            + 2 * self.columns.len().saturating_sub(1)
    }

    fn line(&self, cells: &[String]) -> String {
        let mut out = String::new();
        for (i, (c, v)) in self.columns.iter().zip(cells).enumerate() {
            let v = if self.wide {
                v.clone()
            } else {
                cut(v, c.width, c.cut)
            };
            if i + 1 < self.columns.len() {
                let pad = c.width.saturating_sub(v.chars().count());
                out.push_str(&v);
                out.push_str(&" ".repeat(pad + 2));
            } else {
                out.push_str(&v);
            }
        }
        out.trim_end().to_string()
    }

    /// The header line (unless `--no-headers`).
    pub fn header(&self, out: &mut impl Write) -> io::Result<()> {
        if !self.headers {
            return Ok(());
        }
        let cells: Vec<String> = self.columns.iter().map(|c| c.header.to_string()).collect();
        writeln!(out, "{}", self.line(&cells))
    }

    /// One row.
    pub fn row(&self, out: &mut impl Write, cells: &[String]) -> io::Result<()> {
        writeln!(out, "{}", self.line(cells))
    }

    /// A line under a row (`    message: …`), cut to the width budget
    /// unless wide; continuation lines of a multi-line value are indented.
    pub fn note(&self, out: &mut impl Write, label: &str, value: &str) -> io::Result<()> {
        let prefix = format!("    {label}: ");
        let indent = " ".repeat(prefix.chars().count());
        for (i, l) in value.lines().enumerate() {
            let text = format!("{}{l}", if i == 0 { &prefix } else { &indent });
            let text = if self.wide {
                text
            } else {
                cut(&text, MAX_WIDTH, Cut::End)
            };
            writeln!(out, "{text}")?;
        }
        Ok(())
    }

    pub fn is_wide(&self) -> bool {
        self.wide
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_keep_the_width() {
        assert_eq!(cut("abcdef", 4, Cut::End), "abc…");
        assert_eq!(cut("abcdef", 4, Cut::Start), "…def");
        assert_eq!(cut("abc", 4, Cut::End), "abc");
        assert_eq!(cut("ééééé", 3, Cut::End).chars().count(), 3);
    }
}

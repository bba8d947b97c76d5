//! Plain aligned tables for recaps and listings.

/// Cells longer than this are printed whole and do not widen their column: one host list of
/// a 20,000-host group must not pad every other row with a megabyte of spaces.
const MAX_PAD: usize = 60;

/// A table of text cells; columns sized to their widest cell (up to [`MAX_PAD`] characters).
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table { rows: vec![header.iter().map(|s| s.to_string()).collect()] }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..cols)
            .map(|c| {
                let cells = self.rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count());
                cells.filter(|&n| n <= MAX_PAD).max().unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if c + 1 < row.len() {
                    let pad = widths[c].saturating_sub(cell.chars().count()) + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns() {
        let mut t = Table::new(&["host", "ok"]);
        t.row(vec!["jenkins".into(), "3".into()]);
        assert_eq!(t.render(), "host     ok\njenkins  3\n");
    }

    /// A cell far wider than any format width (which `{:<w$}` limits to u16: it panicked) is
    /// printed whole and widens nothing.
    #[test]
    fn a_huge_cell_is_printed_not_padded() {
        let huge = "h,".repeat(100_000);
        let mut t = Table::new(&["group", "hosts", "vars"]);
        t.row(vec!["big".into(), huge.clone(), "1".into()]);
        t.row(vec!["web".into(), "web1".into(), "2".into()]);
        let out = t.render();
        assert_eq!(out, format!("group  hosts  vars\nbig    {huge}  1\nweb    web1   2\n"));
    }
}

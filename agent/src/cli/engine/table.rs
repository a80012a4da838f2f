//! docker's tables: columns padded to their widest cell, three spaces apart, the last column
//! unpadded.

/// Prints `table` (its header first).
pub fn print(table: &[Vec<String>]) {
    let Some(first) = table.first() else {
        return;
    };
    let widths: Vec<usize> = (0..first.len())
        .map(|c| {
            table
                .iter()
                .map(|line| line[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for line in table {
        let last = line.len() - 1;
        let text: Vec<String> = line
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                if c == last {
                    cell.clone()
                } else {
                    format!("{cell:<w$}", w = widths[c])
                }
            })
            .collect();
        println!("{}", text.join("   "));
    }
}

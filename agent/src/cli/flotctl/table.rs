//! fleetctl's tables: `--fields` chosen by name, headers in capitals, columns aligned with tabs
//! exactly as Go's `tabwriter` (min width 0, tab width 8, padding 1, pad char `\t`) does, so
//! scripts that parsed fleetctl's output parse ours.

use std::fmt::Write as _;

/// Go tabwriter's tab width.
const TAB_WIDTH: usize = 8;

/// Why `--fields` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldsError {
    /// A name that is not one of the table's fields.
    #[error("invalid key in output field: {field} (valid: {valid})")]
    Unknown {
        /// As given.
        field: String,
        /// The table's fields, comma-separated.
        valid: String,
    },
    /// `--fields ""`.
    #[error("no output fields given")]
    Empty,
}

/// Parses `--fields a,b,c` against the table's `known` fields (case-insensitive).
pub fn parse_fields<'a>(text: &str, known: &[&'a str]) -> Result<Vec<&'a str>, FieldsError> {
    let fields = text
        .split(',')
        .map(str::trim)
        .filter(|field| !field.is_empty())
        .map(|field| {
            known
                .iter()
                .find(|known| known.eq_ignore_ascii_case(field))
                .copied()
                .ok_or_else(|| FieldsError::Unknown {
                    field: field.to_owned(),
                    valid: known.join(","),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if fields.is_empty() {
        return Err(FieldsError::Empty);
    }
    Ok(fields)
}

/// Renders `rows` under a header of the upper-cased `fields` (unless `no_legend`).
pub fn render(fields: &[&str], rows: &[Vec<String>], no_legend: bool) -> String {
    let header: Vec<String> = fields.iter().map(|f| f.to_ascii_uppercase()).collect();
    let lines: Vec<&[String]> = (!no_legend)
        .then_some(header.as_slice())
        .into_iter()
        .chain(rows.iter().map(Vec::as_slice))
        .collect();
    let columns = fields.len();
    let widths: Vec<usize> = (0..columns.saturating_sub(1))
        .map(|column| {
            let widest = lines
                .iter()
                .map(|line| line.get(column).map_or(0, |cell| cell.chars().count()))
                .max()
                .unwrap_or(0);
            (widest + 1).div_ceil(TAB_WIDTH) * TAB_WIDTH
        })
        .collect();
    let mut out = String::new();
    for line in lines {
        for (column, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if let Some(width) = widths.get(column) {
                let tabs = (width - cell.chars().count()).div_ceil(TAB_WIDTH);
                out.extend(std::iter::repeat_n('\t', tabs));
            }
        }
        let _ = writeln!(out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_on_tab_stops_like_gos_tabwriter() {
        let rows = vec![
            vec![
                "hello.service".into(),
                "113f16a7.../172.17.8.103".into(),
                "active".into(),
            ],
            vec!["a.service".into(), "-".into(), "inactive".into()],
        ];
        assert_eq!(
            render(&["unit", "machine", "active"], &rows, false),
            "UNIT\t\tMACHINE\t\t\t\tACTIVE\n\
             hello.service\t113f16a7.../172.17.8.103\tactive\n\
             a.service\t-\t\t\t\tinactive\n"
        );
        assert_eq!(
            render(&["unit"], &[vec!["x.service".into()]], true),
            "x.service\n"
        );
    }

    #[test]
    fn fields_are_checked_by_name() {
        let known = ["unit", "machine", "active", "sub"];
        assert_eq!(parse_fields("unit,SUB", &known).unwrap(), ["unit", "sub"]);
        assert_eq!(
            parse_fields("unit,color", &known).unwrap_err().to_string(),
            "invalid key in output field: color (valid: unit,machine,active,sub)"
        );
        assert_eq!(parse_fields(",", &known), Err(FieldsError::Empty));
    }
}

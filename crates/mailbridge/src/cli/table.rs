//! Printing records: aligned columns for people, the API's JSON for scripts.

use serde_json::Value;

use super::Output;

/// A record's field as a table cell: strings bare, null as `-`, the rest as JSON.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Rows under a header, each column as wide as its widest cell.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  ", w = *w));
            }
        }
        out.trim_end().to_owned()
    };
    let mut lines = vec![line(header.to_vec())];
    for row in rows {
        lines.push(line(row.iter().map(String::as_str).collect()));
    }
    lines.join("\n")
}

/// Prints records: the chosen columns (field names, shown upper-cased) as a
/// table, or every record as the API gave it in one JSON array.
pub fn print_list(output: Output, items: &[Value], columns: &[&str]) {
    match output {
        Output::Json => print_json(&Value::Array(items.to_vec())),
        Output::Table => {
            let header: Vec<String> = columns.iter().map(|c| c.to_uppercase()).collect();
            let header: Vec<&str> = header.iter().map(String::as_str).collect();
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|it| columns.iter().map(|c| cell(&it[*c])).collect())
                .collect();
            println!("{}", render(&header, &rows));
        }
    }
}

/// Prints one record: its fields one a line, or its JSON.
pub fn print_record(output: Output, record: &Value) {
    match output {
        Output::Json => print_json(record),
        Output::Table => {
            let rows: Vec<Vec<String>> = record
                .as_object()
                .map(|o| o.iter().map(|(k, v)| vec![k.clone(), cell(v)]).collect())
                .unwrap_or_default();
            println!("{}", render(&["FIELD", "VALUE"], &rows));
        }
    }
}

pub fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_on_the_widest_cell() {
        let rows = vec![
            vec!["1".to_owned(), "Contoso IMAP".to_owned(), "x".to_owned()],
            vec!["22".to_owned(), "B".to_owned(), "-".to_owned()],
        ];
        assert_eq!(
            render(&["ID", "NAME", "TYPE"], &rows),
            "ID  NAME          TYPE\n1   Contoso IMAP  x\n22  B             -"
        );
    }

    #[test]
    fn cells() {
        assert_eq!(cell(&Value::Null), "-");
        assert_eq!(cell(&serde_json::json!("a")), "a");
        assert_eq!(cell(&serde_json::json!(true)), "true");
    }
}

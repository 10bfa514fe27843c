//! Reading a register uploaded as an XLSX workbook (feature `xlsx`, which the server enables and
//! the phone does not need): the first sheet's cells as rows of text, for
//! [`crate::import::parse_rows`].
//!
//! A workbook is untrusted input, and calamine 0.31 trusts it: it panics on a shared-string
//! index past the strings or a cell reference past `u32`, and its `Range` allocates every cell
//! between the first and the last, 3.2 GB for two cells A1 and A99999999
//! (`fuzz/crashers/register_xlsx/`). So the cells are streamed one by one, each checked against
//! the sheet bounds below before anything is allocated for it, and a panic inside calamine is
//! caught and refused like any unreadable file.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};

use crate::error::{Error, Result};

/// Rows a register sheet may span (a 街道's register is tens of thousands of units).
pub const MAX_ROWS: u32 = 200_000;
/// Columns a register sheet may span (it has 11 required ones and a few extra).
pub const MAX_COLUMNS: u32 = 100;
/// Cells the rectangle from the first to the last used cell may hold (about 50 MB as text).
pub const MAX_CELLS: u64 = 2_000_000;

/// The rows of the first sheet of an XLSX workbook, as text cells, from the first used row and
/// column to the last (as calamine's `Range` gives them). Refused with [`Error::Invalid`] when
/// the bytes are not a workbook, its first sheet cannot be read, or the sheet spans more than
/// [`MAX_ROWS`] rows, [`MAX_COLUMNS`] columns or [`MAX_CELLS`] cells.
pub fn xlsx_rows(bytes: &[u8]) -> Result<Vec<Vec<String>>> {
    let read = std::panic::catch_unwind(|| read_cells(bytes));
    let cells = match read {
        Ok(cells) => cells?,
        Err(_) => {
            return Err(Error::Invalid(
                "unreadable sheet: the workbook's XML is malformed".into(),
            ));
        }
    };
    let Some(first_row) = cells.iter().map(|(row, _, _)| *row).min() else {
        return Ok(Vec::new());
    };
    let last_row = cells
        .iter()
        .map(|(row, _, _)| *row)
        .max()
        .unwrap_or(first_row);
    let first_col = cells.iter().map(|(_, col, _)| *col).min().unwrap_or(0);
    let last_col = cells
        .iter()
        .map(|(_, col, _)| *col)
        .max()
        .unwrap_or(first_col);
    let height = u64::from(last_row - first_row) + 1;
    let width = u64::from(last_col - first_col) + 1;
    if height > u64::from(MAX_ROWS) || width > u64::from(MAX_COLUMNS) || height * width > MAX_CELLS
    {
        return Err(too_large(height, width));
    }
    let mut rows = vec![vec![String::new(); width as usize]; height as usize];
    for (row, col, text) in cells {
        rows[(row - first_row) as usize][(col - first_col) as usize] = text;
    }
    Ok(rows)
}

fn too_large(height: u64, width: u64) -> Error {
    Error::Invalid(format!(
        "the sheet spans {height} rows and {width} columns; a register may span at most \
         {MAX_ROWS} rows, {MAX_COLUMNS} columns and {MAX_CELLS} cells"
    ))
}

/// The used cells of the first sheet as `(row, column, text)`, refused as soon as one lies
/// outside the bounds.
fn read_cells(bytes: &[u8]) -> Result<Vec<(u32, u32, String)>> {
    let mut book: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes))
        .map_err(|e| Error::Invalid(format!("not a workbook: {e}")))?;
    let name = book
        .sheet_names()
        .first()
        .cloned()
        .ok_or_else(|| Error::Invalid("the workbook has no sheet".into()))?;
    let mut reader = book
        .worksheet_cells_reader(&name)
        .map_err(|e| Error::Invalid(format!("unreadable sheet: {e}")))?;
    let mut cells = Vec::new();
    while let Some(cell) = reader
        .next_cell()
        .map_err(|e| Error::Invalid(format!("unreadable sheet: {e}")))?
    {
        let (row, col) = cell.get_position();
        if row >= MAX_ROWS || col >= MAX_COLUMNS || cells.len() as u64 >= MAX_CELLS {
            return Err(too_large(u64::from(row) + 1, u64::from(col) + 1));
        }
        let text = match Data::from(cell.get_value().clone()) {
            Data::Empty => continue,
            Data::String(s) => s,
            Data::Int(n) => n.to_string(),
            // Integral floats (floors, counts) print without a fraction.
            Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            other => other.to_string(),
        };
        cells.push((row, col, text));
    }
    Ok(cells)
}

//! The bundled handwritten digits, shared by the digits examples: `data/digits.csv` (UCI
//! optdigits, test part, see `data/README.md`), 1797 8×8 images as 64 pixel counts 0–16,
//! digits 0–9.
//!
//! Each digits example includes it with `mod digits;` after `mod common;`.

use crate::common::{parse_csv, Dataset};

/// Pixels per image.
pub const PIXELS: usize = 64;
/// The ten digits.
pub const DIGITS: usize = 10;
/// Images and their digits.
pub type Digits = Dataset<PIXELS, usize>;

/// Reads `data/digits.csv`: no header; 64 pixel counts then the digit on each line.
pub fn load_digits() -> Result<Digits, String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv");
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let data: Digits = parse_csv(path, &text, 0, |field| {
        let digit: usize = field.parse().map_err(|_| "bad digit".to_string())?;
        if digit >= DIGITS {
            return Err(format!("digit {digit} out of range"));
        }
        Ok(digit)
    })?;
    if data.len() == 0 {
        return Err(format!("{path}: no rows"));
    }
    Ok(data)
}

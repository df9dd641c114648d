//! Writing results: numbers as JSON can hold them, flat values as nested arrays.

use serde_json::{Number, Value};

/// A JSON number (`null` where JSON has none: NaN, ±∞); `-0` is written `0`.
pub fn number(x: f64) -> Value {
    let x = if x == 0.0 { 0.0 } else { x };
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// An `f32` widened to `f64` as the decimal it prints as (`0.1f32` → `0.1`, not
/// `0.10000000149011612`).
pub fn shortest_f32(x: f64) -> f64 {
    let x32 = x as f32;
    x32.to_string().parse().unwrap_or(x)
}

/// Row-major `values` as nested arrays of `shape`.
pub fn nest(shape: &[usize], values: &[Value]) -> Value {
    match shape.split_first() {
        None => values.first().cloned().unwrap_or(Value::Null),
        Some((&rows, rest)) => {
            let stride: usize = rest.iter().product();
            let rows = (0..rows)
                .map(|r| {
                    let row = values.get(r * stride..(r + 1) * stride).unwrap_or(&[]);
                    nest(rest, row)
                })
                .collect();
            Value::Array(rows)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn negative_zero_and_non_finite_numbers() {
        assert_eq!(number(-0.0).to_string(), "0.0");
        assert_eq!(number(f64::NAN), Value::Null);
        assert_eq!(number(f64::INFINITY), Value::Null);
        assert_eq!(number(1.5), json!(1.5));
    }

    #[test]
    fn an_f32_prints_with_its_own_digits() {
        assert_eq!(shortest_f32(f64::from(0.1f32)), 0.1);
        assert_eq!(shortest_f32(1.0 / 3.0), 0.33333334);
    }

    #[test]
    fn flat_values_nest_into_their_shape() {
        let values: Vec<Value> = (1..=6).map(Value::from).collect();
        assert_eq!(nest(&[2, 3], &values), json!([[1, 2, 3], [4, 5, 6]]));
        assert_eq!(nest(&[3, 1], &values[..3]), json!([[1], [2], [3]]));
        assert_eq!(nest(&[], &values[..1]), json!(1));
    }
}

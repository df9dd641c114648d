//! Reading a case: a JSON value with no repeated key, and nested arrays as a shape plus
//! row-major values.

use std::fmt::Write as _;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::failure::{shown, Failure, Result};

/// `text` as JSON, refusing an object that repeats a key (serde_json would keep the last
/// one silently): the error names the key and where it is repeated.
pub fn parse_unique(text: &str) -> serde_json::Result<Value> {
    let mut de = serde_json::Deserializer::from_str(text);
    let Unique(value) = Deserialize::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// A JSON value whose objects have no repeated key.
struct Unique(Value);

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        de.deserialize_any(UniqueVisitor).map(Unique)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, x: i64) -> Result<Value, E> {
        Ok(x.into())
    }

    fn visit_u64<E>(self, x: u64) -> Result<Value, E> {
        Ok(x.into())
    }

    fn visit_f64<E>(self, x: f64) -> Result<Value, E> {
        Ok(Number::from_f64(x).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(Unique(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "duplicate key `{}`",
                    shown(&key)
                )));
            }
            let Unique(value) = map.next_value()?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// A nested JSON array as its shape and row-major values; ragged arrays and non-numbers
/// are refused, naming the element (`logits[1][2]`).
pub fn flatten(name: &str, value: &Value) -> Result<(Vec<usize>, Vec<f64>)> {
    let mut shape = Vec::new();
    let mut probe = value;
    while let Value::Array(items) = probe {
        shape.push(items.len());
        match items.first() {
            Some(first) => probe = first,
            None => break,
        }
    }
    let mut values = Vec::with_capacity(shape.iter().product());
    let mut path = name.to_string();
    collect(value, &shape, &mut path, &mut values)?;
    Ok((shape, values))
}

fn collect(value: &Value, shape: &[usize], path: &mut String, out: &mut Vec<f64>) -> Result<()> {
    match (shape.split_first(), value) {
        (None, Value::Number(n)) => {
            let x = n.as_f64().ok_or_else(|| {
                Failure(format!("`{path}` = {n} is not a number losskit can read"))
            })?;
            out.push(x);
            Ok(())
        }
        (None, Value::Array(_)) => Err(Failure(format!(
            "ragged array: `{path}` is an array where a number was expected"
        ))),
        (None, other) => Err(Failure(format!(
            "`{path}` is {}, expected a number",
            describe(other)
        ))),
        (Some((&len, rest)), Value::Array(items)) => {
            if items.len() != len {
                return Err(Failure(format!(
                    "ragged array: `{path}` has {} element{}, expected {len} like its first sibling",
                    items.len(),
                    if items.len() == 1 { "" } else { "s" }
                )));
            }
            for (k, item) in items.iter().enumerate() {
                let end = path.len();
                // `write!` into a `String` cannot fail
                let _ = write!(path, "[{k}]");
                collect(item, rest, path, out)?;
                path.truncate(end);
            }
            Ok(())
        }
        (Some((&len, _)), other) => Err(Failure(format!(
            "ragged array: `{path}` is {}, expected an array of {len}",
            describe(other)
        ))),
    }
}

/// A JSON value's kind in words, for messages.
pub fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_repeated_key_is_refused_at_any_depth() {
        let err = parse_unique(r#"{"a": {"b": 1, "b": 2}}"#).unwrap_err();
        assert!(err.to_string().contains("duplicate key `b`"), "{err}");
        let ok = parse_unique(r#"{"a": [{"b": 1}, {"b": 2}]}"#).expect("no key repeats");
        assert_eq!(ok, json!({"a": [{"b": 1}, {"b": 2}]}));
    }

    #[test]
    fn trailing_text_is_refused() {
        assert!(parse_unique("{} {}").is_err());
    }

    #[test]
    fn nested_arrays_flatten_row_major() {
        let (shape, values) = flatten("x", &json!([[1, 2, 3], [4, 5, 6]])).expect("regular");
        assert_eq!(shape, [2, 3]);
        assert_eq!(values, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let (shape, values) = flatten("x", &json!([])).expect("empty");
        assert_eq!((shape, values), (vec![0], vec![]));
    }

    #[test]
    fn the_bad_element_is_named() {
        let Failure(message) = flatten("z", &json!([[1, 2], [3, null]])).unwrap_err();
        assert_eq!(message, "`z[1][1]` is null, expected a number");
        let Failure(message) = flatten("z", &json!([[1, 2], [3]])).unwrap_err();
        assert!(
            message.starts_with("ragged array: `z[1]` has 1 element"),
            "{message}"
        );
    }
}

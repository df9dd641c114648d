//! The JSON that `losskit` reads (a case: no repeated key, nested arrays of numbers) and
//! writes (numbers as JSON can hold them, nested arrays from flat values).

mod read;
mod write;

pub use read::{describe, flatten, parse_unique};
pub use write::{nest, number, shortest_f32};

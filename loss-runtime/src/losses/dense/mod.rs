//! Losses that compare a prediction with a target element by element (the `dense`
//! family): denoising regressions, weighted least squares, NoProp's block objectives,
//! the pansharpening losses of Z-PNN and λ-PNN.

mod denoising;
mod mee;
mod noprop;
mod pansharpening;
mod weighted_least_squares;

pub use denoising::*;
pub use mee::*;
pub use noprop::*;
pub use pansharpening::*;
pub use weighted_least_squares::*;

//! The small, hand-written core: scalar math, the kernel interface, the dfdx glue.

pub mod alloc;
pub mod class_cosines;
pub mod draws;
pub mod foreign;
pub mod image;
pub mod info;
pub mod kernel;
pub mod math;
pub mod parallel;
pub mod real;
pub mod simd;
pub mod similarity;
pub mod state;
pub mod tape;

//! Evaluating a loss chosen at run time, from plain arrays (used by `losskit eval`).

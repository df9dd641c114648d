// A `SoftConfusion` has the fields `tp fp fn_ tn n pos neg`; `tpp` is a typo of `tp`.
use losskit::prelude::*;

#[loss(binary)]
pub fn precision(cm: SoftConfusion) -> Scalar {
    1.0 - cm.tpp / (cm.tp + cm.fp + 1e-9)
}

fn main() {}

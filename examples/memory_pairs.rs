//! scratch
use dfdx::prelude::*;
use std::panic;

fn try_variant(
    name: &str,
    f: impl Fn(
            Tensor<Rank2<4, 3>, f64, Cpu, OwnedTape<f64, Cpu>>,
        ) -> Tensor<Rank2<4, 4>, f64, Cpu, OwnedTape<f64, Cpu>>
        + panic::RefUnwindSafe,
) {
    let dev: Cpu = Cpu::seed_from_u64(1);
    let e: Tensor<Rank2<4, 3>, f64, _> = dev.sample_normal();
    let r = panic::catch_unwind(|| {
        let s = f(e.leaky_trace());
        let g = s.square().sum().backward();
        g.get(&e).array()
    });
    // reference: d/dE sum (E E^T)^2 = 4 S E
    let ea = e.array();
    let mut s = [[0.0; 4]; 4];
    for i in 0..4 {
        for j in 0..4 {
            for k in 0..3 {
                s[i][j] += ea[i][k] * ea[j][k];
            }
        }
    }
    let mut g = [[0.0; 3]; 4];
    for i in 0..4 {
        for k in 0..3 {
            for j in 0..4 {
                g[i][k] += 4.0 * s[i][j] * ea[j][k];
            }
        }
    }
    match r {
        Ok(got) => {
            let err = (0..4)
                .flat_map(|i| (0..3).map(move |k| (i, k)))
                .map(|(i, k)| (got[i][k] - g[i][k]).abs())
                .fold(0.0, f64::max);
            println!("{name}: ok, max grad err {err:e}");
        }
        Err(_) => println!("{name}: PANIC"),
    }
}

fn main() {
    panic::set_hook(Box::new(|_| {}));
    try_variant("with_empty_tape().permute()", |e| {
        let r = e.with_empty_tape().permute();
        e.matmul(r)
    });
    try_variant("retaped::<NoneTape>().permute() (constant)", |e| {
        let r = e.retaped::<NoneTape>().permute();
        e.matmul(r)
    });
    try_variant("with_empty_tape().permute().contiguous()", |e| {
        let r = e.with_empty_tape().permute::<Rank2<3, 4>, _>().contiguous();
        e.matmul(r)
    });
    try_variant("(with_empty_tape() * 1.0).permute()", |e| {
        let r = (e.with_empty_tape() * 1.0).permute();
        e.matmul(r)
    });
    try_variant("with_empty_tape().reshape().permute()", |e| {
        let r = e.with_empty_tape().reshape::<Rank2<4, 3>>().permute();
        e.matmul(r)
    });
    try_variant("with_empty_tape().to_dtype::<f64>()", |e| {
        let r = e.with_empty_tape().to_dtype::<f64>().permute();
        e.matmul(r)
    });
}

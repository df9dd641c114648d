//! Helpers shared by the `imbalanced_metric_loss`, `metric_learning_digits` and
//! `distillation_digits` examples: a seedable shuffler, a table of labelled feature rows read
//! from CSV, a stratified train/test split that standardises the features, and the
//! `--epochs` (and other count flags) command line.
//!
//! Each example includes it with `mod common;`; Cargo does not build it as an example of its
//! own. Every item here is used by every one of them.

use losskit::prelude::*;

/// A tiny, seedable generator (SplitMix64), so the examples need nothing beyond std.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// Feature rows of `F` numbers each, and one label of type `L` per row.
#[derive(Clone)]
pub struct Dataset<const F: usize, L> {
    /// The feature rows.
    pub rows: Vec<[f32; F]>,
    /// The rows' labels, in the same order.
    pub labels: Vec<L>,
}

/// No rows (written out, as a derive would ask `L: Default`).
impl<const F: usize, L> Default for Dataset<F, L> {
    fn default() -> Self {
        Self {
            rows: Vec::new(),
            labels: Vec::new(),
        }
    }
}

impl<const F: usize, L: Copy> Dataset<F, L> {
    /// The number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Appends one row and its label.
    pub fn push(&mut self, row: [f32; F], label: L) {
        self.rows.push(row);
        self.labels.push(label);
    }

    /// The rows at `indices` as an `[n, F]` input, with their labels.
    pub fn batch(
        &self,
        dev: &Cpu,
        indices: &[usize],
    ) -> (Tensor<(usize, Const<F>), f32, Cpu>, Vec<L>) {
        let x: Vec<f32> = indices.iter().flat_map(|&i| self.rows[i]).collect();
        let y = indices.iter().map(|&i| self.labels[i]).collect();
        (dev.tensor_from_vec(x, (indices.len(), Const::<F>)), y)
    }
}

/// Parses the rows of a CSV file whose text is `text`: after the first `header_lines`
/// lines, every line that is not blank holds `F` numbers and then a label, which
/// `parse_label` reads (fields are trimmed first). Errors name the place as
/// `path:line: what`, the line counted from 1; `path` is used for nothing else.
pub fn parse_csv<const F: usize, L: Copy>(
    path: &str,
    text: &str,
    header_lines: usize,
    parse_label: impl Fn(&str) -> Result<L, String>,
) -> Result<Dataset<F, L>, String> {
    let mut data = Dataset::default();
    for (index, line) in text
        .lines()
        .enumerate()
        .skip(header_lines)
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = |what: &str| format!("{path}:{}: {what}", index + 1);
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != F + 1 {
            return Err(bad(&format!("{} fields, expected {}", fields.len(), F + 1)));
        }
        let mut row = [0.0f32; F];
        for (value, field) in row.iter_mut().zip(&fields) {
            *value = field
                .trim()
                .parse()
                .map_err(|_| bad(&format!("bad number {field:?}")))?;
        }
        let label = parse_label(fields[F].trim()).map_err(|what| bad(&what))?;
        data.push(row, label);
    }
    Ok(data)
}

/// A training part and a test part of a [`Dataset`].
pub struct Split<const F: usize, L> {
    /// The part to train on.
    pub train: Dataset<F, L>,
    /// The held-out part.
    pub test: Dataset<F, L>,
}

/// Takes the `classes` in the order given, shuffles each one's rows with one generator
/// seeded with `seed` and holds out `test_fraction` of them (rounded); rows of any other
/// label are left out. Then standardises every feature with the training part's mean and
/// standard deviation: a feature becomes `(v − mean) / scale(sd)`, so `scale` decides what
/// a (nearly) constant feature is divided by.
pub fn stratified_split<const F: usize, L: Copy + PartialEq>(
    data: &Dataset<F, L>,
    classes: impl IntoIterator<Item = L>,
    test_fraction: f64,
    seed: u64,
    scale: impl Fn(f64) -> f64,
) -> Split<F, L> {
    let mut rng = SplitMix64(seed);
    let (mut train, mut test) = (Dataset::default(), Dataset::default());
    for class in classes {
        let mut idx: Vec<usize> = (0..data.len())
            .filter(|&i| data.labels[i] == class)
            .collect();
        rng.shuffle(&mut idx);
        let n_test = (idx.len() as f64 * test_fraction).round() as usize;
        for (k, &i) in idx.iter().enumerate() {
            let part = if k < n_test { &mut test } else { &mut train };
            part.push(data.rows[i], class);
        }
    }
    let n = train.len() as f64;
    let mut mean = [0.0f64; F];
    let mut var = [0.0f64; F];
    for row in &train.rows {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += f64::from(v) / n;
        }
    }
    for row in &train.rows {
        for ((s, &m), &v) in var.iter_mut().zip(&mean).zip(row) {
            *s += (f64::from(v) - m).powi(2) / n;
        }
    }
    let scale: Vec<f64> = var.iter().map(|&v| scale(v.sqrt())).collect();
    for part in [&mut train, &mut test] {
        for row in &mut part.rows {
            for ((v, &m), &s) in row.iter_mut().zip(&mean).zip(&scale) {
                *v = ((f64::from(*v) - m) / s) as f32;
            }
        }
    }
    Split { train, test }
}

/// Positive counts from the command line, one per flag in `flags` (`(name, default)`):
/// `--name N` or `--name=N`, else the environment variable `LOSSKIT_NAME` (the name in
/// upper case), else the default. Any other argument is an error whose usage line names the
/// example being built and its flags.
///
/// ```text
/// let [epochs, seeds] = counts_from_args([("epochs", 30), ("seeds", 5)])?;
/// ```
pub fn counts_from_args<const N: usize>(flags: [(&str, usize); N]) -> Result<[usize; N], String> {
    let parse = |name: &str, s: &str| {
        s.parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{name} must be a positive integer, got {s:?}"))
    };
    let usage = || {
        let flags: Vec<String> = flags
            .iter()
            .map(|(name, _)| format!("[--{name} N]"))
            .collect();
        format!("usage: {} {}", env!("CARGO_CRATE_NAME"), flags.join(" "))
    };
    let mut given: [Option<usize>; N] = [None; N];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_string(), Some(value.to_string())),
            None => (arg.clone(), None),
        };
        let slot = flags
            .iter()
            .position(|(name, _)| flag.strip_prefix("--") == Some(name))
            .ok_or_else(|| format!("unexpected argument {arg:?}; {}", usage()))?;
        let value = match inline.or_else(|| args.next()) {
            Some(value) => value,
            None => return Err(format!("{flag} needs a value; {}", usage())),
        };
        given[slot] = Some(parse(flags[slot].0, &value)?);
    }
    let mut out = [0; N];
    for (k, (name, default)) in flags.iter().enumerate() {
        out[k] = match given[k] {
            Some(n) => n,
            None => match std::env::var(format!("LOSSKIT_{}", name.to_uppercase())) {
                Ok(v) => parse(name, &v)?,
                Err(_) => *default,
            },
        };
    }
    Ok(out)
}

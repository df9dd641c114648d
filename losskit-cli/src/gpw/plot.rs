//! The pair weights as a PNG scatter plot: weight against similarity, positive and
//! negative pairs in two colours, text in a font bundled with the binary.

use std::path::Path;

use losskit::catalogue::Entry;
use losskit::family::dynamic::PairWeights;
use plotters::prelude::{
    BitMapBackend, ChartBuilder, Circle, Color, FontStyle, IntoDrawingArea, PathElement, RGBColor,
    SeriesLabelPosition, BLACK, WHITE,
};

use super::stats::{metric_words, PairStats};
use crate::failure::{Failure, Result};

/// Draws the scatter plot of weight against similarity to the PNG file `path`.
pub fn draw(
    path: &Path,
    entry: &Entry,
    w: &PairWeights,
    stats: &PairStats,
    batch: &str,
) -> Result<()> {
    register_font();
    let failure =
        |e: &dyn std::fmt::Display| Failure(format!("cannot draw `{}`: {e}", path.display()));
    let (metric, _) = metric_words(w);
    let root = BitMapBackend::new(path, (1000, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| failure(&e))?;
    let title = format!("{}: pair weights W = ∂L/∂S", entry.name());
    let area = root.titled(&title, (FONT, 28)).map_err(|e| failure(&e))?;
    let (x0, x1) = padded(stats.lo, stats.hi);
    let (w_lo, w_hi) = w
        .weights
        .iter()
        .fold((0.0f64, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    let (y0, y1) = padded(w_lo, w_hi);
    let mut chart = ChartBuilder::on(&area)
        .caption(format!("{batch}; S: {metric}"), (FONT, 16))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(90)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| failure(&e))?;
    let scale = w_lo.abs().max(w_hi.abs());
    let y_label = |y: &f64| {
        if scale >= 0.01 || scale == 0.0 {
            format!("{y:.3}")
        } else {
            format!("{y:.1e}")
        }
    };
    chart
        .configure_mesh()
        .x_desc(format!("{metric} S_ij"))
        .y_desc("weight w_ij = ∂L/∂S_ij")
        .axis_desc_style((FONT, 18))
        .label_style((FONT, 14))
        .y_label_formatter(&y_label)
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| failure(&e))?;
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(x0, 0.0), (x1, 0.0)],
            BLACK.mix(0.5),
        )))
        .map_err(|e| failure(&e))?;
    // negatives first: there are many more of them, and the positives stay visible on top
    for (side, color, name) in [
        (&stats.negative, NEGATIVE, "negative"),
        (&stats.positive, POSITIVE, "positive"),
    ] {
        chart
            .draw_series(
                side.points
                    .iter()
                    .map(|&p| Circle::new(p, 3, color.mix(0.55).filled())),
            )
            .map_err(|e| failure(&e))?
            .label(format!(
                "{name} pairs ({}, {} with w ≠ 0)",
                side.count, side.nonzero
            ))
            .legend(move |(x, y)| Circle::new((x, y), 5, color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()
        .map_err(|e| failure(&e))?;
    root.present().map_err(|e| failure(&e))?;
    Ok(())
}

/// The font every text of the plot uses, bundled in the binary (DejaVu Sans).
const FONT: &str = "sans-serif";

/// Colours of the positive and negative pairs (a blue and an orange-red).
const POSITIVE: RGBColor = RGBColor(31, 100, 200);
const NEGATIVE: RGBColor = RGBColor(225, 80, 30);

/// Registers the bundled font as [`FONT`]; plotters draws text only with registered fonts.
fn register_font() {
    // a font compiled into the binary always parses; if it did not, text would be missing
    // from the plot, not wrong
    let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
}

/// `[lo, hi]` widened by 5% on each side (by 1 when empty).
fn padded(lo: f64, hi: f64) -> (f64, f64) {
    let pad = if hi > lo { 0.05 * (hi - lo) } else { 1.0 };
    (lo - pad, hi + pad)
}

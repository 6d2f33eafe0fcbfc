//! Figures from samples: medians, paired ratios, percentiles and least squares.

pub(crate) fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The `j`-th of `k` consecutive slices of `0..total`.
pub(crate) fn slice(total: usize, j: usize, k: usize) -> std::ops::Range<usize> {
    total * j / k..total * (j + 1) / k
}

/// The median over rounds of `a[j] / b[j]` (each pair measured next to each other), and
/// the range of those ratios.
pub(crate) fn paired(a: &[f64], b: &[f64]) -> (f64, f64, f64) {
    let ratios: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (median(&ratios), lo, hi)
}

pub(crate) fn ratio_line(label: &str, (value, lo, hi): (f64, f64, f64), target: f64) -> String {
    let verdict = if value <= target { "met" } else { "missed" };
    format!("{label}: {value:.2} (rounds {lo:.2}–{hi:.2}; target ≤ {target}: {verdict})")
}

/// Least squares of `y = a + b x`: `(a, b, largest residual)`.
pub(crate) fn fit(points: &[(f64, f64)]) -> (f64, f64, f64) {
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
    let (mx, my) = (sx / n, sy / n);
    let sxx: f64 = points.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let a = my - b * mx;
    let worst = points
        .iter()
        .map(|(x, y)| (y - (a + b * x)).abs())
        .fold(0.0, f64::max);
    (a, b, worst)
}

pub(crate) fn stats(mut samples: Vec<f64>) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at =
        |p: f64| samples[((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1];
    (at(0.5), at(0.99), samples[samples.len() - 1])
}

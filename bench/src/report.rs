//! The numbers of one run and the table they are printed as (plain text on
//! stdout, Markdown for BENCHMARKS.md).

use std::fmt::Write as _;

/// One contender on one input.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub contender: String,
    pub partitions: i32,
    pub size: usize,
    /// Which round of the run (from 0).
    pub round: usize,
    /// Output records counted during the throughput phase.
    pub messages: u64,
    /// From the first output record read to the last one.
    pub seconds: f64,
    /// Probe latency minus the direct produce → read latency, p50 and p99, ms.
    pub added_p50_ms: Option<f64>,
    pub added_p99_ms: Option<f64>,
    /// CPU seconds over the throughput phase.
    pub phase_cpu: Option<f64>,
    /// CPU seconds over the process's whole life (start, drain, probes, stop).
    pub cpu: f64,
    pub peak_rss: u64,
    /// Why a number is missing or to be read with care.
    pub note: Option<String>,
}

impl Row {
    pub fn msgs_per_sec(&self) -> f64 {
        if self.seconds > 0.0 && self.messages > 1 {
            (self.messages - 1) as f64 / self.seconds
        } else {
            0.0
        }
    }

    pub fn mb_per_sec(&self) -> f64 {
        self.msgs_per_sec() * self.size as f64 / 1e6
    }

    pub fn cpu_us_per_msg(&self) -> Option<f64> {
        self.phase_cpu
            .filter(|_| self.messages > 0)
            .map(|c| c * 1e6 / self.messages as f64)
    }
}

/// The `q`-quantile (0..=1) of `samples` by nearest rank; None when empty.
pub fn quantile(samples: &[u64], q: f64) -> Option<u64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

pub fn size_label(size: usize) -> String {
    match size {
        s if s >= 1_000 && s % 1_000 == 0 => format!("{} KB", s / 1_000),
        s => format!("{s} B"),
    }
}

/// The contender every ratio is taken against.
pub const BASELINE: &str = "passthrough-fast";

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

/// One contender on one input over every round: medians, and ratios to
/// [`BASELINE`] taken round by round (each round's value over the
/// baseline's of the same round, then the median of those).
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub contender: String,
    pub partitions: i32,
    pub size: usize,
    /// Rounds that gave a throughput.
    pub rounds: usize,
    pub msgs_per_sec: Option<f64>,
    pub mb_per_sec: Option<f64>,
    /// msg/s ÷ the baseline's, per round in round order, and their median.
    pub ratios: Vec<f64>,
    pub ratio: Option<f64>,
    pub cpu_us: Option<f64>,
    pub cpu_ratio: Option<f64>,
    pub peak_mib: Option<f64>,
    pub peak_ratio: Option<f64>,
    pub added_p50_ms: Option<f64>,
    pub added_p99_ms: Option<f64>,
    pub p50_ratio: Option<f64>,
    pub p99_ratio: Option<f64>,
    pub note: String,
}

/// Below this a baseline latency is noise, and a ratio to it means nothing.
const LATENCY_FLOOR_MS: f64 = 0.05;

pub fn summarize(rows: &[Row]) -> Vec<Summary> {
    let mut cells: Vec<(String, i32, usize)> = Vec::new();
    for r in rows {
        let key = (r.contender.clone(), r.partitions, r.size);
        if !cells.contains(&key) {
            cells.push(key);
        }
    }
    cells
        .into_iter()
        .map(|(contender, partitions, size)| {
            let mine: Vec<&Row> = rows
                .iter()
                .filter(|r| {
                    r.contender == contender && r.partitions == partitions && r.size == size
                })
                .collect();
            let base = |round: usize| {
                rows.iter().find(|b| {
                    b.contender == BASELINE
                        && b.partitions == partitions
                        && b.size == size
                        && b.round == round
                })
            };
            // Each metric's values and its per-round ratios to the baseline.
            let metric = |get: &dyn Fn(&Row) -> Option<f64>, floor: f64| {
                let values: Vec<f64> = mine.iter().filter_map(|r| get(r)).collect();
                let ratios: Vec<f64> = mine
                    .iter()
                    .filter_map(|r| {
                        let v = get(r)?;
                        let b = get(base(r.round)?)?;
                        (b > floor).then(|| v / b)
                    })
                    .collect();
                (median(&values), median(&ratios), ratios)
            };
            let rate = |r: &Row| Some(r.msgs_per_sec()).filter(|v| *v > 0.0);
            let (msgs_per_sec, ratio, ratios) = metric(&rate, 0.0);
            let (cpu_us, cpu_ratio, _) = metric(&Row::cpu_us_per_msg, 0.0);
            let peak =
                |r: &Row| Some(r.peak_rss as f64 / (1 << 20) as f64).filter(|_| r.peak_rss > 0);
            let (peak_mib, peak_ratio, _) = metric(&peak, 0.0);
            let (added_p50_ms, p50_ratio, _) = metric(&|r: &Row| r.added_p50_ms, LATENCY_FLOOR_MS);
            let (added_p99_ms, p99_ratio, _) = metric(&|r: &Row| r.added_p99_ms, LATENCY_FLOOR_MS);
            let note = mine
                .iter()
                .filter_map(|r| {
                    r.note
                        .as_ref()
                        .map(|n| format!("round {}: {n}", r.round + 1))
                })
                .collect::<Vec<_>>()
                .join("; ");
            Summary {
                rounds: mine.iter().filter(|r| rate(r).is_some()).count(),
                mb_per_sec: msgs_per_sec.map(|m| m * size as f64 / 1e6),
                contender,
                partitions,
                size,
                msgs_per_sec,
                ratios,
                ratio,
                cpu_us,
                cpu_ratio,
                peak_mib,
                peak_ratio,
                added_p50_ms,
                added_p99_ms,
                p50_ratio,
                p99_ratio,
                note,
            }
        })
        .collect()
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

const HEADER: [&str; 17] = [
    "contender",
    "parts",
    "size",
    "rounds",
    "msg/s",
    "MB/s",
    "vs fast",
    "vs fast by round",
    "CPU µs/msg",
    "CPU vs fast",
    "peak MiB",
    "peak vs fast",
    "added p50 ms",
    "added p99 ms",
    "p50 vs fast",
    "p99 vs fast",
    "note",
];

fn cells(summaries: &[Summary]) -> Vec<[String; 17]> {
    summaries
        .iter()
        .map(|s| {
            [
                s.contender.clone(),
                s.partitions.to_string(),
                size_label(s.size),
                s.rounds.to_string(),
                opt(s.msgs_per_sec, 0),
                opt(s.mb_per_sec, 1),
                opt(s.ratio, 2),
                s.ratios
                    .iter()
                    .map(|r| format!("{r:.2}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                opt(s.cpu_us, 1),
                opt(s.cpu_ratio, 2),
                opt(s.peak_mib, 0),
                opt(s.peak_ratio, 2),
                opt(s.added_p50_ms, 1),
                opt(s.added_p99_ms, 1),
                opt(s.p50_ratio, 2),
                opt(s.p99_ratio, 2),
                s.note.clone(),
            ]
        })
        .collect()
}

/// What the ratio columns are.
pub const LEGEND: &str = "Each figure is the median over the rounds; each `vs fast` is the median of \
the per-round ratios to passthrough-fast in the same round (`vs fast by round` lists the msg/s ones). \
Latency ratios are left out where passthrough-fast added under 0.05 ms.";

pub fn text_table(summaries: &[Summary]) -> String {
    let cells = cells(summaries);
    let mut widths: Vec<usize> = HEADER.iter().map(|h| h.chars().count()).collect();
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, row: &[String]| {
        for (i, (c, w)) in row.iter().zip(&widths).enumerate() {
            let pad = w - c.chars().count();
            if i == 0 || i == row.len() - 1 {
                let _ = write!(out, "{c}{}  ", " ".repeat(pad));
            } else {
                let _ = write!(out, "{}{c}  ", " ".repeat(pad));
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    };
    line(&mut out, &HEADER.map(String::from));
    for row in &cells {
        line(&mut out, row);
    }
    out
}

pub fn markdown_table(summaries: &[Summary]) -> String {
    let mut out = format!("| {} |\n", HEADER.join(" | "));
    out.push_str("|---|");
    out.push_str(&"---:|".repeat(HEADER.len() - 2));
    out.push_str("---|\n");
    for row in cells(summaries) {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let samples: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(quantile(&samples, 0.5), Some(50));
        assert_eq!(quantile(&samples, 0.99), Some(99));
        assert_eq!(quantile(&samples, 1.0), Some(100));
        assert_eq!(quantile(&[7], 0.99), Some(7));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn ratios_are_per_round_against_the_fast_passthrough_of_the_same_cell() {
        let row = |contender: &str, partitions, round, messages, seconds| Row {
            contender: contender.into(),
            partitions,
            size: 1_000,
            round,
            messages,
            seconds,
            ..Row::default()
        };
        let rows = vec![
            row(BASELINE, 1, 0, 1_001, 1.0),
            row("weir-noop", 1, 0, 901, 1.0),
            row(BASELINE, 4, 0, 2_001, 1.0),
            row("weir-noop", 4, 0, 1_001, 1.0),
            // Round 2: the baseline halves, weir stays: its ratio doubles.
            row(BASELINE, 1, 1, 501, 1.0),
            row("weir-noop", 1, 1, 901, 1.0),
            row(BASELINE, 1, 2, 1_001, 1.0),
            row("weir-noop", 1, 2, 1_001, 1.0),
        ];
        let summaries = summarize(&rows);
        assert_eq!(summaries.len(), 4);
        let noop1 = &summaries[1];
        assert_eq!(
            (noop1.contender.as_str(), noop1.partitions),
            ("weir-noop", 1)
        );
        assert_eq!(noop1.rounds, 3);
        assert_eq!(noop1.ratios, vec![0.9, 1.8, 1.0]);
        assert_eq!(noop1.ratio, Some(1.0));
        assert_eq!(noop1.msgs_per_sec, Some(900.0));
        let table = cells(&summaries);
        assert_eq!(table[3][6], "0.50");
        assert_eq!(table[1][7], "0.90 1.80 1.00");
        let md = markdown_table(&summaries);
        assert_eq!(md.lines().count(), 2 + summaries.len());
        assert!(
            md.contains("| weir-noop | 4 | 1 KB | 1 | 1000 | 1.0 | 0.50 | 0.50 |"),
            "{md}"
        );
    }
}

//! The numbers of one run and the table they are printed as (plain text on
//! stdout, Markdown for BENCHMARKS.md).

use std::fmt::Write as _;

/// One contender on one input.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub contender: String,
    pub partitions: i32,
    pub size: usize,
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

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

const HEADER: [&str; 12] = [
    "contender",
    "parts",
    "size",
    "msg/s",
    "MB/s",
    "vs passthrough",
    "added p50 ms",
    "added p99 ms",
    "CPU µs/msg",
    "CPU s",
    "peak MiB",
    "note",
];

/// The cells of each row; the ratio is against the passthrough row of the
/// same partitions and size.
fn cells(rows: &[Row]) -> Vec<[String; 12]> {
    rows.iter()
        .map(|r| {
            let base = rows.iter().find(|b| {
                b.contender == "passthrough" && b.partitions == r.partitions && b.size == r.size
            });
            let ratio = base
                .map(Row::msgs_per_sec)
                .filter(|b| *b > 0.0)
                .map(|b| r.msgs_per_sec() / b);
            [
                r.contender.clone(),
                r.partitions.to_string(),
                size_label(r.size),
                format!("{:.0}", r.msgs_per_sec()),
                format!("{:.1}", r.mb_per_sec()),
                opt(ratio, 2),
                opt(r.added_p50_ms, 1),
                opt(r.added_p99_ms, 1),
                opt(r.cpu_us_per_msg(), 1),
                format!("{:.1}", r.cpu),
                format!("{:.0}", r.peak_rss as f64 / (1 << 20) as f64),
                r.note.clone().unwrap_or_default(),
            ]
        })
        .collect()
}

pub fn text_table(rows: &[Row]) -> String {
    let cells = cells(rows);
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

pub fn markdown_table(rows: &[Row]) -> String {
    let mut out = format!("| {} |\n", HEADER.join(" | "));
    out.push_str("|---|");
    out.push_str(&"---:|".repeat(HEADER.len() - 2));
    out.push_str("---|\n");
    for row in cells(rows) {
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
    fn ratios_are_against_the_passthrough_of_the_same_cell() {
        let row = |contender: &str, partitions, messages, seconds| Row {
            contender: contender.into(),
            partitions,
            size: 1_000,
            messages,
            seconds,
            ..Row::default()
        };
        let rows = vec![
            row("passthrough", 1, 1_001, 1.0),
            row("weir-noop", 1, 901, 1.0),
            row("passthrough", 4, 2_001, 1.0),
            row("weir-noop", 4, 1_001, 1.0),
        ];
        let table = cells(&rows);
        assert_eq!(table[1][5], "0.90");
        assert_eq!(table[3][5], "0.50");
        assert_eq!(table[1][3], "900");
        assert_eq!(table[1][4], "0.9");
        let md = markdown_table(&rows);
        assert_eq!(md.lines().count(), 2 + rows.len());
        assert!(
            md.contains("| weir-noop | 4 | 1 KB | 1000 | 1.0 | 0.50 |"),
            "{md}"
        );
    }
}

//! The endpoint page's chart of the last 24 hours: finished attempts per hour, successes and
//! failures, drawn server-side as inline SVG bars (no script, no library) with a text summary
//! and a table of the same numbers for screen readers; and the 24 h success rate of the
//! application page's endpoint list.
//!
//! Counts come from `Store::endpoint_hours`, which reads only the window's attempts (an ID
//! range on the `(endpoint_id, id)` index). This module only lays out numbers; it must not
//! decide what counts as success.

use herald_core::ids::EndpointId;
use herald_core::{now_millis, Millis};
use herald_store::HourCount;

use super::page::{ConsoleResult, When};
use crate::state::AppState;

const HOUR_MS: Millis = 3_600_000;
/// Hours in the chart (the current one last).
const HOURS: i64 = 24;
/// Bar width and the drawing's height, in SVG units.
const BAR_W: i64 = 20;
const HEIGHT: i64 = 100;

/// One hour's bar: the success part sits at the bottom, failures on top.
pub struct Bar {
    pub x: i64,
    /// `HH:00` in UTC (the table's row header).
    pub hour: String,
    pub success: u64,
    pub fail: u64,
    pub success_y: i64,
    pub success_h: i64,
    pub fail_y: i64,
    pub fail_h: i64,
}

/// What `templates/console/chart.html` draws.
pub struct DayChart {
    pub bars: Vec<Bar>,
    pub width: i64,
    pub height: i64,
    /// The summary a screen reader reads for the drawing.
    pub summary: String,
    /// The largest hour's total (the scale).
    pub peak: u64,
}

/// The first millisecond of the chart's oldest hour.
fn window_start(now: Millis) -> Millis {
    (now / HOUR_MS) * HOUR_MS - (HOURS - 1) * HOUR_MS
}

/// Success rate in percent of `success` among finished, "—" when none finished.
pub fn rate(success: u64, fail: u64) -> String {
    match success + fail {
        0 => "—".into(),
        n => format!("{:.1} %", success as f64 * 100.0 / n as f64),
    }
}

/// Lays out `counts` (from `since`) as 24 hourly bars.
pub fn layout(since: Millis, counts: &[HourCount]) -> DayChart {
    let peak = counts
        .iter()
        .map(|c| c.success + c.fail)
        .max()
        .unwrap_or(0)
        .max(1);
    let scale = |n: u64| ((n * HEIGHT as u64).div_ceil(peak)) as i64;
    let bars: Vec<Bar> = (0..HOURS)
        .map(|i| {
            let start = since + i * HOUR_MS;
            let c = counts.iter().find(|c| c.start == start);
            let (success, fail) = c.map_or((0, 0), |c| (c.success, c.fail));
            let (sh, fh) = (scale(success), scale(fail));
            let when = When::at(start);
            Bar {
                x: i * BAR_W,
                hour: when.text.get(11..16).unwrap_or_default().to_string(),
                success,
                fail,
                success_y: HEIGHT - sh,
                success_h: sh,
                fail_y: HEIGHT - sh - fh,
                fail_h: fh,
            }
        })
        .collect();
    let success: u64 = bars.iter().map(|b| b.success).sum();
    let fail: u64 = bars.iter().map(|b| b.fail).sum();
    let busiest = bars
        .iter()
        .max_by_key(|b| b.success + b.fail)
        .filter(|b| b.success + b.fail > 0)
        .map(|b| format!("; busiest hour {} UTC", b.hour))
        .unwrap_or_default();
    DayChart {
        width: HOURS * BAR_W,
        height: HEIGHT,
        summary: format!(
            "Attempts per hour over the last 24 hours: {success} succeeded, {fail} failed{busiest}."
        ),
        peak,
        bars,
    }
}

/// The chart of the endpoint `ep`'s last 24 hours.
pub async fn day_chart(st: &AppState, ep: &EndpointId) -> ConsoleResult<DayChart> {
    let since = window_start(now_millis());
    let counts = st.store().endpoint_hours(ep, since).await?;
    Ok(layout(since, &counts))
}

/// The endpoint's success rate over the last 24 hours (finished attempts).
pub async fn day_rate(st: &AppState, ep: &EndpointId) -> ConsoleResult<String> {
    let counts = st
        .store()
        .endpoint_hours(ep, now_millis() - HOURS * HOUR_MS)
        .await?;
    let (s, f) = counts
        .iter()
        .fold((0, 0), |(s, f), c| (s + c.success, f + c.fail));
    Ok(rate(s, f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_stack_failures_on_successes_and_scale_to_the_busiest_hour() {
        let since = window_start(1_800_000_000_000);
        let counts = [
            HourCount {
                start: since,
                success: 3,
                fail: 1,
            },
            HourCount {
                start: since + 23 * HOUR_MS,
                success: 0,
                fail: 2,
            },
        ];
        let c = layout(since, &counts);
        assert_eq!(c.bars.len(), 24);
        let first = &c.bars[0];
        assert_eq!((first.success_h, first.fail_h), (75, 25));
        assert_eq!(first.fail_y + first.fail_h, first.success_y);
        assert_eq!(c.bars[23].fail_h, 50);
        assert_eq!(c.bars[5].success_h + c.bars[5].fail_h, 0);
        assert!(c.summary.contains("3 succeeded, 3 failed"), "{}", c.summary);
        assert_eq!(rate(3, 1), "75.0 %");
        assert_eq!(rate(0, 0), "—");
    }
}

//! The dashboard's chart: accepted / delivered / failed per hour as server-rendered SVG
//! (no script, no external asset). Pure: numbers in, markup out.

use std::fmt::Write;

/// One hour's bars.
pub struct HourBars {
    pub label: String,
    pub accepted: i64,
    pub delivered: i64,
    pub failed: i64,
}

const WIDTH: i64 = 720;
const HEIGHT: i64 = 160;
const SERIES: [(&str, &str); 3] = [
    ("accepted", "#4a78c2"),
    ("delivered", "#3c9a5f"),
    ("failed", "#c24a4a"),
];

/// Three bars per hour scaled to the largest count; every bar has a `<title>` with its value.
pub fn hourly_svg(hours: &[HourBars]) -> String {
    let max = hours
        .iter()
        .flat_map(|h| [h.accepted, h.delivered, h.failed])
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = WIDTH / hours.len().max(1) as i64;
    let bar = (slot / 4).max(1);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {WIDTH} {}\" \
         role=\"img\" aria-label=\"messages per hour, last 24 hours\">",
        HEIGHT + 20
    );
    for (i, hour) in hours.iter().enumerate() {
        let x0 = i as i64 * slot;
        for (j, ((name, color), value)) in SERIES
            .iter()
            .zip([hour.accepted, hour.delivered, hour.failed])
            .enumerate()
        {
            let height = value * HEIGHT / max;
            let _ = write!(
                svg,
                "<rect x=\"{}\" y=\"{}\" width=\"{bar}\" height=\"{height}\" fill=\"{color}\">\
                 <title>{} {name}: {value}</title></rect>",
                x0 + j as i64 * bar,
                HEIGHT - height,
                hour.label,
            );
        }
        if i % 3 == 0 {
            let _ = write!(
                svg,
                "<text x=\"{x0}\" y=\"{}\" font-size=\"10\">{}</text>",
                HEIGHT + 14,
                hour.label
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_count() {
        let hours = vec![
            HourBars {
                label: "10:00".into(),
                accepted: 10,
                delivered: 5,
                failed: 0,
            },
            HourBars {
                label: "11:00".into(),
                accepted: 20,
                delivered: 20,
                failed: 1,
            },
        ];
        let svg = hourly_svg(&hours);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<rect").count(), 6);
        assert!(svg.contains(&format!(
            "height=\"{HEIGHT}\" fill=\"#4a78c2\"><title>11:00 accepted: 20"
        )));
        assert!(svg.contains("height=\"80\" fill=\"#4a78c2\"><title>10:00 accepted: 10"));
        assert!(svg.contains("<title>11:00 failed: 1</title>"));
    }

    #[test]
    fn no_traffic_draws_empty_bars() {
        let hours = vec![HourBars {
            label: "00:00".into(),
            accepted: 0,
            delivered: 0,
            failed: 0,
        }];
        assert!(hourly_svg(&hours).contains("height=\"0\""));
    }
}

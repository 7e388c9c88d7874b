//! The chart toolkit: a frame, linear or log scales, ticks and line series
//! drawn as one inline SVG, with no coordinate that is `NaN` or infinite.

use std::fmt::{self, Write as _};

use super::escape;
use crate::units::compact;

/// Line colours, cycled: distinguishable and readable on white.
pub(super) const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
];

/// A chart's size and the margins around its plot area, in SVG units.
pub(super) struct Frame {
    pub(super) width: f64,
    pub(super) height: f64,
    pub(super) left: f64,
    pub(super) right: f64,
    pub(super) top: f64,
    pub(super) bottom: f64,
}

impl Frame {
    fn x(&self, fraction: f64) -> f64 {
        self.left + unit(fraction) * (self.width - self.left - self.right)
    }

    fn y(&self, fraction: f64) -> f64 {
        self.height - self.bottom - unit(fraction) * (self.height - self.top - self.bottom)
    }
}

/// A value range mapped onto 0..1, linearly or by log10.
pub(super) struct Scale {
    pub(super) min: f64,
    pub(super) max: f64,
    pub(super) log: bool,
}

impl Scale {
    fn fraction(&self, v: f64) -> f64 {
        let (lo, hi, v) = if self.log {
            let floor = self.min.max(f64::MIN_POSITIVE);
            (floor.log10(), self.max.log10(), v.max(floor).log10())
        } else {
            (self.min, self.max, v)
        };
        unit((v - lo) / (hi - lo))
    }
}

/// Clamps to 0..1; anything not finite (0/0 on a flat range) becomes 0.
fn unit(v: f64) -> f64 {
    if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// An SVG coordinate: one decimal, never `NaN` or infinite.
fn coord(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        "0".to_owned()
    }
}

#[derive(Clone)]
pub(super) struct Tick {
    pub(super) at: f64,
    pub(super) label: String,
}

pub(super) struct Series {
    pub(super) name: String,
    pub(super) color: &'static str,
    /// Data coordinates, in the chart's scales.
    pub(super) points: Vec<(f64, f64)>,
}

pub(super) struct Chart<'a> {
    pub(super) title: &'a str,
    pub(super) frame: Frame,
    pub(super) x: Scale,
    pub(super) x_ticks: Vec<Tick>,
    pub(super) x_label: &'a str,
    pub(super) y: Scale,
    pub(super) y_ticks: Vec<Tick>,
    pub(super) y_label: &'a str,
    pub(super) series: Vec<Series>,
    pub(super) legend: bool,
}

pub(super) fn draw(o: &mut String, c: &Chart) -> fmt::Result {
    let f = &c.frame;
    writeln!(
        o,
        "<svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{t}\">",
        w = coord(f.width),
        h = coord(f.height),
        t = escape(c.title)
    )?;
    let (x0, x1, y0, y1) = (f.x(0.0), f.x(1.0), f.y(0.0), f.y(1.0));
    writeln!(
        o,
        "<rect class=\"plot\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>",
        coord(x0),
        coord(y1),
        coord(x1 - x0),
        coord(y0 - y1)
    )?;
    writeln!(
        o,
        "<text class=\"title\" x=\"{}\" y=\"14\">{}</text>",
        coord(x0),
        escape(c.title)
    )?;
    for t in &c.y_ticks {
        let y = f.y(c.y.fraction(t.at));
        writeln!(
            o,
            "<line class=\"grid\" x1=\"{a}\" x2=\"{b}\" y1=\"{y}\" y2=\"{y}\"/>\
             <text x=\"{l}\" y=\"{ty}\" text-anchor=\"end\">{}</text>",
            escape(&t.label),
            a = coord(x0),
            b = coord(x1),
            y = coord(y),
            l = coord(x0 - 4.0),
            ty = coord(y + 4.0)
        )?;
    }
    for t in &c.x_ticks {
        let x = f.x(c.x.fraction(t.at));
        writeln!(
            o,
            "<line class=\"grid\" x1=\"{x}\" x2=\"{x}\" y1=\"{a}\" y2=\"{b}\"/>\
             <text x=\"{x}\" y=\"{ty}\" text-anchor=\"middle\">{}</text>",
            escape(&t.label),
            x = coord(x),
            a = coord(y1),
            b = coord(y0 + 4.0),
            ty = coord(y0 + 16.0)
        )?;
    }
    writeln!(
        o,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        coord((x0 + x1) / 2.0),
        coord(f.height - 6.0),
        escape(c.x_label)
    )?;
    let (ly, lx) = (coord((y0 + y1) / 2.0), coord(14.0));
    writeln!(
        o,
        "<text x=\"{lx}\" y=\"{ly}\" text-anchor=\"middle\" transform=\"rotate(-90 {lx} {ly})\">{}</text>",
        escape(c.y_label)
    )?;
    for s in &c.series {
        let mut pixels: Vec<(String, String)> = Vec::with_capacity(s.points.len());
        for &(x, y) in &s.points {
            let p = (coord(f.x(c.x.fraction(x))), coord(f.y(c.y.fraction(y))));
            // Thousands of curve points land on few pixels; keep one each.
            if pixels.last() != Some(&p) {
                pixels.push(p);
            }
        }
        if pixels.is_empty() {
            continue;
        }
        let points: Vec<String> = pixels.iter().map(|(x, y)| format!("{x},{y}")).collect();
        writeln!(
            o,
            "<polyline class=\"series\" data-series=\"{}\" fill=\"none\" stroke=\"{}\" \
             stroke-width=\"1.8\" stroke-linejoin=\"round\" points=\"{}\"><title>{}</title></polyline>",
            escape(&s.name),
            s.color,
            points.join(" "),
            escape(&s.name)
        )?;
        if pixels.len() == 1 {
            let (x, y) = &pixels[0];
            writeln!(o, "<circle cx=\"{x}\" cy=\"{y}\" r=\"3\" fill=\"{}\"/>", s.color)?;
        }
    }
    if c.legend {
        for (i, s) in c.series.iter().enumerate() {
            let y = y1 + 14.0 + 15.0 * i as f64;
            let x = x0 + 10.0;
            let empty = if s.points.is_empty() { " (no data)" } else { "" };
            writeln!(
                o,
                "<line x1=\"{}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"{}\" stroke-width=\"3\"/>\
                 <text x=\"{}\" y=\"{}\">{}{empty}</text>",
                coord(x),
                coord(x + 18.0),
                s.color,
                coord(x + 24.0),
                coord(y + 4.0),
                escape(&s.name),
                y = coord(y)
            )?;
        }
    }
    writeln!(o, "</svg>")
}

/// A "nice" step (1, 2 or 5 times a power of ten) giving about `count`
/// intervals over `range`.
fn nice_step(range: f64, count: f64) -> f64 {
    let raw = range / count;
    if !raw.is_finite() || raw <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = match raw / magnitude {
        n if n <= 1.0 => 1.0,
        n if n <= 2.0 => 2.0,
        n if n <= 5.0 => 5.0,
        _ => 10.0,
    };
    step * magnitude
}

/// Ticks from 0 to at least `max`; returns the axis end and the ticks.
pub(super) fn linear_ticks(max: f64, count: f64) -> (f64, Vec<Tick>) {
    let max = if max.is_finite() && max > 0.0 { max } else { 1.0 };
    let step = nice_step(max, count);
    let steps = (max / step).ceil().max(1.0) as u64;
    let ticks = (0..=steps)
        .map(|i| {
            let at = i as f64 * step;
            Tick {
                at,
                label: compact(at),
            }
        })
        .collect();
    (steps as f64 * step, ticks)
}

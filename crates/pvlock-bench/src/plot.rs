//! Plots: throughput vs threads (log scale) and fairness (min/max) vs threads, one line per lock,
//! one row of two panels per workload. The picture is built once as a list of primitives, then
//! written as SVG by hand and rasterised to PNG by a tiny anti-aliased renderer with the 8x8
//! bitmap font of the `font8x8` crate (no system fonts needed).
//!
//! Only cells without CPU hogs are plotted (the `noisy` scenario has the same thread count as
//! `native` and would overlap it).

use crate::output::Output;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

type Rgb = [u8; 3];

#[derive(Clone, Copy, PartialEq)]
enum Anchor {
    Start,
    Middle,
    End,
}

enum Prim {
    Line {
        x1: f64,
        y1: f64,
        x2: f64,
        y2: f64,
        w: f64,
        c: Rgb,
        dash: bool,
    },
    Rect {
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        fill: Option<Rgb>,
        stroke: Option<Rgb>,
    },
    Dot {
        x: f64,
        y: f64,
        r: f64,
        c: Rgb,
        square: bool,
    },
    /// `y` is the vertical middle of the text; `big` = title size.
    Text {
        x: f64,
        y: f64,
        s: String,
        anchor: Anchor,
        big: bool,
        c: Rgb,
        vertical: bool,
    },
}

const W: f64 = 1500.0;
const ROW_H: f64 = 470.0;
const BLACK: Rgb = [0, 0, 0];
const GREY: Rgb = [200, 200, 200];
const DARK: Rgb = [90, 90, 90];
const PALETTE: [Rgb; 18] = [
    [214, 39, 40],
    [31, 119, 180],
    [44, 160, 44],
    [255, 127, 14],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
    [0, 0, 128],
    [128, 0, 0],
    [0, 100, 0],
    [255, 0, 255],
    [0, 0, 0],
    [170, 110, 40],
    [70, 240, 240],
    [250, 190, 190],
];

/// The SVG and PNG paths for `--plot PATH`: `PATH.svg`/`PATH.png`, or PATH itself when it ends
/// in `.svg` (the PNG next to it).
pub fn paths(p: &Path) -> (PathBuf, PathBuf) {
    if p.extension().is_some_and(|e| e == "svg" || e == "png") {
        (p.with_extension("svg"), p.with_extension("png"))
    } else {
        let s = p.as_os_str().to_string_lossy();
        (
            PathBuf::from(format!("{s}.svg")),
            PathBuf::from(format!("{s}.png")),
        )
    }
}

struct Series {
    name: String,
    color: Rgb,
    dash: bool,
    /// (threads, ops/s, min/max)
    pts: Vec<(f64, f64, f64)>,
}

/// Writes the plots of `runs` (label, document); returns the SVG and PNG paths.
pub fn write(p: &Path, runs: &[(String, &Output)]) -> Result<(PathBuf, PathBuf), String> {
    let prims = scene(runs)?;
    let h = prims.1;
    let (svg_path, png_path) = paths(p);
    crate::output::write_atomic(&svg_path, svg(&prims.0, h).as_bytes())?;
    let png = png(&prims.0, h)?;
    crate::output::write_atomic(&png_path, &png).inspect_err(|_| {
        let _ = std::fs::remove_file(&svg_path);
    })?;
    Ok((svg_path, png_path))
}

fn scene(runs: &[(String, &Output)]) -> Result<(Vec<Prim>, f64), String> {
    let mut workloads: Vec<String> = Vec::new();
    for (_, d) in runs {
        for r in &d.results {
            if r.antagonists == 0 && !workloads.contains(&r.workload) {
                workloads.push(r.workload.clone());
            }
        }
    }
    if workloads.is_empty() {
        return Err("nothing to plot: no results without CPU hogs".into());
    }
    let mut locks: Vec<String> = Vec::new();
    for (_, d) in runs {
        for r in &d.results {
            if !locks.contains(&r.lock) {
                locks.push(r.lock.clone());
            }
        }
    }
    let h = 60.0 + ROW_H * workloads.len() as f64;
    let mut v = vec![Prim::Rect {
        x: 0.0,
        y: 0.0,
        w: W,
        h,
        fill: Some([255, 255, 255]),
        stroke: None,
    }];
    let cpus = runs[0].1.machine.cpus;
    let title = match runs {
        [(_, d)] => format!(
            "pvlock bench: {} CPUs{}, {}",
            cpus,
            if d.machine.hypervisor { " (VM)" } else { "" },
            d.machine.date
        ),
        _ => format!(
            "pvlock bench: {} runs, dashed/square = later runs",
            runs.len()
        ),
    };
    v.push(Prim::Text {
        x: W / 2.0,
        y: 24.0,
        s: title,
        anchor: Anchor::Middle,
        big: true,
        c: BLACK,
        vertical: false,
    });

    for (row, wl) in workloads.iter().enumerate() {
        let mut series: Vec<Series> = Vec::new();
        for (ri, (label, d)) in runs.iter().enumerate() {
            for (li, lock) in locks.iter().enumerate() {
                let mut pts: Vec<(f64, f64, f64)> = Vec::new();
                for r in d
                    .results
                    .iter()
                    .filter(|r| &r.workload == wl && &r.lock == lock && r.antagonists == 0)
                {
                    if !pts.iter().any(|p| p.0 == r.threads as f64) {
                        pts.push((r.threads as f64, r.ops_per_sec, r.min_max));
                    }
                }
                if pts.is_empty() {
                    continue;
                }
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                let name = if label.is_empty() {
                    lock.clone()
                } else {
                    format!("{lock} {label}")
                };
                series.push(Series {
                    name,
                    color: PALETTE[li % PALETTE.len()],
                    dash: ri > 0,
                    pts,
                });
            }
        }
        let top = 60.0 + ROW_H * row as f64;
        let xs: Vec<f64> = series
            .iter()
            .flat_map(|s| s.pts.iter().map(|p| p.0))
            .collect();
        let (xmin, xmax) = xs
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        let mut ticks: Vec<f64> = xs.clone();
        ticks.sort_by(f64::total_cmp);
        ticks.dedup();
        let ys: Vec<f64> = series
            .iter()
            .flat_map(|s| s.pts.iter().map(|p| p.1))
            .filter(|&y| y > 0.0)
            .collect();
        let ymin = ys.iter().copied().fold(f64::MAX, f64::min);
        let ymax = ys.iter().copied().fold(0.0, f64::max);
        let (lo, hi) = if ys.is_empty() {
            (0.0, 1.0)
        } else {
            (
                ymin.log10().floor(),
                (ymax.log10().ceil()).max(ymin.log10().floor() + 1.0),
            )
        };
        let xr = if xmax > xmin {
            (xmin.log2(), xmax.log2())
        } else {
            (xmin.log2() - 1.0, xmin.log2() + 1.0)
        };
        let panel = |v: &mut Vec<Prim>, x0: f64, title: &str, ylabel: &str, fair: bool| {
            let (pw, ph) = (480.0, 340.0);
            let (px, py) = (x0, top + 40.0);
            let fx = |t: f64| px + (t.log2() - xr.0) / (xr.1 - xr.0) * pw;
            let fy = |y: f64| -> f64 {
                if fair {
                    py + ph - y.clamp(0.0, 1.0) * ph
                } else {
                    let l = if y > 0.0 { y.log10().clamp(lo, hi) } else { lo };
                    py + ph - (l - lo) / (hi - lo) * ph
                }
            };
            v.push(Prim::Text {
                x: px + pw / 2.0,
                y: top + 18.0,
                s: title.into(),
                anchor: Anchor::Middle,
                big: true,
                c: BLACK,
                vertical: false,
            });
            // grid + y ticks
            let yticks: Vec<(f64, String)> = if fair {
                (0..=5)
                    .map(|i| (i as f64 / 5.0, format!("{:.1}", i as f64 / 5.0)))
                    .collect()
            } else {
                (lo as i32..=hi as i32)
                    .map(|e| (10f64.powi(e), pow10(e)))
                    .collect()
            };
            for (y, s) in yticks {
                let yy = fy(y);
                v.push(Prim::Line {
                    x1: px,
                    y1: yy,
                    x2: px + pw,
                    y2: yy,
                    w: 1.0,
                    c: GREY,
                    dash: false,
                });
                v.push(Prim::Text {
                    x: px - 8.0,
                    y: yy,
                    s,
                    anchor: Anchor::End,
                    big: false,
                    c: BLACK,
                    vertical: false,
                });
            }
            for &t in &ticks {
                let xx = fx(t);
                v.push(Prim::Line {
                    x1: xx,
                    y1: py,
                    x2: xx,
                    y2: py + ph,
                    w: 1.0,
                    c: GREY,
                    dash: false,
                });
                v.push(Prim::Text {
                    x: xx,
                    y: py + ph + 16.0,
                    s: format!("{t}"),
                    anchor: Anchor::Middle,
                    big: false,
                    c: BLACK,
                    vertical: false,
                });
            }
            v.push(Prim::Rect {
                x: px,
                y: py,
                w: pw,
                h: ph,
                fill: None,
                stroke: Some(BLACK),
            });
            let xl = format!("threads (on {cpus} CPUs)");
            v.push(Prim::Text {
                x: px + pw / 2.0,
                y: py + ph + 42.0,
                s: xl,
                anchor: Anchor::Middle,
                big: false,
                c: BLACK,
                vertical: false,
            });
            v.push(Prim::Text {
                x: px - 84.0,
                y: py + ph / 2.0,
                s: ylabel.into(),
                anchor: Anchor::Middle,
                big: false,
                c: BLACK,
                vertical: true,
            });
            for s in &series {
                let pts: Vec<(f64, f64)> = s
                    .pts
                    .iter()
                    .map(|p| (fx(p.0), fy(if fair { p.2 } else { p.1 })))
                    .collect();
                for w2 in pts.windows(2) {
                    v.push(Prim::Line {
                        x1: w2[0].0,
                        y1: w2[0].1,
                        x2: w2[1].0,
                        y2: w2[1].1,
                        w: 2.5,
                        c: s.color,
                        dash: s.dash,
                    });
                }
                for &(x, y) in &pts {
                    v.push(Prim::Dot {
                        x,
                        y,
                        r: 4.0,
                        c: s.color,
                        square: s.dash,
                    });
                }
            }
        };
        panel(
            &mut v,
            100.0,
            &format!("Throughput [{wl}] (log scale)"),
            "acquisitions / s",
            false,
        );
        panel(
            &mut v,
            680.0,
            &format!("Fairness [{wl}]"),
            "min/max per thread",
            true,
        );
        // legend
        let lx = 1190.0;
        for (i, s) in series.iter().enumerate() {
            let y = top + 50.0 + i as f64 * 20.0;
            v.push(Prim::Line {
                x1: lx,
                y1: y,
                x2: lx + 28.0,
                y2: y,
                w: 2.5,
                c: s.color,
                dash: s.dash,
            });
            v.push(Prim::Dot {
                x: lx + 14.0,
                y,
                r: 4.0,
                c: s.color,
                square: s.dash,
            });
            v.push(Prim::Text {
                x: lx + 36.0,
                y,
                s: s.name.clone(),
                anchor: Anchor::Start,
                big: false,
                c: DARK,
                vertical: false,
            });
        }
    }
    Ok((v, h))
}

/// `1`, `10`, `100`, `1k`, ... `100G`: compact tick labels.
fn pow10(e: i32) -> String {
    if e < 0 {
        return format!("1e{e}");
    }
    let units = ["", "k", "M", "G", "T"];
    let u = (e / 3) as usize;
    if u >= units.len() {
        return format!("1e{e}");
    }
    format!("{}{}", 10u64.pow((e % 3) as u32), units[u])
}

fn hex(c: Rgb) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn svg(prims: &[Prim], h: f64) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace">"#
    );
    for p in prims {
        let _ = match p {
            Prim::Line {
                x1,
                y1,
                x2,
                y2,
                w,
                c,
                dash,
            } => writeln!(
                o,
                r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{}" stroke-width="{w}"{}/>"#,
                hex(*c),
                if *dash {
                    r#" stroke-dasharray="8 5""#
                } else {
                    ""
                }
            ),
            Prim::Rect {
                x,
                y,
                w,
                h,
                fill,
                stroke,
            } => writeln!(
                o,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{}" stroke="{}"/>"#,
                fill.map_or("none".into(), hex),
                stroke.map_or("none".into(), hex)
            ),
            Prim::Dot {
                x,
                y,
                r,
                c,
                square: false,
            } => {
                writeln!(
                    o,
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="{r}" fill="{}"/>"#,
                    hex(*c)
                )
            }
            Prim::Dot {
                x,
                y,
                r,
                c,
                square: true,
            } => writeln!(
                o,
                r#"<rect x="{:.1}" y="{:.1}" width="{}" height="{}" fill="{}"/>"#,
                x - r,
                y - r,
                2.0 * r,
                2.0 * r,
                hex(*c)
            ),
            Prim::Text {
                x,
                y,
                s,
                anchor,
                big,
                c,
                vertical,
            } => {
                let a = match anchor {
                    Anchor::Start => "start",
                    Anchor::Middle => "middle",
                    Anchor::End => "end",
                };
                let rot = if *vertical {
                    format!(r#" transform="rotate(-90 {x:.1} {y:.1})""#)
                } else {
                    String::new()
                };
                writeln!(
                    o,
                    r#"<text x="{x:.1}" y="{y:.1}" font-size="{}" text-anchor="{a}" dominant-baseline="middle" fill="{}"{}{rot}>{}</text>"#,
                    if *big { 18 } else { 14 },
                    hex(*c),
                    if *big { r#" font-weight="bold""# } else { "" },
                    esc(s)
                )
            }
        };
    }
    o.push_str("</svg>\n");
    o
}

struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn blend(&mut self, x: i64, y: i64, c: Rgb, a: f64) {
        if x < 0 || y < 0 || x as usize >= self.w || y as usize >= self.h || a <= 0.0 {
            return;
        }
        let i = (y as usize * self.w + x as usize) * 3;
        let a = a.min(1.0);
        for (p, &c) in self.px[i..i + 3].iter_mut().zip(c.iter()) {
            let old = *p as f64;
            *p = (old + (c as f64 - old) * a).round() as u8;
        }
    }

    fn segment(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, w: f64, c: Rgb) {
        let hw = w / 2.0;
        let (minx, maxx) = (x1.min(x2) - hw - 1.0, x1.max(x2) + hw + 1.0);
        let (miny, maxy) = (y1.min(y2) - hw - 1.0, y1.max(y2) + hw + 1.0);
        let (dx, dy) = (x2 - x1, y2 - y1);
        let len2 = dx * dx + dy * dy;
        for y in miny.floor() as i64..=maxy.ceil() as i64 {
            for x in minx.floor() as i64..=maxx.ceil() as i64 {
                let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
                let t = if len2 > 0.0 {
                    (((px - x1) * dx + (py - y1) * dy) / len2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let (qx, qy) = (x1 + t * dx - px, y1 + t * dy - py);
                let d = (qx * qx + qy * qy).sqrt();
                self.blend(x, y, c, (hw + 0.5 - d).clamp(0.0, 1.0));
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, w: f64, c: Rgb, dash: bool) {
        if !dash {
            return self.segment(x1, y1, x2, y2, w, c);
        }
        let len = ((x2 - x1).powi(2) + (y2 - y1).powi(2)).sqrt();
        let mut t = 0.0;
        while t < len {
            let e = (t + 8.0).min(len);
            let f = |s: f64| (x1 + (x2 - x1) * s / len, y1 + (y2 - y1) * s / len);
            let (a, b) = (f(t), f(e));
            self.segment(a.0, a.1, b.0, b.1, w, c);
            t += 13.0;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn text(
        &mut self,
        x: f64,
        y: f64,
        s: &str,
        anchor: Anchor,
        scale: i64,
        c: Rgb,
        vertical: bool,
    ) {
        let adv = 8 * scale;
        let width = s.chars().count() as i64 * adv;
        let off = match anchor {
            Anchor::Start => 0,
            Anchor::Middle => width / 2,
            Anchor::End => width,
        };
        let (x, y) = (x.round() as i64, y.round() as i64);
        for (i, ch) in s.chars().enumerate() {
            let g = font8x8::legacy::BASIC_LEGACY
                .get(ch as usize)
                .copied()
                .unwrap_or([0; 8]);
            for (gy, row) in g.iter().enumerate() {
                for gx in 0..8 {
                    if row >> gx & 1 == 0 {
                        continue;
                    }
                    for sy in 0..scale {
                        for sx in 0..scale {
                            // along = position along the text, across = position across it
                            let along = i as i64 * adv + gx * scale + sx - off;
                            let across = gy as i64 * scale + sy - 4 * scale;
                            if vertical {
                                self.blend(x + across, y - along, c, 1.0);
                            } else {
                                self.blend(x + along, y + across, c, 1.0);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn png(prims: &[Prim], h: f64) -> Result<Vec<u8>, String> {
    let (w, h) = (W as usize, h as usize);
    let mut cv = Canvas {
        w,
        h,
        px: vec![255; w * h * 3],
    };
    for p in prims {
        match p {
            Prim::Line {
                x1,
                y1,
                x2,
                y2,
                w,
                c,
                dash,
            } => cv.line(*x1, *y1, *x2, *y2, *w, *c, *dash),
            Prim::Rect {
                x,
                y,
                w,
                h,
                fill,
                stroke,
            } => {
                if let Some(f) = fill {
                    for yy in *y as i64..(*y + *h) as i64 {
                        for xx in *x as i64..(*x + *w) as i64 {
                            cv.blend(xx, yy, *f, 1.0);
                        }
                    }
                }
                if let Some(s) = stroke {
                    let (x0, y0, x1, y1) = (*x, *y, *x + *w, *y + *h);
                    cv.segment(x0, y0, x1, y0, 1.5, *s);
                    cv.segment(x1, y0, x1, y1, 1.5, *s);
                    cv.segment(x1, y1, x0, y1, 1.5, *s);
                    cv.segment(x0, y1, x0, y0, 1.5, *s);
                }
            }
            Prim::Dot { x, y, r, c, square } => {
                for yy in (y - r - 1.0) as i64..=(y + r + 1.0) as i64 {
                    for xx in (x - r - 1.0) as i64..=(x + r + 1.0) as i64 {
                        let (dx, dy) = (xx as f64 + 0.5 - x, yy as f64 + 0.5 - y);
                        let d = if *square {
                            dx.abs().max(dy.abs())
                        } else {
                            (dx * dx + dy * dy).sqrt()
                        };
                        cv.blend(xx, yy, *c, (r + 0.5 - d).clamp(0.0, 1.0));
                    }
                }
            }
            Prim::Text {
                x,
                y,
                s,
                anchor,
                big,
                c,
                vertical,
            } => {
                // 8x8 glyphs at 2x (16 px), titles the same size drawn twice for weight.
                cv.text(*x, *y, s, *anchor, 2, *c, *vertical);
                if *big {
                    cv.text(*x + 1.0, *y, s, *anchor, 2, *c, *vertical);
                }
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w as u32, h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().map_err(|e| format!("PNG: {e}"))?;
        wr.write_image_data(&cv.px)
            .map_err(|e| format!("PNG: {e}"))?;
    }
    Ok(out)
}

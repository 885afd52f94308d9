//! Plots: throughput vs threads (log scale) and fairness (min/max) vs threads, one line per lock,
//! one row of two panels and a legend per workload; for the guest lab the same against vCPUs (its
//! drain workload: drain time and spin share). Drawn by plotters once as SVG and once into
//! an RGB bitmap that `png` encodes; the bitmap's text comes from the DejaVu Sans font embedded
//! in the `dejavu` crate (no system fonts needed).
//!
//! Only cells without CPU hogs are plotted (the `noisy` scenario has the same thread count as
//! `native` and would overlap it); short-lived cells get rows of their own.

use crate::files;
use crate::guest::output::GuestOutput;
use crate::output::Output;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor;
use std::path::{Path, PathBuf};

const W: u32 = 1500;
const TITLE_H: u32 = 60;
const ROW_H: u32 = 470;
const FONT: &str = "sans-serif";
const PALETTE: [RGBColor; 18] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 0, 128),
    RGBColor(128, 0, 0),
    RGBColor(0, 100, 0),
    RGBColor(255, 0, 255),
    RGBColor(0, 0, 0),
    RGBColor(170, 110, 40),
    RGBColor(70, 240, 240),
    RGBColor(250, 190, 190),
];

/// The SVG and PNG paths for `--plot PATH`: `PATH.svg`/`PATH.png`, or PATH itself when it ends
/// in `.svg` or `.png` (the other one next to it).
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

/// One line of a panel.
struct Series {
    name: String,
    color: RGBColor,
    /// A later run of a multi-run report: dashed, square markers.
    later: bool,
    /// (threads, left panel's value (log scale), right panel's value (0..1))
    pts: Vec<(f64, f64, f64)>,
}

/// A row of two panels: (caption, y axis) of each.
struct Row {
    left: (String, &'static str),
    right: (String, &'static str),
    series: Vec<Series>,
}

impl Row {
    fn throughput(name: String, series: Vec<Series>, per: &str) -> Row {
        Row {
            left: (
                format!("Throughput [{name}] (log scale)"),
                "acquisitions / s",
            ),
            right: (
                format!("Fairness [{name}]"),
                if per == "vCPU" {
                    "min/max per vCPU"
                } else {
                    "min/max per thread"
                },
            ),
            series,
        }
    }
}

/// What to draw: the title, the x axis and the rows.
struct Scene {
    title: String,
    x_desc: String,
    rows: Vec<Row>,
}

/// Writes the plots of `runs` (label, document); returns the SVG and PNG paths.
pub fn write(p: &Path, runs: &[(String, &Output)]) -> Result<(PathBuf, PathBuf), String> {
    write_scene(p, &scene(runs)?)
}

/// Writes the plots of guest lab `runs` (label, document); returns the SVG and PNG paths.
pub fn write_guest(
    p: &Path,
    runs: &[(String, &GuestOutput)],
) -> Result<(PathBuf, PathBuf), String> {
    write_scene(p, &guest_scene(runs)?)
}

fn write_scene(p: &Path, scene: &Scene) -> Result<(PathBuf, PathBuf), String> {
    let h = TITLE_H + ROW_H * scene.rows.len() as u32;
    let (svg_path, png_path) = paths(p);
    register_fonts()?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, h)).into_drawing_area();
        draw(&root, scene).map_err(|e| format!("SVG plot: {e}"))?;
        root.present().map_err(|e| format!("SVG plot: {e}"))?;
    }
    let png = png(scene, h)?;
    let created = files::write_output(&svg_path, svg.as_bytes())?;
    files::write_output(&png_path, &png).inspect_err(|_| {
        if created {
            let _ = std::fs::remove_file(&svg_path); // no half of a new pair left behind
        }
    })?;
    Ok((svg_path, png_path))
}

/// Draws into an RGB bitmap and encodes it as PNG.
fn png(scene: &Scene, h: u32) -> Result<Vec<u8>, String> {
    let mut px = vec![255u8; W as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut px, (W, h)).into_drawing_area();
        draw(&root, scene).map_err(|e| format!("PNG plot: {e}"))?;
        root.present().map_err(|e| format!("PNG plot: {e}"))?;
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, W, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut wr = enc.write_header().map_err(|e| format!("PNG: {e}"))?;
    wr.write_image_data(&px).map_err(|e| format!("PNG: {e}"))?;
    wr.finish().map_err(|e| format!("PNG: {e}"))?;
    Ok(out)
}

/// Gives plotters its font: the bitmap's text is drawn with it, and both backends measure text
/// with it for the layout (the SVG itself names the family only). One face only, regular: each
/// embedded face adds ~0.7 MB to the binary, which vmlab unpacks into guest memory.
fn register_fonts() -> Result<(), String> {
    static DONE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| "plot: the embedded DejaVu font does not load".to_string())
    })
    .clone()
}

/// The row a record is drawn in: its workload, short-lived cells apart.
fn row_key(r: &crate::output::Record) -> String {
    if r.scenario == "short-lived" {
        format!("{}, short-lived", r.workload)
    } else {
        r.workload.clone()
    }
}

fn scene(runs: &[(String, &Output)]) -> Result<Scene, String> {
    let mut workloads: Vec<String> = Vec::new();
    let mut locks: Vec<String> = Vec::new();
    for (_, d) in runs {
        for r in &d.results {
            if r.antagonists == 0 && !workloads.contains(&row_key(r)) {
                workloads.push(row_key(r));
            }
            if !locks.contains(&r.lock) {
                locks.push(r.lock.clone());
            }
        }
    }
    if workloads.is_empty() {
        return Err("nothing to plot: no results without CPU hogs".into());
    }
    let m = &runs[0].1.machine;
    let title = title(
        "pvlock bench",
        "",
        m.cpus,
        m.hypervisor,
        &m.date,
        runs.len(),
    );
    let mut rows = Vec::new();
    for wl in workloads {
        let mut series = Vec::new();
        for (ri, (label, d)) in runs.iter().enumerate() {
            for (li, lock) in locks.iter().enumerate() {
                let mut pts: Vec<(f64, f64, f64)> = Vec::new();
                for r in d
                    .results
                    .iter()
                    .filter(|r| row_key(r) == wl && &r.lock == lock && r.antagonists == 0)
                {
                    if !pts.iter().any(|p| p.0 == r.threads as f64) {
                        pts.push((r.threads as f64, r.ops_per_sec, r.min_max));
                    }
                }
                if pts.is_empty() {
                    continue;
                }
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                series.push(Series {
                    name: if label.is_empty() {
                        lock.clone()
                    } else {
                        format!("{lock} {label}")
                    },
                    color: PALETTE[li % PALETTE.len()],
                    later: ri > 0,
                    pts,
                });
            }
        }
        rows.push(Row::throughput(wl, series, "thread"));
    }
    Ok(Scene {
        title,
        x_desc: format!("threads (on {} CPUs)", m.cpus),
        rows,
    })
}

fn guest_scene(runs: &[(String, &GuestOutput)]) -> Result<Scene, String> {
    let mut workloads: Vec<String> = Vec::new();
    let mut locks: Vec<String> = Vec::new();
    for (_, d) in runs {
        for r in &d.results {
            if !workloads.contains(&r.workload) {
                workloads.push(r.workload.clone());
            }
            if !locks.contains(&r.lock) {
                locks.push(r.lock.clone());
            }
        }
    }
    if workloads.is_empty() {
        return Err("nothing to plot: no results".into());
    }
    let h = &runs[0].1.host;
    let title = title(
        "pvlock guest",
        "vCPUs on ",
        h.cpus,
        h.hypervisor,
        &h.date,
        runs.len(),
    );
    let mut rows = Vec::new();
    for wl in workloads {
        let drain = wl == "drain";
        let mut series = Vec::new();
        for (ri, (label, d)) in runs.iter().enumerate() {
            for (li, lock) in locks.iter().enumerate() {
                let mut pts: Vec<(f64, f64, f64)> = d
                    .results
                    .iter()
                    .filter(|r| r.workload == wl && &r.lock == lock)
                    .map(|r| {
                        if drain {
                            (
                                r.vcpus as f64,
                                r.drain_us.unwrap_or(0.0) / 1e3,
                                r.spin_share,
                            )
                        } else {
                            (r.vcpus as f64, r.acq_per_sec, r.min_max)
                        }
                    })
                    .collect();
                if pts.is_empty() {
                    continue;
                }
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                pts.dedup_by(|a, b| a.0 == b.0);
                series.push(Series {
                    name: if label.is_empty() {
                        lock.clone()
                    } else {
                        format!("{lock} {label}")
                    },
                    color: PALETTE[li % PALETTE.len()],
                    later: ri > 0,
                    pts,
                });
            }
        }
        rows.push(if drain {
            Row {
                left: (
                    "Drain time [drain] (log scale)".to_string(),
                    "ms until every waiter had the lock",
                ),
                right: (
                    "Spin share [drain]".to_string(),
                    "vCPU time spinning in lock()",
                ),
                series,
            }
        } else {
            Row::throughput(wl, series, "vCPU")
        });
    }
    Ok(Scene {
        title,
        x_desc: format!("vCPUs (on {} CPUs)", h.cpus),
        rows,
    })
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, scene: &Scene) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(TITLE_H);
    title.draw_text(
        &scene.title,
        &TextStyle::from((FONT, 20).into_font()).pos(text_anchor::Pos::new(
            text_anchor::HPos::Center,
            text_anchor::VPos::Center,
        )),
        (W as i32 / 2, TITLE_H as i32 / 2),
    )?;
    let rows = body.split_evenly((scene.rows.len(), 1));
    for (row, area) in scene.rows.iter().zip(rows.iter()) {
        let (left, rest) = area.split_horizontally(590);
        let (right, legend) = rest.split_horizontally(590);
        log_panel(&left, row, &scene.x_desc)?;
        share_panel(&right, row, &scene.x_desc)?;
        draw_legend(&legend, &row.series)?;
    }
    Ok(())
}

/// The thread counts present (the x ticks) and the x range around them.
fn x_axis(series: &[Series]) -> (Vec<f64>, std::ops::Range<f64>) {
    let mut ticks: Vec<f64> = series
        .iter()
        .flat_map(|s| s.pts.iter().map(|p| p.0))
        .collect();
    ticks.sort_by(f64::total_cmp);
    ticks.dedup();
    let (lo, hi) = (ticks[0], ticks[ticks.len() - 1]);
    // A little room either side; one thread count alone gets a range of its own.
    let range = if hi > lo {
        lo / 1.15..hi * 1.15
    } else {
        lo / 2.0..lo * 2.0
    };
    (ticks, range)
}

fn threads_label(t: &f64) -> String {
    format!("{t}")
}

/// `1`, `10`, `100`, `1k`, ... `100G`: compact labels for powers of ten.
fn pow10(y: &f64) -> String {
    let e = y.log10().round() as i32;
    let units = ["", "k", "M", "G", "T"];
    match usize::try_from(e / 3) {
        Ok(u) if e >= 0 && u < units.len() => {
            format!("{}{}", 10u64.pow((e % 3) as u32), units[u])
        }
        _ => format!("1e{e}"),
    }
}

fn line_style(s: &Series) -> ShapeStyle {
    s.color.stroke_width(3)
}

/// The left panel: the row's first value on a log scale.
fn log_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    row: &Row,
    x_desc: &str,
) -> DrawResult<DB> {
    let series = &row.series;
    let (ticks, xr) = x_axis(series);
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.pts.iter().map(|p| p.1))
        .filter(|&y| y > 0.0)
        .collect();
    let (lo, hi) = if ys.is_empty() {
        (0, 1)
    } else {
        let min = ys.iter().copied().fold(f64::MAX, f64::min);
        let max = ys.iter().copied().fold(0.0, f64::max);
        let lo = min.log10().floor() as i32;
        (lo, (max.log10().ceil() as i32).max(lo + 1))
    };
    let yticks: Vec<f64> = (lo..=hi).map(|e| 10f64.powi(e)).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(&row.left.0, (FONT, 18).into_font())
        .margin(10)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(
            xr.log_scale().base(2.0).with_key_points(ticks),
            (10f64.powi(lo)..10f64.powi(hi))
                .log_scale()
                .with_key_points(yticks),
        )?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(row.left.1)
        .x_label_formatter(&threads_label)
        .y_label_formatter(&pow10)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(WHITE)
        .draw()?;
    for s in series {
        let pts: Vec<(f64, f64)> = s.pts.iter().map(|p| (p.0, p.1.max(1e-9))).collect();
        draw_series(&mut chart, s, pts)?;
    }
    Ok(())
}

/// The right panel: the row's second value, from 0 to 1.
fn share_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    row: &Row,
    x_desc: &str,
) -> DrawResult<DB> {
    let series = &row.series;
    let (ticks, xr) = x_axis(series);
    let mut chart = ChartBuilder::on(area)
        .caption(&row.right.0, (FONT, 18).into_font())
        .margin(10)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(xr.log_scale().base(2.0).with_key_points(ticks), 0f64..1.0)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(row.right.1)
        .x_label_formatter(&threads_label)
        .y_labels(6)
        .y_label_formatter(&|y| format!("{y:.1}"))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(WHITE)
        .draw()?;
    for s in series {
        let pts: Vec<(f64, f64)> = s.pts.iter().map(|p| (p.0, p.2.clamp(0.0, 1.0))).collect();
        draw_series(&mut chart, s, pts)?;
    }
    Ok(())
}

fn draw_series<DB: DrawingBackend, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    s: &Series,
    pts: Vec<(f64, f64)>,
) -> DrawResult<DB>
where
    X: plotters::coord::ranged1d::Ranged<ValueType = f64>,
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>,
{
    let style = line_style(s);
    if s.later {
        chart.draw_series(DashedLineSeries::new(pts.iter().copied(), 8, 5, style))?;
        chart.draw_series(pts.iter().map(|&p| {
            EmptyElement::at(p) + Rectangle::new([(-4, -4), (4, 4)], s.color.filled())
        }))?;
    } else {
        chart.draw_series(LineSeries::new(pts.iter().copied(), style))?;
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, s.color.filled())))?;
    }
    Ok(())
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    series: &[Series],
) -> DrawResult<DB> {
    let font = TextStyle::from((FONT, 14).into_font())
        .color(&RGBColor(90, 90, 90))
        .pos(text_anchor::Pos::new(
            text_anchor::HPos::Left,
            text_anchor::VPos::Center,
        ));
    for (i, s) in series.iter().enumerate() {
        let y = 60 + i as i32 * 20;
        let (x0, x1) = (10, 38);
        if s.later {
            area.draw(&PathElement::new(
                vec![(x0, y), (x0 + 10, y)],
                line_style(s),
            ))?;
            area.draw(&PathElement::new(
                vec![(x1 - 10, y), (x1, y)],
                line_style(s),
            ))?;
            area.draw(&Rectangle::new(
                [(x0 + 10, y - 4), (x0 + 18, y + 4)],
                s.color.filled(),
            ))?;
        } else {
            area.draw(&PathElement::new(vec![(x0, y), (x1, y)], line_style(s)))?;
            area.draw(&Circle::new((x0 + 14, y), 4, s.color.filled()))?;
        }
        area.draw_text(&s.name, &font, (x1 + 8, y))?;
    }
    Ok(())
}

/// A plot's title: the machine of a single run, or how several runs are told apart.
fn title(cmd: &str, what: &str, cpus: usize, hypervisor: bool, date: &str, runs: usize) -> String {
    if runs == 1 {
        let vm = if hypervisor { " (VM)" } else { "" };
        format!("{cmd}: {what}{cpus} CPUs{vm}, {date}")
    } else {
        format!("{cmd}: {runs} runs, dashed/square = later runs")
    }
}

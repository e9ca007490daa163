package traces

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// recColors gives each recommender a fixed colour across plots.
var recColors = map[string]color.RGBA{
	NameModel:       {R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, // red
	NameVPAUpper:    {R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, // blue
	NameVPATarget:   {R: 0x9e, G: 0xc7, B: 0xe8, A: 0xff}, // light blue
	NameKRR:         {R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, // green
	NameProvisioned: {R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff}, // grey
}

var recShapes = map[string]draw.GlyphDrawer{
	NameModel:       draw.CircleGlyph{},
	NameVPAUpper:    draw.SquareGlyph{},
	NameVPATarget:   draw.BoxGlyph{},
	NameKRR:         draw.TriangleGlyph{},
	NameProvisioned: draw.PyramidGlyph{},
}

// PlotPNG draws reports (one row each, e.g. one per history length) as a
// PNG with two panels a row: memory (mean relative limit slack against the
// share of container-days with an OOM) and CPU (mean relative limit slack
// against the share of samples throttled). Each recommender is a curve of
// its limits scaled by a factor (Report.MemoryCurves, CPUCurves) with a
// marker at factor 1, so the slack of every recommender can be read at
// equal risk anywhere along the x axis: lower is better. title heads the
// image.
func PlotPNG(reports []*Report, title string) ([]byte, error) {
	if len(reports) == 0 {
		return nil, fmt.Errorf("plot: no reports")
	}
	var rows [][]*plot.Plot
	for _, r := range reports {
		if len(r.Recommenders) == 0 {
			return nil, fmt.Errorf("plot: a report has no recommenders")
		}
		h := fmt.Sprintf("%g-day history, %d container-days", r.HistoryDays, r.ContainerDays)
		rows = append(rows, []*plot.Plot{
			curvePanel("Memory ("+h+")", "container-days with an OOM (%)", "mean relative memory limit slack (%)", r.MemoryCurves, 10),
			curvePanel("CPU ("+h+")", "CPU samples above the limit (%)", "mean relative CPU limit slack (%)", r.CPUCurves, 5),
		})
	}

	width, rowH := 12*vg.Inch, 5.2*vg.Inch
	height := rowH * vg.Length(len(rows))
	img := vgimg.NewWith(vgimg.UseWH(width, height+vg.Points(24+18*float64(strings.Count(title, "\n")))), vgimg.UseDPI(100))
	dc := draw.New(img)
	titleH := vg.Points(24 + 18*float64(strings.Count(title, "\n")))
	head := plot.New()
	head.Title.Text = title
	head.Title.TextStyle.Font.Size = vg.Points(15)
	head.HideAxes()
	head.Draw(draw.Crop(dc, 0, 0, height, 0))
	body := draw.Crop(dc, 0, 0, 0, -titleH)
	tiles := draw.Tiles{Rows: len(rows), Cols: 2, PadX: vg.Points(30), PadY: vg.Points(24), PadLeft: vg.Points(8), PadRight: vg.Points(14), PadBottom: vg.Points(6), PadTop: vg.Points(4)}
	cs := plot.Align(rows, tiles, body)
	for i := range rows {
		for j := range rows[i] {
			rows[i][j].Draw(cs[i][j])
		}
	}
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	return buf.Bytes(), nil
}

// WritePNG writes PlotPNG's image of reports to path.
func WritePNG(path string, reports []*Report, title string) error {
	b, err := PlotPNG(reports, title)
	if err != nil {
		return err
	}
	return writeFile(path, b)
}

// curvePanel draws curves with risk (x) against slack (y), in percent; the
// x axis reaches past every factor-1 point and at least minX percent.
func curvePanel(title, xlabel, ylabel string, curves []Curve, minX float64) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.X.Label.Text, p.Y.Label.Text = xlabel, ylabel
	p.X.Label.TextStyle.Font.Size = vg.Points(11)
	p.Y.Label.TextStyle.Font.Size = vg.Points(11)
	p.X.Tick.Label.Font.Size = vg.Points(10)
	p.Y.Tick.Label.Font.Size = vg.Points(10)
	p.Add(plotter.NewGrid())

	maxX := minX
	for _, c := range curves {
		for _, pt := range c.Points {
			if pt.Factor == 1 {
				maxX = max(maxX, 100*pt.Risk*1.15)
			}
		}
	}
	for _, c := range curves {
		var xys plotter.XYs
		var own plotter.XYs
		for _, pt := range c.Points {
			xy := plotter.XY{X: 100 * pt.Risk, Y: 100 * pt.Slack}
			xys = append(xys, xy)
			if pt.Factor == 1 {
				own = append(own, xy)
			}
		}
		col := recColors[c.Name]
		if len(xys) > 1 {
			if l, err := plotter.NewLine(xys); err == nil {
				l.LineStyle.Color = col
				l.LineStyle.Width = vg.Points(1.6)
				p.Add(l)
			}
		}
		if len(own) > 0 {
			sc, err := plotter.NewScatter(own)
			if err != nil {
				continue // NaN: nothing to draw
			}
			sc.GlyphStyle.Color = col
			sc.GlyphStyle.Shape = recShapes[c.Name]
			sc.GlyphStyle.Radius = vg.Points(5)
			p.Add(sc)
			p.Legend.Add(fmt.Sprintf("%s as recommended: risk %.1f%%, slack %.1f%%", c.Name, own[0].X, own[0].Y), sc)
		}
	}
	p.X.Min, p.X.Max = 0, math.Min(niceCeil(maxX), 100)
	p.Y.Min, p.Y.Max = 0, 100
	p.Legend.Top = true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(-8), vg.Points(-8)
	p.Legend.TextStyle.Font.Size = vg.Points(10)
	p.Legend.ThumbnailWidth = vg.Points(16)
	p.Legend.Padding = vg.Points(3)
	return p
}

// niceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if !(v > 0) {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*e >= v {
			return m * e
		}
	}
	return 10 * e
}

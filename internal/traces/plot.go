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
	NameVPA:         {R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, // blue
	NameKRR:         {R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, // green
	NameProvisioned: {R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff}, // grey
}

var recShapes = map[string]draw.GlyphDrawer{
	NameModel:       draw.CircleGlyph{},
	NameVPA:         draw.SquareGlyph{},
	NameKRR:         draw.TriangleGlyph{},
	NameProvisioned: draw.PyramidGlyph{},
}

// PlotPNG draws the report as a PNG of two panels: memory (mean relative
// limit slack against the share of container-days with an OOM) and CPU
// (mean relative limit slack against the share of samples throttled), one
// marker per recommender, with dashed lines through VPA's point: the lower
// left quadrant is better than VPA on both axes. title heads the image.
func (r *Report) PlotPNG(title string) ([]byte, error) {
	mem := r.panel("Memory: limit slack vs OOM",
		"mean relative memory limit slack (%)", "container-days with an OOM (%)", "OOM days",
		func(s Summary) (float64, float64) { return s.MemLimitSlack.Mean, s.OOMRate })
	cpu := r.panel("CPU: limit slack vs throttling",
		"mean relative CPU limit slack (%)", "CPU samples above the limit (%)", "throttled",
		func(s Summary) (float64, float64) { return s.CPULimitSlack.Mean, s.ThrottleRate.Mean })
	if mem == nil || cpu == nil {
		return nil, fmt.Errorf("plot: the report has no recommenders")
	}

	const width, height = 12 * vg.Inch, 5.6 * vg.Inch
	img := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(110))
	dc := draw.New(img)
	head := plot.New()
	head.Title.Text = title
	head.Title.TextStyle.Font.Size = vg.Points(15)
	head.HideAxes()
	titleH := vg.Points(24 + 18*float64(strings.Count(title, "\n")))
	head.Draw(draw.Crop(dc, 0, 0, height-titleH, 0))
	body := draw.Crop(dc, 0, 0, 0, -titleH)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Points(30), PadLeft: vg.Points(8), PadRight: vg.Points(14), PadBottom: vg.Points(6), PadTop: vg.Points(4)}
	cs := plot.Align([][]*plot.Plot{{mem, cpu}}, tiles, body)
	mem.Draw(cs[0][0])
	cpu.Draw(cs[0][1])

	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	return buf.Bytes(), nil
}

// WritePNG writes PlotPNG's image to path.
func (r *Report) WritePNG(path, title string) error {
	b, err := r.PlotPNG(title)
	if err != nil {
		return err
	}
	return writeFile(path, b)
}

func (r *Report) panel(title, xlabel, ylabel, yname string, xy func(Summary) (float64, float64)) *plot.Plot {
	if len(r.Recommenders) == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.X.Label.Text, p.Y.Label.Text = xlabel, ylabel
	p.X.Label.TextStyle.Font.Size = vg.Points(12)
	p.Y.Label.TextStyle.Font.Size = vg.Points(12)
	p.X.Tick.Label.Font.Size = vg.Points(11)
	p.Y.Tick.Label.Font.Size = vg.Points(11)
	p.Add(plotter.NewGrid())

	maxY := 0.0
	for _, s := range r.Recommenders {
		x, y := xy(s)
		x, y = 100*x, 100*y
		maxY = max(maxY, y)
		sc, err := plotter.NewScatter(plotter.XYs{{X: x, Y: y}})
		if err != nil {
			continue // NaN: nothing to draw
		}
		sc.GlyphStyle.Color = recColors[s.Name]
		sc.GlyphStyle.Shape = recShapes[s.Name]
		sc.GlyphStyle.Radius = vg.Points(7)
		p.Add(sc)
		p.Legend.Add(fmt.Sprintf("%s: slack %.1f%%, %s %.1f%%", s.Name, x, yname, y), sc)
	}
	// Slack is a share: the x axis spans 0-100%; y starts at 0.
	p.X.Min, p.X.Max = 0, 100
	p.Y.Min = 0
	p.Y.Max = math.Min(niceCeil(math.Max(maxY*1.6, 1)), 100)

	if v := r.Summary(NameVPA); v != nil {
		x, y := xy(*v)
		x, y = 100*x, 100*y
		dash := []vg.Length{vg.Points(4), vg.Points(3)}
		// The vertical line stops below the legend, which sits top left.
		for _, pts := range []plotter.XYs{{{X: x, Y: 0}, {X: x, Y: 0.72 * p.Y.Max}}, {{X: 0, Y: y}, {X: p.X.Max, Y: y}}} {
			if l, err := plotter.NewLine(pts); err == nil {
				l.LineStyle.Color = recColors[NameVPA]
				l.LineStyle.Dashes = dash
				l.LineStyle.Width = vg.Points(1)
				p.Add(l)
			}
		}
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(10), vg.Points(-8)
	p.Legend.TextStyle.Font.Size = vg.Points(11)
	p.Legend.ThumbnailWidth = vg.Points(20)
	p.Legend.Padding = vg.Points(4)
	return p
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
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

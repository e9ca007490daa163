package trainer

import (
	"time"

	"recommendation-api/internal/model"
)

// GoldenTolerance is how far a session's answer to a golden row may be from
// the manifest's (normalized units): ONNX Runtime and the pure-Go forward
// pass sum float32 products in different orders.
const GoldenTolerance = 1e-4

// goldenRows is how many validation rows become golden rows (plus two edge rows).
const goldenRows = 14

// NewManifest describes a trained version. b is the encoded ONNX file.
func NewManifest(v model.Version, b []byte, res *Result, metrics *model.Metrics, now time.Time) *model.Manifest {
	q := res.Quant
	major := max(res.Major, 1)
	specsIn, _ := model.FeaturesFor(major)
	win, _ := model.HistoryWindowFor(major)
	arch := model.Architecture{Layers: q.Widths(), Activations: append([]model.Activation(nil), ActivationsFor(major)...), Parameters: q.Params(), Opset: 13}
	m := &model.Manifest{
		Schema:       model.ManifestSchema,
		Version:      v,
		CreatedAt:    now.UTC().Truncate(time.Millisecond),
		Model:        model.ModelFile{File: "predictor_" + v.String() + ".onnx", SHA256: model.SHA256Hex(b), SizeBytes: int64(len(b))},
		Signature:    model.SignatureFor(len(specsIn)),
		Features:     specsIn,
		Outputs:      model.DefaultOutputs(),
		Architecture: arch,
		Quantization: model.DefaultQuantization(),
		Training:     res.Record,
		Metrics:      metrics,
		Golden:       GoldenFor(q, res.ValX, res.ValN),
	}
	if major != 1 {
		m.HistoryWindowHours = int(win / time.Hour)
	}
	return m
}

// GoldenFor picks golden rows: the first validation rows plus the all-zero
// and all-one rows, with q's answers to them.
func GoldenFor(q *model.QuantizedMLP, valX []float32, valN int) model.Golden {
	w := q.InputWidth()
	rows := make([][]float32, 0, goldenRows+2)
	for r := 0; r < min(goldenRows, valN); r++ {
		rows = append(rows, append([]float32(nil), valX[r*w:(r+1)*w]...))
	}
	zeros, ones := make([]float32, w), make([]float32, w)
	for i := range ones {
		ones[i] = 1
	}
	rows = append(rows, zeros, ones)
	x := make([]float32, 0, len(rows)*w)
	for _, r := range rows {
		x = append(x, r...)
	}
	y := q.Forward(x, len(rows))
	outs := make([][]float32, len(rows))
	for r := range outs {
		outs[r] = y[r*model.NumOutputs : (r+1)*model.NumOutputs]
	}
	return model.Golden{Tolerance: GoldenTolerance, Inputs: rows, Outputs: outs}
}

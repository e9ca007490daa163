package reliability

import (
	"encoding/json"
	"math/rand/v2"
	"time"

	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
	"recommendation-api/internal/trainer"
)

// NewVersion returns the bytes and manifest JSON of a valid model version
// of v's major (1 or 2): a random int8 MLP (onnxfile.RandomMLP or
// RandomMLPV2(seed)) encoded as the project writes it, with the major's
// declared features and the golden rows of its own forward pass. The
// server accepts it as an upload.
func NewVersion(seed int64, v model.Version) ([]byte, string, error) {
	q, feats := onnxfile.RandomMLP(seed), model.DefaultFeatures()
	window := 0
	if v.Major == 2 {
		q = onnxfile.RandomMLPV2(seed)
		var err error
		if feats, err = model.FeaturesFor(2); err != nil {
			return nil, "", err
		}
		window = 7 * 24
	}
	b, err := onnxfile.Encode(q, v)
	if err != nil {
		return nil, "", err
	}
	const n = 6
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	x := make([]float32, n*len(feats))
	for i := range x {
		x[i] = rng.Float32()
	}
	m := &model.Manifest{
		Schema:    model.ManifestSchema,
		Version:   v,
		CreatedAt: time.Now().UTC().Truncate(time.Second),
		Model:     model.ModelFile{File: "predictor_" + v.String() + ".onnx", SHA256: model.SHA256Hex(b), SizeBytes: int64(len(b))},
		Signature: model.SignatureFor(len(feats)),
		Features:  feats,
		Outputs:   model.DefaultOutputs(),
		Golden:    trainer.GoldenFor(q, x, n),

		HistoryWindowHours: window,
	}
	mj, err := json.Marshal(m)
	if err != nil {
		return nil, "", err
	}
	return b, string(mj), nil
}

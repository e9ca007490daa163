package reliability

import (
	"encoding/json"
	"math/rand/v2"
	"time"

	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
	"recommendation-api/internal/trainer"
)

// NewVersion returns the bytes and manifest JSON of a valid major-1 model
// version: a random int8 MLP (onnxfile.RandomMLP(seed)) encoded as the
// project writes it, with the golden rows of its own forward pass. The
// server accepts it as an upload.
func NewVersion(seed int64, v model.Version) ([]byte, string, error) {
	q := onnxfile.RandomMLP(seed)
	b, err := onnxfile.Encode(q, v)
	if err != nil {
		return nil, "", err
	}
	const n = 6
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	x := make([]float32, n*model.NumFeatures)
	for i := range x {
		x[i] = rng.Float32()
	}
	m := &model.Manifest{
		Schema:    model.ManifestSchema,
		Version:   v,
		CreatedAt: time.Now().UTC().Truncate(time.Second),
		Model:     model.ModelFile{File: "predictor_" + v.String() + ".onnx", SHA256: model.SHA256Hex(b), SizeBytes: int64(len(b))},
		Signature: model.DefaultSignature(),
		Features:  model.DefaultFeatures(),
		Outputs:   model.DefaultOutputs(),
		Golden:    trainer.GoldenFor(q, x, n),
	}
	mj, err := json.Marshal(m)
	if err != nil {
		return nil, "", err
	}
	return b, string(mj), nil
}

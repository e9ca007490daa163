package model

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// ManifestSchema is the manifest format this code writes and reads.
const ManifestSchema = 1

// InputName and OutputName are the ONNX graph's tensor names.
const (
	InputName  = "features"
	OutputName = "recommendations"
)

// Manifest describes one model version: what the bytes are, how to feed and
// read them, how they were made and how well they did. It is stored beside
// the model bytes (registry) and written as manifest.json (export).
type Manifest struct {
	Schema    int       `json:"schema"`
	Version   Version   `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	Model     ModelFile `json:"model"`
	Signature Signature `json:"signature"`
	Features  []Spec    `json:"features"`
	// HistoryWindowHours is the history window the features assume, in
	// hours; 0 (a manifest written before the field existed) means 48.
	HistoryWindowHours int          `json:"history_window_hours,omitempty"`
	Outputs            []Spec       `json:"outputs"`
	Architecture       Architecture `json:"architecture"`
	Quantization       Quantization `json:"quantization"`
	Training           Training     `json:"training"`
	Metrics            *Metrics     `json:"metrics,omitempty"`
	Golden             Golden       `json:"golden"`
}

// ModelFile names the ONNX bytes and their checksum.
type ModelFile struct {
	File      string `json:"file"`
	SHA256    string `json:"sha256"`
	SizeBytes int64  `json:"size_bytes"`
}

// TensorSpec is one graph input or output. A -1 dimension is dynamic.
type TensorSpec struct {
	Name  string  `json:"name"`
	Type  string  `json:"type"`
	Shape []int64 `json:"shape"`
}

// Signature is the model's I/O signature.
type Signature struct {
	Inputs  []TensorSpec `json:"inputs"`
	Outputs []TensorSpec `json:"outputs"`
}

// DefaultSignature is the signature of major version 1: [N,12] float32 in, [N,5] float32 out.
func DefaultSignature() Signature { return SignatureFor(NumFeatures) }

// DefaultHistoryWindowHours is the history window of a manifest that does
// not declare one (major 1's 48 h).
const DefaultHistoryWindowHours = 48

// HistoryWindow returns the history window the manifest's features assume:
// HistoryWindowHours, or 48 h when it is 0.
func (m *Manifest) HistoryWindow() time.Duration {
	h := m.HistoryWindowHours
	if h == 0 {
		h = DefaultHistoryWindowHours
	}
	return time.Duration(h) * time.Hour
}

// Width returns the number of input features the manifest declares: the
// model's input width.
func (m *Manifest) Width() int { return len(m.Features) }

// Equal reports whether two signatures have the same tensors.
func (s Signature) Equal(o Signature) bool {
	eq := func(a, b []TensorSpec) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i].Name != b[i].Name || a[i].Type != b[i].Type || len(a[i].Shape) != len(b[i].Shape) {
				return false
			}
			for j := range a[i].Shape {
				if a[i].Shape[j] != b[i].Shape[j] {
					return false
				}
			}
		}
		return true
	}
	return eq(s.Inputs, o.Inputs) && eq(s.Outputs, o.Outputs)
}

// The most dense layers, and the widest layer output, a served network may
// have (the upload checker's limits; a manifest's architecture is held to
// them too).
const (
	MaxLayers = 8
	MaxWidth  = 1024
	// MaxParameters is the most weights and biases such a network can
	// have: MaxLayers layers of MaxWidth × MaxWidth weights and MaxWidth
	// biases.
	MaxParameters = MaxLayers * (MaxWidth*MaxWidth + MaxWidth)
)

// Architecture records the network's shape.
type Architecture struct {
	Layers      []int        `json:"layers"` // widths, input first: [12, 32, 16, 5]
	Activations []Activation `json:"activations"`
	Parameters  int          `json:"parameters"`
	Opset       int          `json:"opset"`
}

// Describes checks that the declared architecture (its layer widths and
// parameter count, where given: absent fields are not checked) is q's, so
// that what a registry lists about a version is what it serves. The error
// wraps ErrInvalidModel, names each wrong field and repeats the manifest's
// values only, nothing computed from the model's bytes; it is public.
func (a Architecture) Describes(q *QuantizedMLP) error {
	var wrong []string
	if len(a.Layers) > 0 && !slices.Equal(a.Layers, q.Widths()) {
		wrong = append(wrong, fmt.Sprintf("architecture.layers %v is not the file's layer widths (inputs first)", a.Layers))
	}
	if a.Parameters != 0 && a.Parameters != q.Params() {
		wrong = append(wrong, fmt.Sprintf("architecture.parameters %d is not the file's count of weights and biases", a.Parameters))
	}
	if len(wrong) == 0 {
		return nil
	}
	err := fmt.Errorf("%w: manifest %s; declare the network the file holds, or leave these fields out",
		ErrInvalidModel, strings.Join(wrong, " and "))
	return Public(err, err.Error())
}

// Declared reports whether the architecture gives both the layer widths
// and the parameter count.
func (a Architecture) Declared() bool { return len(a.Layers) > 0 && a.Parameters != 0 }

// Quantization records how the weights were quantized.
type Quantization struct {
	Scheme      string `json:"scheme"`
	Weights     string `json:"weights"`
	Activations string `json:"activations"`
	Bias        string `json:"bias"`
}

// DefaultQuantization is the scheme the trainer uses.
func DefaultQuantization() Quantization {
	return Quantization{
		Scheme:      "int8 weight-only (DequantizeLinear + MatMul)",
		Weights:     "int8, symmetric (zero point 0), one scale per output channel = max|w|/127",
		Activations: "float32, not quantized: each row's answer is independent of the batch it came in (Predict runs a lone row beside a copy of itself, since ONNX Runtime's one-row kernel sums in another order)",
		Bias:        "float32",
	}
}

// Training records how a version was trained.
type Training struct {
	DataFile      string            `json:"data_file,omitempty"`
	DataSHA256    string            `json:"data_sha256,omitempty"`
	Samples       int               `json:"samples"`
	TrainSamples  int               `json:"train_samples"`
	ValSamples    int               `json:"val_samples"`
	Seed          int64             `json:"seed"`
	Epochs        int               `json:"epochs"`
	EpochsRun     int               `json:"epochs_run"`
	BestEpoch     int               `json:"best_epoch"`
	Hyper         map[string]string `json:"hyperparameters"`
	DurationMS    int64             `json:"duration_ms"`
	ParentVersion string            `json:"parent_version,omitempty"`
	TrainLoss     float64           `json:"train_loss"`
	ValLoss       float64           `json:"val_loss"`
}

// Scores measure a recommender against the following window's real usage.
// Slack is relative: (limit − p95 usage)/limit, averaged over samples.
type Scores struct {
	CPURequestSlack float64 `json:"cpu_request_slack"`
	CPULimitSlack   float64 `json:"cpu_limit_slack"`
	MemRequestSlack float64 `json:"mem_request_slack"`
	MemLimitSlack   float64 `json:"mem_limit_slack"`
	OOMRate         float64 `json:"oom_rate"`      // share of samples whose future peak memory exceeds the memory limit
	ThrottleRate    float64 `json:"throttle_rate"` // share of future CPU samples above the CPU limit
}

// Metrics is the evaluation of a version on held-out data.
type Metrics struct {
	HeldOutSamples int                `json:"held_out_samples"`
	HeldOutSeed    int64              `json:"held_out_seed"`
	MAE            map[string]float64 `json:"mae"`          // int8 model, normalized units, per output
	FloatMAE       map[string]float64 `json:"float_mae"`    // float32 twin, same data
	Model          Scores             `json:"model"`        // int8 model
	Baseline       Scores             `json:"vpa_baseline"` // VPA-style p90 × 1.15
}

// Golden holds input rows and the outputs the model must give for them; a
// version must reproduce them within GoldenTolerance before it serves.
//
// The uploader does not certify its own model: the server computes the
// answers itself, with the pure-Go forward pass of the weights it decoded
// from the model bytes, and compares with its own tolerance. Tolerance
// records what the writer aimed at; Validate refuses one looser than
// GoldenTolerance, and no check uses it.
type Golden struct {
	Tolerance float64     `json:"tolerance"`
	Inputs    [][]float32 `json:"inputs"`
	Outputs   [][]float32 `json:"outputs"`
}

// GoldenTolerance is the server's bound on |answer − golden output| per
// output, in normalized units, for every golden row of every version. It
// covers ONNX Runtime and the pure-Go forward pass summing float32 products
// in different orders (they agree to about 1e-6 on the served network), and
// is what the trainer writes as Golden.Tolerance.
const GoldenTolerance = 1e-4

// MaxGoldenRows bounds the golden rows a manifest may carry; the trainer
// writes 16.
const MaxGoldenRows = 256

// SHA256Hex returns the hex sha256 of b.
func SHA256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// VerifyBytes checks that b matches the manifest's size and sha256. It
// returns an error wrapping ErrChecksumMismatch that names the version.
func (m *Manifest) VerifyBytes(b []byte) error {
	if got := SHA256Hex(b); got != m.Model.SHA256 || int64(len(b)) != m.Model.SizeBytes {
		return fmt.Errorf("%w: version %s: model bytes have sha256 %s (%d bytes), manifest says %s (%d bytes)",
			ErrChecksumMismatch, m.Version, got, len(b), m.Model.SHA256, m.Model.SizeBytes)
	}
	return nil
}

// Validate checks the manifest's own consistency (not the bytes).
func (m *Manifest) Validate() error {
	if m.Schema != ManifestSchema {
		return fmt.Errorf("%w: manifest schema %d; want %d", ErrInvalidModel, m.Schema, ManifestSchema)
	}
	if m.Version.IsZero() {
		return fmt.Errorf("%w: manifest field \"version\" is missing or v0.0.0; want v{major}.{minor}.{patch}, e.g. v1.0.0", ErrInvalidModel)
	}
	if len(m.Model.SHA256) != 64 {
		return fmt.Errorf("%w: manifest sha256 %q is not 64 hex digits", ErrInvalidModel, m.Model.SHA256)
	}
	if len(m.Features) == 0 || len(m.Features) > MaxFeatures || len(m.Outputs) != NumOutputs {
		return fmt.Errorf("%w: manifest has %d features and %d outputs; want 1 to %d catalogue features and %d outputs",
			ErrInvalidModel, len(m.Features), len(m.Outputs), MaxFeatures, NumOutputs)
	}
	if err := validateFeatureNames(m.Features); err != nil {
		return err
	}
	for _, s := range append(append([]Spec{}, m.Features...), m.Outputs...) {
		if err := s.Validate(); err != nil {
			return err
		}
	}
	if err := m.Architecture.validate(); err != nil {
		return err
	}
	if h := m.HistoryWindowHours; h < 0 || h > MaxHistoryWindowHours {
		return fmt.Errorf("%w: manifest history_window_hours %d; want 1 to %d (0 or absent means %d)",
			ErrInvalidModel, h, MaxHistoryWindowHours, DefaultHistoryWindowHours)
	}
	if len(m.Signature.Inputs) > 0 {
		if in := m.Signature.Inputs[0].Shape; len(in) != 2 || in[1] != int64(len(m.Features)) {
			return fmt.Errorf("%w: manifest signature input shape %v; want [-1 %d], one column per declared feature",
				ErrInvalidModel, in, len(m.Features))
		}
	}
	return m.Golden.validate(len(m.Features))
}

// validate checks the declared shape, where there is one: 2 to
// MaxLayers+1 widths (inputs first) of 1 to MaxWidth, and a parameter count
// no larger than such a network can have. Whether it is the file's is
// checked when the file is loaded.
func (a Architecture) validate() error {
	if n := len(a.Layers); n == 1 || n > MaxLayers+1 {
		return fmt.Errorf("%w: manifest architecture.layers has %d widths; want the inputs' and each layer's, 2 to %d (or none)",
			ErrInvalidModel, n, MaxLayers+1)
	}
	for i, w := range a.Layers {
		if w < 1 || w > MaxWidth {
			return fmt.Errorf("%w: manifest architecture.layers[%d] is %d; want a width of 1 to %d", ErrInvalidModel, i, w, MaxWidth)
		}
	}
	if p := a.Parameters; p < 0 || p > MaxParameters {
		return fmt.Errorf("%w: manifest architecture.parameters is %d; want the count of weights and biases, 0 to %d (0 or absent: not declared)",
			ErrInvalidModel, p, MaxParameters)
	}
	return nil
}

// MaxHistoryWindowHours bounds a manifest's history window: 90 days.
const MaxHistoryWindowHours = 90 * 24

// validateFeatureNames refuses feature names the catalogue does not have,
// naming all of them, and a feature declared twice.
func validateFeatureNames(specs []Spec) error {
	var unknown []string
	seen := make(map[string]bool, len(specs))
	for _, s := range specs {
		if _, _, ok := LookupFeature(s.Name); !ok {
			unknown = append(unknown, fmt.Sprintf("%q", s.Name))
			continue
		}
		if seen[s.Name] {
			return fmt.Errorf("%w: manifest declares feature %q twice", ErrInvalidModel, s.Name)
		}
		seen[s.Name] = true
	}
	if len(unknown) > 0 {
		known := make([]string, len(catalog))
		for i, f := range catalog {
			known[i] = f.Spec.Name
		}
		return fmt.Errorf("%w: manifest declares features unknown to this server: %s; the catalogue has %v",
			ErrInvalidModel, strings.Join(unknown, ", "), known)
	}
	return nil
}

// validate checks the golden rows' shape and values: 1..MaxGoldenRows rows
// of width finite inputs in [0,1] (normalized features) and
// NumOutputs finite outputs, and a positive tolerance no looser than
// GoldenTolerance. Errors wrap ErrInvalidModel.
func (g Golden) validate(width int) error {
	if len(g.Inputs) == 0 || len(g.Inputs) != len(g.Outputs) {
		return fmt.Errorf("%w: manifest needs golden rows (inputs and outputs of equal count); it has %d inputs and %d outputs",
			ErrInvalidModel, len(g.Inputs), len(g.Outputs))
	}
	if len(g.Inputs) > MaxGoldenRows {
		return fmt.Errorf("%w: manifest has %d golden rows; at most %d are accepted", ErrInvalidModel, len(g.Inputs), MaxGoldenRows)
	}
	if !(g.Tolerance > 0 && g.Tolerance <= GoldenTolerance) {
		return fmt.Errorf("%w: manifest golden tolerance %g; want a positive value no looser than the server's %g, "+
			"which is what every golden row is checked with", ErrInvalidModel, g.Tolerance, GoldenTolerance)
	}
	for i := range g.Inputs {
		if len(g.Inputs[i]) != width || len(g.Outputs[i]) != NumOutputs {
			return fmt.Errorf("%w: golden row %d has %d inputs and %d outputs; want %d (one per declared feature) and %d",
				ErrInvalidModel, i, len(g.Inputs[i]), len(g.Outputs[i]), width, NumOutputs)
		}
		for j, v := range g.Inputs[i] {
			if !(v >= 0 && v <= 1) {
				return fmt.Errorf("%w: golden row %d input %d is %v; want a normalized feature in [0,1]", ErrInvalidModel, i, j, v)
			}
		}
		for j, v := range g.Outputs[i] {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("%w: golden row %d output %d is %v; want a finite number", ErrInvalidModel, i, j, v)
			}
		}
	}
	return nil
}

// CheckGolden compares a model's outputs for the golden inputs (flattened,
// [len(Inputs), NumOutputs]) with the manifest's, within GoldenTolerance
// (never the manifest's own Tolerance). It returns an error wrapping
// ErrGoldenMismatch naming the first row and output that differ. Its Error
// text (for the log) has both values; its public message (see Public) names
// only the row, the output and the tolerance, since got is computed.
func (m *Manifest) CheckGolden(got []float32) error {
	g := m.Golden
	if len(got) != len(g.Outputs)*NumOutputs {
		err := fmt.Errorf("%w: got %d values for %d golden rows", ErrGoldenMismatch, len(got), len(g.Outputs))
		return Public(err, fmt.Sprintf("%v: the model gave no answer for some of the %d golden rows", ErrGoldenMismatch, len(g.Outputs)))
	}
	for r, want := range g.Outputs {
		for o, w := range want {
			v := got[r*NumOutputs+o]
			if d := math.Abs(float64(v - w)); !(d <= GoldenTolerance) {
				name := fmt.Sprintf("%d", o)
				if o < len(m.Outputs) {
					name = m.Outputs[o].Name
				}
				err := fmt.Errorf("%w: version %s row %d output %s: got %v, want %v (tolerance %g)",
					ErrGoldenMismatch, m.Version, r, name, v, w, GoldenTolerance)
				return Public(err, fmt.Sprintf("%v: row %d output %s: the manifest's answer is not the model's, within the server's tolerance %g",
					ErrGoldenMismatch, r, name, GoldenTolerance))
			}
		}
	}
	return nil
}

// GoldenInput returns the golden inputs flattened to [rows, Width()].
func (m *Manifest) GoldenInput() []float32 {
	x := make([]float32, 0, len(m.Golden.Inputs)*len(m.Features))
	for _, r := range m.Golden.Inputs {
		x = append(x, r...)
	}
	return x
}

// ParseManifest decodes and validates a manifest.json.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		if errors.Is(err, ErrInvalidVersion) { // the JSON was fine; Version.UnmarshalText refused the value
			return nil, fmt.Errorf("%w: manifest field \"version\": %v", ErrInvalidModel, err)
		}
		return nil, fmt.Errorf("%w: manifest is not valid JSON: %v", ErrInvalidModel, err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

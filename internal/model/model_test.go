package model

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseVersion(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want Version
		why  string // substring of the error; "" = OK
	}{
		{"v1.0.0", Version{1, 0, 0}, ""},
		{"v0.10.2", Version{0, 10, 2}, ""},
		{"v12.3.45", Version{12, 3, 45}, ""},
		{"1.0.0", Version{}, "missing leading 'v'"},
		{"v1.0", Version{}, "exactly three"},
		{"v1.0.0.0", Version{}, "exactly three"},
		{"v01.0.0", Version{}, "leading zero"},
		{"v1.0.0-rc1", Version{}, "pre-release"},
		{"v1.0.0+build", Version{}, "pre-release"},
		{"v1..0", Version{}, "empty number"},
		{"v1.x.0", Version{}, "non-digit"},
		{"v1.-1.0", Version{}, "pre-release"},
		{"v99999999.0.0", Version{}, "number 99999999 exceeds 1000000"},
		{"v1.0.0 ", Version{}, "leading or trailing white space"},
		{" v1.0.0", Version{}, "leading or trailing white space"},
		{"v1.0.0x", Version{}, "non-digit 'x'"},
		{"v1.0.0\t", Version{}, "white space"},
		{"v1.00.0", Version{}, "leading zero"},
		{"v1.0a.0", Version{}, "non-digit 'a'"},
		{"", Version{}, "missing leading 'v'"},
	} {
		got, err := ParseVersion(tt.in)
		if tt.why == "" {
			if err != nil || got != tt.want {
				t.Errorf("ParseVersion(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidVersion) || !strings.Contains(err.Error(), tt.why) || !strings.Contains(err.Error(), "v{major}.{minor}.{patch}") {
			t.Errorf("ParseVersion(%q) error = %v; want ErrInvalidVersion saying %q and the accepted form", tt.in, err, tt.why)
		}
	}
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"v1.2.3", "v0.0.0", "1.2", "v1.2.3-x", "v007.1.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersion(s)
		if err != nil {
			return
		}
		if v.String() != s {
			t.Fatalf("ParseVersion(%q).String() = %q: not a round trip", s, v.String())
		}
	})
}

func TestVersionOrderAndBump(t *testing.T) {
	t.Parallel()
	a, b := MustParseVersion("v1.0.9"), MustParseVersion("v1.0.10")
	if a.Compare(b) != -1 || b.Compare(a) != 1 || a.Compare(a) != 0 {
		t.Fatalf("semver order wrong for %v and %v", a, b)
	}
	for kind, want := range map[string]string{"patch": "v1.0.10", "minor": "v1.1.0", "major": "v2.0.0"} {
		if got, err := a.Bump(kind); err != nil || got.String() != want {
			t.Errorf("Bump(%s) = %v, %v; want %s", kind, got, err, want)
		}
	}
	if _, err := a.Bump("huge"); !errors.Is(err, ErrInvalidVersion) {
		t.Errorf("Bump(huge) error = %v", err)
	}
}

func TestSpecRoundTrip(t *testing.T) {
	t.Parallel()
	for _, s := range append(DefaultFeatures(), DefaultOutputs()...) {
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
		for _, x := range []float64{0, 0.01, 0.25, 0.5, 0.9, 1} {
			raw := s.Denormalize(x)
			if back := s.Normalize(raw); math.Abs(back-x) > 1e-9 {
				t.Errorf("%s: Normalize(Denormalize(%v)) = %v", s.Name, x, back)
			}
		}
		if s.Normalize(s.Max*10+1) != 1 || s.Normalize(s.Min-1) != 0 {
			t.Errorf("%s: values outside [min,max] are not clipped", s.Name)
		}
	}
	if got := DefaultFeatures()[1].Denormalize(1); math.Abs(got-64) > 1e-9 {
		t.Errorf("cpu_p95 at 1.0 = %v cores, want 64", got)
	}
}

func testManifest(b []byte) *Manifest {
	return &Manifest{
		Schema: ManifestSchema, Version: MustParseVersion("v1.2.3"), CreatedAt: time.Unix(0, 0),
		Model:     ModelFile{File: "predictor_v1.2.3.onnx", SHA256: SHA256Hex(b), SizeBytes: int64(len(b))},
		Signature: DefaultSignature(), Features: DefaultFeatures(), Outputs: DefaultOutputs(),
		Golden: Golden{Tolerance: 1e-4, Inputs: [][]float32{make([]float32, NumFeatures)}, Outputs: [][]float32{{0.1, 0.2, 0.3, 0.4, 0.5}}},
	}
}

func TestManifestChecks(t *testing.T) {
	t.Parallel()
	b := []byte("model bytes")
	m := testManifest(b)
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	declared := testManifest(b)
	declared.Architecture = Architecture{Layers: []int{12, 32, 16, 5}, Parameters: 1029}
	if err := declared.Validate(); err != nil {
		t.Fatalf("Validate with a declared architecture: %v", err)
	}
	if err := m.VerifyBytes(b); err != nil {
		t.Fatal(err)
	}
	if err := m.VerifyBytes([]byte("model bytez")); !errors.Is(err, ErrChecksumMismatch) || !strings.Contains(err.Error(), "v1.2.3") {
		t.Errorf("VerifyBytes(tampered) = %v; want ErrChecksumMismatch naming the version", err)
	}
	if err := m.CheckGolden([]float32{0.1, 0.2, 0.3, 0.4, 0.50005}); err != nil {
		t.Errorf("CheckGolden within tolerance: %v", err)
	}
	if err := m.CheckGolden([]float32{0.1, 0.2, 0.3, 0.4, 0.6}); !errors.Is(err, ErrGoldenMismatch) || !strings.Contains(err.Error(), "confidence") {
		t.Errorf("CheckGolden off by 0.1 = %v; want ErrGoldenMismatch naming the output", err)
	}
	if err := m.CheckGolden([]float32{float32(math.NaN()), 0.2, 0.3, 0.4, 0.5}); !errors.Is(err, ErrGoldenMismatch) {
		t.Errorf("CheckGolden(NaN) = %v; want ErrGoldenMismatch", err)
	}
	for name, mutate := range map[string]func(*Manifest){
		"schema":   func(m *Manifest) { m.Schema = 9 },
		"version":  func(m *Manifest) { m.Version = Version{} },
		"sha256":   func(m *Manifest) { m.Model.SHA256 = "abc" },
		"features": func(m *Manifest) { m.Features = m.Features[:11] },
		"golden":   func(m *Manifest) { m.Golden.Inputs = nil },
		"spec":     func(m *Manifest) { m.Outputs[0].Max = -1 },
		"layers":   func(m *Manifest) { m.Architecture.Layers = make([]int, 100000) },
		"width":    func(m *Manifest) { m.Architecture.Layers = []int{12, 0, 5} },
		"one":      func(m *Manifest) { m.Architecture.Layers = []int{12} },
		"params":   func(m *Manifest) { m.Architecture.Parameters = -1 },
	} {
		bad := testManifest(b)
		mutate(bad)
		if err := bad.Validate(); !errors.Is(err, ErrInvalidModel) || len(err.Error()) > 300 {
			t.Errorf("Validate with bad %s = %v; want a short ErrInvalidModel", name, err)
		}
	}
	// Valid JSON with a bad version value: the error names the field and is
	// not about JSON.
	if _, err := ParseManifest([]byte(`{"schema":1,"version":"v1.0.0 "}`)); !errors.Is(err, ErrInvalidModel) ||
		!strings.Contains(err.Error(), `manifest field "version"`) || strings.Contains(err.Error(), "JSON") ||
		!strings.Contains(err.Error(), "white space") {
		t.Errorf("ParseManifest(bad version) = %v; want ErrInvalidModel naming the version field and what is wrong", err)
	}
	if _, err := ParseManifest([]byte(`{"schema":1}`)); !errors.Is(err, ErrInvalidModel) || !strings.Contains(err.Error(), `manifest field "version"`) {
		t.Errorf("ParseManifest(no version) = %v; want ErrInvalidModel naming the version field", err)
	}
	if _, err := ParseManifest([]byte("{not json")); !errors.Is(err, ErrInvalidModel) {
		t.Errorf("ParseManifest(garbage) = %v", err)
	}
}

func TestForwardMatchesHandComputation(t *testing.T) {
	t.Parallel()
	// 12 → 1 → 5 with known weights: out = clip(relu(sum(x)*0.5 - 1) * [1..5]*0.1)
	l1 := DenseLayer{In: 12, Out: 1, Q: make([]int8, 12), Scale: []float32{0.5}, Bias: []float32{-1}, Activation: ActReLU}
	for i := range l1.Q {
		l1.Q[i] = 1
	}
	l2 := DenseLayer{In: 1, Out: 5, Q: []int8{1, 2, 3, 4, 5}, Scale: []float32{0.1, 0.1, 0.1, 0.1, 0.1}, Bias: make([]float32, 5), Activation: ActClip}
	m := &QuantizedMLP{Layers: []DenseLayer{l1, l2}}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 24)
	for i := 12; i < 24; i++ {
		x[i] = 0.5 // row 1: sum 6 → relu(3-1) = 2
	}
	got := m.Forward(x, 2)
	want := []float32{0, 0, 0, 0, 0, 0.2, 0.4, 0.6, 0.8, 1}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-6 {
			t.Fatalf("Forward = %v, want %v", got, want)
		}
	}
	if m.Params() != 12+1+5+5 {
		t.Fatalf("Params() = %d", m.Params())
	}
}

func TestFeaturesFor(t *testing.T) {
	t.Parallel()
	v1, err := FeaturesFor(1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v1, DefaultFeatures()) {
		t.Errorf("FeaturesFor(1) differs from DefaultFeatures")
	}
	v2, err := FeaturesFor(2)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v2[:NumFeatures], v1) {
		t.Errorf("major 2 does not start with major 1's twelve")
	}
	var names []string
	for _, s := range v2[NumFeatures:] {
		names = append(names, s.Name)
	}
	for _, want := range []string{"cpu_max", "mem_max"} {
		if !slices.Contains(names, want) {
			t.Errorf("major 2 adds %v; want %s among them", names, want)
		}
	}
	if _, err := FeaturesFor(9); !errors.Is(err, ErrInvalidModel) {
		t.Errorf("FeaturesFor(9) = %v; want ErrInvalidModel", err)
	}
	if w, _ := HistoryWindowFor(2); w != 7*24*time.Hour {
		t.Errorf("major 2 window %v; want 7 days", w)
	}
	for i, f := range Catalog() {
		g, j, ok := LookupFeature(f.Spec.Name)
		if !ok || j != i || g.RawField == "" || g.Spec.Validate() != nil {
			t.Errorf("catalogue %d %s: lookup %v %d %v", i, f.Spec.Name, g, j, ok)
		}
	}
	if _, _, ok := LookupFeature("cpu_p42"); ok {
		t.Error("LookupFeature(cpu_p42) found something")
	}
}

func TestManifestFeatureLists(t *testing.T) {
	t.Parallel()
	b := []byte("model bytes")
	v2, _ := FeaturesFor(2)
	m := testManifest(b)
	m.Version = MustParseVersion("v2.0.0")
	m.Features, m.Signature, m.HistoryWindowHours = v2, SignatureFor(len(v2)), 168
	m.Golden.Inputs = [][]float32{make([]float32, len(v2))}
	if err := m.Validate(); err != nil {
		t.Fatalf("v2 manifest: %v", err)
	}
	if m.HistoryWindow() != 168*time.Hour || len(m.GoldenInput()) != len(v2) {
		t.Errorf("window %v, golden width %d", m.HistoryWindow(), len(m.GoldenInput()))
	}
	js, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseManifest(js)
	if err != nil || back.HistoryWindowHours != 168 || len(back.Features) != len(v2) {
		t.Fatalf("round trip: %v, %+v", err, back)
	}

	// A v1 manifest written before history_window_hours means 48 h.
	old := testManifest(b)
	js, _ = json.Marshal(old)
	if strings.Contains(string(js), "history_window") {
		t.Errorf("v1 manifest JSON mentions the window: %s", js)
	}
	back, err = ParseManifest(js)
	if err != nil || back.HistoryWindow() != 48*time.Hour {
		t.Errorf("v1 manifest: %v, window %v; want 48h", err, back.HistoryWindow())
	}

	for name, mutate := range map[string]func(*Manifest){
		"unknown": func(m *Manifest) { m.Features[13].Name, m.Features[14].Name = "gpu_max", "disk_p99" },
		"twice":   func(m *Manifest) { m.Features[13] = m.Features[12] },
		"width":   func(m *Manifest) { m.Signature = DefaultSignature() },
		"golden":  func(m *Manifest) { m.Golden.Inputs = [][]float32{make([]float32, NumFeatures)} },
		"window":  func(m *Manifest) { m.HistoryWindowHours = -1 },
	} {
		bad := *m
		bad.Features = append([]Spec(nil), m.Features...)
		mutate(&bad)
		err := bad.Validate()
		if !errors.Is(err, ErrInvalidModel) {
			t.Errorf("%s: %v; want ErrInvalidModel", name, err)
		}
		if name == "unknown" && (err == nil || !strings.Contains(err.Error(), `"gpu_max", "disk_p99"`)) {
			t.Errorf("unknown features: %v; want both named", err)
		}
	}
}

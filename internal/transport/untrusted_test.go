package transport_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	onnxpb "recommendation-api/api/onnx/onnx"
	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/defaultmodel"
	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
)

// externalDataModel is v1.9.0 of the default model's weights with
// initializer layer0.bias stored in "secret.bin" relative to the reader's
// working directory (written by internal/onnxfile's TestTestdata).
const externalDataModel = "../onnxfile/testdata/external_data_v1.9.0.onnx"

// watchOpens returns a function that drains and describes the IN_OPEN and
// IN_ACCESS events on path ("" when there were none).
func watchOpens(t *testing.T, path string) func() string {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatalf("inotify_init1: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_OPEN|unix.IN_ACCESS); err != nil {
		t.Fatalf("inotify_add_watch %s: %v", path, err)
	}
	return func() string {
		var out []string
		buf := make([]byte, 4096)
		for {
			n, err := unix.Read(fd, buf)
			if errors.Is(err, unix.EAGAIN) || n <= 0 {
				return strings.Join(out, " ")
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; { // wd, mask, cookie, len, name[len]
				mask, l := binary.NativeEndian.Uint32(buf[off+4:]), int(binary.NativeEndian.Uint32(buf[off+12:]))
				out = append(out, fmt.Sprintf("mask %#x", mask))
				off += unix.SizeofInotifyEvent + l
			}
		}
	}
}

// refusal is one request that must be refused over both transports.
type refusal struct {
	name   string
	rpc    func(context.Context, recommendationv1.ModelRegistryServiceClient) error
	rest   [3]string // method, path, body
	code   codes.Code
	want   []string // substrings of the message
	hidden []string // values computed from the model that the message must not hold
}

// check sends r over gRPC and REST and checks the code and the message,
// that no ONNX Runtime internals and no hidden value are in it, and that
// the seed version still serves.
func (r refusal) check(t *testing.T, e *regEnv) {
	t.Helper()
	checkMsg := func(t *testing.T, msg string) {
		t.Helper()
		checkMessage(t, msg, r.want)
		for _, h := range append([]string{".cc:", "onnxruntime", "got "}, r.hidden...) {
			if strings.Contains(msg, h) {
				t.Errorf("message %q holds %q", msg, h)
			}
		}
	}
	t.Run("gRPC", func(t *testing.T) {
		st := status.Convert(r.rpc(rpcCtx(t), e.reg))
		if st.Code() != r.code {
			t.Errorf("code = %v (%q); want %v", st.Code(), st.Message(), r.code)
		}
		checkMsg(t, st.Message())
		e.checkUnchanged(t)
	})
	t.Run("REST", func(t *testing.T) {
		code, _, body := e.call(t, r.rest[0], r.rest[1], r.rest[2])
		var re restError
		if err := json.Unmarshal(body, &re); err != nil {
			t.Fatalf("%s %s = %d %s: %v", r.rest[0], r.rest[1], code, body, err)
		}
		if want := httpStatus(r.code); code != want || re.Code != r.code {
			t.Errorf("%s %s = %d %v; want %d %v (%s)", r.rest[0], r.rest[1], code, re.Code, want, r.code, re.Message)
		}
		checkMsg(t, re.Message)
		e.checkUnchanged(t)
	})
}

func registerRefusal(t *testing.T, name string, b []byte, m *model.Manifest, code codes.Code, want, hidden []string) refusal {
	return refusal{
		name: name,
		rpc: func(ctx context.Context, c recommendationv1.ModelRegistryServiceClient) error {
			_, err := c.RegisterVersion(ctx, registerRequest(t, b, m, "", ""))
			return err
		},
		rest: [3]string{"POST", "/v1/models", registerBody(t, b, manifestJSON(t, m), "")},
		code: code, want: want, hidden: hidden,
	}
}

func activateRefusal(name, version string, code codes.Code, want, hidden []string) refusal {
	return refusal{
		name: name,
		rpc: func(ctx context.Context, c recommendationv1.ModelRegistryServiceClient) error {
			_, err := c.ActivateVersion(ctx, &recommendationv1.ActivateVersionRequest{Version: version})
			return err
		},
		rest: [3]string{"POST", "/v1/models/" + version + ":activate", `{}`},
		code: code, want: want, hidden: hidden,
	}
}

// withBytes is m describing b instead of its own bytes.
func withBytes(t *testing.T, m *model.Manifest, b []byte, edit func(*model.Manifest)) *model.Manifest {
	return editedManifest(t, m, func(c *model.Manifest) {
		c.Model.SHA256, c.Model.SizeBytes = model.SHA256Hex(b), int64(len(b))
		if edit != nil {
			edit(c)
		}
	})
}

// formatted is every output of mlp for the manifest's golden rows as %v
// prints it: numbers a refusal must not echo.
func formatted(mlp *model.QuantizedMLP, m *model.Manifest) []string {
	var out []string
	for _, v := range mlp.Forward(m.GoldenInput(), len(m.Golden.Inputs)) {
		out = append(out, strconv.FormatFloat(float64(v), 'g', -1, 32))
	}
	return out
}

// TestRegisterExternalDataOpensNothing uploads a model whose initializer
// names a file beside the server, and activates the same model stored in
// the registry: both are refused with a message naming the initializer,
// and the file is never opened. ONNX Runtime would read it, and the
// golden-row error would echo answers computed from its bytes.
//
// Not parallel: ONNX Runtime resolves the location from the process's
// working directory, which the test moves to where secret.bin is.
func TestRegisterExternalDataOpensNothing(t *testing.T) {
	e := newRegEnv(t)
	b, err := os.ReadFile(externalDataModel)
	if err != nil {
		t.Fatal(err)
	}
	seedB, _, err := defaultmodel.Load()
	if err != nil {
		t.Fatal(err)
	}
	weights, _, err := onnxfile.Decode(seedB)
	if err != nil {
		t.Fatal(err)
	}
	base := newRegVersion(t, "v1.9.0", 19)
	man := withBytes(t, base.man, b, func(m *model.Manifest) {
		y := weights.Forward(m.GoldenInput(), len(m.Golden.Inputs))
		for r := range m.Golden.Outputs {
			copy(m.Golden.Outputs[r], y[r*model.NumOutputs:])
		}
	})
	stored := withBytes(t, man, b, func(m *model.Manifest) { m.Version = model.MustParseVersion("v1.8.0") })
	if _, err := e.store.Register(b, stored, "test"); err != nil { // as if written before the check existed
		t.Fatal(err)
	}

	dir := t.TempDir()
	secret := filepath.Join(dir, "secret.bin")
	if err := os.WriteFile(secret, []byte(strings.Repeat("s3cr3t!\n", 512)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	events := watchOpens(t, secret)

	const reason = `model graph: initializer "layer0.bias" uses external data; only embedded tensors are accepted`
	for _, r := range []refusal{
		registerRefusal(t, "Register", b, man, codes.InvalidArgument, []string{"load v1.9.0: check graph: " + reason}, nil),
		activateRefusal("ActivateStored", "v1.8.0", codes.InvalidArgument, []string{"load v1.8.0: check graph: " + reason}, nil),
	} {
		t.Run(r.name, func(t *testing.T) { r.check(t, e) })
	}
	if ev := events(); ev != "" {
		t.Errorf("%s was opened: %s", secret, ev)
	}
	if _, err := os.ReadFile(secret); err != nil || events() == "" { // the watch works
		t.Fatalf("reading %s ourselves raised no event (%v)", secret, err)
	}
	if list, err := e.store.List(); err != nil || len(list) != 2 {
		t.Errorf("registry = %v, %v; want the seed and the stored v1.8.0 only", list, err)
	}
}

// TestRegisterUntrusted uploads models whose manifest or bytes vouch for
// themselves: each is refused over gRPC and REST with the step and the
// reason, without a value the server computed, and nothing is stored.
func TestRegisterUntrusted(t *testing.T) {
	t.Parallel()
	e := newRegEnv(t)
	good := newRegVersion(t, "v1.3.0", 13)

	// A valid MLP with one more trailing node, the identity on its clipped
	// outputs: ONNX Runtime answers the golden rows right.
	extra := func() []byte {
		var mp onnxpb.ModelProto
		if err := proto.Unmarshal(good.onnx, &mp); err != nil {
			t.Fatal(err)
		}
		g := mp.Graph
		g.Node[len(g.Node)-1].Output[0] = "layer2.output"
		g.Node = append(g.Node, &onnxpb.NodeProto{OpType: proto.String("Relu"), Input: []string{"layer2.output"}, Output: []string{model.OutputName}})
		b, err := proto.Marshal(&mp)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}()
	zeros := func(m *model.Manifest) {
		for _, o := range m.Golden.Outputs {
			clear(o)
		}
	}
	looseZeros := editedManifest(t, good.man, func(m *model.Manifest) { zeros(m); m.Golden.Tolerance = 1e9 })
	strictZeros := editedManifest(t, good.man, zeros)
	renamed := editedManifest(t, good.man, func(m *model.Manifest) {
		m.Version = model.MustParseVersion("v1.9.0")
		m.Model.File = "predictor_v1.9.0.onnx"
	})
	off := editedManifest(t, good.man, func(m *model.Manifest) { m.Golden.Outputs[2][1] += 0.25 })
	offHidden := append(formatted(good.mlp, good.man), strconv.FormatFloat(float64(off.Golden.Outputs[2][1]), 'g', -1, 32))

	tests := []refusal{
		registerRefusal(t, "ExtraTrailingNode", extra, withBytes(t, good.man, extra, nil), codes.InvalidArgument,
			[]string{`load v1.3.0: check graph: model graph: layer 3: node 12 ("") is Relu; want DequantizeLinear`}, nil),
		registerRefusal(t, "ToleranceLooserThanServer", good.onnx, looseZeros, codes.InvalidArgument,
			[]string{"manifest_json:", "tolerance 1e+09", "no looser than the server's 0.0001"}, nil),
		registerRefusal(t, "GoldenZeros", good.onnx, strictZeros, codes.FailedPrecondition,
			[]string{"load v1.3.0: golden rows: golden rows mismatch: row 0 output cpu_request", "0.0001"}, formatted(good.mlp, good.man)),
		registerRefusal(t, "GoldenOff", good.onnx, off, codes.FailedPrecondition,
			[]string{"load v1.3.0: golden rows: golden rows mismatch: row 2 output cpu_limit"}, offHidden),
		registerRefusal(t, "VersionMismatch", good.onnx, renamed, codes.InvalidArgument,
			[]string{"load v1.9.0: check version:", "the model bytes carry version v1.3.0; the manifest says v1.9.0"}, nil),
	}
	t.Run("group", func(t *testing.T) {
		for _, r := range tests {
			t.Run(r.name, func(t *testing.T) {
				t.Parallel()
				r.check(t, e)
			})
		}
	})
	list, err := e.store.List()
	if err != nil || len(list) != 1 || list[0].Manifest.Version.String() != seedVersion {
		t.Errorf("registry after refused uploads = %v, %v; want only %s", list, err, seedVersion)
	}
}

// TestActivateStoredUntrusted activates versions already in the registry
// (stored before these checks existed, or by another writer) whose golden
// rows or version do not hold: the release flow refuses them with the step
// and the reason, the client never reads the computed answers, and the log
// has the full error.
func TestActivateStoredUntrusted(t *testing.T) {
	t.Parallel()
	e := newRegEnv(t)
	good := newRegVersion(t, "v1.3.0", 13)
	renamed := editedManifest(t, good.man, func(m *model.Manifest) { m.Version = model.MustParseVersion("v1.6.0") })
	v131 := newRegVersion(t, "v1.3.1", 31)
	b131 := v131.onnx
	off := editedManifest(t, v131.man, func(m *model.Manifest) { m.Golden.Outputs[4][3] += 0.5 })
	for _, v := range []struct {
		b []byte
		m *model.Manifest
	}{{b131, off}, {good.onnx, renamed}} {
		if _, err := e.store.Register(v.b, v.m, "test"); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []refusal{
		activateRefusal("GoldenOff", "v1.3.1", codes.FailedPrecondition,
			[]string{"load v1.3.1: golden rows: golden rows mismatch: row 4 output mem_limit"},
			append(formatted(v131.mlp, off), strconv.FormatFloat(float64(off.Golden.Outputs[4][3]), 'g', -1, 32))),
		activateRefusal("VersionMismatch", "v1.6.0", codes.InvalidArgument,
			[]string{"load v1.6.0: check version: invalid model: the model bytes carry version v1.3.0; the manifest says v1.6.0"}, nil),
	} {
		t.Run(r.name, func(t *testing.T) { r.check(t, e) })
	}
	if logs := e.logs.String(); !strings.Contains(logs, "got ") || !strings.Contains(logs, "release v1.3.1: load failed") {
		t.Errorf("server log lacks the full golden-row error:\n%s", logs)
	}
}

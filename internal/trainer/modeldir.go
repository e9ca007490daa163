package trainer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"recommendation-api/internal/model"
)

// The on-disk format of the original pipeline: predictor_v{version}.onnx per
// version, predictor.onnx a copy of the active one, and manifest.json the
// active one's manifest (with checksums). manifest_v{version}.json keeps each
// version's own manifest so older files stay verifiable.
const (
	ActiveModelFile    = "predictor.onnx"
	ActiveManifestFile = "manifest.json"
)

// VersionedModelFile is "predictor_v1.2.3.onnx".
func VersionedModelFile(v model.Version) string { return "predictor_" + v.String() + ".onnx" }

// VersionedManifestFile is "manifest_v1.2.3.json".
func VersionedManifestFile(v model.Version) string { return "manifest_" + v.String() + ".json" }

// WriteModelDir writes a version into dir and makes it the active one there.
// It refuses (ErrVersionExists) to overwrite a different file that claims
// the same version, and checks everything before writing anything; each file
// is written to a temporary name and renamed into place.
func WriteModelDir(dir string, b []byte, m *model.Manifest) error {
	if err := m.Validate(); err != nil {
		return err
	}
	if err := m.VerifyBytes(b); err != nil {
		return err
	}
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	mj = append(mj, '\n')
	versioned := filepath.Join(dir, VersionedModelFile(m.Version))
	if old, err := os.ReadFile(versioned); err == nil && !bytes.Equal(old, b) {
		return fmt.Errorf("%w: %s holds a different model (sha256 %s) for %s; choose another version",
			model.ErrVersionExists, versioned, model.SHA256Hex(old), m.Version)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{
		{VersionedModelFile(m.Version), b},
		{VersionedManifestFile(m.Version), mj},
		{ActiveModelFile, b},
		{ActiveManifestFile, mj},
	} {
		if err := writeFileAtomic(filepath.Join(dir, f.name), f.data); err != nil {
			return err
		}
	}
	return nil
}

// ReadModelFile reads a model file and the manifest that describes it
// (manifest.json for predictor.onnx, manifest_v{version}.json for a
// versioned file, falling back to manifest.json when its version matches),
// and verifies the bytes against the manifest's sha256.
func ReadModelFile(path string) ([]byte, *model.Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read model: %w", err)
	}
	dir, base := filepath.Dir(path), filepath.Base(path)
	candidates := []string{ActiveManifestFile}
	if vs, ok := strings.CutPrefix(base, "predictor_"); ok {
		vs = strings.TrimSuffix(vs, ".onnx")
		v, err := model.ParseVersion(vs)
		if err != nil {
			return nil, nil, fmt.Errorf("model file name %s: %w", base, err)
		}
		candidates = []string{VersionedManifestFile(v), ActiveManifestFile}
	}
	var lastErr error
	for _, c := range candidates {
		mb, err := os.ReadFile(filepath.Join(dir, c))
		if err != nil {
			lastErr = fmt.Errorf("read manifest: %w", err)
			continue
		}
		m, err := model.ParseManifest(mb)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", filepath.Join(dir, c), err)
		}
		if base != ActiveModelFile && base != m.Model.File {
			lastErr = fmt.Errorf("%w: %s describes %s, not %s", model.ErrInvalidModel, c, m.Model.File, base)
			continue
		}
		if err := m.VerifyBytes(b); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		return b, m, nil
	}
	return nil, nil, lastErr
}

func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	// CreateTemp makes the file 0600; model files are read by the server,
	// which may run as another user (the container's "reco").
	err = f.Chmod(0o644)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

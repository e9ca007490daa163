package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"recommendation-api/internal/onnxfile"
	"recommendation-api/internal/trainer"
)

// runExport copies a verified model and its manifest into a directory:
//
//	recommendation-api export --model models/predictor.onnx --output DIR
//
// It refuses to overwrite a different file that claims the same version.
func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("model", "models/predictor.onnx", "model file with its manifest beside it")
	output := fs.String("output", "", "destination directory (created if missing)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *output == "" {
		return usageError{fmt.Errorf("export: --output is required")}
	}
	b, m, err := trainer.ReadModelFile(*path)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	// The bytes must also be a model this server can decode, not just hash right.
	if _, v, err := onnxfile.Decode(b); err != nil {
		return fmt.Errorf("export: %s: %w", *path, err)
	} else if v != m.Version {
		return fmt.Errorf("export: file says %s, manifest says %s", v, m.Version)
	}
	if err := trainer.WriteModelDir(*output, b, m); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(stdout, "exported %s (sha256 %s, %d bytes) to %s: %s, %s, %s\n", m.Version, m.Model.SHA256, len(b), *output,
		trainer.VersionedModelFile(m.Version), trainer.ActiveModelFile, trainer.ActiveManifestFile)
	return nil
}

package transport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// mergeOpenAPI returns the Swagger 2.0 document generated from the .proto
// files with a hand-written overlay merged in: the overlay's info fields
// replace the generated ones (whose title is a .proto file name), its tags
// are appended, and its paths and definitions are added. An overlay path or
// definition that the generated document already has is an error, so a
// route added to the .proto files cannot be shadowed silently. Numbers are
// kept as written.
func mergeOpenAPI(generated, overlay []byte) ([]byte, error) {
	var doc, over map[string]any
	if err := decodeJSON(generated, &doc); err != nil {
		return nil, fmt.Errorf("transport: generated OpenAPI document: %w", err)
	}
	if err := decodeJSON(overlay, &over); err != nil {
		return nil, fmt.Errorf("transport: OpenAPI overlay: %w", err)
	}
	for key, v := range over {
		switch key {
		case "info", "paths", "definitions":
			add, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("transport: OpenAPI overlay: %s is not an object", key)
			}
			have, _ := doc[key].(map[string]any)
			if have == nil {
				have = map[string]any{}
			}
			for _, name := range slices.Sorted(maps.Keys(add)) {
				if _, dup := have[name]; dup && key != "info" {
					return nil, fmt.Errorf("transport: OpenAPI overlay: %s %q is already in the generated document", key, name)
				}
				have[name] = add[name]
			}
			doc[key] = have
		case "tags":
			add, ok := v.([]any)
			if !ok {
				return nil, fmt.Errorf("transport: OpenAPI overlay: tags is not an array")
			}
			have, _ := doc["tags"].([]any)
			doc["tags"] = append(have, add...)
		default:
			return nil, fmt.Errorf("transport: OpenAPI overlay: %q cannot be merged; want info, tags, paths or definitions", key)
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("transport: OpenAPI document: %w", err)
	}
	return b.Bytes(), nil
}

func decodeJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}

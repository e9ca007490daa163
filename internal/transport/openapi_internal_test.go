package transport

import (
	"strings"
	"testing"
)

func TestMergeOpenAPI(t *testing.T) {
	t.Parallel()
	gen := `{"swagger":"2.0","info":{"title":"x.proto","version":"version not set","description":"d"},` +
		`"paths":{"/v1/a":{"get":{}}},"definitions":{"A":{"type":"object","default":12345678901234567890}}}`
	t.Run("OK", func(t *testing.T) {
		b, err := mergeOpenAPI([]byte(gen), []byte(`{"info":{"title":"T","version":"v1"},"paths":{"/healthz":{"get":{}}},"tags":[{"name":"Ops"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`"title": "T"`, `"version": "v1"`, `"description": "d"`, `"/v1/a"`, `"/healthz"`, `"Ops"`, `12345678901234567890`} {
			if !strings.Contains(string(b), want) {
				t.Errorf("merged document lacks %s:\n%s", want, b)
			}
		}
	})
	for name, overlay := range map[string]string{
		"ErrPathExists":       `{"paths":{"/v1/a":{"get":{}}}}`,
		"ErrDefinitionExists": `{"definitions":{"A":{}}}`,
		"ErrUnknownKey":       `{"host":"example.com"}`,
		"ErrNotJSON":          `{`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := mergeOpenAPI([]byte(gen), []byte(overlay)); err == nil {
				t.Errorf("mergeOpenAPI with overlay %s = nil error; want one", overlay)
			}
		})
	}
}

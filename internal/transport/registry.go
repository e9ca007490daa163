package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/model"
)

// Releases is what the registry API needs: reads from the registry and the
// release flow that changes what is served.
type Releases interface {
	List() ([]model.Entry, error)
	Manifest(v model.Version) (*model.Manifest, error)
	Load(v model.Version) ([]byte, *model.Manifest, error)
	// Active returns the active version of major (0: the served major).
	Active(major int) (model.Version, error)
	// History returns one page, newest first, and the next page's token.
	History(q model.HistoryQuery) ([]model.Event, string, error)
	// Register verifies (checksum, ONNX Runtime load, signature, golden rows) and stores a version.
	Register(ctx context.Context, b []byte, m *model.Manifest, actor, reason string) (pruned []model.Version, err error)
	// Activate and Rollback run the release flow; the result says what was
	// recorded, or that nothing changed (the target was already active).
	Activate(ctx context.Context, v model.Version, ch model.Change) (model.Release, error)
	// Rollback goes to `to`, or when to.IsZero() to major's rollback target.
	Rollback(ctx context.Context, to model.Version, major int, ch model.Change) (model.Release, error)
}

// Limits on what a registry request may carry. Larger values are refused
// with InvalidArgument naming the field and the limit.
const (
	// MaxModelBytes is the largest ONNX upload RegisterVersion accepts. The
	// 12-32-16-5 network encodes to about 3 KB; the limit leaves room for
	// wider networks of the same I/O format and, base64-encoded, stays under
	// gRPC's 4 MiB message and the gateway's DefaultMaxBodyBytes.
	MaxModelBytes = 1 << 20
	// MaxManifestBytes bounds manifest_json; a manifest with its golden rows
	// is a few KB.
	MaxManifestBytes = 1 << 20
	// MaxActorBytes and MaxReasonBytes bound the free text kept in the history.
	MaxActorBytes  = 128
	MaxReasonBytes = 1024
)

// DefaultReason is recorded when a register, activate or rollback request
// gives no reason.
const DefaultReason = "operator request"

// SystemActor is the actor of automatic actions (first start, automatic
// rollback); requests may not claim it.
const SystemActor = "system"

// PrunedHeader is the response header (gRPC metadata) in which
// RegisterVersion lists, comma-separated and ascending, the versions that
// retention deleted to make room; it is absent when none were. The gateway
// forwards it as the HTTP header Grpc-Metadata-Pruned-Versions.
// RegisterVersionResponse has no field for them, and they are also in the
// history as "prune" events.
const PrunedHeader = "pruned-versions"

// versionForm is the accepted version syntax, for messages.
const versionForm = "v{major}.{minor}.{patch}, e.g. v1.0.0"

// RegistryServer implements recommendation.v1.ModelRegistryService on top of
// Releases. It holds no state of its own: reads go to the registry, and
// register, activate and rollback go through the release flow, which
// serializes them.
//
// Every handler validates its request before it calls Releases, so a
// malformed request changes nothing; InvalidArgument messages name the field
// and say what is accepted. Errors from Releases are mapped by the error
// table (StatusError): InvalidArgument for a malformed model or manifest,
// NotFound for an unknown version (and for a rollback with no earlier
// version still registered), AlreadyExists for a version registered twice,
// FailedPrecondition when a model fails its checksum, major version, I/O
// signature or golden rows, Unavailable while no version is active, and
// Internal ("internal error", the cause logged) for anything else.
type RegistryServer struct {
	recommendationv1.UnimplementedModelRegistryServiceServer

	r   Releases
	log *slog.Logger
}

var _ recommendationv1.ModelRegistryServiceServer = (*RegistryServer)(nil)

// NewRegistryServer returns a RegistryServer over r. A nil log discards logs.
func NewRegistryServer(r Releases, log *slog.Logger) *RegistryServer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &RegistryServer{r: r, log: log}
}

// ListVersions returns the registered versions, newest (highest semver)
// first as the proto documents, each with its active flag and summary fields
// but without manifest_json, and the active version's name ("" for none).
func (s *RegistryServer) ListVersions(ctx context.Context, _ *recommendationv1.ListVersionsRequest) (*recommendationv1.ListVersionsResponse, error) {
	const method = recommendationv1.ModelRegistryService_ListVersions_FullMethodName
	entries, err := s.r.List()
	if err != nil {
		return nil, StatusError(ctx, s.log, method, err)
	}
	entries = slices.Clone(entries)
	slices.SortFunc(entries, func(a, b model.Entry) int { return b.Manifest.Version.Compare(a.Manifest.Version) })
	resp := &recommendationv1.ListVersionsResponse{Versions: make([]*recommendationv1.ModelVersion, 0, len(entries)),
		ActiveByMajor: map[int32]string{}}
	for _, e := range entries {
		mv, err := modelVersion(e.Manifest, e.Active, false)
		if err != nil {
			return nil, StatusError(ctx, s.log, method, err)
		}
		if e.Active {
			resp.ActiveByMajor[mv.GetMajor()] = mv.GetVersion()
			if mv.GetMajor() == defaultMajor {
				resp.ActiveVersion = mv.GetVersion()
			}
		}
		resp.Versions = append(resp.Versions, mv)
	}
	return resp, nil
}

// GetVersion returns one registered version with its manifest.
// Errors: InvalidArgument for a malformed version, NotFound for an unknown one.
func (s *RegistryServer) GetVersion(ctx context.Context, req *recommendationv1.GetVersionRequest) (*recommendationv1.GetVersionResponse, error) {
	const method = recommendationv1.ModelRegistryService_GetVersion_FullMethodName
	v, err := parseVersionField("version", req.GetVersion(), true)
	if err != nil {
		return nil, err
	}
	m, err := s.r.Manifest(v)
	if err != nil {
		return nil, StatusError(ctx, s.log, method, err)
	}
	active, err := s.r.Active(v.Major)
	if err != nil && !errors.Is(err, model.ErrNoActiveVersion) {
		return nil, StatusError(ctx, s.log, method, err)
	}
	isActive := err == nil && active == v
	mv, err := modelVersion(m, isActive, true)
	if err != nil {
		return nil, StatusError(ctx, s.log, method, err)
	}
	return &recommendationv1.GetVersionResponse{Model: mv}, nil
}

// GetActive returns the version being served, with its manifest.
// Errors: Unavailable while no version is active.
func (s *RegistryServer) GetActive(ctx context.Context, req *recommendationv1.GetActiveRequest) (*recommendationv1.GetActiveResponse, error) {
	const method = recommendationv1.ModelRegistryService_GetActive_FullMethodName
	if req.GetMajor() < 0 {
		return nil, invalid(fmt.Sprintf("major: %d; want a major version number, or 0 for the default major %d", req.GetMajor(), defaultMajor))
	}
	v, err := s.r.Active(int(req.GetMajor()))
	if err != nil {
		return nil, StatusError(ctx, s.log, method, err)
	}
	m, err := s.r.Manifest(v)
	if err != nil {
		// The registry never prunes the active version: a missing one is
		// the server's fault, not the caller's.
		return nil, StatusError(ctx, s.log, method, fmt.Errorf("manifest of active version %s: %v", v, err))
	}
	mv, err := modelVersion(m, true, true)
	if err != nil {
		return nil, StatusError(ctx, s.log, method, err)
	}
	return &recommendationv1.GetActiveResponse{Model: mv}, nil
}

// GetHistory returns one page of the registry's events, newest first:
// "register", "prune" (a version deleted by retention; from_version names
// it), "activate", "rollback", "auto_rollback" and "upgrade", optionally of
// one major and one action. Errors: InvalidArgument for a negative or
// too-large page size, a negative major, an unknown action or a page token
// this server did not give.
func (s *RegistryServer) GetHistory(ctx context.Context, req *recommendationv1.GetHistoryRequest) (*recommendationv1.GetHistoryResponse, error) {
	const method = recommendationv1.ModelRegistryService_GetHistory_FullMethodName
	size, field := int(req.GetPageSize()), "page_size"
	if size == 0 && req.GetLimit() != 0 {
		size, field = int(req.GetLimit()), "limit"
	}
	switch {
	case size < 0 || size > model.MaxHistoryPage:
		return nil, invalid(fmt.Sprintf("%s: %d; want 1..%d, or 0 for %d", field, size, model.MaxHistoryPage, model.DefaultHistoryPage))
	case req.GetMajor() < 0:
		return nil, invalid(fmt.Sprintf("major: %d; want a major version number, or 0 for all", req.GetMajor()))
	case req.GetAction() != "" && !slices.Contains(historyActions, req.GetAction()):
		return nil, invalid(fmt.Sprintf("action: %q; want one of %s, or empty for all", req.GetAction(), strings.Join(historyActions, ", ")))
	}
	evs, next, err := s.r.History(model.HistoryQuery{PageSize: size, PageToken: req.GetPageToken(), Major: int(req.GetMajor()), Action: req.GetAction()})
	if err != nil {
		return nil, StatusError(ctx, s.log, method, err)
	}
	resp := &recommendationv1.GetHistoryResponse{Entries: make([]*recommendationv1.HistoryEntry, 0, len(evs)), NextPageToken: next}
	for _, ev := range evs {
		resp.Entries = append(resp.Entries, historyEntry(ev))
	}
	return resp, nil
}

// historyActions are the actions GetHistory can filter on.
var historyActions = []string{model.ActionRegister, model.ActionPrune, model.ActionActivate, model.ActionRollback, model.ActionAutoRollback, model.ActionUpgrade}

// RegisterVersion checks the upload and hands it to Releases.Register,
// which verifies it with ONNX Runtime and stores it without activating it.
// The versions retention pruned are listed in the PrunedHeader response
// header.
//
// Errors: InvalidArgument for empty or oversized onnx or manifest_json, a
// manifest that does not parse or validate (a golden tolerance looser than
// model.GoldenTolerance included), an over-long actor or reason, model bytes
// that are not exactly what the project's encoder writes (external data, an
// extra node, another opset...), that carry another version than the
// manifest or hold another network than its architecture declares (the
// message names the step and the reason);
// FailedPrecondition when the bytes do not match the manifest's sha256 and
// size, or the model's major version or signature is not what this server
// serves, or the golden rows are not what the server's own forward pass of
// the model's weights gives; AlreadyExists when the version is registered.
func (s *RegistryServer) RegisterVersion(ctx context.Context, req *recommendationv1.RegisterVersionRequest) (*recommendationv1.RegisterVersionResponse, error) {
	const method = recommendationv1.ModelRegistryService_RegisterVersion_FullMethodName
	b, mj := req.GetOnnx(), req.GetManifestJson()
	switch {
	case len(b) == 0:
		return nil, invalid("onnx: empty; want the ONNX model bytes (base64 in JSON) written by train or export")
	case len(b) > MaxModelBytes:
		return nil, invalid(fmt.Sprintf("onnx: %d bytes; the limit is %d bytes (%d MiB)", len(b), MaxModelBytes, MaxModelBytes>>20))
	case strings.TrimSpace(mj) == "":
		return nil, invalid("manifest_json: empty; want the manifest.json written by train or export, as a string")
	case len(mj) > MaxManifestBytes:
		return nil, invalid(fmt.Sprintf("manifest_json: %d bytes; the limit is %d bytes (%d MiB)", len(mj), MaxManifestBytes, MaxManifestBytes>>20))
	}
	actor, reason, err := s.who(ctx, req.GetActor(), req.GetReason())
	if err != nil {
		return nil, err
	}
	m, err := model.ParseManifest([]byte(mj))
	if err != nil {
		// The message describes the caller's own manifest.
		err = fmt.Errorf("manifest_json: %w", err)
		return nil, StatusError(ctx, s.log, method, model.Public(err, err.Error()))
	}
	if err := m.VerifyBytes(b); err != nil {
		return nil, StatusError(ctx, s.log, method, model.Public(fmt.Errorf("onnx: %w", err),
			fmt.Sprintf("onnx: %v: the bytes do not have the manifest's model.sha256 %s and model.size_bytes %d",
				model.ErrChecksumMismatch, m.Model.SHA256, m.Model.SizeBytes)))
	}
	if err := ctx.Err(); err != nil {
		return nil, StatusError(ctx, s.log, method, err)
	}

	pruned, err := s.r.Register(ctx, b, m, actor, reason)
	if err != nil {
		return nil, StatusError(ctx, s.log, method, err)
	}
	if len(pruned) > 0 {
		names := make([]string, len(pruned))
		for i, v := range pruned {
			names[i] = v.String()
		}
		// Fails only outside a gRPC call (a direct call in a test).
		_ = grpc.SetHeader(ctx, metadata.Pairs(PrunedHeader, strings.Join(names, ",")))
	}
	mv, err := modelVersion(m, false, true)
	if err != nil {
		return nil, StatusError(ctx, s.log, method, err)
	}
	return &recommendationv1.RegisterVersionResponse{Model: mv}, nil
}

// ActivateVersion serves a registered version through the release flow and
// records the move. Errors: InvalidArgument for a malformed version or
// over-long actor or reason; NotFound for an unknown version;
// FailedPrecondition when the stored model fails its checksum, major
// version, signature or golden rows (the previous version keeps serving).
func (s *RegistryServer) ActivateVersion(ctx context.Context, req *recommendationv1.ActivateVersionRequest) (*recommendationv1.ActivateVersionResponse, error) {
	const method = recommendationv1.ModelRegistryService_ActivateVersion_FullMethodName
	v, err := parseVersionField("version", req.GetVersion(), true)
	if err != nil {
		return nil, err
	}
	actor, reason, err := s.who(ctx, req.GetActor(), req.GetReason())
	if err != nil {
		return nil, err
	}
	expected, err := parseExpected(req.GetExpectedActive())
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, StatusError(ctx, s.log, method, err)
	}
	rel, err := s.r.Activate(ctx, v, model.Change{Reason: reason, Actor: actor, Expected: expected})
	if err != nil {
		return nil, StatusError(ctx, s.log, method, err)
	}
	return &recommendationv1.ActivateVersionResponse{Model: s.moved(ctx, method, rel), PreviousVersion: rel.Event.From,
		Changed: rel.Changed, Note: rel.Note}, nil
}

// Rollback serves to_version, or when it is empty the version that was
// active before the current one, and records the move as a rollback.
// Errors: InvalidArgument for a malformed to_version or over-long actor or
// reason; NotFound for an unknown to_version, or when no earlier version is
// still registered (nothing to roll back to); FailedPrecondition when the
// target fails its checks (the current version keeps serving).
func (s *RegistryServer) Rollback(ctx context.Context, req *recommendationv1.RollbackRequest) (*recommendationv1.RollbackResponse, error) {
	const method = recommendationv1.ModelRegistryService_Rollback_FullMethodName
	to, err := parseVersionField("to_version", req.GetToVersion(), false)
	if err != nil {
		return nil, err
	}
	actor, reason, err := s.who(ctx, req.GetActor(), req.GetReason())
	if err != nil {
		return nil, err
	}
	expected, err := parseExpected(req.GetExpectedActive())
	if err != nil {
		return nil, err
	}
	if req.GetMajor() < 0 {
		return nil, invalid(fmt.Sprintf("major: %d; want a major version number, or 0 for the served major", req.GetMajor()))
	}
	if err := ctx.Err(); err != nil {
		return nil, StatusError(ctx, s.log, method, err)
	}
	rel, err := s.r.Rollback(ctx, to, int(req.GetMajor()), model.Change{Reason: reason, Actor: actor, Expected: expected})
	if err != nil {
		return nil, StatusError(ctx, s.log, method, err)
	}
	return &recommendationv1.RollbackResponse{Model: s.moved(ctx, method, rel), PreviousVersion: rel.Event.From,
		Changed: rel.Changed, Note: rel.Note}, nil
}

// defaultMajor is the major a request that names none concerns.
const defaultMajor = 1

// parseExpected reads an expected_active field: "" for no expectation,
// "none" for "no version is active", or a version.
func parseExpected(s string) (*model.Version, error) {
	switch s {
	case "":
		return nil, nil
	case "none":
		return &model.Version{}, nil
	}
	v, err := parseVersionField("expected_active", s, true)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// DownloadVersion returns a version's ONNX bytes, checked against the
// manifest's sha256 as they are read, and its manifest as the indented
// manifest.json that export writes. Errors: InvalidArgument for a malformed
// version; NotFound for an unknown one; FailedPrecondition when the stored
// bytes no longer match their checksum.
func (s *RegistryServer) DownloadVersion(ctx context.Context, req *recommendationv1.DownloadVersionRequest) (*recommendationv1.DownloadVersionResponse, error) {
	const method = recommendationv1.ModelRegistryService_DownloadVersion_FullMethodName
	v, err := parseVersionField("version", req.GetVersion(), false)
	if err != nil {
		return nil, err
	}
	switch {
	case req.GetMajor() < 0:
		return nil, invalid(fmt.Sprintf("major: %d; want a major version number, or 0 for the default major %d", req.GetMajor(), defaultMajor))
	case !v.IsZero() && req.GetMajor() != 0 && int(req.GetMajor()) != v.Major:
		return nil, invalid(fmt.Sprintf("major: %d, but version %s is major %d; give one or the other", req.GetMajor(), v, v.Major))
	case v.IsZero():
		if v, err = s.r.Active(int(req.GetMajor())); err != nil {
			return nil, StatusError(ctx, s.log, method, err)
		}
	}
	b, m, err := s.r.Load(v)
	if err != nil {
		return nil, StatusError(ctx, s.log, method, err)
	}
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, StatusError(ctx, s.log, method, fmt.Errorf("encode manifest of %s: %v", v, err))
	}
	return &recommendationv1.DownloadVersionResponse{
		Version:      m.Version.String(),
		Onnx:         b,
		ManifestJson: string(append(mj, '\n')),
	}, nil
}

// moved describes the version an activation or rollback made active. The
// move has happened, so a failure to read its manifest is logged and
// answered with the version name alone rather than as an error.
func (s *RegistryServer) moved(ctx context.Context, method string, rel model.Release) *recommendationv1.ModelVersion {
	v := rel.Active
	fallback := &recommendationv1.ModelVersion{Version: v.String(), Active: true}
	m, err := s.r.Manifest(v)
	if err == nil {
		var mv *recommendationv1.ModelVersion
		if mv, err = modelVersion(m, true, true); err == nil {
			return mv
		}
	}
	s.log.ErrorContext(ctx, "describe the version just made active", "method", method, "version", v, "err", err)
	return fallback
}

// who returns the actor and reason to record: the caller's token name (see
// recordedActor: a request actor naming someone else is refused), and
// DefaultReason when the reason is empty.
func (s *RegistryServer) who(ctx context.Context, actor, reason string) (string, string, error) {
	actor, reason = strings.TrimSpace(actor), strings.TrimSpace(reason)
	switch {
	case len(actor) > MaxActorBytes:
		return "", "", invalid(fmt.Sprintf("actor: %d bytes; want at most %d (a name)", len(actor), MaxActorBytes))
	case strings.EqualFold(actor, SystemActor):
		return "", "", invalid(fmt.Sprintf("actor: %q is reserved for automatic actions; give your own name", actor))
	case strings.ContainsFunc(actor, isControl):
		return "", "", invalid("actor: contains control characters; want a name on one line")
	case len(reason) > MaxReasonBytes:
		return "", "", invalid(fmt.Sprintf("reason: %d bytes; want at most %d", len(reason), MaxReasonBytes))
	}
	actor, err := recordedActor(ctx, actor)
	if err != nil {
		return "", "", err
	}
	if reason == "" {
		reason = DefaultReason
	}
	return actor, reason, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// parseVersionField parses a version request field. An empty value is
// InvalidArgument when required and the zero Version otherwise; v0.0.0,
// which means "none" internally, is refused.
func parseVersionField(field, s string, required bool) (model.Version, error) {
	if s == "" {
		if required {
			return model.Version{}, invalid(fmt.Sprintf("%s: empty; want %s", field, versionForm))
		}
		return model.Version{}, nil
	}
	v, err := model.ParseVersion(s)
	if err != nil {
		return model.Version{}, invalid(fmt.Sprintf("%s: %v", field, err))
	}
	if v.IsZero() {
		return model.Version{}, invalid(fmt.Sprintf("%s: v0.0.0 is not a model version; want %s", field, versionForm))
	}
	return v, nil
}

// modelVersion describes m; manifest_json is set when withManifest.
func modelVersion(m *model.Manifest, active, withManifest bool) (*recommendationv1.ModelVersion, error) {
	if m == nil {
		return nil, errors.New("describe version: nil manifest")
	}
	mv := &recommendationv1.ModelVersion{
		Version:         m.Version.String(),
		Major:           int32(min(max(m.Version.Major, 0), math.MaxInt32)),
		Sha256:          m.Model.SHA256,
		SizeBytes:       m.Model.SizeBytes,
		Active:          active,
		Parameters:      int32(min(max(m.Architecture.Parameters, 0), math.MaxInt32)),
		ParentVersion:   m.Training.ParentVersion,
		TrainingSamples: int64(m.Training.Samples),
	}
	if !m.CreatedAt.IsZero() {
		mv.CreatedAt = timestamppb.New(m.CreatedAt.UTC())
	}
	if e := m.Metrics; e != nil {
		mv.Evaluation = &recommendationv1.EvaluationSummary{
			HeldOutSamples: int64(e.HeldOutSamples),
			Model:          scores(e.Model),
			VpaBaseline:    scores(e.Baseline),
		}
	}
	if withManifest {
		b, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("encode manifest of %s: %v", m.Version, err)
		}
		mv.ManifestJson = string(b)
	}
	return mv, nil
}

func scores(s model.Scores) *recommendationv1.Scores {
	return &recommendationv1.Scores{
		CpuRequestSlack: s.CPURequestSlack,
		CpuLimitSlack:   s.CPULimitSlack,
		MemRequestSlack: s.MemRequestSlack,
		MemLimitSlack:   s.MemLimitSlack,
		OomRate:         s.OOMRate,
		ThrottleRate:    s.ThrottleRate,
	}
}

func historyEntry(ev model.Event) *recommendationv1.HistoryEntry {
	e := &recommendationv1.HistoryEntry{
		FromVersion: ev.From,
		ToVersion:   ev.To,
		Action:      ev.Action,
		Reason:      ev.Reason,
		Actor:       ev.Actor,
		Major:       int32(ev.Major),
		Seq:         ev.Seq,
	}
	if !ev.Time.IsZero() {
		e.Time = timestamppb.New(ev.Time.UTC())
	}
	return e
}
